/**
 * Transport reports (`getTransportReport`) and the status back-channel: for delivered messages
 * without a final status, ask the XTA server and report changes to the core.
 */
import type { AdapterContext } from '../../src/adapter-contract.js';
import { XtaFailure } from './exceptions.js';
import { WSA, XTA, escapeXml } from './metadata.js';
import type { XtaClient } from './xta-client.js';
import { child, childrenNamed, textOf, type XmlElement } from '../../src/xml/element-tree.js';

/** The XTA traffic light (MessageStatus/Status) as remote status names. */
const STATUS_NAMES: Readonly<Record<number, string>> = {
  0: 'open',
  1: 'delivered',
  2: 'delivered-with-warnings',
  3: 'failed',
};

/** Statuses after which the transport report no longer changes. */
export const FINAL_STATUSES: readonly string[] = [
  'delivered',
  'delivered-with-warnings',
  'failed',
  'unknown-to-server',
];

export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? `xta-status-${code}`;
}

export interface ReportRecord {
  readonly timestamp: string | undefined;
  readonly code: string | undefined;
  readonly reason: string | undefined;
}

export interface TransportReport {
  readonly messageId: string | undefined;
  readonly statusCode: number;
  readonly status: string;
  readonly reportTime: string | undefined;
  readonly errors: readonly ReportRecord[];
  readonly warnings: readonly ReportRecord[];
  readonly infos: readonly ReportRecord[];
}

function records(status: XmlElement, list: string, item: string): ReportRecord[] {
  const listElement = child(status, XTA, list);
  return (listElement ? childrenNamed(listElement, XTA, item) : []).map((record) => {
    const code = child(record, XTA, 'Code');
    return {
      timestamp: textOf(child(record, XTA, 'Timestamp')),
      code: textOf(code ? child(code, undefined, 'code') : undefined),
      reason: textOf(child(record, XTA, 'Reason')),
    };
  });
}

export function readTransportReport(report: XmlElement): TransportReport {
  const messageStatus = child(report, XTA, 'MessageStatus');
  const statusText = textOf(messageStatus ? child(messageStatus, XTA, 'Status') : undefined);
  const statusCode = statusText === undefined || !/^\d+$/.test(statusText) ? Number.NaN : Number(statusText);
  if (!messageStatus || Number.isNaN(statusCode)) {
    throw new XtaFailure('the TransportReport has no numeric MessageStatus/Status', true);
  }
  const metadata = child(report, undefined, 'MessageMetaData');
  const identification = metadata ? child(metadata, undefined, 'MsgIdentification') : undefined;
  return {
    messageId: textOf(identification ? child(identification, WSA, 'MessageID') : undefined),
    statusCode,
    status: statusName(statusCode),
    reportTime: textOf(child(report, XTA, 'ReportTime')),
    errors: records(messageStatus, 'ErrorList', 'Error'),
    warnings: records(messageStatus, 'WarnList', 'Warning'),
    infos: records(messageStatus, 'InfoList', 'Info'),
  };
}

export async function fetchTransportReport(
  client: XtaClient,
  messageId: string,
  signal: AbortSignal,
): Promise<TransportReport> {
  const answer = await client.call('management', 'getTransportReport', {
    body: `<wsa:MessageID xmlns:wsa="${WSA}">${escapeXml(messageId)}</wsa:MessageID>`,
    signal,
  });
  const report = child(answer.body, XTA, 'TransportReport');
  if (!report) throw new XtaFailure('the getTransportReport answer has no TransportReport', true);
  return readTransportReport(report);
}

/** Asks for the transport reports of delivered messages and reports changed statuses; returns how many changed. */
export async function pollTransportReports(
  client: XtaClient,
  context: AdapterContext,
  batchSize: number,
  signal: AbortSignal,
): Promise<number> {
  const awaiting = await context.awaitingStatus(FINAL_STATUSES, batchSize);
  let changed = 0;
  for (const item of awaiting) {
    if (signal.aborted) break;
    if (item.remoteReference === undefined) continue;
    let report: TransportReport;
    try {
      report = await fetchTransportReport(client, item.remoteReference, signal);
    } catch (err) {
      if (err instanceof XtaFailure && err.exception?.name === 'InvalidMessageIDException') {
        // The server no longer knows the message (reports expire); a final answer is all we can give.
        await context.reportStatus({
          messageId: item.messageId,
          status: 'unknown-to-server',
          detail: { reason: err.message },
        });
        changed += 1;
        continue;
      }
      if (err instanceof XtaFailure && err.retryable) {
        context.logger.warn('transport report not available now', {
          messageId: item.messageId,
          reason: err.message,
        });
        continue;
      }
      throw err;
    }
    if (report.status === item.remoteStatus) continue;
    await context.reportStatus({
      messageId: item.messageId,
      status: report.status,
      detail: {
        xtaMessageId: item.remoteReference,
        xtaStatus: report.statusCode,
        reportTime: report.reportTime,
        errors: report.errors,
        warnings: report.warnings,
      },
    });
    changed += 1;
  }
  return changed;
}
