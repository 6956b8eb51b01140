#!/usr/bin/env bash
# Builds the course's evcxr_jupyter: the pinned release with the five changes of
# scripts/evcxr-let-only.patch, scripts/evcxr-library-roots.patch, scripts/evcxr-dep-env.patch,
# scripts/evcxr-output-order.patch and scripts/evcxr-error-reply.patch, installed into
# $CONVLAB_EVCXR_ROOT/bin (setup.sh runs this).
#   scripts/build-evcxr.sh VERSION             fetch, change, build and install
#   scripts/build-evcxr.sh VERSION --prepare   fetch and change the sources only (the tests)
#
# The change: before compiling a cell, evcxr asks its rust-analyzer for the types of the
# cell's new variables, and the first question in a kernel loads the standard library and
# every dependency (seconds). evcxr asks for every cell, also for one that declares no
# variable, such as the "42" it compiles while it starts; a notebook's `:dep` then makes
# rust-analyzer load everything again. With the change evcxr asks only about a cell that
# holds a `let` (the only statement whose variables it stores): rust-analyzer loads once,
# after the `:dep`, and cells without a `let` skip the question. The README's
# Responsiveness section has the figures.
#
# The second change (evcxr): evcxr handed its rust-analyzer every file, the standard library's
# and the dependencies' included, as one local source root, which rust-analyzer treats as code
# being edited: after each cell it verified again everything it had worked out about them.
# Now each package is a root of its own, and all but the cell's own folder are libraries,
# which rust-analyzer holds at a high durability and does not check again when a cell changes.
#
# The third change (evcxr_jupyter): a cell's printed lines go out on their own thread, and
# evcxr_jupyter waited only until that thread had taken the last one off its channel (plus
# 1 ms) before it replied. On a busy machine the last line could then be sent after the reply
# and the "idle" that end the cell: it showed under the next cell, or nowhere, and the
# grader, which looks for a test cell's last line in that cell's output, failed a test that
# had passed (once in about 700 test cells, grading 102 submissions on 2 cores). Now the
# thread holds a lock from taking a line until it is sent, and the reply waits for the lock.
#
# The fourth change (evcxr): `${NAME}` in a `:dep` path is the environment variable NAME. The
# notebooks load the crate with `path = "${CONVLAB_CRATE}"`, which scripts/rust-kernel sets,
# so they work in any folder (nbgrader keeps them in source/ps1/, autograded/STUDENT/ps1/).
#
# The fifth change (evcxr_jupyter): a cell's error reply carries `ename`, `evalue` and
# `traceback`, as the Jupyter protocol asks; nbgrader reads them from every error reply and
# dropped a whole submission with a compile error without them (its issue #1806).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"
version="${1:?usage: build-evcxr.sh VERSION [--prepare]}"
patch="$here/evcxr-let-only.patch"
roots_patch="$here/evcxr-library-roots.patch"
order_patch="$here/evcxr-output-order.patch"
dep_env_patch="$here/evcxr-dep-env.patch"
reply_patch="$here/evcxr-error-reply.patch"
work="$CONVLAB_CACHE/evcxr-src"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"

# 1. The released sources of evcxr_jupyter and evcxr, through cargo and the crate registry.
rm -rf "$work/fetch" "$work/evcxr_jupyter-$version" "$work/evcxr-$version"
mkdir -p "$work/fetch/src"
printf '[package]\nname = "fetch-evcxr"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\nevcxr_jupyter = "=%s"\nevcxr = "=%s"\n' \
  "$version" "$version" >"$work/fetch/Cargo.toml"
: >"$work/fetch/src/lib.rs"
cargo fetch --quiet --manifest-path "$work/fetch/Cargo.toml"
for crate in evcxr_jupyter evcxr; do
  archive="$(compgen -G "$cargo_home/registry/cache/*/$crate-$version.crate" | head -n 1)" || {
    echo "build-evcxr: cargo fetched no $crate-$version.crate into $cargo_home/registry/cache" >&2
    exit 1
  }
  tar -xzf "$archive" -C "$work"
done
jupyter="$work/evcxr_jupyter-$version"

# 2. The changes; evcxr_jupyter then builds against the changed evcxr with its own Cargo.lock
#    (every other crate at the version the release pins).
# (git apply works outside a repository; the ceiling keeps it from finding one above $work.)
(cd "$work/evcxr-$version" && GIT_CEILING_DIRECTORIES="$work" git apply "$patch" "$roots_patch" "$dep_env_patch")
(cd "$jupyter" && GIT_CEILING_DIRECTORIES="$work" git apply "$order_patch" "$reply_patch")
printf '\n[patch.crates-io]\nevcxr = { path = "../evcxr-%s" }\n' "$version" >>"$jupyter/Cargo.toml"
"${PYTHON:-python3}" - "$jupyter/Cargo.lock" <<'PY'
import re, sys
# A path dependency has no source and no checksum in Cargo.lock.
path = sys.argv[1]
text = open(path).read()
entry = re.compile(r'(\[\[package\]\]\nname = "evcxr"\nversion = "[^"]+"\n)source = "[^"]*"\nchecksum = "[^"]*"\n')
text, n = entry.subn(r"\1", text)
if n != 1:
    sys.exit(f"build-evcxr: no entry for evcxr in {path}")
open(path, "w").write(text)
PY
if [ "${2:-}" = --prepare ]; then
  echo "$jupyter"
  exit 0
fi

# 3. Built in a folder of its own (kept: a new change then recompiles two crates, not 400).
CARGO_TARGET_DIR="$work/target" cargo install --locked --force --path "$jupyter" \
  --root "$CONVLAB_EVCXR_ROOT"
