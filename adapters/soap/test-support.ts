/** Helpers shared by the soap adapter's tests. */
import type { AdapterInstance, Delivery } from '../../src/adapter-contract.js';
import { isAmtError, type AmtError } from '../../src/errors.js';
import type { FakeContext } from '../../test/peers/soap/fake-context.js';
import { GEWERBE_WSDL } from '../../test/peers/soap/gewerbe-peer.js';
import type { SoapAdapterConfig } from './config.js';
import { soapAdapter } from './manifest.js';

/** An instance for the Gewerbeanmeldung test WSDL. */
export function createGewerbeInstance(
  context: FakeContext,
  config: Partial<SoapAdapterConfig> & { endpoint: string },
): AdapterInstance {
  return soapAdapter.create(context, {
    wsdl: GEWERBE_WSDL,
    operation: 'importGewerbeanmeldung',
    ...config,
  } satisfies SoapAdapterConfig);
}

/** The AmtError a delivery fails with; fails the test when it succeeds. */
export async function failureOf(
  instance: AdapterInstance,
  delivery: Delivery,
  signal = new AbortController().signal,
): Promise<AmtError> {
  try {
    await instance.deliver!(delivery, signal);
  } catch (err) {
    if (isAmtError(err)) return err;
    throw new Error(`expected an AmtError, got ${String(err)}`);
  }
  throw new Error('expected the delivery to fail');
}
