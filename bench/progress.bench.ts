// How honest the progress line is on a slow link: the built CLI uploads a CI-shaped closure (404
// paths of bench/fixtures/upload-closure.nix: 400 small paths in 4 layers, one large random path,
// two large text paths, the root) to a fresh in-process s3rver through test/helpers/link-proxy.ts,
// on a pseudo-terminal, and every redraw is held against the share of the run's time that had
// passed (test/helpers/progress-watch.ts). Prints, per CLI build and run, how far the line ran
// ahead of the time passed and how far it lagged, in points, with the lines that did it.
//   node --import tsx bench/progress.bench.ts [--mbit 50] [--rtt-ms 40] [--runs 1]
//     [--main dist/cli/main.js[,OTHER/dist/cli/main.js]]
// `--main` compares builds (e.g. one from an older commit) on the same closure and link.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { randomSalt } from '../test/helpers/fixtures.js';
import { startLinkProxy } from '../test/helpers/link-proxy.js';
import { LOFT_MAIN } from '../test/helpers/loft-cli.js';
import { bucketDirOf, narinfosIn, pointsAhead, watchProgress } from '../test/helpers/progress-watch.js';
import { startS3Server } from '../test/helpers/s3-server.js';
import { makeNixKey } from '../test/helpers/signing-keys.js';
import { writeConfig } from '../test/helpers/upload-env.js';
import { buildBenchClosure, deleteWithDerivers, warmPageCache } from './lib/bench-closure.js';

const { values } = parseArgs({
  options: {
    mbit: { type: 'string', default: '50' },
    'rtt-ms': { type: 'string', default: '40' },
    runs: { type: 'string', default: '1' },
    main: { type: 'string', default: LOFT_MAIN },
  },
});
const MBIT = Number(values.mbit);
const RTT = Number(values['rtt-ms']);
const mains = values.main.split(',').map((m) => resolve(m));

// 4 x 100 small paths + 1 random + 2 text + the root = 404 paths.
const CI_SHAPE = {
  layers: 4,
  perLayer: 100,
  randomFiles: 12,
  textFiles: 12,
  randomBig: 1,
  randomBigMb: 24,
  textBig: 2,
  textBigMb: 32,
};

async function runOnce(main: string, root: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'loft-progress-bench-'));
  const s3 = await startS3Server();
  const link = await startLinkProxy({ target: s3.endpoint, rttMs: RTT, mbitPerSecond: MBIT });
  try {
    const key = await makeNixKey(dir, 'loft-progress-bench');
    const config = await writeConfig({
      dir,
      s3: { ...s3, endpoint: link.endpoint },
      signingKeyPath: key.secretPath,
    });
    const bucketDir = bucketDirOf(s3.dir!, s3.bucket);
    const run = await watchProgress(['-c', config, '--upload-path', root], () => narinfosIn(bucketDir), {
      main,
    });
    if (run.code !== 0 || run.summaryAt === undefined) throw new Error(`the upload failed:\n${run.raw}`);
    const { ahead, behind } = pointsAhead(run);
    const floor = ((link.bytes().up * 8) / (MBIT * 1e6)).toFixed(1);
    const line = (s: typeof ahead.sample) =>
      `\`${s?.text.replace(/ \|.*/, '')}\` at ${((s?.at ?? 0) / 1000).toFixed(1)} s`;
    return `| ${relative(process.cwd(), main)} | ${(run.summaryAt / 1000).toFixed(1)} | ${floor} | ${ahead.points.toFixed(1)} | ${line(ahead.sample)} | ${behind.points.toFixed(1)} | ${line(behind.sample)} |`;
  } finally {
    await link.close();
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const extra = Object.entries(CI_SHAPE).flatMap(([k, v]) => ['--arg', k, String(v)]);
const closure = await buildBenchClosure(randomSalt(), extra);
try {
  await warmPageCache(closure.paths);
  console.log(
    `${closure.paths.length} paths, ${(closure.narTotal / 2 ** 20).toFixed(0)} MiB of NAR, ${MBIT} Mbit/s, ${RTT} ms round trip\n`,
  );
  console.log('| CLI | wall s | link floor s | most ahead (points) | line | most behind | line |');
  console.log('|---|---|---|---|---|---|---|');
  for (let i = 0; i < Number(values.runs); i++) {
    for (const main of mains) console.log(await runOnce(main, closure.root));
  }
} finally {
  await deleteWithDerivers(closure.paths);
}
