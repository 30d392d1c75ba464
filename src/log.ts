// The root logger. JSON lines for services and pipes; readable lines on a terminal.
// Secrets must never reach a log line: callers pass no credentials, and `redact` is a second net
// for the field names that could carry one by mistake.
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export interface LoggerOptions {
  debug?: boolean;
  /** Human-readable output (pino-pretty). Defaults to whether stderr is a terminal. */
  pretty?: boolean;
  /** Where lines go; defaults to stderr (stdout is for command results). */
  destination?: DestinationStream;
}

const REDACT = [
  'accessKey',
  'secretKey',
  'sessionToken',
  'secret',
  'password',
  'signingKey',
  'headers',
  'extraHeaders',
  '*.accessKey',
  '*.secretKey',
  '*.sessionToken',
  '*.signingKey',
  '*.extraHeaders',
  'err.config',
  'err.$response',
];

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.debug ? 'debug' : 'info';
  const base = { level, base: null, redact: { paths: REDACT, censor: '[redacted]' } };
  if (options.destination) return pino(base, options.destination);
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  if (pretty) {
    return pino({
      ...base,
      transport: {
        target: 'pino-pretty',
        options: { destination: 2, colorize: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss' },
      },
    });
  }
  return pino(base, pino.destination({ dest: 2, sync: true }));
}

/** A logger that drops everything (unit tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
