// Evaluating loft's Nix packaging with the machine's Nix (2.8, no nixpkgs): the files under nix/ that
// use builtins only (nix/README.md) are imported with `nix-instantiate --eval`, and what the module
// renders (nix/config-toml.nix) is written as TOML and loaded through loft's own config loader.
// Shared by the nix-module-*, nix-npm-deps and post-build-hook integration tests.
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'smol-toml';
import { loadConfig } from '../../src/config/load.js';
import type { Config, S3Settings } from '../../src/config/schema.js';
import { nixBin, requireNix } from './nix-env.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** A repository file as a Nix path literal (a JSON string is a valid Nix string). */
export const nixPath = (rel: string): string => JSON.stringify(join(ROOT, rel));

export type Table = Record<string, unknown>;
export interface NixType {
  name: string;
  min?: number;
  max?: number | null;
  values?: unknown[];
  elem?: NixType;
}
export interface DeclaredOption {
  path: string[];
  type: NixType;
  default?: unknown;
}
/** What nix/config-toml.nix returns for one set of option values. */
export interface Rendered {
  settings: Table;
  credentials: Array<{ id: string; path: string }>;
  cliFlags: string[];
  problems: string[];
}
/** nix/tests/option-expectations.nix. */
export interface Expectations {
  required: string;
  originalDefaults: Table;
  widened: Table;
  loftAdditions: Table;
  notConfigKeys: string[];
  samples: Table;
  leftToExtraConfig: Record<string, { value: unknown; field: string; expected: unknown }>;
  refused: Table;
}

/** The smallest settings the module accepts: a bucket (and an endpoint nothing contacts). */
export const BUCKET = { s3: { bucket: 'loft-test', endpoint: 'http://127.0.0.1:3900' } };

export async function nixEval<T>(expr: string, argstr: Record<string, string> = {}): Promise<T> {
  const args = ['nix-instantiate', '--eval', '--strict', '--json'];
  for (const [name, value] of Object.entries(argstr)) args.push('--argstr', name, value);
  return JSON.parse((await nixBin([...args, '-E', expr])).stdout) as T;
}

/** config-toml.nix for each value set (nested like config.services.loft), over the module's defaults. */
export function renderAll(
  valueSets: Table[],
  dirs: { credentialsDir?: string; stateDir?: string } = {},
): Promise<Rendered[]> {
  return nixEval(
    `{ values, credentialsDir, stateDir }: map (v: import ${nixPath('nix/config-toml.nix')} {
       cfg = (import ${nixPath('nix/tests/module-options.nix')} { }).withValues v;
       inherit credentialsDir stateDir; }) (builtins.fromJSON values)`,
    {
      values: JSON.stringify(valueSets),
      credentialsDir: dirs.credentialsDir ?? '/run/credentials/loft.service',
      stateDir: dirs.stateDir ?? '/var/lib/loft',
    },
  );
}
export const render = async (
  values: Table,
  dirs: { credentialsDir?: string; stateDir?: string } = {},
): Promise<Rendered> => (await renderAll([values], dirs))[0]!;

/** Writes the rendered settings as TOML (as pkgs.formats.toml would) and loads them with loft's loader. */
export async function loadRendered(dir: string, settings: Table) {
  const text = stringify(settings);
  const path = join(dir, `loft-${randomBytes(4).toString('hex')}.toml`);
  await writeFile(path, text, { mode: 0o444 });
  return { text, path, ...(await loadConfig({ path, explicit: true, env: {}, cwd: dir })) };
}

/** {"a.b": 1} -> {a: {b: 1}}. */
export function nested(dotted: Record<string, unknown>): Table {
  const out: Table = {};
  for (const [key, value] of Object.entries(dotted)) {
    const parts = key.split('.');
    let table = out;
    for (const part of parts.slice(0, -1)) table = (table[part] ??= {}) as Table;
    table[parts.at(-1)!] = value;
  }
  return out;
}

/** Dotted "table.key" names whose values differ between two rendered settings. */
export function changedKeys(a: Table, b: Table): string[] {
  const flat = (s: Table) =>
    Object.entries(s).flatMap(([t, v]) =>
      Object.entries(v as Table).map(([k, x]): [string, string] => [`${t}.${k}`, JSON.stringify(x)]),
    );
  const left = new Map(flat(a));
  const right = new Map(flat(b));
  return [...new Set([...left.keys(), ...right.keys()])].filter((k) => left.get(k) !== right.get(k)).sort();
}

export const s3Of = (c: Config): S3Settings => {
  assert.equal(c.storage.kind, 's3');
  return (c.storage as { s3: S3Settings }).s3;
};
/** A Config field by its dotted name ("storage.s3.prefix"). */
export const field = (c: Config, name: string): unknown =>
  name.split('.').reduce<unknown>((v, part) => (v as Table | undefined)?.[part], c);

let options: DeclaredOption[] | undefined;
let expectations: Expectations | undefined;

/** module.nix's declared options and the tests' expectations (nix/tests), or undefined without Nix. */
export async function loadOptions(
  t: TestContext,
): Promise<{ declared: DeclaredOption[]; x: Expectations } | undefined> {
  if (!requireNix(t)) return undefined;
  options ??= await nixEval<DeclaredOption[]>(
    `(import ${nixPath('nix/tests/module-options.nix')} { }).options`,
  );
  expectations ??= await nixEval<Expectations>(`import ${nixPath('nix/tests/option-expectations.nix')}`);
  return { declared: options, x: expectations };
}

// ---- The modules evaluated by the real module system (nix/tests/eval-module.nix) ----

/** The variable that points the tests at nixpkgs' lib (a checkout of nix-community/nixpkgs.lib). */
export const NIXPKGS_LIB_VAR = 'LOFT_NIXPKGS_LIB';

/** The lib directory, or undefined after t.skip() when the variable is unset or points nowhere. */
export function nixpkgsLib(t: TestContext): string | undefined {
  if (!requireNix(t)) return undefined;
  const root = process.env[NIXPKGS_LIB_VAR];
  const lib = root === undefined || root === '' ? undefined : join(root, 'lib');
  if (lib === undefined || !existsSync(join(lib, 'default.nix'))) {
    t.skip(
      `${NIXPKGS_LIB_VAR} ${root === undefined ? 'is not set' : `(${root}) has no lib/default.nix`}: these ` +
        "tests evaluate the modules with nixpkgs' lib.evalModules (point it at a checkout of nixpkgs.lib)",
    );
    return undefined;
  }
  return lib;
}

export type ModuleKind = 'nixos' | 'darwin' | 'home-manager';
/** What eval-module.nix returns: the option trees the modules set, and the failed assertions. */
export interface Evaluated {
  systemd: Table;
  launchd: Table;
  users: Table;
  nix: { settings: Table };
  failed: string[];
}

/** One of the flake's modules with `settings` (a configuration, as JSON), through lib.evalModules. */
export async function evalModule(
  lib: string,
  kind: ModuleKind,
  settings: Table,
  system?: string,
): Promise<Evaluated> {
  // --read-write-mode: builtins.toFile (the stand-in of pkgs.formats.toml) writes real store files.
  const args = ['nix-instantiate', '--read-write-mode', '--eval', '--strict', '--json'];
  const argstr = { lib, kind, settings: JSON.stringify(settings), ...(system ? { system } : {}) };
  for (const [name, value] of Object.entries(argstr)) args.push('--argstr', name, value);
  return JSON.parse((await nixBin([...args, join(ROOT, 'nix/tests/eval-module.nix')])).stdout) as Evaluated;
}

/** Every store file a result names (configs, hook scripts), with its contents. */
export async function storeFilesOf(result: unknown): Promise<Map<string, string>> {
  const paths = new Set(JSON.stringify(result).match(/\/nix\/store\/[0-9a-z]{32}-[^"\s:]+/g) ?? []);
  const files = new Map<string, string>();
  for (const p of paths) if (existsSync(p)) files.set(p, await readFile(p, 'utf8'));
  return files;
}

/**
 * A config file the modules wrote (JSON, from the stand-in of pkgs.formats.toml), written as TOML
 * and loaded through loft's loader. `credentials` plays systemd's LoadCredential=: each `id:path`
 * is copied to `<dir>/credentials/<unit>/<id>` (mode 0400) and the file's /run/credentials/<unit>
 * paths point there.
 */
export async function loadModuleConfig(dir: string, storeFile: string, credentials: string[] = []) {
  const settings = JSON.parse(await readFile(storeFile, 'utf8')) as Table;
  let json = JSON.stringify(settings);
  const unitDirs = new Set(json.match(/\/run\/credentials\/[^/"]+/g) ?? []);
  for (const unitDir of unitDirs) {
    const copy = join(dir, 'credentials', unitDir.slice('/run/credentials/'.length));
    await mkdir(copy, { recursive: true });
    for (const entry of credentials) {
      const [id, path] = [entry.slice(0, entry.indexOf(':')), entry.slice(entry.indexOf(':') + 1)];
      await copyFile(path.replaceAll('%%', '%'), join(copy, id));
      await chmod(join(copy, id), 0o400);
    }
    json = json.replaceAll(`${unitDir}/`, `${copy}/`);
  }
  return { settings, ...(await loadRendered(dir, JSON.parse(json) as Table)) };
}
