// Runs one of the action's shell scripts with the runner's environment. The runner names inputs
// INPUT_<NAME> with the input's own spelling upper-cased, hyphens included (INPUT_ACCESS-KEY-ID),
// which a shell cannot read; each such variable is also passed with underscores.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export function runScript(name) {
  const env = { ...process.env };
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('INPUT_') && key.includes('-')) env[key.replaceAll('-', '_')] = value;
  }
  const script = fileURLToPath(new URL(name, import.meta.url));
  const result = spawnSync('bash', [script], { env, stdio: 'inherit' });
  if (result.error) {
    process.stdout.write(`::error::loft action: cannot run ${name}: ${result.error.message}\n`);
    process.exitCode = 1;
    return;
  }
  process.exitCode = result.status ?? 1;
}
