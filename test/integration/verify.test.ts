// `loft verify` against a real bucket: closures uploaded by the built CLI with the machine's Nix
// into s3rver, then defects planted straight into the bucket (a deleted NAR, a truncated NAR, a
// reference's narinfo deleted, a narinfo signed by another key only, a garbage narinfo, an unknown
// Compression, a NAR with one byte changed, and a closure no longer in the local store). verify
// must name each one; --dry-run must change nothing; --repair must mend what the local store can;
// --delete-unrepairable must delete the rest, referrers first; and afterwards the test-side bucket
// checker finds nothing and real Nix substitutes every closure with our key required.
import { after, before, describe, test } from 'node:test';
import { existsSync } from 'node:fs';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fingerprintPath } from '../../src/format/fingerprint.js';
import { parseNarInfo, renderNarInfo } from '../../src/format/narinfo.js';
import { parseSecretKey, signFingerprint } from '../../src/format/signing-key.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { checkBucket } from '../helpers/bucket-invariants.js';
import { buildFixtureClosure, deleteStorePaths, type FixtureCase } from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, requireNix } from '../helpers/nix-env.js';
import { S3_KINDS, skipUnlessAvailable, startMotoServer } from '../helpers/moto-server.js';
import { skipTest } from '../helpers/skip.js';
import { startS3Server, storeOptionsFor, type TestS3 } from '../helpers/s3-server.js';
import { makeNixKey, type KeyFiles } from '../helpers/signing-keys.js';
import {
  bucketObjects,
  closureOf,
  deleteLocally,
  hashPartOfPath,
  httpCacheUrl,
  substitute,
  verifyClosure,
  writeConfig,
} from '../helpers/upload-env.js';

type Fixtures = Record<FixtureCase, string>;
const TEXT = { contentType: 'text/x-nix-narinfo' };

for (const kind of S3_KINDS) {
  describe(
    `loft verify and --repair on a bucket with planted defects (${kind})`,
    { skip: skipUnlessAvailable(kind) },
    () => {
      let dir: string;
      let s3: TestS3;
      let key: KeyFiles;
      let other: KeyFiles;
      let config: string;
      let store: S3ObjectStore;
      const built: Fixtures[] = [];

      before(async () => {
        if (!hasNix()) return;
        dir = await mkdtemp(join(tmpdir(), 'loft-verify-it-'));
        s3 = kind === 'moto' ? await startMotoServer() : await startS3Server();
        key = await makeNixKey(dir, 'loft-verify-1');
        other = await makeNixKey(dir, 'someone-else-1');
        config = await writeConfig({ dir, s3, signingKeyPath: key.secretPath });
        store = new S3ObjectStore(storeOptionsFor(s3));
      });
      after(async () => {
        if (!hasNix()) return;
        await store?.close();
        await s3?.close();
        await deleteStorePaths(built.flatMap((f) => Object.values(f)));
        await rm(dir, { recursive: true, force: true });
      });

      const h = (p: string) => hashPartOfPath(p);
      async function narinfoOf(p: string) {
        const body = await store.get(`${h(p)}.narinfo`);
        assert.ok(body, `narinfo of ${p}`);
        return parseNarInfo(body.toString());
      }
      async function rewrite(p: string, edit: (n: ReturnType<typeof parseNarInfo>) => void): Promise<void> {
        const n = await narinfoOf(p);
        edit(n);
        await store.putBytes(`${h(p)}.narinfo`, renderNarInfo(n), TEXT);
      }
      /** Keys and sizes: what a run that must change nothing may not change. */
      async function snapshot(): Promise<string> {
        return JSON.stringify([...(await bucketObjects(s3))].sort());
      }
      const verify = (...args: string[]) => runLoft(['-c', config, 'verify', ...args]);

      test('each defect is found, --dry-run lists, --repair mends, --delete-unrepairable deletes the rest', async (t) => {
        if (!requireNix(t)) return;
        if (s3.external)
          return skipTest(
            t,
            'in-process-s3',
            'plants objects in the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)',
          );
        const f = await buildFixtureClosure({ largeFileMb: 1 });
        const gone = await buildFixtureClosure({ largeFileMb: 0 });
        built.push(f, gone);
        const roots = [f.top, f.tree, f.caUser, f.symlinkOut, f.large];
        const up = await runLoft(['-c', config, '--upload-path', ...roots, gone.top]);
        assert.equal(up.code, 0, up.stderr);

        const clean = await verify('--check-contents');
        assert.equal(clean.code, 0, clean.stdout + clean.stderr);
        assert.match(clean.stdout, /narinfos, 0 problems in 0 objects, contents of \d+ NARs checked/);

        // The planted defects.
        await store.deleteMany([(await narinfoOf(f.tree)).url]); // deleted NAR
        const symNar = (await narinfoOf(f.symlinkOut)).url;
        const symBody = (await store.get(symNar))!;
        await store.putBytes(symNar, symBody.subarray(0, symBody.length - 7), TEXT); // truncated NAR
        await store.deleteMany([`${h(f.leaf)}.narinfo`]); // mid's reference has no narinfo
        const otherKey = parseSecretKey(await readFile(other.secretPath, 'utf8'));
        await rewrite(f.caUser, (n) => {
          const refs = n.references.map((r) => `/nix/store/${r}`);
          n.signatures = [
            signFingerprint(otherKey, fingerprintPath(n.storePath, n.narHash, n.narSize, refs)),
          ];
        });
        await store.putBytes(`${h(f.large)}.narinfo`, Buffer.from([0xff, 0x00, 0x13, 0x37]), TEXT); // garbage
        await rewrite(f.contentAddressed, (n) => (n.compression = 'lzma9000'));
        const midNar = (await narinfoOf(f.mid)).url; // one byte changed, same size: contents only
        const midBody = Buffer.from((await store.get(midNar))!);
        const at = midBody.length >> 1;
        midBody[at] = midBody[at]! ^ 0xff;
        await store.putBytes(midNar, midBody, TEXT);
        await store.deleteMany([(await narinfoOf(gone.leaf)).url]); // not mendable once gone is gone
        await deleteLocally(await closureOf([gone.top]), Object.values(gone));

        const found = await verify();
        assert.equal(found.code, 6, found.stdout + found.stderr);
        const lines = found.stdout.split('\n');
        const expect = (p: string, re: RegExp) =>
          assert.ok(
            lines.some((l) => l.startsWith(`${h(p)}.narinfo: `) && re.test(l)),
            `${p}: ${re} in\n${found.stdout}`,
          );
        expect(f.tree, /its NAR nar\/\S+ does not exist/);
        expect(f.symlinkOut, /has \d+ bytes, FileSize says \d+/);
        expect(f.mid, new RegExp(`reference ${h(f.leaf)}-\\S+ has no narinfo`));
        expect(f.caUser, /not signed by loft-verify-1 \(signed by someone-else-1\)/);
        expect(f.large, /does not parse/);
        expect(f.contentAddressed, /Compression "lzma9000" is not one Nix can decode/);
        expect(gone.leaf, /does not exist/);
        assert.ok(!/does not match/.test(found.stdout), 'the changed byte needs --check-contents');
        expect(f.symlinkOut, new RegExp(`reference ${h(f.leaf)}-\\S+ has no narinfo`)); // it links to leaf
        assert.match(found.stdout, /verified s3:\/\/.*: \d+ narinfos, 8 problems in 7 objects/);

        const deep = await verify('--check-contents');
        assert.equal(deep.code, 6);
        // zstd's frame checksum may catch the changed byte before the hashes are compared.
        assert.match(
          deep.stdout,
          new RegExp(`${h(f.mid)}\\.narinfo: its NAR \\S+ (does not match FileHash|does not decode as zstd)`),
        );

        const before = await snapshot();
        const dry = await verify('--check-contents', '--repair', '--dry-run');
        assert.equal(dry.code, 6, dry.stderr);
        for (const p of [f.tree, f.symlinkOut, f.mid, f.contentAddressed]) {
          assert.match(dry.stdout, new RegExp(`would re-upload ${p} `));
        }
        assert.match(
          dry.stdout,
          new RegExp(`would upload ${f.leaf} \\(referenced by .*${h(f.mid)}\\.narinfo`),
        );
        assert.match(dry.stdout, new RegExp(`would re-sign ${h(f.caUser)}\\.narinfo`));
        assert.match(dry.stdout, new RegExp(`would re-upload ${f.large} `));
        assert.match(dry.stdout, new RegExp(`cannot mend ${h(gone.leaf)}\\.narinfo: .*not valid here`));
        assert.equal(await snapshot(), before, '--dry-run changed the bucket');

        const mend = await verify('--check-contents', '--repair');
        assert.equal(mend.code, 6, 'the gone closure is left: ' + mend.stdout + mend.stderr);
        assert.match(mend.stdout, /repaired: mended 7, deleted 0, 0 failed, 1 cannot be mended here/);
        const left = await verify('--check-contents');
        assert.equal(left.code, 6);
        assert.deepEqual(
          left.stdout
            .split('\n')
            .filter((l) => l.includes('.narinfo: '))
            .map((l) => l.slice(0, 32)),
          [h(gone.leaf)],
        );

        const dryDelete = await verify('--repair', '--delete-unrepairable', '--dry-run');
        const order = [gone.top, gone.mid, gone.leaf].map((p) =>
          dryDelete.stdout.indexOf(`would delete ${h(p)}.narinfo`),
        );
        assert.ok(
          order.every((i) => i >= 0) && order[0]! < order[1]! && order[1]! < order[2]!,
          dryDelete.stdout,
        );
        const del = await verify('--repair', '--delete-unrepairable');
        assert.equal(del.code, 0, del.stdout + del.stderr);
        const objects = await bucketObjects(s3);
        for (const p of [gone.top, gone.mid, gone.leaf])
          assert.ok(!objects.has(`${h(p)}.narinfo`), `${p} deleted`);

        const after = await verify('--check-contents');
        assert.equal(after.code, 0, after.stdout);
        assert.deepEqual((await checkBucket(s3, { publicKey: key.publicKey })).violations, []);
        const closure = await closureOf(roots);
        await deleteLocally(closure, Object.values(f));
        await substitute(roots, httpCacheUrl(s3), key.publicKey);
        await verifyClosure(roots, key.publicKey);
      });

      test('a [local] cache in xz: --check-contents streams from the directory, --repair mends a changed byte', async (t) => {
        if (!requireNix(t)) return;
        const f = await buildFixtureClosure({ largeFileMb: 0 });
        built.push(f);
        const sub = join(dir, 'local-xz');
        await mkdir(sub);
        const cache = join(sub, 'cache');
        const cfg = await writeConfig({
          dir: sub,
          localPath: cache,
          compression: 'xz',
          signingKeyPath: key.secretPath,
        });
        const up = await runLoft(['-c', cfg, '--upload-path', f.top, f.tree]);
        assert.equal(up.code, 0, up.stderr);
        const run = (...args: string[]) => runLoft(['-c', cfg, 'verify', '--check-contents', ...args]);
        const clean = await run();
        assert.equal(clean.code, 0, clean.stdout + clean.stderr);
        assert.match(clean.stdout, /: \d+ narinfos, 0 problems in 0 objects, contents of \d+ NARs checked/);
        const narinfo = parseNarInfo(await readFile(join(cache, `${h(f.tree)}.narinfo`), 'utf8'));
        const narFile = join(cache, narinfo.url);
        const bytes = await readFile(narFile);
        const at = bytes.length >> 1;
        bytes[at] = bytes[at]! ^ 0x01;
        await writeFile(narFile, bytes);
        const found = await run();
        assert.equal(found.code, 6, found.stdout);
        assert.match(
          found.stdout,
          new RegExp(`^${h(f.tree)}\\.narinfo: its NAR \\S+ (does not decode as xz|does not match)`, 'm'),
        );
        const mend = await run('--repair');
        assert.equal(mend.code, 0, mend.stdout + mend.stderr);
        assert.match(mend.stdout, new RegExp(`^mended ${h(f.tree)}\\.narinfo$`, 'm'));
        assert.equal((await run()).code, 0);
      });

      test('a reference signed by a skip_signed_by_keys key is served upstream, not missing', async (t) => {
        if (!requireNix(t)) return;
        const f = await buildFixtureClosure({ largeFileMb: 0 });
        built.push(f);
        await nixBin(['nix', 'store', 'sign', '--key-file', other.secretPath, '--', f.leaf]);
        const sub = join(dir, 'upstream');
        await mkdir(sub);
        const cache = join(sub, 'cache');
        const opts = { dir: sub, localPath: cache, signingKeyPath: key.secretPath };
        const cfg = await writeConfig({ ...opts, skipSignedByKeys: [other.name] });
        const up = await runLoft(['-c', cfg, '--upload-path', f.mid]);
        assert.equal(up.code, 0, up.stderr);
        assert.ok(!existsSync(join(cache, `${h(f.leaf)}.narinfo`)), 'leaf is left to its upstream cache');
        const ok = await runLoft(['-c', cfg, 'verify']);
        assert.equal(ok.code, 0, ok.stdout + ok.stderr);
        // The same bucket judged by a host that does not skip that key: the reference is missing.
        const strict = await writeConfig({ ...opts, skipSignedByKeys: [] });
        const missing = await runLoft(['-c', strict, 'verify']);
        assert.equal(missing.code, 6, missing.stdout);
        assert.match(
          missing.stdout,
          new RegExp(`^${h(f.mid)}\\.narinfo: reference ${h(f.leaf)}-\\S+ has no narinfo$`, 'm'),
        );
      });

      test('bad command lines are usage errors naming the fix', async () => {
        for (const [args, re] of [
          [['--repair'], /--repair only goes with verify/],
          [['--check-contents'], /--check-contents only goes with verify/],
          [['verify', '--delete-unrepairable'], /--delete-unrepairable only goes with --repair/],
          [['verify', '--prune'], /give one of/],
        ] as const) {
          const r = await runLoft(['-c', config ?? 'loft.toml', ...args]);
          assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
          assert.match(r.stderr, re);
          assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        }
      });
    },
  );
}
