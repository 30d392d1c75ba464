// The flake's three modules evaluated by the real module system (nixpkgs' lib.evalModules, through
// nix/tests/eval-module.nix, with stand-ins for the option trees they set): the units, launchd
// plists and hook they produce, every config file they write loaded through loft's own loader, and
// no secret in any store file. The assertions are in nix-module-assertions.test.ts.
// Needs LOFT_NIXPKGS_LIB (CI sets it); without it these tests skip and say why.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_KEYS } from '../../src/config/schema.js';
import {
  evalModule,
  loadModuleConfig,
  nixpkgsLib,
  s3Of,
  storeFilesOf,
  type Evaluated,
  type Table,
} from '../helpers/nix-module.js';
import { makeNixKey, type KeyFiles } from '../helpers/signing-keys.js';
import { registerSecretWithEncodings } from '../helpers/test-secrets.js';
import { makeTestPki, opensslMissing } from '../helpers/test-pki.js';
import { skipTest } from '../helpers/skip.js';

const STORE = '/nix/store/00000000000000000000000000000000';
const LOFT = `${STORE}-loft`;
const NIX = `${STORE}-nix`;

/** One cache's secret files and their (random) contents. */
interface CacheSecrets {
  files: Record<string, string>;
  values: Record<string, string>;
  key: KeyFiles;
}
let dir: string;
const secrets: Record<string, CacheSecrets> = {};

async function cacheSecrets(name: string): Promise<CacheSecrets> {
  const d = join(dir, `secrets-${name}`);
  await mkdir(d, { mode: 0o700 });
  const files: Record<string, string> = {};
  const values: Record<string, string> = {};
  for (const kind of ['access', 'secret', 'token', 'header']) {
    values[kind] = `${name}-${kind}-${randomBytes(12).toString('hex')}`;
    registerSecretWithEncodings(`module eval ${name} ${kind}`, values[kind]);
    files[kind] = join(d, kind);
    await writeFile(files[kind], `${values[kind]}\n`, { mode: 0o600 });
  }
  return { files, values, key: await makeNixKey(d, `${name}-cache-1`) };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loft-nix-module-eval-'));
  for (const name of ['main', 'backup', 'team']) secrets[name] = await cacheSecrets(name);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** An S3 cache's settings, as a user would write them once and use on all three systems. */
const s3Cache = (name: string, bucket: string): Table => ({
  s3: {
    bucket,
    endpoint: 'http://127.0.0.1:3900',
    accessKeyFile: secrets[name]!.files['access'],
    secretKeyFile: secrets[name]!.files['secret'],
    extraHeadersFile: { 'X-Proxy-Secret': secrets[name]!.files['header'] },
  },
  signingKeyPath: secrets[name]!.key.secretPath,
  compression: 'xz',
});
const httpCache = (): Table => ({
  http: { url: 'https://cache.example.org/team', tokenFile: secrets['team']!.files['token'] },
  signingKeyPath: secrets['team']!.key.secretPath,
});

/** Every secret value and the signing keys' payloads. */
function allSecretValues(): string[] {
  return Object.values(secrets).flatMap((s) => Object.values(s.values));
}
/** No store file the result names holds a secret (nor a signing key, nor a secret's directory). */
async function assertNoSecretInStore(out: Evaluated): Promise<number> {
  const files = await storeFilesOf(out);
  assert.ok(files.size > 0, 'the result names no store file');
  for (const [path, text] of files) {
    for (const v of allSecretValues()) assert.ok(!text.includes(v), `${path} holds a secret`);
    assert.ok(!/-cache-1:[A-Za-z0-9+/]{40}/.test(text), `${path} holds a signing key`);
  }
  return files.size;
}

/** The config file an ExecStart or ProgramArguments names, checking it runs the package's loft. */
function configOfCommand(command: string[], extra: string[] = []): string {
  assert.deepEqual([command[0], command[1], ...command.slice(3)], [`${LOFT}/bin/loft`, '--config', ...extra]);
  assert.match(command[2]!, /^\/nix\/store\/[0-9a-z]{32}-loft[-\w]*\.toml$/);
  return command[2]!;
}

/** The S3 credentials, header and key a loaded config resolved, compared with a cache's secrets. */
function assertResolvedSecrets(loaded: Awaited<ReturnType<typeof loadModuleConfig>>, name: string): void {
  const s = secrets[name]!;
  const s3 = s3Of(loaded.config);
  assert.deepEqual(s3.credentials, { accessKeyId: s.values['access'], secretAccessKey: s.values['secret'] });
  assert.deepEqual(s3.extraHeaders, { 'x-proxy-secret': s.values['header'] });
  assert.equal(loaded.config.signingKey?.name, s.key.name);
}

const units = (out: Evaluated, tree: Table | undefined): string[] => Object.keys(tree ?? {}).sort();

describe('the NixOS module under lib.evalModules', () => {
  test('the original single-cache options: unit loft, its user, credentials, hook and loft.toml', async (t) => {
    const lib = nixpkgsLib(t);
    if (!lib) return;
    const out = await evalModule(lib, 'nixos', {
      services: { loft: { enable: true, ...s3Cache('main', 'main'), postBuildHook: { enable: true } } },
    });
    assert.deepEqual(out.failed, []);
    const services = out.systemd['services'] as Record<string, Table>;
    assert.deepEqual(units(out, services), ['loft']);
    const unit = services['loft']!;
    const sc = unit['serviceConfig'] as Table;
    const file = configOfCommand(String(sc['ExecStart']).split(' '));
    assert.deepEqual([sc['User'], sc['Group'], sc['StateDirectory']], ['loft', 'loft', 'loft']);
    assert.deepEqual(unit['path'], [NIX]);
    const creds = sc['LoadCredential'] as string[];
    const m = secrets['main']!;
    assert.deepEqual([...creds].sort(), [
      `s3-access-key:${m.files['access']}`,
      `s3-header-1:${m.files['header']}`,
      `s3-secret-key:${m.files['secret']}`,
      `signing-key:${m.key.secretPath}`,
    ]);
    assert.equal((out.users['users'] as Record<string, Table>)['loft']!['isSystemUser'], true);
    const hook = (await storeFilesOf(out.nix.settings)).values().next().value!;
    assert.match(hook, new RegExp(`--reuid=loft .*\\n.*--config ${file} --enqueue \\$OUT_PATHS \\|\\| true`));

    const loaded = await loadModuleConfig(dir, file, creds);
    assert.deepEqual(loaded.warnings, []);
    assertResolvedSecrets(loaded, 'main');
    assert.deepEqual(
      [loaded.config.localCachePath, loaded.config.compression],
      ['/var/lib/loft/cache.db', 'xz'],
    );
    assert.equal(
      (loaded.settings['s3'] as Table)['access_key_file'],
      '/run/credentials/loft.service/s3-access-key',
    );
    await assertNoSecretInStore(out);
  });

  test('two caches beside the default: a unit, user and credential set each; the hook enqueues for all', async (t) => {
    const lib = nixpkgsLib(t);
    if (!lib) return;
    const out = await evalModule(lib, 'nixos', {
      services: {
        loft: {
          enable: true,
          ...s3Cache('main', 'main'),
          postBuildHook: { enable: true },
          caches: { backup: s3Cache('backup', 'backup'), team: httpCache() },
        },
      },
    });
    assert.deepEqual(out.failed, []);
    const services = out.systemd['services'] as Record<string, Table>;
    assert.deepEqual(units(out, services), ['loft', 'loft-backup', 'loft-team']);
    assert.deepEqual(units(out, out.users['users'] as Table), ['loft', 'loft-backup', 'loft-team']);
    const owner: Record<string, string> = { loft: 'main', 'loft-backup': 'backup', 'loft-team': 'team' };
    const hook = (await storeFilesOf(out.nix.settings)).values().next().value!;
    const files: Record<string, string> = {};
    for (const [unit, cache] of Object.entries(owner)) {
      const sc = services[unit]!['serviceConfig'] as Table;
      files[unit] = configOfCommand(String(sc['ExecStart']).split(' '));
      assert.deepEqual([sc['User'], sc['StateDirectory']], [unit, unit]);
      // Each unit is handed its own cache's files, and no other's.
      const creds = sc['LoadCredential'] as string[];
      for (const c of creds) assert.ok(c.includes(`/secrets-${cache}/`), `${unit} gets ${c}`);
      assert.match(hook, new RegExp(`--reuid=${unit} .*\\n.*--config ${files[unit]} --enqueue`));
      if (cache === 'team') continue;
      const loaded = await loadModuleConfig(dir, files[unit], creds);
      assertResolvedSecrets(loaded, cache);
      assert.equal(loaded.config.localCachePath, `/var/lib/${unit}/cache.db`);
    }
    assert.equal(hook.match(/--enqueue/g)?.length, 3);
    const team = await loadHttpConfig(files['loft-team']!, services['loft-team']!);
    assert.deepEqual(team.settings['http'], {
      url: 'https://cache.example.org/team',
      token_file: '/run/credentials/loft-team.service/http-token',
    });
    await assertNoSecretInStore(out);
  });
});

/** An [http] config: its TOML, loaded by loft's loader once the loader reads [http] (see report). */
async function loadHttpConfig(file: string, unit: Table) {
  const settings = JSON.parse(await readFile(file, 'utf8')) as Table;
  assert.equal('s3' in settings, false);
  if ((ROOT_KEYS as readonly string[]).includes('http')) {
    const creds = (unit['serviceConfig'] as Table)['LoadCredential'] as string[];
    const loaded = await loadModuleConfig(dir, file, creds);
    assert.equal(loaded.config.storage.kind, 'http');
  }
  return { settings };
}

describe('the nix-darwin module under lib.evalModules', () => {
  test('launchd.daemons.loft runs loft with its config, logs under /var/log, Nix on PATH', async (t) => {
    const lib = nixpkgsLib(t);
    if (!lib) return;
    const out = await evalModule(lib, 'darwin', {
      services: {
        loft: {
          enable: true,
          ...s3Cache('main', 'main'),
          debug: true,
          postBuildHook: { enable: true },
          caches: { backup: s3Cache('backup', 'backup') },
        },
      },
    });
    assert.deepEqual(out.failed, []);
    assert.deepEqual(out.systemd, {});
    const daemons = out.launchd['daemons'] as Record<string, { serviceConfig: Table }>;
    assert.deepEqual(units(out, daemons), ['loft', 'loft-backup']);
    const hook = (await storeFilesOf(out.nix.settings)).values().next().value!;
    assert.ok(!hook.includes('setpriv'));
    for (const [unit, cache] of [
      ['loft', 'main'],
      ['loft-backup', 'backup'],
    ] as const) {
      const plist = daemons[unit]!.serviceConfig;
      const file = configOfCommand(plist['ProgramArguments'] as string[], unit === 'loft' ? ['--debug'] : []);
      assert.deepEqual(
        [plist['KeepAlive'], plist['RunAtLoad'], plist['StandardOutPath'], plist['StandardErrorPath']],
        [true, true, `/var/log/${unit}.log`, `/var/log/${unit}.log`],
      );
      const env = plist['EnvironmentVariables'] as Record<string, string>;
      assert.ok(env['PATH']!.startsWith(`${NIX}/bin:`), env['PATH']);
      assert.equal(env['NIX_REMOTE'], 'daemon');
      assert.match(hook, new RegExp(`--config ${file} --enqueue \\$OUT_PATHS \\|\\| true`));
      // No credentials on macOS: the root daemon reads the root-only files where they are.
      const loaded = await loadModuleConfig(dir, file);
      assert.deepEqual(loaded.warnings, []);
      assertResolvedSecrets(loaded, cache);
      assert.equal((loaded.settings['loft'] as Table)['signing_key_path'], secrets[cache]!.key.secretPath);
    }
    await assertNoSecretInStore(out);
  });
});

describe('the home-manager module under lib.evalModules', () => {
  const settings = () => ({
    services: { loft: { caches: { main: s3Cache('main', 'main'), backup: s3Cache('backup', 'backup') } } },
  });

  test('Linux: one systemd user service per cache, each with its own config and secrets, no hook', async (t) => {
    const lib = nixpkgsLib(t);
    if (!lib) return;
    const out = await evalModule(lib, 'home-manager', settings());
    assert.deepEqual(out.failed, []);
    assert.deepEqual([out.launchd, out.nix.settings], [{}, {}]);
    const services = (out.systemd['user'] as Table)['services'] as Record<string, Table>;
    assert.deepEqual(units(out, services), ['loft-backup', 'loft-main']);
    for (const cache of ['main', 'backup']) {
      const unit = services[`loft-${cache}`]!;
      const file = configOfCommand(String((unit['Service'] as Table)['ExecStart']).split(' '));
      assert.deepEqual(unit['Install'], { WantedBy: ['default.target'] });
      const loaded = await loadModuleConfig(dir, file);
      assertResolvedSecrets(loaded, cache);
      assert.equal(loaded.config.localCachePath, `/home/alice/.local/state/loft/${cache}/cache.db`);
      // Its file names this cache's secrets only.
      const other = cache === 'main' ? 'backup' : 'main';
      assert.ok(!loaded.text.includes(`secrets-${other}`));
    }
    await assertNoSecretInStore(out);
  });

  test('macOS: one launchd agent per cache', async (t) => {
    const lib = nixpkgsLib(t);
    if (!lib) return;
    const out = await evalModule(lib, 'home-manager', settings(), 'aarch64-darwin');
    assert.deepEqual([out.failed, out.systemd], [[], {}]);
    const agents = out.launchd['agents'] as Record<string, { enable: boolean; config: Table }>;
    assert.deepEqual(units(out, agents), ['loft-backup', 'loft-main']);
    for (const cache of ['main', 'backup']) {
      const agent = agents[`loft-${cache}`]!;
      assert.deepEqual(
        [agent.enable, agent.config['KeepAlive'], agent.config['RunAtLoad']],
        [true, true, true],
      );
      const file = configOfCommand(agent.config['ProgramArguments'] as string[]);
      assertResolvedSecrets(await loadModuleConfig(dir, file), cache);
    }
    await assertNoSecretInStore(out);
  });
});

describe('[http] and the new [loft] switches', () => {
  test('an http cache renders [http] with its secrets as credential paths, and the switches when changed', async (t) => {
    const lib = nixpkgsLib(t);
    if (!lib) return;
    const team = secrets['team']!;
    // The loader reads the CA, certificate and key and checks the pair: a throwaway PKI (openssl).
    const missing = opensslMissing();
    if (missing) return skipTest(t, 'openssl', missing);
    const pki = await makeTestPki(dir);
    const { caCert: caFile, clientCert: clientCertFile, clientKey: clientKeyFile } = pki;
    const out = await evalModule(lib, 'nixos', {
      services: {
        loft: {
          caches: {
            team: {
              http: {
                url: 'https://cache.example.org/team',
                user: 'alice',
                passwordFile: team.files['secret'],
                extraHeaders: { 'X-Plain': 'plain' },
                extraHeadersFile: { 'X-Proxy-Secret': team.files['header'] },
                caFile,
                clientCertFile,
                clientKeyFile,
              },
              uploadLogs: false,
              writeNarListing: true,
              indexDebugInfo: true,
            },
          },
        },
      },
    });
    assert.deepEqual(out.failed, []);
    const unit = (out.systemd['services'] as Record<string, Table>)['loft-team']!;
    const sc = unit['serviceConfig'] as Table;
    const file = configOfCommand(String(sc['ExecStart']).split(' '));
    const { settings } = await loadHttpConfig(file, unit);
    const cred = (id: string) => `/run/credentials/loft-team.service/${id}`;
    assert.deepEqual(settings['http'], {
      url: 'https://cache.example.org/team',
      user: 'alice',
      password_file: cred('http-password'),
      client_key_file: cred('http-client-key'),
      ca_file: caFile,
      client_cert_file: clientCertFile,
      extra_headers: { 'X-Plain': 'plain' },
      extra_headers_file: { 'X-Proxy-Secret': cred('http-header-1') },
    });
    const loftTable = settings['loft'] as Table;
    assert.deepEqual(
      [loftTable['upload_logs'], loftTable['write_nar_listing'], loftTable['index_debug_info']],
      [false, true, true],
    );
    assert.deepEqual([...(sc['LoadCredential'] as string[])].sort(), [
      `http-client-key:${clientKeyFile}`,
      `http-header-1:${team.files['header']}`,
      `http-password:${team.files['secret']}`,
    ]);
    await assertNoSecretInStore(out);
  });

  test("the switches left at loft's defaults are not written (an older loft reads the file too)", async (t) => {
    const lib = nixpkgsLib(t);
    if (!lib) return;
    const out = await evalModule(lib, 'home-manager', {
      services: { loft: { caches: { main: s3Cache('main', 'main') } } },
    });
    const unit = ((out.systemd['user'] as Table)['services'] as Record<string, { Service: Table }>)[
      'loft-main'
    ]!;
    const { settings, warnings } = await loadModuleConfig(
      dir,
      configOfCommand(String(unit.Service['ExecStart']).split(' ')),
    );
    assert.deepEqual(warnings, []);
    const keys = Object.keys(settings['loft'] as Table);
    for (const k of ['upload_logs', 'write_nar_listing', 'index_debug_info', 'log_compression'])
      assert.ok(!keys.includes(k), k);
  });
});

describe('one cache, three systems', () => {
  test('the same attribute set is a cache under NixOS, nix-darwin and home-manager alike', async (t) => {
    const lib = nixpkgsLib(t);
    if (!lib) return;
    const settings = { services: { loft: { caches: { main: s3Cache('main', 'main') } } } };
    const [nixos, darwin, home] = await Promise.all(
      (['nixos', 'darwin', 'home-manager'] as const).map((kind) => evalModule(lib, kind, settings)),
    );
    const unit = (nixos!.systemd['services'] as Record<string, { serviceConfig: Table }>)['loft-main']!;
    const plist = (darwin!.launchd['daemons'] as Record<string, { serviceConfig: Table }>)['loft-main']!;
    const user = ((home!.systemd['user'] as Table)['services'] as Record<string, { Service: Table }>)[
      'loft-main'
    ]!;
    const runs: Array<[Evaluated, string[], string[]]> = [
      [
        nixos!,
        String(unit.serviceConfig['ExecStart']).split(' '),
        unit.serviceConfig['LoadCredential'] as string[],
      ],
      [darwin!, plist.serviceConfig['ProgramArguments'] as string[], []],
      [home!, String(user.Service['ExecStart']).split(' '), []],
    ];
    const tables: Table[] = [];
    for (const [out, command, creds] of runs) {
      assert.deepEqual(out.failed, []);
      const loaded = await loadModuleConfig(dir, configOfCommand(command), creds);
      assertResolvedSecrets(loaded, 'main');
      tables.push(loaded.settings);
    }
    // Equal but for where each system keeps the secret files' copies and the database.
    const placeless = (table: Table) =>
      JSON.parse(
        JSON.stringify(table, (key, value: unknown) =>
          /_file$|^signing_key_path$|^local_cache_path$|^X-Proxy-Secret$/.test(key) ? '(a path)' : value,
        ),
      ) as Table;
    assert.deepEqual(placeless(tables[1]!), placeless(tables[0]!));
    assert.deepEqual(placeless(tables[2]!), placeless(tables[0]!));
    assert.equal((tables[0]!['loft'] as Table)['compression'], 'xz');
  });
});
