/**
 * Structured logging with pino. Secrets are removed by path, never by hope: every field that can
 * carry a credential is listed here once, and components log through child loggers carrying their
 * correlation ids (root key, run id, intent id, AWX job id, NetBox request id), and a line written
 * inside a trace span carries its trace_id and span_id.
 */
import { type DestinationStream, type Logger, pino } from 'pino';
import { activeTraceIds } from './tracing.js';

export const redactedPaths = [
  'authorization',
  'token',
  'secret',
  'password',
  'signature',
  '*.authorization',
  '*.Authorization',
  '*.token',
  '*.secret',
  '*.password',
  '*.signature',
  'headers.authorization',
  'headers["x-hook-signature"]',
  'req.headers.authorization',
  'req.headers["x-hook-signature"]',
  'config.UNICOP_NETBOX_TOKEN',
  'UNICOP_NETBOX_TOKEN',
  'config.UNICOP_AWX_TOKEN',
  'UNICOP_AWX_TOKEN',
];

export function createLogger(component: string, level = 'info', destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { component },
    redact: { paths: redactedPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // trace_id and span_id of the span the line is written in (none outside one: core/tracing.ts).
    mixin: activeTraceIds,
  };
  return destination ? pino(options, destination) : pino(options);
}
