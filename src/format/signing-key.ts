// Ed25519 keys and signatures as Nix writes them (libstore crypto.cc, `nix key generate-secret`):
//   secret key   <name>:base64(64 bytes: 32-byte seed, then the 32-byte public key)
//   public key   <name>:base64(32 bytes)
//   signature    <name>:base64(64 bytes), over the fingerprint text (see fingerprint.ts)
// Key files from sops/agenix end with a newline: surrounding whitespace is trimmed. Error messages
// never quote the key text. node:crypto takes a raw seed only inside PKCS#8 DER, a raw public key
// only inside SPKI DER, so both are wrapped in the fixed Ed25519 prefixes (RFC 8410).
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { FormatError, KeyError } from '../errors.js';

export interface SecretKey {
  name: string;
  seed: Buffer;
  publicKey: Buffer;
}

export interface PublicKey {
  name: string;
  key: Buffer;
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

const privateObjects = new WeakMap<SecretKey, KeyObject>();
const publicObjects = new WeakMap<PublicKey, KeyObject>();

export function parseSecretKey(text: string): SecretKey {
  const { name, bytes } = splitKey(text, 'secret', 64);
  const seed = bytes.subarray(0, 32);
  const publicKey = bytes.subarray(32);
  const derived = publicKeyFromSeed(seed);
  if (!derived.equals(publicKey)) {
    throw new KeyError(
      `secret key "${name}" is inconsistent: its public half does not belong to its seed; regenerate it with nix key generate-secret`,
    );
  }
  return { name, seed: Buffer.from(seed), publicKey: Buffer.from(publicKey) };
}

export function parsePublicKey(text: string): PublicKey {
  const { name, bytes } = splitKey(text, 'public', 32);
  return { name, key: bytes };
}

export function publicKeyOf(sk: SecretKey): PublicKey {
  return { name: sk.name, key: Buffer.from(sk.publicKey) };
}

export function formatPublicKey(pk: PublicKey): string {
  return `${pk.name}:${pk.key.toString('base64')}`;
}

/** Signs the fingerprint; returns `name:base64(64-byte signature)` (Ed25519 is deterministic). */
export function signFingerprint(sk: SecretKey, fingerprint: string): string {
  let key = privateObjects.get(sk);
  if (key === undefined) {
    key = privateKeyObject(sk.seed);
    privateObjects.set(sk, key);
  }
  const sig = sign(null, Buffer.from(fingerprint, 'utf8'), key);
  return `${sk.name}:${sig.toString('base64')}`;
}

/**
 * True when `sig` is `pk.name:base64(...)` and verifies over `fingerprint`. A signature by another
 * key name or a malformed signature is simply not valid (false), as Nix treats it.
 */
export function verifySignature(pk: PublicKey, fingerprint: string, sig: string): boolean {
  const colon = sig.indexOf(':');
  if (colon <= 0 || sig.slice(0, colon) !== pk.name) return false;
  const bytes = strictBase64(sig.slice(colon + 1));
  if (bytes?.length !== 64) return false;
  let key = publicObjects.get(pk);
  if (key === undefined) {
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, pk.key]), format: 'der', type: 'spki' });
    publicObjects.set(pk, key);
  }
  return verify(null, Buffer.from(fingerprint, 'utf8'), key, bytes);
}

/** The key name of a `name:base64` signature; FormatError when there is none. */
export function signatureKeyName(sig: string): string {
  const colon = sig.indexOf(':');
  if (colon <= 0) throw new FormatError('invalid signature: expected <key name>:<base64 signature>');
  return sig.slice(0, colon);
}

function splitKey(text: string, kind: 'secret' | 'public', length: number): { name: string; bytes: Buffer } {
  const trimmed = text.trim();
  const colon = trimmed.indexOf(':');
  if (colon < 0) {
    throw new KeyError(
      `${kind} key is malformed: expected <name>:<base64>, as nix key generate-secret writes`,
    );
  }
  if (colon === 0) throw new KeyError(`${kind} key has an empty name: expected <name>:<base64>`);
  const name = trimmed.slice(0, colon);
  if (/\s/.test(name)) throw new KeyError(`${kind} key name must not contain whitespace`);
  const bytes = strictBase64(trimmed.slice(colon + 1));
  if (bytes === undefined) throw new KeyError(`${kind} key "${name}" is not valid base64 after the ':'`);
  if (bytes.length !== length) {
    throw new KeyError(
      `${kind} key "${name}" has ${bytes.length} bytes, an Ed25519 ${kind} key has ${length}`,
    );
  }
  return { name, bytes };
}

/** Canonical padded base64, or undefined (Node's decoder would skip bad characters silently). */
function strictBase64(s: string): Buffer | undefined {
  if (s.length === 0 || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  const bytes = Buffer.from(s, 'base64');
  return bytes.toString('base64') === s ? bytes : undefined;
}

function privateKeyObject(seed: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

function publicKeyFromSeed(seed: Buffer): Buffer {
  const spki = createPublicKey(privateKeyObject(seed)).export({ format: 'der', type: 'spki' });
  return spki.subarray(SPKI_ED25519_PREFIX.length);
}
