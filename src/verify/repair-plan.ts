// What `--repair` does about each problem, decided from the problems, the cache's reference graph
// and what the local store holds (pure; the caller applies it). The local store is the only source
// of truth loft trusts for contents: a path is re-uploaded or re-signed only when it is valid here,
// because the upload and the signature vouch for what our own Nix registered.
//   NAR missing, truncated, damaged, undecodable; narinfo garbage or naming another path
//       -> re-upload the path (NAR, then narinfo) when it is valid here
//   not signed by our key, or our signature does not verify -> re-sign when valid here (the NAR is
//       kept; re-sign.ts checks the narinfo describes the contents we hold, else re-uploads)
//   a reference without a narinfo -> upload the reference (with its missing closure) when valid here
//   nix-cache-info missing or unreadable -> write it
// Anything else cannot be mended here. With --delete-unrepairable its narinfo is deleted, and so is
// every narinfo that references it, transitively, referrers first: a narinfo left pointing at a
// deleted one would be a new missing reference, and Nix refuses partial closures.
import { narinfoKey } from '../format/bucket-layout.js';
import type { PathInfo } from '../format/path-info.js';
import { PathGraph } from '../prune/path-graph.js';
import type { PrunePath } from '../prune/policy.js';
import type { ScannedPath } from './bucket-scan.js';
import type { Problem } from './problems.js';

export interface PlannedUpload {
  info: PathInfo;
  /** The narinfo key the action mends. */
  key: string;
  why: string;
}

export interface RepairPlan {
  /** Uploaded again even though a narinfo exists (NAR and narinfo overwritten). */
  reupload: PlannedUpload[];
  resign: PlannedUpload[];
  /** References without a narinfo, valid here: uploaded with their missing closure. */
  uploadMissing: PlannedUpload[];
  fixCacheInfo: boolean;
  /** Problems nothing here can mend (left in place unless deleted below). */
  unmendable: Array<{ key: string; why: string }>;
  /** Narinfo hash parts to delete, referrers first (only with deleteUnrepairable). */
  deletions: Array<{ hashPart: string; why: string }>;
}

export interface RepairInput {
  problems: readonly Problem[];
  paths: ReadonlyMap<string, ScannedPath>;
  /** Paths valid in the local store, by hash part (only those the problems name are needed). */
  local: ReadonlyMap<string, PathInfo>;
  deleteUnrepairable: boolean;
}

const RESIGN_KINDS = new Set(['unsigned', 'bad-signature']);

export function planRepair(input: RepairInput): RepairPlan {
  const plan: RepairPlan = {
    reupload: [],
    resign: [],
    uploadMissing: [],
    fixCacheInfo: false,
    unmendable: [],
    deletions: [],
  };
  const reupload = new Map<string, PlannedUpload>();
  const resign = new Map<string, PlannedUpload>();
  const missing = new Map<string, PlannedUpload>();
  const unmendable = new Map<string, string>();
  for (const p of input.problems) {
    if (p.kind === 'cache-info') {
      plan.fixCacheInfo = true;
      continue;
    }
    if (p.kind === 'extra') continue; // reported, not mended: delete or re-upload it by hand
    const hashPart = p.hashPart!;
    if (p.kind === 'missing-reference') {
      const refHash = p.reference!.slice(0, 32);
      const info = input.local.get(refHash);
      const seen = missing.get(refHash);
      if (seen) seen.why += `, ${p.key}`;
      else if (info) missing.set(refHash, { info, key: narinfoKey(refHash), why: `referenced by ${p.key}` });
      else if (!unmendable.has(hashPart)) {
        unmendable.set(hashPart, `its reference ${p.reference} is neither in the cache nor valid here`);
      }
      continue;
    }
    const info = input.local.get(hashPart);
    if (!info) {
      if (!unmendable.has(hashPart)) unmendable.set(hashPart, `${p.detail}, and the path is not valid here`);
      continue;
    }
    const target = RESIGN_KINDS.has(p.kind) ? resign : reupload;
    if (!target.has(hashPart)) target.set(hashPart, { info, key: p.key, why: p.detail });
  }
  for (const h of reupload.keys()) resign.delete(h); // the upload signs it anyway
  plan.reupload = [...reupload.values()];
  plan.resign = [...resign.values()];
  plan.uploadMissing = [...missing.values()];
  plan.unmendable = [...unmendable].map(([h, why]) => ({ key: narinfoKey(h), why }));
  if (input.deleteUnrepairable) plan.deletions = deletionsFor([...unmendable.keys()], input.paths);
  return plan;
}

/** The unmendable narinfos and everything that references them, transitively, referrers first. */
function deletionsFor(
  unmendable: readonly string[],
  paths: ReadonlyMap<string, ScannedPath>,
): Array<{ hashPart: string; why: string }> {
  const graph = new PathGraph([...paths.values()].map(asGraphNode));
  const roots = unmendable.filter((h) => paths.has(h)).map((h) => graph.get(h));
  const doomed = graph.referrersClosure(roots);
  const direct = new Set(unmendable);
  return graph.referrersFirst([...doomed].sort()).map((hashPart) => ({
    hashPart,
    why: direct.has(hashPart) ? 'cannot be mended here' : 'references a narinfo that is deleted',
  }));
}

/** PathGraph is the prune's; only the hash part and the references matter to it. */
function asGraphNode(p: ScannedPath): PrunePath {
  return {
    hashPart: p.hashPart,
    narinfoKey: narinfoKey(p.hashPart),
    narinfoSize: 0,
    extraObjects: [],
    references: p.references,
    uploadedAt: 0,
    malformed: false,
  };
}
