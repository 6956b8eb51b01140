# Environment of the course, sourced by the other scripts:  . scripts/env.sh
# shellcheck shell=bash
# Everything installed lives outside the repository, in $CONVLAB_CACHE (default
# ~/.cache/convlab), so that clones share it and a second setup takes seconds.
CONVLAB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CONVLAB_ROOT
export CONVLAB_CACHE="${CONVLAB_CACHE:-$HOME/.cache/convlab}"
export CONVLAB_VENV="$CONVLAB_CACHE/venv"
export CONVLAB_EVCXR_ROOT="${CONVLAB_EVCXR_ROOT:-$CONVLAB_CACHE/evcxr}"
# evcxr's build folders. The setup prewarms the seed (`:dep convlab` compiled once, tch
# included); each running kernel leases a copy of it from the pool (scripts/rust-kernel), since
# two kernels must never share a build folder. A caller may still set EVCXR_TMPDIR itself.
# CONVLAB_EVCXR_POOL may name another place: the course image keeps its caches read-only and
# its kernels' build folders in /tmp (Containerfile).
# The notebooks load the course crate with `:dep convlab = { path = "${CONVLAB_CRATE}" }`
# (evcxr reads the variable: scripts/build-evcxr.sh), so they work in any folder.
export CONVLAB_CRATE="$CONVLAB_ROOT/crates/convlab"
export CONVLAB_EVCXR_SEED="$CONVLAB_CACHE/evcxr-seed"
export CONVLAB_EVCXR_POOL="${CONVLAB_EVCXR_POOL:-$CONVLAB_CACHE/evcxr-pool}"
# Compiled dependencies (tch takes minutes), one folder per clone: cargo identifies the
# workspace's own crate by its path inside the clone, so in a folder shared by two clones one
# clone's build would pass for the other's (and carry the other clone's data/ path).
CONVLAB_CLONE_ID="$(printf '%s' "$CONVLAB_ROOT" | sha256sum | cut -c1-10)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CONVLAB_CACHE/target-$CONVLAB_CLONE_ID}"
# tch finds libtorch inside the Python environment's torch package.
export LIBTORCH_USE_PYTORCH=1
export PATH="$CONVLAB_VENV/bin:$CONVLAB_EVCXR_ROOT/bin:$HOME/.cargo/bin:$PATH"
# On a fresh machine the environment does not exist yet: this file must still source cleanly
# under `set -euo pipefail` (the setup sources it before installing anything).
CONVLAB_TORCH_LIB=""
for d in "$CONVLAB_VENV"/lib/python3*/site-packages/torch/lib; do
  if [ -d "$d" ]; then CONVLAB_TORCH_LIB="$d"; break; fi
done
export CONVLAB_TORCH_LIB
if [ -n "$CONVLAB_TORCH_LIB" ]; then
  export LD_LIBRARY_PATH="$CONVLAB_TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# libtorch's C++ wrapper (torch-sys) is compiled for the command-line tool and again in evcxr's
# build folder; through ccache the second compile is a cache hit.
if command -v ccache >/dev/null 2>&1; then
  export CXX="ccache c++"
  export CCACHE_DIR="${CCACHE_DIR:-$CONVLAB_CACHE/ccache}"
fi
