// The prune lease on a server that honours `If-None-Match: *` by itself (moto), where the s3rver
// tests need a proxy that plays it (prune-two-hosts.test.ts): the lease is held and released, a
// lease held by another host makes a prune skip, and Nix still substitutes what an upload put there.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { buildFixtureClosure, type FixtureCase } from '../helpers/fixtures.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';
import { runLoft } from '../helpers/loft-cli.js';
import { motoMissing } from '../helpers/moto-server.js';
import { hasNix, requireNix } from '../helpers/nix-env.js';
import { storeOptionsFor } from '../helpers/s3-server.js';
import { closureOf, deleteLocally, httpCacheUrl, substitute } from '../helpers/upload-env.js';

describe('prune with the lease on moto', { skip: motoMissing() ?? false }, () => {
  let env: IntegrationEnv | undefined;
  let fixtures: Record<FixtureCase, string> | undefined;

  before(async () => {
    env = await startIntegrationEnv('loft-lease-moto-', 'loft-lease-1', 'moto');
  });
  after(async () => env?.close(Object.values(fixtures ?? {})));

  test('held and released; skipped while another host holds it; Nix substitutes what was kept', async (t) => {
    if (!requireNix(t) || !hasNix()) return;
    const s3 = env!.s3;
    const config = await env!.config({ extraLoft: 'prune_enabled = true\nprune_grace_hours = 1' });
    fixtures = await buildFixtureClosure({ largeFileMb: 6 });
    const roots = [fixtures.top, fixtures.large];
    const upload = await runLoft(['-c', config, '--upload-path', ...roots]);
    assert.equal(upload.code, 0, upload.stderr);

    for (let i = 0; i < 2; i++) {
      const run = await runLoft(['-c', config, '--prune']);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /held the prune lease \(\.loft\/lease\)/);
    }
    const store = new S3ObjectStore(storeOptionsFor(s3));
    t.after(() => store.close());
    const leaseKeys = async () => {
      const keys: string[] = [];
      for await (const o of store.list('.loft/lease')) keys.push(o.key);
      return keys;
    };
    assert.deepEqual(await leaseKeys(), [], 'lease released, probes removed');
    await store.putBytes('.loft/lease', '{"v":1,"host":"other-host"}\n', { contentType: 'application/json' });
    const busy = await runLoft(['-c', config, '--prune']);
    assert.equal(busy.code, 0, busy.stderr);
    assert.match(busy.stdout, /skipped: other-host holds the prune lease/);
    await store.deleteMany(['.loft/lease']);

    const closure = await closureOf(roots);
    await deleteLocally(closure, Object.values(fixtures));
    await substitute(roots, httpCacheUrl(s3), env!.key.publicKey);
  });
});
