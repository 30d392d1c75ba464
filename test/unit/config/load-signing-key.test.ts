import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyError } from '../../../src/errors.js';
import { FIXTURE_KEY_NAME, FIXTURE_PUBLIC, load, rejection, useTempConfigs } from './temp-configs.js';

const { workdir, keyText } = useTempConfigs();

describe('signing key', () => {
  const withKey = (extra = '') => `[local]\npath="c"\n[loft]\nsigning_key_path="key.sec"\n${extra}`;

  test('a key file with a trailing newline is trimmed and parsed; mode 0600 gives no warning', async () => {
    const cwd = await workdir({ 'loft.toml': withKey(), 'key.sec': `${keyText()}\n` });
    const { config, warnings } = await load(cwd);
    assert.equal(config.signingKey?.name, FIXTURE_KEY_NAME);
    assert.equal(config.signingKey.publicKey.toString('base64'), FIXTURE_PUBLIC);
    assert.equal(config.signingKeyPath, join(cwd, 'key.sec'));
    assert.deepEqual(warnings, []);
  });

  test('signing_key_name equal to the file name is accepted; a different one is an error', async () => {
    const ok = await workdir({
      'loft.toml': withKey(`signing_key_name="${FIXTURE_KEY_NAME}"`),
      'key.sec': keyText(),
    });
    assert.equal((await load(ok)).config.signingKey?.name, FIXTURE_KEY_NAME);
    const bad = await workdir({ 'loft.toml': withKey('signing_key_name="nix-cache"'), 'key.sec': keyText() });
    assert.equal(
      await rejection(load(bad)),
      `loft.signing_key_name "nix-cache" does not match the key file's name "${FIXTURE_KEY_NAME}"; ` +
        'the Sig name comes from the key file (remove signing_key_name or fix it)',
    );
  });

  test('a key file readable by group or others is a warning', async () => {
    const cwd = await workdir({ 'loft.toml': withKey(), 'key.sec': keyText() });
    await chmod(join(cwd, 'key.sec'), 0o644);
    const { config, warnings } = await load(cwd);
    assert.ok(config.signingKey !== undefined);
    assert.deepEqual(warnings, [
      `signing key file ${join(cwd, 'key.sec')} is accessible by group or others (mode 0644); run chmod 600 on it`,
    ]);
  });

  test('a missing key file is an error, never silently unsigned', async () => {
    const cwd = await workdir({ 'loft.toml': withKey() });
    assert.equal(
      await rejection(load(cwd)),
      `loft.signing_key_path: cannot read the signing key file ${join(cwd, 'key.sec')} (no such file)`,
    );
  });

  test('a malformed key file is a KeyError naming the path', async () => {
    for (const contents of [
      '',
      'no-colon',
      `${keyText().slice(0, -8)}AAAAAAA=`,
      keyText().replace(/:.*/, ':AAAA'),
    ]) {
      const cwd = await workdir({ 'loft.toml': withKey(), 'key.sec': contents });
      const message = await rejection(load(cwd), KeyError);
      assert.ok(
        message.startsWith(`loft.signing_key_path: ${join(cwd, 'key.sec')} is not a usable Nix secret key`),
        message,
      );
    }
  });
});
