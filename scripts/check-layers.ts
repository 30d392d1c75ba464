// The layering of src/ as a rule that fails, so docs/architecture.md's picture stays true by
// construction: run by `npm run lint` and by test/unit/layers.test.ts (which also plants an upward
// import to prove the rule can fail). It reads import specifiers with TypeScript's pre-processor
// (static, type-only, re-exports and dynamic import() alike), so no build is needed.
//   node --import tsx scripts/check-layers.ts
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/**
 * Folders of src/ from the bottom up. A file may import from its own folder and from folders of a
 * lower rank; folders of equal rank are peers that never import each other (the store, the state
 * database and the object store know nothing of one another). Files directly in src/ (errors,
 * logger) are rank 0.
 */
export const LAYERS: ReadonlyArray<{ folder: string; rank: number }> = [
  { folder: 'format', rank: 1 },
  { folder: 'store', rank: 2 },
  { folder: 'state', rank: 2 },
  { folder: 'storage', rank: 2 },
  { folder: 'upload', rank: 3 },
  { folder: 'prune', rank: 4 },
  { folder: 'verify', rank: 5 },
  { folder: 'daemon', rank: 5 },
  { folder: 'config', rank: 6 },
  { folder: 'cli', rank: 7 },
];

/** Packages and built-ins only some places may import: the reason is the message. */
const GUARDED: ReadonlyArray<{ module: RegExp; allowed: RegExp; why: string }> = [
  {
    module: /^@aws-sdk\//,
    allowed: /^storage\/s3[^/]*\.ts$/,
    why: 'only storage/s3*.ts speaks to the AWS SDK',
  },
  {
    module: /^node:child_process$/,
    allowed: /^(store\/[^/]+|cli\/exec-child)\.ts$/,
    why: 'only store/ runs nix (and cli/exec-child.ts the --watch-exec command)',
  },
  {
    module: /^node:(fs|fs\/promises|child_process|net|http|https|os)$/,
    allowed: /^(?!format\/)/,
    why: 'format/ is pure: no files, processes or network',
  },
];

/** Source file (relative to src/, with .ts) -> the specifiers it imports. */
export type ImportGraph = Map<string, string[]>;

export function readImportGraph(srcDir: string): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of listTs(srcDir)) {
    const text = readFileSync(join(srcDir, file), 'utf8');
    const specs = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
    graph.set(file, specs);
  }
  return graph;
}

function listTs(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = join(dir, e.name);
    if (e.isDirectory()) return listTs(full, base);
    return e.name.endsWith('.ts') ? [relative(base, full)] : [];
  });
}

/** One line per broken rule; empty when the tree follows the layers. */
export function layerViolations(graph: ImportGraph): string[] {
  const problems: string[] = [];
  const edges = new Map<string, string[]>();
  for (const [file, specs] of graph) {
    const local: string[] = [];
    for (const spec of specs) {
      if (spec.startsWith('.')) {
        const target = relative('/src', resolve('/src', dirname(file), spec)).replace(/\.js$/, '.ts');
        local.push(target);
        const why = upwardImport(file, target);
        if (why) problems.push(`${file} imports ${target}: ${why}`);
      } else {
        for (const g of GUARDED) {
          if (g.module.test(spec) && !g.allowed.test(file))
            problems.push(`${file} imports ${spec}: ${g.why}`);
        }
      }
    }
    edges.set(file, local);
  }
  for (const cycle of importCycles(edges)) problems.push(`import cycle among ${cycle.join(', ')}`);
  return problems;
}

function layerOf(file: string): { folder: string; rank: number } {
  const folder = file.includes('/') ? file.slice(0, file.indexOf('/')) : '';
  if (folder === '') return { folder, rank: 0 };
  const layer = LAYERS.find((l) => l.folder === folder);
  if (!layer) throw new Error(`src/${folder}/ is not in the layer table of scripts/check-layers.ts`);
  return layer;
}

function upwardImport(file: string, target: string): string | undefined {
  const from = layerOf(file);
  const to = layerOf(target);
  if (from.folder === to.folder || to.rank < from.rank) return undefined;
  if (to.rank === from.rank)
    return `${from.folder}/ and ${to.folder}/ are peers and must not import each other`;
  return `${from.folder}/ sits below ${to.folder}/ (imports point downward only)`;
}

/** Cycles among files (type imports count: they couple the files all the same), by Tarjan's SCC. */
function importCycles(edges: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!edges.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1) cycles.push(scc.sort());
  };
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const problems = layerViolations(readImportGraph(join(import.meta.dirname, '..', 'src')));
  for (const p of problems) console.error(`layers: ${p}`);
  process.exitCode = problems.length > 0 ? 1 : 0;
}
