// Paths for --upload-path: from arguments, and from stdin for "-" (one per line, or separated by
// spaces as in a post-build hook's $OUT_PATHS).
import type { Readable } from 'node:stream';

export async function collectPaths(args: readonly string[], stdin: Readable): Promise<string[]> {
  const out: string[] = [];
  for (const arg of args) {
    if (arg === '-') out.push(...splitPaths(await readAll(stdin)));
    else out.push(arg);
  }
  // Keep the first occurrence of each, in order.
  return [...new Set(out)];
}

export function splitPaths(text: string): string[] {
  return text.split(/\s+/).filter((p) => p.length > 0);
}

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}
