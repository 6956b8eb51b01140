#!/usr/bin/env bash
# Runs every test: installs what is missing (scripts/setup.sh), then the crate's tests
# (unit, integration, doc) and the Python-side tests (notebooks executed headless, student
# notebooks, grading, environment pins).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
. scripts/env.sh
echo "== cargo test"
cargo test --workspace
echo "== cargo test, convlab without libtorch (as notebook 1 loads it)"
cargo test -p convlab --no-default-features
echo "== pytest"
python -m pytest -p no:cacheprovider tests "$@"
