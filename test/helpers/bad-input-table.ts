// Table-driven bad-input tests of the built CLI. Every case runs against a bucket that already holds
// one uploaded path whose objects are 40 days old (so any prune that wrongly ran would delete it),
// with a second valid store path that is not uploaded (so any upload that wrongly ran would publish
// it). Each case must end with exactly one error line naming the problem (`loft: ...` for a command
// that stops, `failed PATH: ...` for a path the upload rejects), its documented exit code, no stack
// trace, and the bucket exactly as it was (keys, sizes and LastModified).
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNarInfo } from '../../src/format/narinfo.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { runLoft, type LoftRun } from './loft-cli.js';
import { hasNix, nixBin, requireNix } from './nix-env.js';
import { startS3Server, storeOptionsFor, type TestS3 } from './s3-server.js';
import { makeNixKey, type KeyFiles } from './signing-keys.js';
import { hashPartOfPath, writeConfig } from './upload-env.js';
import { skipTest } from './skip.js';

export interface BadInputEnv {
  dir: string;
  s3: TestS3;
  key: KeyFiles;
  /** A working config for the bucket, with pruning enabled. */
  good: string;
  /** In the bucket, objects aged 40 days. */
  uploaded: string;
  /** Valid in the local store, not in the bucket. */
  fresh: string;
  /**
   * A config like `good` in its own directory. Entries of `s3` and `loft` replace or add keys of
   * those tables (values are TOML literals; null drops the key); `extra` is appended as written.
   */
  config(name: string, o?: ConfigEdits): Promise<string>;
  /** Writes a file under the test directory and returns its path. */
  file(name: string, text: string | Buffer, mode?: number): Promise<string>;
}

export interface ConfigEdits {
  /** Written before the first table (top-level keys). */
  head?: string;
  s3?: Record<string, string | null> | null;
  loft?: Record<string, string | null>;
  extra?: string;
}

export interface BadInputCase {
  name: string;
  /** The documented exit code (src/errors.ts ExitCode). */
  code: number;
  /** For code 0: a warning log line; otherwise the one error line. */
  message: RegExp;
  args: (e: BadInputEnv) => Promise<string[]> | string[];
  env?: (e: BadInputEnv) => NodeJS.ProcessEnv;
  stdin?: string | Buffer;
  /** A known defect: the case runs and reports, but does not fail the suite. Say what must change. */
  todo?: string;
  /** Kill loft after this long (a daemon that should have exited, a command that never ends); default runLoft's. */
  timeoutMs?: number;
  /** Needs the in-process s3rver (a proxy in front of it); skipped against LOFT_TEST_S3_ENDPOINT. */
  inProcessOnly?: boolean;
}

const DAY = 86_400_000;

/** C0 control characters other than tab, and DEL: a line that holds one can forge or hide output. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;

/** Stack frames, raw or inside a JSON log line. */
const STACK = /(^|\n|\\n)\s+at \S.*(:\d+:\d+\)?|\(native\))/;

/** key -> "size@LastModified" for every object in the bucket. */
export async function bucketSnapshot(s3: TestS3): Promise<Map<string, string>> {
  const store = new S3ObjectStore(storeOptionsFor(s3));
  const out = new Map<string, string>();
  try {
    for await (const o of store.list('')) out.set(o.key, `${o.size}@${o.lastModified.getTime()}`);
  } finally {
    await store.close();
  }
  return out;
}

/** The one error line of a run: lines starting with `loft: ` or `failed `, on stdout or stderr. */
export function errorLines(run: LoftRun): string[] {
  return `${run.stdout}\n${run.stderr}`
    .split('\n')
    .filter((l) => l.startsWith('loft: ') || l.startsWith('failed '));
}

export function assertOutcome(run: LoftRun, c: Pick<BadInputCase, 'code' | 'message'>): void {
  const text = `${run.stdout}\n${run.stderr}`;
  assert.equal(run.code, c.code, text);
  assert.ok(!STACK.test(text), `no stack trace:\n${text}`);
  assert.ok(!/internal error/.test(text), `not an internal error:\n${text}`);
  const errors = errorLines(run);
  if (c.code === 0) {
    assert.deepEqual(errors, [], text);
    const warned = text.split('\n').some((l) => l.includes('"level":40') && c.message.test(l));
    assert.ok(warned, `a warning matching ${String(c.message)}:\n${text}`);
    return;
  }
  assert.equal(errors.length, 1, `exactly one error line:\n${text}`);
  assert.match(errors[0]!, c.message);
  assert.ok(!CONTROL.test(errors[0]!), `no raw control character: ${JSON.stringify(errors[0])}`);
}

async function setUp(label: string): Promise<BadInputEnv> {
  const dir = await mkdtemp(join(tmpdir(), `loft-${label}-`));
  const s3 = await startS3Server();
  const key = await makeNixKey(dir, `loft-${label}-1`);
  // Grace 0: a prune that wrongly ran would delete the old path at once (not only mark it).
  const base = {
    dir,
    s3,
    signingKeyPath: key.secretPath,
    extraLoft: 'prune_enabled = true\nprune_grace_hours = 0',
  };
  const good = await writeConfig(base);
  const add = async (name: string) => {
    await writeFile(join(dir, name), `${label} ${name} ${Date.now()} ${Math.random()}\n`);
    return (await nixBin(['nix-store', '--add', join(dir, name)])).stdout.trim();
  };
  const uploaded = await add('uploaded.txt');
  const fresh = await add('fresh.txt');
  const up = await runLoft(['-c', good, '--upload-path', uploaded]);
  if (up.code !== 0) throw new Error(`setting up the bucket failed:\n${up.stderr}`);
  if (s3.dir !== undefined) await ageInS3rver(s3, uploaded, 40);
  return {
    dir,
    s3,
    key,
    good,
    uploaded,
    fresh,
    async config(name, o = {}) {
      const sub = await mkdtemp(join(dir, `${name}-`));
      const path = join(sub, 'loft.toml');
      await writeFile(path, configText(s3, key, sub, o), { mode: 0o600 });
      return path;
    },
    async file(name, text, mode = 0o600) {
      const p = join(dir, 'files', name);
      await mkdir(join(dir, 'files'), { recursive: true });
      await writeFile(p, text, { mode });
      return p;
    },
  };
}

function configText(s3: TestS3, key: KeyFiles, dir: string, o: ConfigEdits): string {
  const q = (v: string) => JSON.stringify(v);
  const table = (name: string, base: Record<string, string>, edits: Record<string, string | null> = {}) => {
    const lines = [`[${name}]`];
    for (const [k, v] of Object.entries({ ...base, ...edits })) if (v !== null) lines.push(`${k} = ${v}`);
    return lines.join('\n');
  };
  const s3Table =
    o.s3 === null
      ? ''
      : table(
          's3',
          {
            bucket: q(s3.bucket),
            region: q(s3.region),
            endpoint: q(s3.endpoint),
            access_key: q(s3.accessKeyId),
            secret_key: q(s3.secretAccessKey),
            ...(s3.keyPrefix ? { prefix: q(s3.keyPrefix) } : {}),
          },
          o.s3,
        );
  const loftTable = table(
    'loft',
    {
      local_cache_path: q(join(dir, 'cache.db')),
      signing_key_path: q(key.secretPath),
      prune_enabled: 'true',
      prune_grace_hours: '0',
    },
    o.loft,
  );
  return [o.head ?? '', s3Table, loftTable, o.extra ?? ''].join('\n') + '\n';
}

/** s3rver takes LastModified from its files' mtimes: moves a path's narinfo and NAR `days` back. */
async function ageInS3rver(s3: TestS3, storePath: string, days: number): Promise<void> {
  const store = new S3ObjectStore(storeOptionsFor(s3));
  const h = hashPartOfPath(storePath);
  const body = await store.get(`${h}.narinfo`);
  await store.close();
  if (!body) throw new Error(`no narinfo for ${storePath}`);
  const when = new Date(Date.now() - days * DAY);
  for (const k of [`${h}.narinfo`, parseNarInfo(body.toString()).url]) {
    const parts = k.split('/');
    await utimes(
      join(s3.dir!, s3.bucket, ...parts.slice(0, -1), `${parts.at(-1)}._S3rver_object`),
      when,
      when,
    );
  }
}

/** Registers one describe() with a test per case; returns the number of cases. */
export function describeBadInput(title: string, label: string, cases: readonly BadInputCase[]): number {
  describe(title, () => {
    let env: BadInputEnv | undefined;
    before(async () => {
      if (hasNix()) env = await setUp(label);
    });
    after(async () => {
      if (!env) return;
      await nixBin(['nix-store', '--delete', '--', env.uploaded, env.fresh]).catch(() => undefined);
      await env.s3.close();
      await rm(env.dir, { recursive: true, force: true });
    });
    for (const c of cases) {
      const options = c.todo === undefined ? {} : { todo: c.todo };
      test(`${c.name}: exit ${c.code}`, options, async (t: TestContext) => {
        if (!requireNix(t) || !env) return;
        if (c.inProcessOnly && env.s3.external)
          return skipTest(t, 'in-process-s3', 'needs the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)');
        const e = env;
        const snapshot = await bucketSnapshot(e.s3);
        assert.ok(
          snapshot.has(`${hashPartOfPath(e.uploaded)}.narinfo`),
          'the bucket holds the uploaded path',
        );
        // A fresh working directory: a config that falls back to the default ./loft-cache must not
        // write into the project, and must show up below as something published.
        const cwd = await mkdtemp(join(e.dir, 'cwd-'));
        const run = await runLoft(await c.args(e), {
          cwd,
          ...(c.env ? { env: c.env(e) } : {}),
          ...(c.stdin !== undefined ? { stdin: c.stdin } : {}),
          ...(c.timeoutMs !== undefined ? { timeoutMs: c.timeoutMs } : {}),
        });
        assertOutcome(run, c);
        assert.deepEqual(await bucketSnapshot(e.s3), snapshot, 'nothing published or deleted');
        assert.deepEqual(await readdir(cwd), [], 'nothing written to the working directory');
      });
    }
    // The control: with the good config, a prune would delete the old path and an upload would
    // publish the fresh one, so an unchanged bucket above means the bad input stopped them.
    test('control: the good config would prune the old path and upload the fresh one', async (t) => {
      if (!requireNix(t) || !env) return;
      const prune = await runLoft(['-c', env.good, '--prune', '--dry-run']);
      assert.equal(prune.code, 0, prune.stderr);
      // Against an external endpoint the objects cannot be aged.
      if (!env.s3.external) {
        assert.match(prune.stdout, new RegExp(`would delete ${hashPartOfPath(env.uploaded)}\\.narinfo`));
      }
      const upload = await runLoft(['-c', env.good, '--upload-path', env.fresh, '--dry-run']);
      assert.equal(upload.code, 0, upload.stderr);
      assert.ok(upload.stdout.includes(`would upload ${env.fresh}`), upload.stdout);
    });
  });
  return cases.length;
}
