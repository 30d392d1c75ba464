// The outputs of a derivation that exist as valid store paths. Nix 2.8's post-build hook gets only
// DRV_PATH (OUT_PATHS is empty there; later versions set it), so the hook asks Nix for the outputs
// itself: `nix-store --query --outputs DRV` lists every output the derivation declares, built or
// not, and `nix path-info` (without --recursive) marks the ones that are not valid.
import { queryPathInfos } from './path-info-query.js';
import { runNix } from './nix-cli.js';

export async function validOutputsOf(drvPath: string, storeDir: string): Promise<string[]> {
  const { stdout } = await runNix(['--query', '--outputs'], { program: 'nix-store', operands: [drvPath] });
  const outputs = stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  if (outputs.length === 0) return [];
  const infos = await queryPathInfos(outputs, { recursive: false, storeDir });
  return infos.flatMap((r) => (r.ok ? [r.info.path] : []));
}

/** OUT_PATHS as Nix sets it for a post-build hook: store paths separated by spaces. */
export function outPathsFromEnv(env: NodeJS.ProcessEnv): string[] {
  return (env['OUT_PATHS'] ?? '').split(/\s+/).filter((p) => p !== '');
}
