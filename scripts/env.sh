# Environment of the course, sourced by the other scripts:  . scripts/env.sh
# Everything installed lives outside the repository, in $CONVLAB_CACHE (default
# ~/.cache/convlab), so that clones share it and a second setup takes seconds.
CONVLAB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CONVLAB_ROOT
export CONVLAB_CACHE="${CONVLAB_CACHE:-$HOME/.cache/convlab}"
export CONVLAB_VENV="$CONVLAB_CACHE/venv"
export CONVLAB_EVCXR_ROOT="$CONVLAB_CACHE/evcxr"
# evcxr keeps its build folder here between kernels, so `:dep convlab` does not rebuild tch.
export EVCXR_TMPDIR="${EVCXR_TMPDIR:-$CONVLAB_CACHE/evcxr-tmp}"
# Compiled dependencies (tch takes minutes), one folder per clone: cargo identifies the
# workspace's own crate by its path inside the clone, so in a folder shared by two clones one
# clone's build would pass for the other's (and carry the other clone's data/ path).
CONVLAB_CLONE_ID="$(printf '%s' "$CONVLAB_ROOT" | sha256sum | cut -c1-10)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CONVLAB_CACHE/target-$CONVLAB_CLONE_ID}"
# tch finds libtorch inside the Python environment's torch package.
export LIBTORCH_USE_PYTORCH=1
export PATH="$CONVLAB_VENV/bin:$CONVLAB_EVCXR_ROOT/bin:$HOME/.cargo/bin:$PATH"
CONVLAB_TORCH_LIB="$(ls -d "$CONVLAB_VENV"/lib/python3*/site-packages/torch/lib 2>/dev/null | head -n 1)"
export CONVLAB_TORCH_LIB
export LD_LIBRARY_PATH="$CONVLAB_TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
