// Every valid path in the local store, for --force-scan and the initial scan.
import { runNix } from './nix-cli.js';

export async function listValidStorePaths(storeDir: string): Promise<string[]> {
  const { stdout } = await runNix(['path-info', '--all']);
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith(storeDir + '/'));
}
