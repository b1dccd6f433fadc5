/**
 * A job that runs one poll of an adapter instance: its inbox (applications to receive), the
 * status of delivered messages, or a refresh of routing data — whatever the adapter's `poll`
 * does. Items processed = what the poll reports.
 */
import type { AdapterInstance } from '../../adapter-contract.js';
import { AmtError } from '../../errors.js';
import type { JobTask } from '../types.js';

export function adapterPollTask(instanceId: string, adapters: ReadonlyMap<string, AdapterInstance>): JobTask {
  return async ({ signal }) => {
    const adapter = adapters.get(instanceId);
    if (!adapter?.poll) {
      throw new AmtError(
        'AMT_ADAPTER_UNKNOWN',
        `adapter instance ${instanceId} is not running or cannot poll`,
      );
    }
    const { items } = await adapter.poll(signal);
    return { items };
  };
}
