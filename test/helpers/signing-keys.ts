// Signing keys made by the machine's Nix, written to a temp dir, as users make them. Each secret
// key is registered for the suite-wide check that no log of loft ever shows it (test-secrets.ts).
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nixBin, nixEnv } from './nix-env.js';
import { registerSigningKey } from './test-secrets.js';

export interface KeyFiles {
  name: string;
  secretPath: string;
  publicKey: string;
}

export async function makeNixKey(dir: string, name: string): Promise<KeyFiles> {
  const { stdout: secret } = await nixBin(['nix', 'key', 'generate-secret', '--key-name', name]);
  registerSigningKey(secret);
  const secretPath = join(dir, `${name}.secret`);
  // Like a sops/agenix file: a trailing newline that loft must trim.
  await writeFile(secretPath, secret.trim() + '\n', { mode: 0o600 });
  const publicKey = await withInput(['nix', 'key', 'convert-secret-to-public'], secret.trim());
  return { name, secretPath, publicKey: publicKey.trim() };
}

async function withInput(args: string[], input: string): Promise<string> {
  const [bin, ...rest] = args;
  const child = spawn(bin!, rest, { env: nixEnv() });
  const out: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stdin.end(input);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  if (code !== 0) throw new Error(`${args.join(' ')} exited ${code}`);
  return Buffer.concat(out).toString();
}
