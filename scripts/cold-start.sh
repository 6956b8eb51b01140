#!/usr/bin/env bash
# A newcomer's first hour, replayed: clones this repository into a temporary folder and runs
# the README's two commands there with an empty CONVLAB_CACHE, so nothing this machine
# installed before can hide a missing step. Only download caches are reused (cargo's
# registry, pip's cache). Prints the minutes of each setup step and of each command.
#   scripts/cold-start.sh [--keep]     (--keep leaves the clone and its cache for a look)
# Run it whenever scripts/, the Makefile, requirements.txt, environment.yml or the crate's
# dependencies change, and put its summary in the README ("Setup time").
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=steps.sh
. "$here/steps.sh"
keep=false
[ "${1:-}" = "--keep" ] && keep=true

work="$(mktemp -d "${TMPDIR:-/tmp}/convlab-cold.XXXXXX")"
$keep || trap 'rm -rf "$work"' EXIT
log "cold start in $work (clone of $(git -C "$here/.." rev-parse --short HEAD))"
git clone --quiet "$here/.." "$work/clone"
cd "$work/clone"
# A shell that never sourced scripts/env.sh, and an empty course cache.
unset CARGO_TARGET_DIR EVCXR_TMPDIR VIRTUAL_ENV
for var in $(compgen -e); do
  case "$var" in
    CONVLAB_DATA_MIRROR) ;;
    CONVLAB_*) unset "$var" ;;
  esac
done
export CONVLAB_CACHE="$work/cache"

port=$((20000 + RANDOM % 20000))
step "make lab (setup, then JupyterLab answering on port $port)" \
  "the output above (in $work/lab.log) names the failing step"
setsid make lab JUPYTER_ARGS="--no-browser --port=$port --ServerApp.token=cold-start" >"$work/lab.log" 2>&1 &
lab=$!
until curl -fs "http://127.0.0.1:$port/api/kernelspecs?token=cold-start" >"$work/kernelspecs.json" 2>/dev/null; do
  kill -0 "$lab" 2>/dev/null || { cat "$work/lab.log"; die "make lab stopped before JupyterLab answered"; }
  sleep 5
done
grep -q '"rust"' "$work/kernelspecs.json" || die "JupyterLab runs but lists no kernel 'rust'"
kill -TERM -- "-$lab" 2>/dev/null || true # make, its shell and JupyterLab
wait "$lab" 2>/dev/null || true
sed 's/\x1b\[[0-9;]*m//g' "$work/lab.log" | grep -E '^\[setup\].*(done in|ready)'

step "make test" "the output above (in $work/test.log) names the failing test"
make test >"$work/test.log" 2>&1 || { tail -n 60 "$work/test.log"; die "make test failed (full log: $work/test.log)"; }
sed 's/\x1b\[[0-9;]*m//g' "$work/test.log" | grep -E '^\[(setup|test)\].*done in|^=+ .*(passed|failed)' | tail -n 12
finish
log "cold start passed on $(date -u +%Y-%m-%d) ($(nproc) cores)"
