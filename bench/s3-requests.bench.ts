// CPU per small S3 request: loft's S3ObjectStore (from a built dist/) sending the requests a push
// sends per store path (PUT of a narinfo, PUT of a small NAR with its sha256, HEAD and GET of a
// present and a missing key) to s3rver in its own process, N of each with C in flight. Each build
// runs in a child process of its own, round after round, interleaved:
//   - this build (small requests direct, src/storage/s3-direct.ts),
//   - this build with `directRequests: false` (every request through the SDK's commands),
//   - with --baseline DIST, a previous build's dist/ (as built; it may not know the option).
//   npm run build && npm run bench -- s3-requests [--count 2000] [--concurrency 8] [--rounds 3]
//     [--baseline OLD/dist] [--cpu-prof DIR]
// Figures: CPU microseconds (user + sys of the whole client process, process.cpuUsage) and wall
// microseconds per request, medians of the rounds; s3rver's CPU is not counted. With --cpu-prof,
// each run's measured phase is profiled (read with bench/lib/cpu-profile-summary.ts).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startS3rverProcess } from './lib/s3rver-process.js';
import { median } from './lib/timed-command.js';

const { values: opt } = parseArgs({
  options: {
    count: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    baseline: { type: 'string' },
    'cpu-prof': { type: 'string' },
    // Internal: run as the measuring child.
    worker: { type: 'string' },
    endpoint: { type: 'string' },
    direct: { type: 'string' },
  },
});

const OPS = ['put narinfo', 'put nar (sha256)', 'head present', 'head missing', 'get present', 'get missing'];

interface OpResult {
  op: string;
  cpuUs: number;
  wallUs: number;
}

/** The measuring child: one build, every op, warm-up first (which also writes the keys read later). */
async function worker(dist: string, endpoint: string, direct: boolean): Promise<void> {
  const { S3ObjectStore } = (await import(resolve(dist, 'storage/s3-object-store.js'))) as {
    S3ObjectStore: new (o: Record<string, unknown>) => {
      checkAccess(): Promise<void>;
      putBytes(k: string, b: Buffer | string, o: Record<string, unknown>): Promise<void>;
      head(k: string): Promise<unknown>;
      get(k: string): Promise<unknown>;
      close(): Promise<void>;
    };
  };
  const store = new S3ObjectStore({
    bucket: 'requests',
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    extraHeaders: {},
    partSizeBytes: 16 * 1024 * 1024,
    directRequests: direct,
  });
  await store.checkAccess();
  const count = Number(opt.count);
  const body = Buffer.alloc(2000, 'n');
  const sha = createHash('sha256').update(body).digest();
  const tag = `${process.pid}-${direct ? 'd' : 's'}`;
  const run: Record<string, (i: number) => Promise<unknown>> = {
    'put narinfo': (i) =>
      store.putBytes(`${tag}/${i}.narinfo`, body.toString(), { contentType: 'text/x-nix-narinfo' }),
    'put nar (sha256)': (i) =>
      store.putBytes(`${tag}/nar/${i}.nar.zst`, body, {
        contentType: 'application/x-nix-nar',
        sha256: () => sha,
      }),
    'head present': (i) => store.head(`${tag}/${i}.narinfo`),
    'head missing': (i) => store.head(`${tag}/${i}.missing`),
    'get present': (i) => store.get(`${tag}/${i}.narinfo`),
    'get missing': (i) => store.get(`${tag}/${i}.missing`),
  };
  const session = opt['cpu-prof'] === undefined ? undefined : new Session();
  session?.connect();
  const results: OpResult[] = [];
  for (const op of OPS) {
    const fn = run[op]!;
    await inFlight(fn, count); // warm-up; the puts also write what the reads read
    if (session) await session.post('Profiler.enable').then(() => session.post('Profiler.start'));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await inFlight(fn, count);
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - t0;
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      const file = `${opt.worker}-${direct ? 'direct' : 'sdk'}-${op.replace(/\W+/g, '-')}-${process.pid}.cpuprofile`;
      writeFileSync(join(opt['cpu-prof']!, file.replace(/[/]/g, '_')), JSON.stringify(profile));
    }
    results.push({ op, cpuUs: (cpu.user + cpu.system) / count, wallUs: (wallMs * 1000) / count });
  }
  await store.close();
  console.log(JSON.stringify(results));
}

async function inFlight(fn: (i: number) => Promise<unknown>, count: number): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Number(opt.concurrency) }, lane));
}

function runWorker(dist: string, endpoint: string, direct: boolean): Promise<OpResult[]> {
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--worker', dist, '--endpoint', endpoint];
  args.push('--direct', String(direct), '--count', opt.count, '--concurrency', opt.concurrency);
  if (opt['cpu-prof'] !== undefined) args.push('--cpu-prof', opt['cpu-prof']);
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`worker for ${dist} exited with ${code}`));
      resolveRun(JSON.parse(out.trim().split('\n').pop()!) as OpResult[]);
    });
  });
}

async function main(): Promise<void> {
  const here = resolve(fileURLToPath(new URL('../dist', import.meta.url)));
  const builds = [
    { name: 'this build, direct', dist: here, direct: true },
    { name: 'this build, through the SDK', dist: here, direct: false },
    ...(opt.baseline ? [{ name: 'baseline', dist: resolve(opt.baseline), direct: false }] : []),
  ];
  const data = mkdtempSync(join(tmpdir(), 'loft-bench-requests-'));
  const server = await startS3rverProcess(data, ['requests']);
  const results = new Map<string, OpResult[][]>(builds.map((b) => [b.name, []]));
  try {
    console.log(
      `${cpus().length} cores, load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    for (let round = 1; round <= Number(opt.rounds); round++) {
      for (const b of builds) results.get(b.name)!.push(await runWorker(b.dist, server.endpoint, b.direct));
    }
  } finally {
    await server.stop();
    rmSync(data, { recursive: true, force: true });
  }
  const names = builds.map((b) => b.name);
  console.log(
    `\n${opt.count} requests per op, ${opt.concurrency} in flight, medians of ${opt.rounds} rounds:`,
  );
  console.log(`| request | ${names.map((n) => `${n}: CPU / wall µs`).join(' | ')} |`);
  console.log(`| --- | ${names.map(() => '---').join(' | ')} |`);
  for (const op of OPS) {
    const cells = names.map((n) => {
      const runs = results.get(n)!.map((r) => r.find((x) => x.op === op)!);
      return `${median(runs.map((r) => r.cpuUs)).toFixed(0)} / ${median(runs.map((r) => r.wallUs)).toFixed(0)}`;
    });
    console.log(`| ${op} | ${cells.join(' | ')} |`);
  }
}

if (opt.worker !== undefined) await worker(opt.worker, opt.endpoint!, opt.direct === 'true');
else await main();
