// Realisations: which store path a content-addressed derivation's output turned out to be, signed,
// so that another machine substitutes the output instead of building it. Two layouts exist, and
// loft writes each one it can (nix libstore realisation.cc and binary-cache-store.cc):
//
//   Nix <= 2.34 and Lix: realisations/<drv hash>!<output>.doi
//     {"dependentRealisations":{"<id>":"<out base name>",...},"id":"sha256:<base16>!out",
//      "outPath":"<out base name>","signatures":["name:base64",...]}
//     The id's hash is the derivation's hash modulo (not its store path hash); the fingerprint is
//     the same JSON without "signatures".
//   Nix >= 2.35: build-trace-v2/<drv base name>/<output>.doi
//     {"outPath":"<out base name>","signatures":[{"keyName":"name","sig":"base64"},...]}
//     The fingerprint is {"key":{"drvPath":"<drv base name>","outputName":"out"},
//     "value":{"outPath":"<out base name>"}}; Nix reads signatures as objects or as strings.
//
// Nix serialises with nlohmann::json, whose objects are std::maps: keys in sorted order, no spaces.
// Store base names, hashes and output names hold no character JSON would escape differently.
import { FormatError } from '../errors.js';
import { signFingerprint, signatureKeyName, type SecretKey } from './signing-key.js';
import { isValidStorePathName, parseStorePathBaseName } from './store-path.js';

export const CONTENT_TYPE_REALISATION = 'application/json';

/** A realisation in the Nix <= 2.34 shape (local table `Realisations`). */
export interface RealisationV1 {
  /** `sha256:<base16 hash modulo>!<output name>` */
  id: string;
  /** Base name of the output path. */
  outPath: string;
  signatures: string[];
  /** id -> base name of the output path, for CA inputs this output was built from. */
  dependentRealisations: Record<string, string>;
}

/** A build trace entry in the Nix >= 2.35 shape (local table `BuildTraceV3`). */
export interface RealisationV2 {
  /** Base name of the derivation, `<hash>-<name>.drv`. */
  drvPath: string;
  outputName: string;
  outPath: string;
  signatures: string[];
}

const ID = /^(sha256:[0-9a-f]{64})!(.+)$/;

/** The derivation hash and output name of a v1 id; FormatError when it is not one. */
export function parseRealisationId(id: string): { drvHash: string; outputName: string } {
  const m = ID.exec(id);
  if (!m || !isValidStorePathName(m[2]!))
    throw new FormatError(`invalid realisation id ${JSON.stringify(id)}`);
  return { drvHash: m[1]!, outputName: m[2]! };
}

function sortedObject(entries: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(entries).sort()) out[k] = entries[k]!;
  return out;
}

/** Realisation::fingerprint() of Nix <= 2.34: the JSON without its signatures. */
export function realisationFingerprintV1(r: RealisationV1): string {
  return JSON.stringify({
    dependentRealisations: sortedObject(r.dependentRealisations),
    id: r.id,
    outPath: r.outPath,
  });
}

/** UnkeyedRealisation::fingerprint(key) of Nix >= 2.35. */
export function realisationFingerprintV2(r: RealisationV2): string {
  return JSON.stringify({
    key: { drvPath: r.drvPath, outputName: r.outputName },
    value: { outPath: r.outPath },
  });
}

/** The signatures with ours added (a set, as Nix keeps them: sorted, each once). */
function withSignature(sigs: readonly string[], sig: string): string[] {
  return [...new Set([...sigs, sig])].sort();
}

export function signRealisationV1(r: RealisationV1, key: SecretKey): RealisationV1 {
  const others = r.signatures.filter((s) => signatureKeyName(s) !== key.name);
  return { ...r, signatures: withSignature(others, signFingerprint(key, realisationFingerprintV1(r))) };
}

export function signRealisationV2(r: RealisationV2, key: SecretKey): RealisationV2 {
  const others = r.signatures.filter((s) => signatureKeyName(s) !== key.name);
  return { ...r, signatures: withSignature(others, signFingerprint(key, realisationFingerprintV2(r))) };
}

/** The `.doi` body Nix <= 2.34 writes (and reads). */
export function renderRealisationV1(r: RealisationV1): string {
  return JSON.stringify({
    dependentRealisations: sortedObject(r.dependentRealisations),
    id: r.id,
    outPath: r.outPath,
    signatures: [...r.signatures].sort(),
  });
}

/** The `.doi` body Nix >= 2.35 writes: signatures as {keyName, sig} objects. */
export function renderRealisationV2(r: RealisationV2): string {
  const signatures = [...r.signatures].sort().map((s) => {
    const keyName = signatureKeyName(s);
    return { keyName, sig: s.slice(keyName.length + 1) };
  });
  return JSON.stringify({ outPath: r.outPath, signatures });
}

export function realisationKeyV1(id: string): string {
  return `realisations/${id}.doi`;
}

export function realisationKeyV2(drvBaseName: string, outputName: string): string {
  return `build-trace-v2/${drvBaseName}/${outputName}.doi`;
}

function object(json: unknown, what: string): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new FormatError(`${what} is not a JSON object`);
  return json as Record<string, unknown>;
}

function baseName(v: unknown, what: string, storeDir: string): string {
  if (typeof v !== 'string') throw new FormatError(`${what} is not a string`);
  try {
    parseStorePathBaseName(v, storeDir);
  } catch {
    throw new FormatError(`${what} is not a store path base name`);
  }
  return v;
}

/** Signatures as strings, whichever form the file used. */
function signaturesOf(v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new FormatError('"signatures" is not a list');
  return v.map((s) => {
    if (typeof s === 'string') return s;
    const o = object(s, 'a signature');
    if (typeof o['keyName'] !== 'string' || typeof o['sig'] !== 'string')
      throw new FormatError('a signature lacks "keyName" or "sig"');
    return `${o['keyName']}:${o['sig']}`;
  });
}

/** Parses a Nix <= 2.34 `.doi` as Realisation::fromJSON does; FormatError on anything else. */
export function parseRealisationV1(text: string, storeDir?: string): RealisationV1 {
  const o = object(parseJson(text), 'the realisation');
  if (typeof o['id'] !== 'string') throw new FormatError('the realisation has no "id"');
  parseRealisationId(o['id']);
  const deps: Record<string, string> = {};
  if (o['dependentRealisations'] !== undefined) {
    for (const [k, v] of Object.entries(object(o['dependentRealisations'], '"dependentRealisations"'))) {
      parseRealisationId(k);
      deps[k] = baseName(v, `dependent realisation ${k}`, storeDir ?? '/nix/store');
    }
  }
  return {
    id: o['id'],
    outPath: baseName(o['outPath'], '"outPath"', storeDir ?? '/nix/store'),
    signatures: signaturesOf(o['signatures']),
    dependentRealisations: deps,
  };
}

/** Parses a Nix >= 2.35 `.doi`; the key comes from its object key. */
export function parseRealisationV2(
  text: string,
  key: { drvPath: string; outputName: string },
  storeDir?: string,
): RealisationV2 {
  const o = object(parseJson(text), 'the build trace entry');
  return {
    ...key,
    outPath: baseName(o['outPath'], '"outPath"', storeDir ?? '/nix/store'),
    signatures: signaturesOf(o['signatures']),
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new FormatError('not JSON');
  }
}

/** The v1 id or the v2 drv/output of a realisation key; undefined for any other key. */
export function parseRealisationKey(
  key: string,
): { layout: 1; id: string } | { layout: 2; drvPath: string; outputName: string } | undefined {
  if (!key.endsWith('.doi')) return undefined;
  if (key.startsWith('realisations/')) {
    const id = key.slice('realisations/'.length, -'.doi'.length);
    return ID.test(id) ? { layout: 1, id } : undefined;
  }
  const m = /^build-trace-v2\/([^/]+\.drv)\/([^/]+)\.doi$/.exec(key);
  return m ? { layout: 2, drvPath: m[1]!, outputName: m[2]! } : undefined;
}
