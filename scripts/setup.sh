#!/usr/bin/env bash
# Installs everything the course needs, idempotently; a second run takes seconds.
#   - a Python environment (JupyterLab, nbconvert/nbclient, torch for libtorch) in $CONVLAB_CACHE/venv
#   - evcxr_jupyter at a pinned version, registered as the Jupyter kernel `rust`
#   - the course pictures in data/ (from CONVLAB_DATA_MIRROR when set, else downloaded)
#   - evcxr's build folder, prewarmed so that `:dep convlab` in a new kernel takes seconds
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CONVLAB_ROOT"

EVCXR_VERSION=0.22.0
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
mkdir -p "$CONVLAB_CACHE"

# 0. Tools that must already be there.
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust (rustup) first" >&2; exit 1; }
command -v python3 >/dev/null || { echo "setup: python3 not found; install Python 3.10 or newer" >&2; exit 1; }
# plotters draws text through fontconfig: it needs its headers to build and a font to draw.
if ! pkg-config --exists fontconfig 2>/dev/null || ! fc-list 2>/dev/null | grep -q .; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing fontconfig and a font (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pkg-config libfontconfig1-dev fonts-dejavu-core >/dev/null
  else
    echo "setup: fontconfig development files and a font are missing; install them, e.g." >&2
    echo "  sudo apt-get install pkg-config libfontconfig1-dev fonts-dejavu-core" >&2
    exit 1
  fi
fi

# 1. Python environment, reinstalled only when requirements.txt changes.
stamp="$CONVLAB_VENV/.convlab-requirements"
if [ ! -x "$CONVLAB_VENV/bin/python" ]; then
  log "creating the Python environment in $CONVLAB_VENV"
  python3 -m venv "$CONVLAB_VENV"
fi
if ! cmp -s requirements.txt "$stamp"; then
  log "installing Python packages (torch is large: a few minutes the first time)"
  "$CONVLAB_VENV/bin/pip" install -q --disable-pip-version-check -r requirements.txt
  cp requirements.txt "$stamp"
fi
. "$CONVLAB_ROOT/scripts/env.sh"   # again, now that torch's lib/ exists
[ -n "$CONVLAB_TORCH_LIB" ] || { echo "setup: torch's lib/ not found under $CONVLAB_VENV" >&2; exit 1; }

# 2. evcxr_jupyter at the pinned version.
# cargo records what it installed in .crates.toml beside bin/.
if ! [ -x "$CONVLAB_EVCXR_ROOT/bin/evcxr_jupyter" ] ||
   ! grep -q "\"evcxr_jupyter $EVCXR_VERSION " "$CONVLAB_EVCXR_ROOT/.crates.toml" 2>/dev/null; then
  log "building evcxr_jupyter $EVCXR_VERSION (about 15 minutes on 2 cores, once)"
  cargo install --quiet --locked evcxr_jupyter --version "$EVCXR_VERSION" --root "$CONVLAB_EVCXR_ROOT"
fi

# 3. The `rust` kernel, inside the Python environment. It starts through a small launcher
#    that sets what evcxr and tch need at run time; EVCXR_TMPDIR can be overridden by the
#    caller (the grader gives each worker its own build folder).
launcher="$CONVLAB_CACHE/bin/rust-kernel"
mkdir -p "$CONVLAB_CACHE/bin" "$CONVLAB_VENV/share/jupyter/kernels/rust"
cat > "$launcher.tmp" <<SH
#!/usr/bin/env bash
# evcxr builds each cell in \$EVCXR_TMPDIR/target and loads it from there.
unset CARGO_TARGET_DIR
export LIBTORCH_USE_PYTORCH=1
# Each cell is a library linked against Rust's shared libstd; its relative rpath to the
# toolchain breaks when the build folder and the toolchain share a parent below /, so
# the toolchain's library folder goes on the loader path too, beside torch's lib/.
export PATH="$CONVLAB_VENV/bin:$HOME/.cargo/bin:\$PATH"
rust_lib="\$(rustc --print target-libdir 2>/dev/null)"
export LD_LIBRARY_PATH="$CONVLAB_TORCH_LIB:\$rust_lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export EVCXR_TMPDIR="\${EVCXR_TMPDIR:-$CONVLAB_CACHE/evcxr-tmp}"
# evcxr starts each kernel with an empty dependency list, which empties the build folder's
# Cargo.lock, so every :dep resolves its crates again. Offline, cargo resolves them from
# its local cache (filled by the setup): kernels start without network, a little sooner,
# and on versions already downloaded. CARGO_NET_OFFLINE=false lets a kernel fetch new crates.
export CARGO_NET_OFFLINE="\${CARGO_NET_OFFLINE:-true}"
exec "$CONVLAB_EVCXR_ROOT/bin/evcxr_jupyter" --control_file "\$1"
SH
chmod +x "$launcher.tmp" && mv "$launcher.tmp" "$launcher"
cat > "$CONVLAB_VENV/share/jupyter/kernels/rust/kernel.json" <<JSON
{
  "argv": ["$launcher", "{connection_file}"],
  "display_name": "Rust",
  "language": "rust",
  "interrupt_mode": "message"
}
JSON

# 4. The Rust side: the command-line tool, then the course pictures.
log "building convlab (the first build compiles libtorch's bindings: about 6 minutes)"
cargo build --quiet -p convlab --bin convlab
"$CARGO_TARGET_DIR/debug/convlab" fetch-data

# 5. Prewarm evcxr's build folder with the crate, so a new kernel's `:dep` takes seconds.
log "prewarming the Rust kernel (the first time compiles tch inside evcxr: a few minutes)"
"$CONVLAB_VENV/bin/python" tools/nbrun.py --prewarm
log "ready"
