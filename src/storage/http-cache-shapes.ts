// What HTTP caches do differently from a bucket, in pure functions the HTTP store applies.
//  - nix-stored answers `GET /nix-cache-info` with JSON ({"Priority":30,"StoreDir":"/nix/store",
//    "WantMassQuery":1}) instead of Nix's `Key: value` lines. Nix itself reads that body line by
//    line, skips what it does not know, and so ends up with its defaults; loft hands the values on
//    in Nix's own form, so the rest of loft sees one format.
//  - Some servers take only what Nix needs to substitute (narinfos and NARs): nix-stored has no PUT
//    for nix-cache-info, build logs (`log/`), file listings (`.ls`) or realisations. Those objects
//    are extras a cache can live without, so a refusal of one is a warning, not a failure.

/** The body Nix's line form says the same as a JSON nix-cache-info; other bodies unchanged. */
export function cacheInfoAsLines(body: Buffer): Buffer {
  const text = body.toString('utf8').trim();
  if (!text.startsWith('{')) return body;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return body;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return body;
  const lines: string[] = [];
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(name)) continue;
    if (typeof v === 'string' && !/[\r\n]/.test(v)) lines.push(`${name}: ${v}`);
    else if (typeof v === 'number' && Number.isSafeInteger(v)) lines.push(`${name}: ${v}`);
    else if (typeof v === 'boolean') lines.push(`${name}: ${v ? 1 : 0}`);
  }
  return Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8');
}

/** What an optional object is, for the warning when a server refuses it; undefined: required. */
export function optionalObjectKind(key: string): string | undefined {
  if (key === 'nix-cache-info') return 'nix-cache-info';
  if (key.startsWith('log/')) return 'build logs';
  if (/^[^/]+\.ls$/.test(key)) return 'file listings (.ls)';
  if (key.startsWith('realisations/') || key.startsWith('build-trace-v2/')) return 'realisations';
  return undefined;
}

/** Answers to a PUT that mean "no such upload here" rather than "not allowed" or "broken". */
export function refusesThisKindOfUpload(status: number): boolean {
  return status === 404 || status === 405 || status === 501;
}
