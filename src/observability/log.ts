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
  // winston filters levels only in the transport, after every format has run: drop what will not
  // be written first, so a debug line costs nothing at level info (no redaction walk, no JSON).
  const enabledOnly = winston.format((info) => (logger.isLevelEnabled(info.level) ? info : false));
  const logger: Logger = winston.createLogger({
    level: options.level ?? 'info',
    silent: options.silent ?? false,
    format: winston.format.combine(
      enabledOnly(),
      winston.format.timestamp(),
      redactingFormat(),
      winston.format.json(),
    ),
    transports: [transport],
  });
  return logger;
}

/** The narrow logger adapters get, tagged with their instance id. */
export function adapterLogger(logger: Logger, instanceId: string): AdapterLogger {
  const child = logger.child({ adapter: instanceId });
  return {
    debug: (m, meta) => {
      if (logger.isDebugEnabled()) child.debug(m, meta);
    },
    info: (m, meta) => child.info(m, meta),
    warn: (m, meta) => child.warn(m, meta),
    error: (m, meta) => child.error(m, meta),
  };
}
