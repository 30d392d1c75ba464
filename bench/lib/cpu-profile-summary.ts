// Where a process spent its samples, from the .cpuprofile files Node's `--cpu-prof` writes: self
// time per function (name, file, line), heaviest first. For a server the bench ran under
// `--cpu-prof` (pipeline.bench.ts --server-cpu-prof DIR):
//   node bench/lib/cpu-profile-summary.ts DIR_OR_FILE [TOP]
// The samples are wall-clock ticks of the main thread: on a loaded machine a tick taken while the
// thread waited for a core counts for whatever runs next, so compare runs under the same load.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  what: string;
  ms: number;
}

/** Self time per function of one profile, heaviest first, and the total of all samples. */
export function selfTimes(profile: Profile): { total: number; rows: SelfTime[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const ms = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)?.callFrame;
    const delta = (profile.timeDeltas[i] ?? 0) / 1000;
    total += delta;
    if (frame === undefined) return;
    const file = frame.url === '' ? '' : ` ${basename(frame.url)}:${frame.lineNumber + 1}`;
    const what = `${frame.functionName || '(anonymous)'}${file}`;
    ms.set(what, (ms.get(what) ?? 0) + delta);
  });
  const rows = [...ms].map(([what, t]) => ({ what, ms: t })).sort((a, b) => b.ms - a.ms);
  return { total, rows };
}

function profileFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((n) => n.endsWith('.cpuprofile'))
    .map((n) => join(path, n));
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  const [path, top] = process.argv.slice(2);
  if (path === undefined) {
    console.error('usage: node bench/lib/cpu-profile-summary.ts DIR_OR_FILE [TOP]');
    process.exit(2);
  }
  for (const file of profileFiles(path)) {
    const { total, rows } = selfTimes(JSON.parse(readFileSync(file, 'utf8')) as Profile);
    console.log(`${file}: ${(total / 1000).toFixed(2)} s of samples`);
    for (const r of rows.slice(0, Number(top ?? 25)))
      console.log(
        `${r.ms.toFixed(0).padStart(8)} ms  ${((r.ms / total) * 100).toFixed(1).padStart(5)} %  ${r.what}`,
      );
  }
}
