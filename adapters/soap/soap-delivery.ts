/**
 * One delivery of the `soap` adapter: the mapped body becomes the operation's arguments, the
 * delivery id travels in a header, and the answer yields the remote reference or a classified
 * failure. See README.md for the configuration and the failure classification.
 */
import {
  retryLater,
  type AdapterContext,
  type AdapterInstance,
  type Delivery,
  type DeliveryResult,
} from '../../src/adapter-contract.js';
import { isAmtError } from '../../src/errors.js';
import { parseTimerDuration } from '../../src/config/units.js';
import { classifyAnswer, classifyCallError, type ClassificationRules } from './classify.js';
import { DEFAULT_RETRY_FAULTS, type SoapAdapterConfig } from './config.js';
import { deliveryIdHeaders } from './delivery-id-header.js';
import { findFault, readEnvelope } from './faults.js';
import { buildRequestBody } from './request-body.js';
import { SoapOperationClient } from './soap-client.js';
import { createStatusCallback } from './status-callback.js';

/** Reads `a.b[0].c` from the operation result; scalars become strings. */
export function readPath(value: unknown, pathExpression: string): string | undefined {
  let current: unknown = value;
  for (const step of pathExpression.match(/[^.[\]]+/g) ?? []) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[step];
  }
  if (current !== null && typeof current === 'object' && '$value' in current) {
    current = (current as Record<string, unknown>).$value;
  }
  if (typeof current === 'string') return current.trim() === '' ? undefined : current.trim();
  if (typeof current === 'number' || typeof current === 'boolean') return String(current);
  if (current instanceof Date) return current.toISOString();
  return undefined;
}

export function createSoapInstance(context: AdapterContext, config: SoapAdapterConfig): AdapterInstance {
  const timeoutMs = parseTimerDuration(config.timeout ?? '30s');
  const rules: ClassificationRules = {
    faults: {
      retry: config.faults?.retry ?? DEFAULT_RETRY_FAULTS,
      permanent: config.faults?.permanent ?? [],
      default: config.faults?.default ?? 'permanent',
    },
    tlsFailure: config.tlsFailure ?? 'retry',
    timeoutMs,
  };
  const attachments = config.attachments ?? 'omit';
  const client = new SoapOperationClient({
    wsdl: config.wsdl,
    service: config.service,
    port: config.port,
    operation: config.operation,
    endpoint: config.endpoint,
    soapVersion: config.soapVersion ?? '1.1',
    usernameToken: config.usernameToken,
    tls: config.tls,
    resolvePath: context.resolvePath,
  });

  async function deliver(delivery: Delivery, signal: AbortSignal): Promise<DeliveryResult> {
    const { target } = await client.target();
    const body = await buildRequestBody(delivery, {
      xmlBody: config.xmlBody ?? 'element',
      attachments,
      inputElement: target.inputElement,
    });
    if (attachments === 'omit' && delivery.attachments.length > 0) {
      context.logger.debug('attachments are not sent (attachments: omit)', {
        deliveryId: delivery.deliveryId,
        count: delivery.attachments.length,
      });
    }
    let outcome;
    try {
      outcome = await client.call(body.args, {
        headers: deliveryIdHeaders(
          config.deliveryIdHeader ?? { kind: 'ws-addressing' },
          delivery.deliveryId,
          target,
        ),
        parts: body.parts,
        forceMtom: attachments === 'mtom',
        timeoutMs,
        signal,
      });
    } catch (err) {
      if (isAmtError(err)) throw err;
      throw classifyCallError(err, rules, signal);
    }
    // The soap package accepts some answers that are no SOAP at all; check the raw answer here.
    let envelopeBody;
    try {
      envelopeBody = readEnvelope(outcome.rawResponse).body;
    } catch {
      throw classifyAnswer(outcome.rawResponse, outcome.httpStatus, undefined, rules);
    }
    if (findFault(envelopeBody) || (outcome.httpStatus !== undefined && outcome.httpStatus >= 300)) {
      throw classifyAnswer(outcome.rawResponse, outcome.httpStatus, undefined, rules);
    }
    let remoteReference: string | undefined;
    if (config.remoteReference !== undefined) {
      remoteReference = readPath(outcome.result, config.remoteReference);
      if (remoteReference === undefined) {
        // The receiver accepted the message; failing now would only make it send a duplicate.
        context.logger.warn('the answer has no value at the remoteReference path', {
          deliveryId: delivery.deliveryId,
          path: config.remoteReference,
        });
      }
    }
    return {
      remoteReference,
      detail: { endpoint: target.endpoint, operation: target.operation, httpStatus: outcome.httpStatus },
    };
  }

  const handleCallback = config.statusCallback
    ? createStatusCallback(context, config.statusCallback)
    : undefined;

  return {
    ...(handleCallback ? { handleCallback } : {}),
    deliver: async (delivery, signal) => {
      try {
        return await deliver(delivery, signal);
      } catch (err) {
        if (isAmtError(err)) throw err;
        throw retryLater(`the SOAP delivery failed: ${(err as Error).message}`, { cause: err });
      }
    },
    close: async () => {
      client.close();
    },
  };
}
