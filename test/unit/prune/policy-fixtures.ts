// Building PruneInputs by hand for the policy tests: paths named by small numbers, ages in days.
import type { PruneInput, PrunePath, PruneSettingsInput } from '../../../src/prune/policy.js';

export const NOW = Date.UTC(2026, 10, 21, 12, 0, 0);
export const DAY = 86_400_000;
const ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

/** A valid-looking hash part for `i`. */
export function h(i: number): string {
  return i
    .toString(32)
    .padStart(32, '0')
    .replace(/[0-9a-v]/g, (c) => ALPHABET[parseInt(c, 32)]!);
}

export interface PathSpec {
  id: number;
  ageDays: number;
  refs?: number[];
  narBytes?: number;
  /** The NAR object is absent from the bucket. */
  narMissing?: boolean;
  malformed?: boolean;
  /** Share the NAR key of another path (nix copy names NARs by FileHash). */
  narOf?: number;
}

export function path(s: PathSpec): PrunePath {
  const p: PrunePath = {
    hashPart: h(s.id),
    narinfoKey: `${h(s.id)}.narinfo`,
    narinfoSize: 100,
    narKey: `nar/${h(s.narOf ?? s.id)}.nar.zst`,
    extraObjects: [],
    references: (s.refs ?? []).map(h),
    uploadedAt: NOW - s.ageDays * DAY,
    malformed: s.malformed ?? false,
  };
  if (!s.narMissing) p.narObjectSize = s.narBytes ?? 1000;
  return p;
}

export const SETTINGS: PruneSettingsInput = { retentionDays: 30, targetPercentage: 80, orphanGraceHours: 24 };

/** The input a bucket holding exactly `paths` (plus a 50-byte nix-cache-info) gives. */
export function inputOf(paths: PrunePath[], extra: Partial<PruneInput> = {}): PruneInput {
  const narBytes = new Map<string, number>();
  for (const p of paths)
    if (p.narKey && p.narObjectSize !== undefined) narBytes.set(p.narKey, p.narObjectSize);
  const orphanBytes = (extra.orphanCandidates ?? []).reduce((n, o) => n + o.size, 0);
  const bucketBytes =
    50 +
    paths.reduce((n, p) => n + p.narinfoSize + p.extraObjects.reduce((m, o) => m + o.size, 0), 0) +
    [...narBytes.values()].reduce((n, b) => n + b, 0) +
    orphanBytes;
  return {
    paths,
    orphanCandidates: [],
    pendingUploads: [],
    bucketBytes,
    now: NOW,
    settings: SETTINGS,
    ...extra,
  };
}

/**
 * The text of a minimal narinfo for path `id` (`/nix/store/<h(id)>-p<id>`) referring to `refs`, as
 * the bucket of the prune, sweep and populate tests holds them; `extra` is one more line.
 */
export function narinfoText(
  id: number,
  refs: number[] = [],
  url = `nar/${h(id)}.nar.zst`,
  extra = '',
): string {
  return [
    `StorePath: /nix/store/${h(id)}-p${id}`,
    `URL: ${url}`,
    'Compression: zstd',
    `NarHash: sha256:${'1'.repeat(52)}`,
    'NarSize: 100',
    `References: ${refs.map((r) => `${h(r)}-p${r}`).join(' ')}`,
    extra,
  ].join('\n');
}
