#!/usr/bin/env bash
# `make test`: installs what is missing (scripts/setup.sh), runs the helper crate's unit tests
# (is the installation sound?), then runs your notebooks top to bottom, as saved, and lists each
# test cell ✓ or ✗ with what went wrong (tools/check.py).
#   scripts/test.sh [NOTEBOOK...]    e.g. scripts/test.sh 01   (default: every notebook)
# It fails only when the crate's tests fail or a notebook could not run to its end; tests of
# exercises you have not answered yet are listed ✗ and are expected.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/setup.sh"
# shellcheck source=env.sh
. "$here/env.sh"
# shellcheck source=steps.sh
. "$here/steps.sh"
cd "$CONVLAB_ROOT"

# The crate's unit tests: quick, and enough to show the installation works (its integration
# tests train networks and compare with PyTorch: minutes, for the course's developers).
step "the helper crate's unit tests (the first time compiles them: minutes)" \
  "a test of the course's crate failed: its name and message are above; run 'make setup' and try again, then ask your instructor"
cargo test --quiet -p convlab --lib

step "your notebooks, top to bottom" "a notebook could not run to its end: the cell and its message are above"
# Without CIFAR-10 (make fetch-cifar), notebook 3 runs on small test batches in the official
# format; the notebook then says so, and its accuracy means nothing.
if [ -z "${CONVLAB_CIFAR_DIR:-}" ] && [ ! -f data/cifar-10-batches-bin/test_batch.bin ]; then
  cifar="$PWD/build/test-cifar/cifar-10-batches-bin"
  if [ ! -f "$cifar/test_batch.bin" ]; then
    cargo run --quiet -p convlab --bin convlab -- make-test-cifar "$cifar" --per-batch 200
  fi
  export CONVLAB_CIFAR_DIR="$cifar"
fi
python tools/check.py "$@"
finish
