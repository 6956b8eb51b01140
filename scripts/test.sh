#!/usr/bin/env bash
# Runs every test: installs what is missing (scripts/setup.sh), then shellcheck on the
# scripts, the crate's tests (unit, integration, doc) and the Python-side tests (notebooks
# executed headless and in a real browser, student notebooks, grading, setup and kernels).
#   scripts/test.sh [PYTEST ARGS...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/setup.sh"
# shellcheck source=env.sh
. "$here/env.sh"
# shellcheck source=steps.sh
. "$here/steps.sh"
cd "$CONVLAB_ROOT"

step "checking the test tools" "install what the message above names"
need_packages "shellcheck (checks the scripts) and chromium (the browser test) are missing" \
  "command -v shellcheck && command -v chromium" shellcheck chromium

step "shellcheck" "fix the scripts at the lines shellcheck names"
shellcheck scripts/*.sh scripts/rust-kernel scripts/convlab .ci/run image/start image/with-certs

step "cargo test" "a test failed: its name and message are above"
cargo test --workspace --features convlab/bench

step "cargo test, convlab without libtorch (as notebook 1 loads it)" "a test failed: its name and message are above"
cargo test -p convlab --no-default-features --features bench

step "pytest" "a test failed: pytest's summary above names it"
python -m pytest -p no:cacheprovider tests "$@"
finish
