// Gives the C heap's free pages back to the system: glibc's malloc_trim, for a daemon gone idle.
//
// Why: everything Node, SQLite, zstd and OpenSSL allocate outside V8's heap comes from glibc's
// malloc, and glibc returns freed memory to the system only from the top of an arena. After a
// store scan's uploads the freed chunks lie scattered between live ones: measured here, an idle
// daemon kept about 170 MB of such pages resident after uploading 100,000 paths. malloc_trim(3)
// walks every arena's free chunks and releases their whole pages (madvise MADV_DONTNEED).
//
// How, without a native addon of our own: SQLite's extension loader (better-sqlite3's
// `loadExtension`, the C API only) dlopens a library and calls the named entry point with
// (sqlite3 *db, char **errmsg, api routines). Named `malloc_trim` in the already loaded libc.so.6,
// that call is malloc_trim(pad) with `pad` = the connection's address, in the first argument
// register (x86-64 and AArch64 alike; the other two are ignored). The page release over the free
// chunks does not depend on `pad`; only trimming the top of the main arena does, and a pad that
// large (an address) leaves the top alone, which glibc's free() trims by itself anyway. glibc's
// malloc_trim returns 1 when it released memory: SQLite reads a non-zero entry point result as a
// failed initialisation and says so, which here means success.
//
// Anything else (musl, macOS, an SQLite built without extension loading) fails to load: the trim
// is then off for the life of the process, and nothing else changes.
import Database from 'better-sqlite3';

/** glibc's C library, found by its soname among the libraries the process has already loaded. */
const LIBC = 'libc.so.6';

export type TrimOutcome = 'released' | 'nothing-to-release' | 'unavailable';

/**
 * A trim of the C heap through `library`'s malloc_trim (tests name a library without one). After
 * the first failure to load it the trimmer stays off: each try would only fail the same way.
 */
export function nativeHeapTrimmer(library = LIBC): () => TrimOutcome {
  let available = process.platform === 'linux';
  return () => {
    if (!available) return 'unavailable';
    const db = new Database(':memory:');
    try {
      // better-sqlite3 takes the entry point as a second argument; its typings leave it out.
      const withEntry = db as unknown as { loadExtension(file: string, entry: string): unknown };
      withEntry.loadExtension(library, 'malloc_trim');
      return 'nothing-to-release';
    } catch (err) {
      // SQLite's words for an entry point that returned non-zero: here, malloc_trim's 1.
      if (err instanceof Error && err.message.startsWith('error during initialization')) return 'released';
      available = false;
      return 'unavailable';
    } finally {
      db.close();
    }
  };
}

/** The process's trimmer: malloc_trim of glibc, cheap (a few ms: it walks the free lists). */
export const trimNativeHeap = nativeHeapTrimmer();
