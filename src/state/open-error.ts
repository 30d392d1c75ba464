// Why the local database could not be opened, as one ConfigError line that says what to do.
import { ConfigError } from '../errors.js';

/** SQLite result codes that mean the file is not a usable SQLite database at all. */
const NOT_A_DATABASE = new Set(['SQLITE_NOTADB', 'SQLITE_CORRUPT']);

export function openError(path: string, err: unknown): Error {
  if (err instanceof ConfigError) return err;
  const reason = err instanceof Error ? err.message.replace(/\s*\n\s*/g, ' ') : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && NOT_A_DATABASE.has(code)) {
    return new ConfigError(
      `${path} is not a loft cache database: ${reason}; delete it or set loft.local_cache_path`,
      { cause: err },
    );
  }
  if (code === 'SQLITE_BUSY') {
    return new ConfigError(
      `the loft cache database ${path} stayed locked by another process: ${reason}; stop the other loft or set loft.local_cache_path`,
      { cause: err },
    );
  }
  return new ConfigError(
    `cannot open the loft cache database ${path}: ${reason}; check its directory's permissions or set loft.local_cache_path`,
    { cause: err },
  );
}
