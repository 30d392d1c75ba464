// The root logger. JSON lines for services and pipes; readable lines on a terminal.
// Secrets must never reach a log line: callers pass no credentials, and `redact` is a second net
// for the field names that could carry one by mistake.
import { pino, type Logger, type DestinationStream } from 'pino';
import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { oneLine } from './errors.js';

// pino-pretty loads only on a terminal: services and pipes never pay for it.
const requireCjs = createRequire(import.meta.url);

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
  const base = {
    level,
    base: null,
    redact: { paths: REDACT, censor: '[redacted]' },
    // A stack trace helps whoever debugs loft, not whoever runs it: a daemon retrying a refused
    // connection every minute would fill the journal with 40-line traces. --debug keeps them.
    serializers: { err: options.debug ? pino.stdSerializers.err : briefError },
  };
  if (options.destination) return pino(base, options.destination);
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  if (pretty) {
    // In this thread and synchronous, not as a pino transport (a worker thread): a transport's lines
    // reached the terminal after whatever the command printed next, such as its summary line.
    const pinoPretty = requireCjs('pino-pretty') as (opts: Record<string, unknown>) => DestinationStream;
    const stream = pinoPretty({
      destination: 2,
      sync: true,
      colorize: true,
      ignore: 'pid,hostname',
      translateTime: 'HH:MM:ss',
      // One line per event on a terminal too: a daemon retrying every minute stays readable.
      singleLine: true,
      // pino-pretty prints error fields as an indented block; without --debug they are short
      // (no stack), so they stay inline on the event's line.
      ...(options.debug ? {} : { errorLikeObjectKeys: [] }),
    });
    // A log line starts by clearing the terminal's current row: an upload's progress line sits
    // there without a newline, and a warning would otherwise be printed after it on the same row
    // (the progress line is drawn again below on its next tick).
    const clearRow = process.stderr.isTTY === true ? () => writeSync(2, '\r\x1b[2K') : () => undefined;
    // Handed over as a bare writer: given the stream itself, pino announces its errorKey to it and
    // pino-pretty then prints `err` as an indented block despite errorLikeObjectKeys.
    return pino(base, {
      write: (line: string) => {
        clearRow();
        stream.write(line);
      },
    });
  }
  return pino(base, pino.destination({ dest: 2, sync: true }));
}

/** An error as a log field without its stack or causes: its class, stable code and one-line message. */
export function briefError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  return { type: err.name, ...(typeof code === 'string' ? { code } : {}), message: oneLine(err) };
}

/** A logger that drops everything (unit tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
