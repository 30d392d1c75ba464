#!/usr/bin/env bash
# The loft action's post step: wait until the daemon has uploaded everything the job built, stop
# it, and report. Reads STATE_pid, STATE_dir, STATE_loft (written by start.sh through GITHUB_STATE)
# and INPUT_WAIT_TIMEOUT, INPUT_FAIL_ON_UPLOAD_ERROR.
set -euo pipefail

pid=${STATE_pid:-}
dir=${STATE_dir:-}
loft=${STATE_loft:-}
if [ -z "$pid" ] || [ -z "$dir" ] || [ -z "$loft" ]; then
  echo "loft: the main step started no daemon; nothing to upload"
  exit 0
fi
config="$dir/loft.toml"

# The daemon's store watcher hands a new path to its queue at most 2 s after Nix registered it
# (src/store/store-watcher.ts, maxDelayMs): a build that ended just now may not be queued yet.
sleep 3

rc=0
"$loft" -c "$config" --wait --timeout "${INPUT_WAIT_TIMEOUT:-600}" || rc=$?

kill -TERM "$pid" 2>/dev/null || true
# The daemon gives uploads in flight 30 s, then exits (45 s at most, see daemon-command.ts).
for _ in $(seq 1 500); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
  echo "::warning::loft: the daemon did not stop within 50 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
fi

echo "::group::loft daemon log"
cat "$dir/daemon.log" || true
echo "::endgroup::"
status=$("$loft" -c "$config" --status || true)
echo "$status"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  printf '### loft\n\n```\n%s\n```\n' "$status" >>"$GITHUB_STEP_SUMMARY"
fi

if [ "$rc" -ne 0 ]; then
  echo "::error::loft: not every path built in this job reached the cache (loft --wait exited $rc; 1: parked after failures, 124: timed out)"
  [ "${INPUT_FAIL_ON_UPLOAD_ERROR:-true}" = "true" ] || rc=0
fi
exit "$rc"
