// What one extra object of a cache must satisfy (format/bucket-layout.ts lists them), judged from
// its text and a listing of the cache (key -> size), as narinfo-check.ts does for narinfos:
//   realisations/<id>.doi           parses as Nix <= 2.34 reads it, its id is the one its key names,
//                                   its outPath has a narinfo, and with a public key given it
//                                   carries a signature by that key over Nix's fingerprint
//   build-trace-v2/<drv>/<out>.doi  the same in the Nix >= 2.35 shape
//   <hash>.ls                       parses as a version 1 listing; `<hash>.narinfo` exists
//   debuginfo/<build id>            parses; the NAR it names exists
// Build logs are plain text: nothing to judge. Pure: the caller lists and downloads.
import { parseDebugInfo } from './debug-info.js';
import { parseNarListing } from './nar-listing.js';
import {
  parseRealisationKey,
  parseRealisationV1,
  parseRealisationV2,
  realisationFingerprintV1,
  realisationFingerprintV2,
} from './realisation.js';
import { verifySignature, type PublicKey } from './signing-key.js';

const LISTING_KEY = /^([0-9a-df-np-sv-z]{32})\.ls$/;

/** True for keys this check judges. */
export function isCheckedExtraKey(key: string): boolean {
  return LISTING_KEY.test(key) || key.startsWith('debuginfo/') || parseRealisationKey(key) !== undefined;
}

export interface ExtraCheckInput {
  key: string;
  text: string;
  sizes: ReadonlyMap<string, number>;
  storeDir: string;
  publicKey?: PublicKey;
}

/** Sentences describing what is wrong with the object, [] when nothing is. */
export function checkExtra(input: ExtraCheckInput): string[] {
  try {
    return judge(input);
  } catch (err) {
    return [`does not parse: ${err instanceof Error ? err.message : String(err)}`];
  }
}

function judge({ key, text, sizes, storeDir, publicKey }: ExtraCheckInput): string[] {
  const listing = LISTING_KEY.exec(key);
  if (listing) {
    parseNarListing(text);
    return sizes.has(`${listing[1]}.narinfo`) ? [] : ['a listing of a path that has no narinfo'];
  }
  if (key.startsWith('debuginfo/')) {
    const { narKey } = parseDebugInfo(text);
    return sizes.has(narKey) ? [] : [`names the NAR ${narKey}, which is not in the cache`];
  }
  const k = parseRealisationKey(key);
  if (k === undefined) return [];
  let outPath: string;
  let fingerprint: string;
  let signatures: string[];
  if (k.layout === 1) {
    const r = parseRealisationV1(text, storeDir);
    if (r.id !== k.id) return [`its id ${r.id} is not the one its key names`];
    ({ outPath, signatures } = r);
    fingerprint = realisationFingerprintV1(r);
  } else {
    const r = parseRealisationV2(text, k, storeDir);
    ({ outPath, signatures } = r);
    fingerprint = realisationFingerprintV2(r);
  }
  const problems: string[] = [];
  if (!sizes.has(`${outPath.slice(0, 32)}.narinfo`))
    problems.push(`realises ${outPath}, which has no narinfo in the cache`);
  if (publicKey && !signatures.some((s) => verifySignature(publicKey, fingerprint, s)))
    problems.push(`has no valid signature by ${publicKey.name}`);
  return problems;
}
