# The environment the package's `bin/loft` wrapper gives Node, unless the environment sets these
# already (makeWrapper's --set-default): the list every launcher of loft carries, and why, is in
# src/cli/launch-env.ts; test/integration/launch-env.test.ts checks that this file matches it.
{
  MALLOC_ARENA_MAX = "2";
  MALLOC_MMAP_THRESHOLD_ = "1048576";
}
