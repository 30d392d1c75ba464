// The suite-wide "no secret in any log" check. scripts/run-tests.mjs points LOFT_TEST_LOG_DIR at a
// fresh temporary directory; while the tests run, every loft child process's stdout and stderr is
// appended under logs/ (runLoft, spawnLoft), and every helper that makes a secret registers it under
// secrets/ (makeNixKey; tests with their own credentials or header values). After all test files,
// test/final/secrets-in-logs.test.ts reads both and fails naming the log file and the kind of secret
// found, never the secret. Without the variable (a test file run on its own) nothing is written.
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LOG_DIR_ENV = 'LOFT_TEST_LOG_DIR';

export interface RegisteredSecret {
  /** What it is, e.g. "S3 secret key (base64)"; the only thing a failure prints. */
  kind: string;
  value: string;
}

export interface LogText {
  /** The log file's name, printed on a failure. */
  file: string;
  text: string;
}

export interface Leak {
  file: string;
  kind: string;
}

/**
 * A leak of a long secret is found even when only part of it was printed (a message that cut a
 * value at 40 characters): any run of this many characters of a secret counts. Shorter secrets
 * must appear whole.
 */
export const LEAK_WINDOW = 16;

function logDir(): string | undefined {
  const dir = process.env[LOG_DIR_ENV];
  return dir === undefined || dir === '' ? undefined : dir;
}

/** One file per process, so test files running in parallel never interleave their writes. */
const processTag = `${process.pid}-${randomBytes(3).toString('hex')}`;
let logCounter = 0;

/** Records a secret a test configured, so the final check can look for it in every log. */
export function registerSecret(kind: string, value: string): void {
  const dir = logDir();
  if (dir === undefined || value.length === 0) return;
  mkdirSync(join(dir, 'secrets'), { recursive: true });
  appendFileSync(join(dir, 'secrets', `${processTag}.jsonl`), JSON.stringify({ kind, value }) + '\n', {
    mode: 0o600,
  });
}

/** A secret and the encodings it could leak in: as written, and base64 of its bytes. */
export function registerSecretWithEncodings(kind: string, value: string): void {
  registerSecret(kind, value);
  registerSecret(`${kind} (base64)`, Buffer.from(value, 'utf8').toString('base64'));
}

/**
 * A Nix secret key line `NAME:BASE64(seed || public key)`: the base64 payload, and the 32-byte
 * seed alone in base64 and hex (the public half is public and is not registered).
 */
export function registerSigningKey(keyLine: string): void {
  const payload = keyLine.trim().slice(keyLine.trim().indexOf(':') + 1);
  registerSecret('signing key (base64 payload)', payload);
  const seed = Buffer.from(payload, 'base64').subarray(0, 32);
  if (seed.length === 32) {
    registerSecret('signing key seed (base64)', seed.toString('base64'));
    registerSecret('signing key seed (hex)', seed.toString('hex'));
  }
}

/** Appends one child process's output to the log directory (no-op without LOFT_TEST_LOG_DIR). */
export function recordChildOutput(label: string, stdout: string | Buffer, stderr: string | Buffer): void {
  const dir = logDir();
  if (dir === undefined) return;
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const safe = label.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 40) || 'run';
  const name = `${processTag}-${String(++logCounter).padStart(4, '0')}-${safe}.log`;
  // Only what the child printed: the command line and environment may carry secrets on purpose.
  const body = Buffer.concat([
    Buffer.from('--- stdout ---\n'),
    Buffer.from(stdout),
    Buffer.from('\n--- stderr ---\n'),
    Buffer.from(stderr),
  ]);
  writeFileSync(join(dir, 'logs', name), body, { mode: 0o600 });
}

/** Every registered secret in `dir`, without duplicates. */
export function readRegisteredSecrets(dir: string): RegisteredSecret[] {
  const folder = join(dir, 'secrets');
  if (!existsSync(folder)) return [];
  const seen = new Map<string, RegisteredSecret>();
  for (const name of readdirSync(folder).sort()) {
    for (const line of readFileSync(join(folder, name), 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      const s = JSON.parse(line) as RegisteredSecret;
      if (!seen.has(s.value)) seen.set(s.value, s);
    }
  }
  return [...seen.values()];
}

/** Every collected log in `dir`. */
export function readLogs(dir: string): LogText[] {
  const folder = join(dir, 'logs');
  if (!existsSync(folder)) return [];
  return readdirSync(folder)
    .sort()
    .map((file) => ({ file, text: readFileSync(join(folder, file), 'utf8') }));
}

/**
 * Which logs contain which kinds of secret: a whole secret, or (for secrets of at least
 * LEAK_WINDOW characters) any LEAK_WINDOW consecutive characters of it. One entry per file and kind.
 */
export function findLeaks(logs: readonly LogText[], secrets: readonly RegisteredSecret[]): Leak[] {
  const windows = new Map<string, string>();
  const short: RegisteredSecret[] = [];
  for (const s of secrets) {
    if (s.value.length < LEAK_WINDOW) {
      short.push(s);
      continue;
    }
    for (let i = 0; i + LEAK_WINDOW <= s.value.length; i++) {
      const w = s.value.slice(i, i + LEAK_WINDOW);
      if (!windows.has(w)) windows.set(w, s.kind);
    }
  }
  const leaks: Leak[] = [];
  for (const log of logs) {
    const kinds = new Set<string>();
    for (const s of short) if (log.text.includes(s.value)) kinds.add(s.kind);
    if (windows.size > 0) {
      for (let i = 0; i + LEAK_WINDOW <= log.text.length; i++) {
        const kind = windows.get(log.text.slice(i, i + LEAK_WINDOW));
        if (kind !== undefined) kinds.add(kind);
      }
    }
    for (const kind of [...kinds].sort()) leaks.push({ file: log.file, kind });
  }
  return leaks;
}
