// Typed reads from one parsed TOML table. Every problem becomes a message that names the full dotted
// key and what was expected, so a person can fix the file without reading loft's source. The reader
// remembers which keys were read: whatever is left over is an unknown key (usually a typo), which the
// schema reports as an error with the closest known key as a suggestion.

export type TomlTable = Record<string, unknown>;

export function isTable(value: unknown): value is TomlTable {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** `name` as it would appear in a TOML dotted key: bare when allowed, quoted otherwise. */
export function quoteKey(name: string): string {
  return /^[A-Za-z0-9_-]+$/.test(name) ? name : JSON.stringify(name);
}

export function joinKey(prefix: string, name: string): string {
  return prefix === '' ? quoteKey(name) : `${prefix}.${quoteKey(name)}`;
}

/** A short rendering of a wrong value for an error message. Callers skip it for secret keys. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  if (isTable(value)) return 'a table';
  return typeof value;
}

export interface StringOptions {
  /** The value is a secret: error messages never show it. */
  secret?: boolean;
  /** Reject "" (and whitespace only). */
  nonEmpty?: boolean;
}

export class TableReader {
  private readonly seen = new Set<string>();

  constructor(
    private readonly values: TomlTable,
    /** Dotted key of this table ('' for the document root). */
    readonly prefix: string,
    /** The keys this table may hold; used for unknown-key warnings and suggestions. */
    readonly known: readonly string[],
    /** Shared list of error messages, filled by every reader of one document. */
    readonly errors: string[],
  ) {}

  key(name: string): string {
    return joinKey(this.prefix, name);
  }

  has(name: string): boolean {
    return Object.hasOwn(this.values, name);
  }

  /** The raw value (undefined when absent), marking the key as known. */
  raw(name: string): unknown {
    this.seen.add(name);
    return this.has(name) ? this.values[name] : undefined;
  }

  fail(name: string, expected: string, value?: unknown): undefined {
    const got = value === undefined ? '' : `, got ${describeValue(value)}`;
    this.errors.push(`${this.key(name)}: expected ${expected}${got}`);
    return undefined;
  }

  string(name: string, options: StringOptions = {}): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    const expected = options.nonEmpty ? 'a non-empty string' : 'a string';
    const shown = options.secret ? undefined : value;
    if (typeof value !== 'string') return this.fail(name, expected, shown);
    if (options.nonEmpty && value.trim() === '') return this.fail(name, expected, shown);
    return value;
  }

  bool(name: string): boolean | undefined {
    const value = this.raw(name);
    if (value === undefined || typeof value === 'boolean') return value;
    return this.fail(name, 'true or false', value);
  }

  /** An integer in [min, max]. TOML floats with an integral value (12.0) are accepted. */
  int(name: string, min: number, max: number): number | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
    return this.fail(name, `an integer from ${min} to ${max}`, value);
  }

  /** A number in (0, max] (fractions allowed). */
  positiveNumber(name: string, max: number): number | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    if (typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= max) return value;
    return this.fail(name, `a number greater than 0 and at most ${max}`, value);
  }

  oneOf<T extends string>(name: string, choices: readonly T[]): T | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    if (typeof value === 'string' && (choices as readonly string[]).includes(value)) return value as T;
    return this.fail(name, `one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`, value);
  }

  stringArray(name: string): string[] | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    const ok = Array.isArray(value) && value.every((v) => typeof v === 'string' && v.trim() !== '');
    if (ok) return value as string[];
    return this.fail(name, 'an array of non-empty strings', value);
  }

  /** A sub-table, or undefined when absent or not a table (the latter is an error). */
  table(name: string, known: readonly string[]): TableReader | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    if (!isTable(value)) return this.fail(name, 'a table', value);
    return new TableReader(value, this.key(name), known, this.errors);
  }

  /** Every entry of a sub-table whose keys are free-form (header names), values unchecked. */
  entries(): Array<[string, unknown]> {
    return Object.entries(this.values);
  }

  /** Dotted keys present in the table but never read, each with a "did you mean" when one is close. */
  unknownKeys(): string[] {
    const out: string[] = [];
    for (const name of Object.keys(this.values)) {
      if (this.seen.has(name)) continue;
      const hint = closest(name, this.known);
      out.push(hint === undefined ? this.key(name) : `${this.key(name)} (did you mean ${this.key(hint)}?)`);
    }
    return out;
  }
}

/** The known key within edit distance 2 (case-insensitive), if any. */
function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(name.toLowerCase(), candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
