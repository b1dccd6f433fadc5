/**
 * An `xta2` adapter instance: `deliver` sends through the XTA 2 server, `poll` fetches the msgBox
 * and follows transport reports. See README.md.
 */
import { retryLater, type AdapterContext, type AdapterInstance } from '../../src/adapter-contract.js';
import { AmtError, isAmtError } from '../../src/errors.js';
import { parseTimerDuration } from '../../src/config/units.js';
import type { Xta2Config } from './config.js';
import { XtaFailure } from './exceptions.js';
import { pollInbox } from './inbox.js';
import { sendDelivery } from './send.js';
import { pollTransportReports } from './status.js';
import { XtaClient } from './xta-client.js';

export function createXta2Instance(context: AdapterContext, config: Xta2Config): AdapterInstance {
  const timeoutMs = parseTimerDuration(config.timeout ?? '60s');
  const client = new XtaClient(config.endpoints, config.tls, config.author, timeoutMs, context.resolvePath);
  const statusPolling = {
    enabled: config.statusPolling?.enabled ?? true,
    batchSize: config.statusPolling?.batchSize ?? 50,
  };

  return {
    deliver: async (delivery, signal) => {
      try {
        return await sendDelivery({ client, config, logger: context.logger }, delivery, signal);
      } catch (err) {
        if (isAmtError(err)) throw err;
        throw retryLater(`the XTA delivery failed: ${(err as Error).message}`, { cause: err });
      }
    },
    poll: async (signal) => {
      let items = 0;
      try {
        if (config.inbound) items += await pollInbox(client, context, config.inbound, signal);
        if (statusPolling.enabled)
          items += await pollTransportReports(client, context, statusPolling.batchSize, signal);
      } catch (err) {
        if (err instanceof XtaFailure) {
          throw new AmtError(err.exception ? 'AMT_XTA_EXCEPTION' : 'AMT_XTA_UNREACHABLE', err.message, {
            cause: err,
            retryable: err.retryable,
          });
        }
        throw err;
      }
      return { items };
    },
    close: async () => {
      client.close();
    },
  };
}
