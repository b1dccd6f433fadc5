/**
 * Structured JSON logs through a redacting format: whatever a caller passes as metadata, personal
 * data and secrets leave the process masked (see redact.ts). winston has no redaction of its own.
 */
import winston from 'winston';
import type { Writable } from 'node:stream';
import type { AdapterLogger } from '../adapter-contract.js';
import { redact, redactString } from './redact.js';

export type Logger = winston.Logger;

const redactingFormat = winston.format((info) => {
  const { level, message, timestamp, ...meta } = info as Record<string, unknown> & { level: string };
  const safe = redact(meta) as Record<string, unknown>;
  for (const key of Object.keys(info)) {
    if (key !== 'level' && key !== 'message' && key !== 'timestamp')
      delete (info as Record<string, unknown>)[key];
  }
  Object.assign(info, safe, { level, timestamp });
  info.message = typeof message === 'string' ? redactString(message) : redact(message);
  return info;
});

export function createLogger(options: { level?: string; stream?: Writable; silent?: boolean } = {}): Logger {
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] });
  return winston.createLogger({
    level: options.level ?? 'info',
    silent: options.silent ?? false,
    format: winston.format.combine(winston.format.timestamp(), redactingFormat(), winston.format.json()),
    transports: [transport],
  });
}

/** The narrow logger adapters get, tagged with their instance id. */
export function adapterLogger(logger: Logger, instanceId: string): AdapterLogger {
  const child = logger.child({ adapter: instanceId });
  return {
    debug: (m, meta) => child.debug(m, meta),
    info: (m, meta) => child.info(m, meta),
    warn: (m, meta) => child.warn(m, meta),
    error: (m, meta) => child.error(m, meta),
  };
}
