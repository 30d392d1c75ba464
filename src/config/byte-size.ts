// Sizes written for people, as in `memory_budget = "192MiB"`: a whole or decimal number and a unit.
// Units are binary (KiB, MiB, GiB; K, M, G and KB, MB, GB mean the same here, as in most tools'
// memory settings: systemd's MemoryMax=, Nix's own sizes), case-insensitive, with an optional
// space. A bare number is refused: "192" could mean bytes or MiB, and guessing wrong is a silent
// factor of a million.

const UNITS: Record<string, number> = {
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

export const BYTE_SIZE_SYNTAX = 'a size with a unit, such as "192MiB" or "1GiB"';

/** Bytes (a whole number), or undefined when `text` is not a size with a unit. */
export function parseByteSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$/i.exec(text);
  if (m === null) return undefined;
  const unit = UNITS[m[2]!.toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.floor(Number(m[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}
