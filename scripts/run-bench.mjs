// Runs the benchmarks in bench/ one after another (or those named as arguments). They are not
// tests: they print their figures as markdown tables for the README.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

// `npm run bench -- wan --rounds 1`: names pick the benches, everything from the first option on
// goes to each of them.
const args = process.argv.slice(2);
const firstOption = args.findIndex((a) => a.startsWith('-'));
const named = firstOption < 0 ? args : args.slice(0, firstOption);
const options = firstOption < 0 ? [] : args.slice(firstOption);
const all = readdirSync('bench')
  .filter((f) => f.endsWith('.bench.ts'))
  .sort();
const chosen = named.length > 0 ? all.filter((f) => named.some((n) => f.includes(n))) : all;
let failed = 0;
for (const file of chosen) {
  console.log(`\n## bench/${file}\n`);
  const r = spawnSync(
    process.execPath,
    ['--openssl-legacy-provider', '--import', 'tsx', `bench/${file}`, ...options],
    {
      stdio: 'inherit',
    },
  );
  if (r.status !== 0) failed++;
}
process.exit(failed > 0 ? 1 : 0);
