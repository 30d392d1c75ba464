// How many threads a setting may ask for, in one place: upload_threads (config), the compression
// threads of xz, and the compute pool (LOFT_COMPUTE_THREADS) all accept a whole number from 1 to
// 256. The upper bound only catches a typo (25600 for 256) before it becomes that many streams.

export const THREAD_COUNT = { min: 1, max: 256 } as const;

/** True for a whole number of threads within THREAD_COUNT. */
export function isThreadCount(n: number): boolean {
  return Number.isInteger(n) && n >= THREAD_COUNT.min && n <= THREAD_COUNT.max;
}
