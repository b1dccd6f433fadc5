/**
 * A job that runs one task of an adapter instance. `poll`: its inbox (applications to receive) or
 * the status of delivered messages — whatever the adapter's `poll` does. `refresh`: re-reads the
 * routing and destination data the instance keeps. Items processed = what the task reports.
 */
import type { AdapterInstance } from '../../adapter-contract.js';
import { AmtError } from '../../errors.js';
import type { JobTask } from '../types.js';

export type AdapterTaskName = 'poll' | 'refresh';

export function adapterTask(
  instanceId: string,
  task: AdapterTaskName,
  adapters: ReadonlyMap<string, AdapterInstance>,
): JobTask {
  return async ({ signal }) => {
    const adapter = adapters.get(instanceId);
    const run = adapter?.[task];
    if (!adapter || !run) {
      throw new AmtError(
        'AMT_ADAPTER_UNKNOWN',
        `adapter instance ${instanceId} is not running or cannot ${task}`,
      );
    }
    const { items } = await run.call(adapter, signal);
    return { items };
  };
}
