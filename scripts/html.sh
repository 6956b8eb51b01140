#!/usr/bin/env bash
# `make html`: executes the answer notebooks headless and writes them, with their outputs, to
# build/executed/*.ipynb and build/html/*.html.
#
# Without CIFAR-10 (it is fetched with `make fetch-cifar`),
# notebook 3 runs on small test batches that convlab writes in the official format; the
# notebook then says so in a NOTE, and its accuracy means nothing. Without the VGG-16
# weights, notebook 2 skips the cells that need them and says how to fetch them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=env.sh
. scripts/env.sh
# shellcheck source=steps.sh
. scripts/steps.sh
STEP_HINT="a notebook failed: the cell and its message are above"
cifar="${CONVLAB_CIFAR_DIR:-$PWD/data/cifar-10-batches-bin}"
if [ ! -f "$cifar/test_batch.bin" ]; then
    cifar="$PWD/build/test-cifar/cifar-10-batches-bin"
    echo "html: no CIFAR-10 found; notebook 3 runs on test batches written to $cifar"
    cargo run --quiet -p convlab --bin convlab -- make-test-cifar "$cifar" --per-batch 200
    export CONVLAB_CIFAR_DIR="$cifar"
fi
python tools/nbrun.py notebooks/*.ipynb --out build/executed --html build/html "$@"
