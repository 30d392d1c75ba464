// `loft verify [--check-contents] [--repair [--delete-unrepairable]] [--dry-run]`: walks the cache,
// prints one line per problem and a summary, and with --repair mends what the local store can.
// Exit 0 when the cache is clean (or every problem was mended), 6 when problems are left.
import { ExitCode, type ExitCodeValue } from '../errors.js';
import type { PathInfo } from '../format/path-info.js';
import { publicKeyOf, signatureKeyName } from '../format/signing-key.js';
import { storePathsByHashPart } from '../store/paths-by-hash.js';
import { queryPathInfos } from '../store/path-info-query.js';
import { uploadClosure } from '../upload/upload-closure.js';
import { scanBucket, type ScanResult } from '../verify/bucket-scan.js';
import { scanClosures } from '../verify/closure-scan.js';
import { resolveStorePath } from '../store/resolve-path.js';
import { parseStorePath } from '../format/store-path.js';
import { problemLine, type Problem } from '../verify/problems.js';
import { applyRepair, type RepairOutcome } from '../verify/repair.js';
import { planRepair, type RepairPlan } from '../verify/repair-plan.js';
import { countOf, formatBytes } from './format-size.js';
import type { Runtime } from './runtime.js';
import { buildUploadDeps } from './upload-deps.js';
import { verifyProgress } from './verify-progress.js';

export interface VerifyCommandOptions {
  /** Store paths whose closures to verify (found without a listing); empty: the whole cache. */
  paths?: string[];
  checkContents: boolean;
  repair: boolean;
  deleteUnrepairable: boolean;
  dryRun: boolean;
}

export interface VerifyIo {
  say: (line: string) => void;
  stderr: NodeJS.WriteStream;
}

export async function runVerify(
  rt: Runtime,
  opts: VerifyCommandOptions,
  io: VerifyIo,
): Promise<ExitCodeValue> {
  const started = Date.now();
  const { config } = rt;
  const progress = io.stderr.isTTY ? verifyProgress(io.stderr) : undefined;
  const deps = {
    store: rt.store,
    storeDir: config.storeDir,
    checkContents: opts.checkContents,
    ...(config.signingKey ? { publicKey: publicKeyOf(config.signingKey) } : {}),
    ...(progress ? { onProgress: progress.update } : {}),
  };
  const given = await hashPartsOf(opts.paths ?? [], config.storeDir);
  const scan = await (given.length > 0 ? scanClosures(deps, given) : scanBucket(deps)).finally(() =>
    progress?.done(),
  );
  for (const n of scan.narsNotChecked)
    rt.logger.warn({ key: n.key, reason: n.reason }, 'NAR contents not checked');
  const local = await localInfosFor(rt, scan.problems, opts.repair);
  const problems = withoutUpstreamReferences(scan.problems, local, config.skipSignedByKeys);
  for (const p of problems) io.say(problemLine(p));
  io.say(summaryLine(rt, scan, problems, Date.now() - started));
  if (!config.signingKey) io.say('signatures not checked: no signing key configured (loft.signing_key_path)');
  if (problems.length === 0 || !opts.repair) return problems.length === 0 ? ExitCode.ok : ExitCode.problems;
  return repair(
    rt,
    opts,
    planRepair({ problems, paths: scan.paths, local, deleteUnrepairable: opts.deleteUnrepairable }),
    io,
    // Broken extras (realisations, listings, debug-info entries) are reported, never mended.
    problems.filter((p) => p.kind === 'extra').length,
  );
}

/** --repair: prints the plan (--dry-run) or applies it; 0 only when nothing is left broken. */
async function repair(
  rt: Runtime,
  opts: VerifyCommandOptions,
  plan: RepairPlan,
  io: VerifyIo,
  extras: number,
): Promise<ExitCodeValue> {
  if (opts.dryRun) {
    for (const line of planLines(plan)) io.say(line);
    return ExitCode.problems;
  }
  const outcome = await applyRepair(plan, {
    store: rt.store,
    cache: rt.cache,
    storeDir: rt.config.storeDir,
    priority: rt.config.priority,
    logger: rt.logger.child({ component: 'repair' }),
    upload: (paths, force) =>
      uploadClosure({ paths, explicit: true, dryRun: false, forceUpload: force }, buildUploadDeps(rt)),
  });
  for (const line of outcomeLines(plan, outcome)) io.say(line);
  const left = outcome.failed.length + extras + (opts.deleteUnrepairable ? 0 : plan.unmendable.length);
  return left === 0 ? ExitCode.ok : ExitCode.problems;
}

/**
 * What the local store holds of the paths the problems name: needed to mend them, and to tell a
 * reference served upstream (signed by a skip_signed_by_keys key, so never uploaded) from a
 * missing one. One read of the store directory's names, then one `nix path-info` of the matches.
 */
async function localInfosFor(
  rt: Runtime,
  problems: readonly Problem[],
  repair: boolean,
): Promise<Map<string, PathInfo>> {
  const wanted = new Set<string>();
  const upstream = rt.config.skipSignedByKeys.length > 0;
  for (const p of problems) {
    if (p.kind === 'missing-reference' && (repair || upstream)) wanted.add(p.reference!.slice(0, 32));
    else if (repair && p.hashPart !== undefined) wanted.add(p.hashPart);
  }
  const out = new Map<string, PathInfo>();
  if (wanted.size === 0) return out;
  const storeDir = rt.config.storeDir;
  try {
    const paths = await storePathsByHashPart(storeDir, wanted);
    for (const r of await queryPathInfos(paths, { recursive: false, storeDir })) {
      if (r.ok) out.set(r.info.hashPart, r.info);
    }
  } catch (err) {
    if (repair) throw err;
    // Without Nix a plain verify still reports; references just cannot be recognised as upstream.
    rt.logger.warn({ err }, 'cannot ask the local store which missing references are served upstream');
  }
  return out;
}

/** loft never uploads a path signed by an upstream key, so the cache lacking it is expected. */
function withoutUpstreamReferences(
  problems: readonly Problem[],
  local: ReadonlyMap<string, PathInfo>,
  skipKeys: readonly string[],
): Problem[] {
  const skip = new Set(skipKeys);
  return problems.filter((p) => {
    if (p.kind !== 'missing-reference') return true;
    const info = local.get(p.reference!.slice(0, 32));
    return !info?.signatures.some((s) => skip.has(keyName(s)));
  });
}

function keyName(sig: string): string {
  try {
    return signatureKeyName(sig);
  } catch {
    return '';
  }
}

function summaryLine(rt: Runtime, scan: ScanResult, problems: readonly Problem[], ms: number): string {
  const broken = new Set(problems.map((p) => p.key)).size;
  const contents =
    scan.narsChecked + scan.narsNotChecked.length > 0
      ? `, contents of ${countOf(scan.narsChecked, 'NAR')} checked (${formatBytes(scan.bytesRead)})` +
        (scan.narsNotChecked.length > 0 ? `, ${scan.narsNotChecked.length} not checkable here` : '')
      : '';
  return (
    `verified ${rt.store.description}: ${countOf(scan.paths.size, 'narinfo')}, ` +
    `${countOf(problems.length, 'problem')} in ${countOf(broken, 'object')}${contents}, in ${(ms / 1000).toFixed(1)} s`
  );
}

function planLines(plan: RepairPlan): string[] {
  const lines: string[] = [];
  if (plan.fixCacheInfo) lines.push('would write nix-cache-info');
  for (const a of plan.reupload) lines.push(`would re-upload ${a.info.path} (${a.key}: ${a.why})`);
  for (const a of plan.resign) lines.push(`would re-sign ${a.key} (${a.why})`);
  for (const a of plan.uploadMissing) lines.push(`would upload ${a.info.path} (${a.why})`);
  for (const d of plan.deletions) lines.push(`would delete ${d.hashPart}.narinfo (${d.why})`);
  if (plan.deletions.length === 0) {
    for (const u of plan.unmendable)
      lines.push(`cannot mend ${u.key}: ${u.why} (--delete-unrepairable deletes it)`);
  }
  lines.push(repairSummary(plan, undefined));
  return lines;
}

function outcomeLines(plan: RepairPlan, outcome: RepairOutcome): string[] {
  const lines = [...outcome.mended.map((k) => `mended ${k}`), ...outcome.deleted.map((k) => `deleted ${k}`)];
  lines.push(...outcome.failed);
  if (plan.deletions.length === 0) {
    for (const u of plan.unmendable)
      lines.push(`cannot mend ${u.key}: ${u.why} (--delete-unrepairable deletes it)`);
  }
  lines.push(repairSummary(plan, outcome));
  return lines;
}

function repairSummary(plan: RepairPlan, outcome: RepairOutcome | undefined): string {
  const mendable =
    plan.reupload.length + plan.resign.length + plan.uploadMissing.length + (plan.fixCacheInfo ? 1 : 0);
  const left = plan.deletions.length === 0 ? plan.unmendable.length : 0;
  if (!outcome) {
    return `repair plan: would mend ${mendable} (${plan.reupload.length} re-uploads, ${plan.resign.length} re-signs, ${plan.uploadMissing.length} missing references), delete ${plan.deletions.length} narinfos, leave ${left}`;
  }
  return `repaired: mended ${outcome.mended.length}, deleted ${outcome.deleted.length}, ${outcome.failed.length} failed, ${left} cannot be mended here`;
}

/** The hash parts of the paths given to `loft verify PATH...` (`./result` and the like resolved). */
async function hashPartsOf(paths: readonly string[], storeDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) out.push(parseStorePath(await resolveStorePath(p, storeDir), storeDir).hashPart);
  return out;
}
