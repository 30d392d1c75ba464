// The environment loft's launchers give Node when it starts: the one list, for every launcher.
//
// glibc's allocator reads its settings from the environment once, when the process starts, so they
// cannot be set from inside loft; re-executing itself to set them costs a whole Node start on every
// run, which the start-bound runs (a cached re-run, a re-push) cannot afford. So the launchers a
// user runs set them, before Node starts:
//   - the npm bin (package.json "bin" -> dist/cli/main.js): the shebang of src/cli/main.ts,
//     `#!/usr/bin/env -S NAME=value ... node` (GNU coreutils' env since 8.30, the BSDs' and macOS'
//     env document -S as well);
//   - bin/loft, the launcher of a checkout: `${NAME=value}` before its exec;
//   - the Nix package's `bin/loft` wrapper: nix/launch-env.nix, as makeWrapper's --set-default
//     (nix/package.nix); the NixOS, nix-darwin and home-manager services run that wrapper.
// bin/loft and the Nix wrapper keep a value the environment sets already; the shebang cannot (env
// sets what it is given), so running `node dist/cli/main.js` directly is the way to choose other
// values there. test/integration/launch-env.test.ts checks that all of them carry exactly this list.
// A setting every launcher must pass (an allocator setting, a V8 flag through NODE_OPTIONS) goes
// here and in each of the launchers above.
//
// The values (measured in docs/benchmarks.md, "tenth round"):
// - MALLOC_MMAP_THRESHOLD_: a buffer of 1 MiB or more is its own mapping, returned to the system
//   when freed. glibc's default threshold is dynamic: each freed mapped buffer (loft's 1-8 MiB part,
//   frame and output buffers) raises it, after which such buffers come from the heap and their
//   memory stays resident after they are freed. Fixed, it stays at 1 MiB (and the trim threshold at
//   its 128 KiB default): 10-12 MB less peak RSS on the bench closure to S3, CPU unchanged.
// - MALLOC_ARENA_MAX: two arenas instead of up to 8 per core (src/cli/malloc-arenas.ts, which the
//   daemon needs no more when started by a launcher).
// Other allocators (macOS' libmalloc, musl) ignore both.

/** Variables every launcher sets for Node, unless (where it can) the environment has them already. */
export const LAUNCH_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '1048576',
};
