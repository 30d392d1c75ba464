// Types of skip-policy.mjs for the TypeScript that imports it (test/helpers/skip.ts and its tests).
export type Need =
  | 'in-process-s3'
  | 'external-s3'
  | 'nix'
  | 'root'
  | 'nginx'
  | 'moto'
  | 'python3'
  | 'zstd'
  | 'xz'
  | 'openssl'
  | 'built-cli'
  | 'readable-checkout'
  | 'test-runner'
  | 'old-node';
export interface Skip {
  file: string;
  name: string;
  reason: string | boolean | undefined;
}
export const NEEDS: readonly Need[];
export const CI_MAY_SKIP: readonly Need[];
export function skipReason(need: Need, why: string): string;
export function needOf(reason: unknown): Need | undefined;
export function isCI(env: NodeJS.ProcessEnv): boolean;
export function judgeSkips(
  skips: Skip[],
  ci: boolean,
): { lines: string[]; failures: (Skip & { need: Need | undefined })[] };
