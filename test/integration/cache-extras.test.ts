// Build logs, realisations, NAR listings and the debug-info index, judged by the machine's Nix:
// `nix log --store` prints what loft uploaded (a plain and a bzip2 log, over file:// and over S3 via
// HTTP), a fresh store substitutes a content-addressed output without building it, loft's listing
// is the one `nix copy --write-nar-listing` writes, loft's realisation signature is the one Nix
// itself made with the same key, verify names a planted broken realisation, and prune takes a
// path's extras with it.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { get, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { CONTENT_TYPE_BUILD_LOG } from '../../src/format/bucket-layout.js';
import { realisationFingerprintV2 } from '../../src/format/realisation.js';
import { parsePublicKey, verifySignature } from '../../src/format/signing-key.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';
import { randomSalt } from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin } from '../helpers/nix-env.js';
import { httpCacheUrl } from '../helpers/upload-env.js';

/** A GET whose body is not decoded, whatever its Content-Encoding. */
function rawGet(url: string): Promise<{ headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

const EXTRAS_NIX = new URL('../fixtures/extras.nix', import.meta.url).pathname;
const CA = ['--extra-experimental-features', 'ca-derivations'];

/** Every file under `dir`, relative, '/'-separated. */
function filesUnder(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

describe('cache extras with real Nix', { skip: !hasNix() && 'nix is not installed' }, () => {
  let env: IntegrationEnv;
  let salt: string;
  const out: Record<'logged' | 'ca' | 'caUser', string> = { logged: '', ca: '', caUser: '' };

  async function build(attr: keyof typeof out, options: string[]): Promise<string> {
    const args = ['nix-build', ...CA, '--no-out-link', EXTRAS_NIX, '--argstr', 'salt', salt, '-A', attr];
    const { stdout } = await nixBin([...args, ...options]);
    return stdout.trim();
  }

  before(async () => {
    env = await startIntegrationEnv('loft-extras-it-', 'loft-extras-1');
    salt = randomSalt();
    // `logged` keeps a plain log; the CA paths the default bzip2 one. Nix signs the realisations it
    // records with secret-key-files: the golden signature loft's must equal.
    out.logged = await build('logged', ['--option', 'compress-build-log', 'false']);
    const sign = ['--option', 'secret-key-files', env.key.secretPath];
    out.ca = await build('ca', sign);
    out.caUser = await build('caUser', sign);
  });
  after(async () => env?.close([out.logged, out.caUser, out.ca].filter((p) => p !== '')));

  describe('file://, listings and the debug-info index on', () => {
    let cache = '';
    let url = '';
    let config = '';
    let hash = '';
    const planted = `realisations/sha256:${'0'.repeat(64)}!out.doi`;
    before(async () => {
      cache = join(env.dir, 'file-cache');
      hash = out.logged.split('/').pop()!.slice(0, 32);
      url = `file://${cache}`;
      config = await env.configIn('file', {
        s3: undefined as never,
        localPath: cache,
        extraLoft: 'write_nar_listing = true\nindex_debug_info = true',
      });
      const up = await runLoft(['-c', config, '--upload-path', out.logged, out.caUser]);
      assert.equal(up.code, 0, up.stderr);
    });

    test('nix log prints a plain and a bzip2 log', async () => {
      // Build logs: plain (logged) and bzip2 (ca, caUser), found through the narinfo's Deriver.
      const plain = await nixBin(['nix', 'log', '--store', url, out.logged]);
      assert.match(plain.stdout, new RegExp(`EXTRAS-LOG-MARKER-${salt}`));
      const bz2 = await nixBin(['nix', 'log', '--store', url, out.ca]);
      assert.match(bz2.stdout, new RegExp(`EXTRAS-CA-BUILT-${salt}`));
    });

    test("the listing is Nix's, and nix store ls agrees with the store", async () => {
      // The listing is the one Nix writes, byte for byte, and `nix store ls` agrees with the store.
      const nixCache = join(env.dir, 'nix-cache');
      await nixBin(['nix', 'copy', '--to', `file://${nixCache}?write-nar-listing=true`, '--', out.logged]);
      assert.equal(
        readFileSync(join(cache, `${hash}.ls`), 'utf8'),
        readFileSync(join(nixCache, `${hash}.ls`), 'utf8'),
      );
      const remote = await nixBin(['nix', 'store', 'ls', '--store', url, '-lR', out.logged]);
      const local = await nixBin(['nix', 'store', 'ls', '-lR', out.logged]);
      assert.equal(remote.stdout, local.stdout);
    });

    test('the debug-info index names the NAR', () => {
      // Debug info: the build id's entry names this path's NAR.
      const debugKey = 'debuginfo/abcdef0123456789abcdef0123456789abcdef01.debug';
      const debug = JSON.parse(readFileSync(join(cache, debugKey), 'utf8')) as {
        archive: string;
        member: string;
      };
      const narinfo = readFileSync(join(cache, `${hash}.narinfo`), 'utf8');
      assert.equal(debug.archive, `../${/^URL: (.*)$/m.exec(narinfo)![1]}`);
      assert.equal(debug.member, 'lib/debug/.build-id/ab/cdef0123456789abcdef0123456789abcdef01.debug');
    });

    test('a fresh store substitutes the CA outputs without building them', async () => {
      // A fresh store with only this cache substitutes the CA outputs: building them is impossible
      // there (a chroot store has no /bin/sh) and their markers never show.
      const fresh = join(env.dir, 'fresh');
      const sub = await nixBin([
        'nix',
        'build',
        ...CA,
        '--store',
        fresh,
        '--no-link',
        '-L',
        '--file',
        EXTRAS_NIX,
        '--argstr',
        'salt',
        salt,
        'caUser',
        '--option',
        'substituters',
        url,
        '--option',
        'trusted-public-keys',
        env.key.publicKey,
      ]);
      assert.ok(existsSync(join(fresh, out.caUser)), 'the CA output is in the fresh store');
      assert.doesNotMatch(sub.stderr + sub.stdout, /EXTRAS-CA(USER)?-BUILT/);
    });

    test('realisation signatures equal the ones Nix made with the same key', () => {
      // Realisations: loft's signature by our key is the one Nix made with it when it built.
      const doi = filesUnder(join(cache, 'realisations'));
      assert.ok(doi.length >= 2, `realisations written: ${doi.join(' ')}`);
      const db = new Database('/nix/var/nix/db/db.sqlite', { readonly: true });
      const nixSigs = new Map(
        (
          db.prepare('SELECT drvPath, outputName, signatures FROM Realisations').all() as Array<{
            drvPath: string;
            outputName: string;
            signatures: string | null;
          }>
        ).map((r) => [`${r.drvPath}!${r.outputName}`, r.signatures ?? '']),
      );
      db.close();
      let compared = 0;
      for (const f of doi) {
        const r = JSON.parse(readFileSync(join(cache, 'realisations', f), 'utf8')) as {
          id: string;
          signatures: string[];
        };
        const ours = r.signatures.filter((s) => s.startsWith(`${env.key.name}:`));
        assert.equal(ours.length, 1, `${f}: one signature by our key`);
        const nix = (nixSigs.get(r.id) ?? '').split(' ').filter((s) => s.startsWith(`${env.key.name}:`));
        if (nix.length === 0) continue; // recorded by an earlier build without the key
        assert.deepEqual(ours, nix, `${f}: loft's signature is Nix's`);
        compared++;
      }
      assert.ok(compared >= 2, 'signatures compared with Nix-made ones');
    });

    test('each CA output also has a build-trace-v2 entry under its deriver, signed by loft', async () => {
      // Nix 2.8 records only the v1 layout; loft writes the v2 one from the output's deriver.
      for (const path of [out.ca, out.caUser]) {
        const drv = (await nixBin(['nix-store', '--query', '--deriver', path])).stdout
          .trim()
          .split('/')
          .pop()!;
        const outPath = path.split('/').pop()!;
        const body = readFileSync(join(cache, 'build-trace-v2', drv, 'out.doi'), 'utf8');
        const parsed = JSON.parse(body) as {
          outPath: string;
          signatures: Array<{ keyName: string; sig: string }>;
        };
        assert.equal(body, JSON.stringify({ outPath, signatures: parsed.signatures }));
        assert.deepEqual(
          parsed.signatures.map((s) => s.keyName),
          [env.key.name],
        );
        const fingerprint = realisationFingerprintV2({
          drvPath: drv,
          outputName: 'out',
          outPath,
          signatures: [],
        });
        const pub = parsePublicKey(env.key.publicKey);
        assert.ok(verifySignature(pub, fingerprint, `${env.key.name}:${parsed.signatures[0]!.sig}`), drv);
      }
    });

    test('verify passes, then names a planted broken realisation', async () => {
      // verify: clean, then a planted realisation of a path the cache lacks is named.
      const clean = await runLoft(['-c', config, 'verify']);
      assert.equal(clean.code, 0, clean.stdout + clean.stderr);
      const broken = {
        dependentRealisations: {},
        id: `sha256:${'0'.repeat(64)}!out`,
        outPath: `${'1'.repeat(32)}-gone`,
        signatures: [],
      };
      writeFileSync(join(cache, planted), JSON.stringify(broken));
      // A v2 entry whose signature is not over its own fingerprint (another output's).
      const [v2a, v2b] = filesUnder(join(cache, 'build-trace-v2'));
      const a = join(cache, 'build-trace-v2', v2a!);
      const v2aBody = readFileSync(a, 'utf8');
      const bodyOf = (f: string): { outPath: string; signatures: unknown } =>
        JSON.parse(readFileSync(f, 'utf8')) as { outPath: string; signatures: unknown };
      const other = bodyOf(join(cache, 'build-trace-v2', v2b!));
      writeFileSync(a, JSON.stringify({ outPath: bodyOf(a).outPath, signatures: other.signatures }));
      const bad = await runLoft(['-c', config, 'verify']);
      assert.equal(bad.code, 6, bad.stdout + bad.stderr);
      assert.match(
        bad.stdout,
        new RegExp(`${planted.replace(/[!.]/g, '\\$&')}: realises .*-gone, which has no narinfo`),
      );
      assert.match(bad.stdout, /has no valid signature by loft-extras-1/);
      assert.match(
        bad.stdout,
        new RegExp(`build-trace-v2/${v2a!.replace(/[.]/g, '\\.')}: has no valid signature`),
      );
      writeFileSync(a, v2aBody);
    });

    test("prune takes the paths' extras with them", async (t) => {
      // prune: everything uploaded is past its retention; its extras go with it, the planted
      // realisation (which belongs to no path) stays.
      const old = new Date(Date.now() - 10 * 86_400_000);
      for (const f of filesUnder(cache)) utimesSync(join(cache, f), old, old);
      const pruneConfig = await env.configIn('prune', {
        s3: undefined as never,
        localPath: cache,
        extraLoft:
          'prune_enabled = true\nprune_retention_days = 1\nprune_grace_hours = 0\nprune_orphan_grace_hours = 0',
      });
      const pruned = await runLoft(['-c', pruneConfig, '--prune']);
      assert.equal(pruned.code, 0, pruned.stdout + pruned.stderr);
      const left = filesUnder(cache).filter((f) => f !== 'nix-cache-info' && !f.startsWith('.loft/'));
      assert.deepEqual(left, [planted]);
      t.diagnostic(`prune: ${pruned.stdout.trim()}`);
    });
  });

  test('S3 over HTTP: nix log prints a plain and a bzip2 log, sent as text/plain', async () => {
    const config = await env.configIn('s3', {});
    const up = await runLoft(['-c', config, '--upload-path', out.logged, out.ca]);
    assert.equal(up.code, 0, up.stderr);
    const url = httpCacheUrl(env.s3);
    const plain = await nixBin(['nix', 'log', '--store', url, out.logged]);
    assert.match(plain.stdout, new RegExp(`EXTRAS-LOG-MARKER-${salt}`));
    const bz2 = await nixBin(['nix', 'log', '--store', url, out.ca]);
    assert.match(bz2.stdout, new RegExp(`EXTRAS-CA-BUILT-${salt}`));
    const drv = (await nixBin(['nix-store', '--query', '--deriver', out.logged])).stdout
      .trim()
      .split('/')
      .pop()!;
    const head = await fetch(`${url}/log/${drv}`, { method: 'HEAD' });
    assert.equal(head.headers.get('content-type'), CONTENT_TYPE_BUILD_LOG);
    assert.equal(head.headers.get('content-encoding'), null, 'log_compression is none by default');
  });

  test('S3 with log_compression = "br": the log is stored compressed, with its Content-Encoding', async () => {
    const config = await env.configIn('s3-br', {
      s3: { ...env.s3, keyPrefix: 'br/' },
      extraLoft: 'log_compression = "br"',
    });
    const up = await runLoft(['-c', config, '--upload-path', out.logged]);
    assert.equal(up.code, 0, up.stderr);
    const drv = (await nixBin(['nix-store', '--query', '--deriver', out.logged])).stdout
      .trim()
      .split('/')
      .pop()!;
    // node:http does not decode: the raw object, as the bucket keeps it.
    const raw = await rawGet(`${httpCacheUrl({ ...env.s3, keyPrefix: 'br/' })}/log/${drv}`);
    assert.equal(raw.headers['content-encoding'], 'br');
    assert.equal(raw.headers['content-type'], CONTENT_TYPE_BUILD_LOG);
    const log = brotliDecompressSync(raw.body).toString();
    assert.match(log, new RegExp(`EXTRAS-LOG-MARKER-${salt}`));
    const local = await nixBin(['nix', 'log', out.logged]);
    assert.equal(log, local.stdout);
  });
});
