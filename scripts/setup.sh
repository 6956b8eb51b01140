#!/usr/bin/env bash
# Installs everything the course needs, idempotently; a second run takes seconds.
#   scripts/setup.sh           install what is missing, step by step, with each step's minutes
#   scripts/setup.sh --check   say what is there and what a run would install; change nothing
#   scripts/setup.sh --through python|evcxr   stop after step 1 or 2 (the course image builds
#                              each part in a layer of its own: Containerfile)
#
#   1. a Python environment (JupyterLab, nbconvert/nbclient, torch for libtorch) in $CONVLAB_VENV
#   2. evcxr_jupyter at a pinned version (one small change, scripts/build-evcxr.sh), registered
#      as the Jupyter kernel `rust`
#   3. the convlab command-line tool, then the course pictures in data/ (from
#      CONVLAB_DATA_MIRROR when set, else downloaded)
#   4. evcxr's build folder, prewarmed: `:dep convlab` in a new kernel then takes seconds
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"
# shellcheck source=steps.sh
. "$here/steps.sh"
cd "$CONVLAB_ROOT"

EVCXR_VERSION=0.22.0
PYTHON="${CONVLAB_PYTHON:-python3}"
check_only=false
through=""
case "${1:-}" in
  --check) check_only=true ;;
  --through)
    case "${2:-}" in
      python | evcxr) through=$2 ;;
      *) die "--through takes python or evcxr, not '${2:-}'" ;;
    esac ;;
  "") ;;
  *) die "unknown option '$1' (use --check, --through python|evcxr, or no option)" ;;
esac
# Ends the run after the part named by --through.
stop_after() {
  if [ "$through" = "$1" ]; then
    finish
    log "stopped after $2 (--through $1)"
    exit 0
  fi
}

# --- What is there (each test is quick and changes nothing) ---------------------------------

venv_ok() { "$CONVLAB_VENV/bin/python" -c 'import sys' >/dev/null 2>&1; }
packages_ok() { venv_ok && cmp -s requirements.txt "$CONVLAB_VENV/.convlab-requirements"; }
# evcxr_jupyter is built from its release with five small changes (scripts/build-evcxr.sh): the
# stamp names the version and the changes, so a new version or a new change builds it again.
evcxr_patches=(scripts/evcxr-let-only.patch scripts/evcxr-library-roots.patch scripts/evcxr-dep-env.patch
  scripts/evcxr-output-order.patch scripts/evcxr-error-reply.patch)
evcxr_stamp() { echo "evcxr_jupyter $EVCXR_VERSION, $(cat "${evcxr_patches[@]}" | sha256sum | cut -c1-16)"; }
evcxr_ok() {
  [ -x "$CONVLAB_EVCXR_ROOT/bin/evcxr_jupyter" ] &&
    [ "$(cat "$CONVLAB_EVCXR_ROOT/.convlab-evcxr" 2>/dev/null)" = "$(evcxr_stamp)" ]
}
kernel_json="$CONVLAB_VENV/share/jupyter/kernels/rust/kernel.json"
# Cells compile at opt-level 0 (quick to build; a student's own loops run slower), while
# every dependency, convlab included, stays at 2: evcxr's opt_level sets its whole profile,
# and a cargo config in a folder above the build folders overrides it for the dependencies.
# The cell crate (evcxr names it `ctx`) is compiled as one codegen unit and not
# incrementally: each cell is a new crate of a few hundred lines, and evcxr's 16 units and
# incremental cache cost more processor time than they save (README, Responsiveness).
evcxr_toml="$CONVLAB_CACHE/evcxr-config/evcxr.toml"
evcxr_toml_text='[evcxr]
opt_level = "0"'
cargo_config="$CONVLAB_CACHE/.cargo/config.toml"
cargo_config_text='[profile.dev.package."*"]
opt-level = 2

[profile.dev.package.ctx]
codegen-units = 1
incremental = false'
kernel_ok() {
  grep -qF "\"$CONVLAB_ROOT/scripts/rust-kernel\"" "$kernel_json" 2>/dev/null &&
    cmp -s "$CONVLAB_CACHE/evcxr-src/evcxr_jupyter-$EVCXR_VERSION/client/version.txt" "$(dirname "$kernel_json")/version.txt" &&
    [ "$(cat "$evcxr_toml" 2>/dev/null)" = "$evcxr_toml_text" ] &&
    [ "$(cat "$cargo_config" 2>/dev/null)" = "$cargo_config_text" ]
}
# What the prewarmed seed was built from: when any of it changes, the seed is warmed again
# (and each kernel's build folder copies it anew at its next start).
seed_key() {
  {
    echo "evcxr $EVCXR_VERSION at $CONVLAB_ROOT, CXX=${CXX:-}, $evcxr_toml_text, $cargo_config_text"
    rustc -V
    cat Cargo.toml Cargo.lock crates/convlab/Cargo.toml tools/nbrun.py
    find crates/convlab/src -type f | LC_ALL=C sort | xargs cat
  } | sha256sum | cut -c1-16
}
seed_ok() { [ "$(cat "$CONVLAB_EVCXR_SEED/.convlab-warm" 2>/dev/null)" = "$(seed_key)" ]; }

# The tools that must be there before anything is installed.
check_tools() {
  command -v cargo >/dev/null 2>&1 ||
    die "cargo not found: install Rust with rustup (https://rustup.rs), open a new shell, run again."
  # slice::as_chunks (the convolution) is stable since Rust 1.88.
  local rust
  rust="$(rustc --version 2>/dev/null | cut -d' ' -f2)"
  case "$rust" in
    1.[0-7][0-9].* | 1.[0-9].* | 1.8[0-7].*)
      die "rustc is $rust; the course needs Rust 1.88 or newer: run \`rustup update stable\`, then run again." ;;
  esac
  command -v "$PYTHON" >/dev/null 2>&1 ||
    die "$PYTHON not found: install Python 3.10 or newer (or set CONVLAB_PYTHON to one), run again."
  local version
  version="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" ||
    die "$PYTHON does not run; install Python 3.10 or newer (or set CONVLAB_PYTHON to one)."
  case "$version" in
    3.1[0-9] | 3.[2-9][0-9]) ;;
    *) die "$PYTHON is Python $version; the course needs 3.10 or newer: install one and set CONVLAB_PYTHON=python3.X (or put it first on PATH), then run again." ;;
  esac
  "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 ||
    need_packages "Python's venv module is missing" "$PYTHON -c 'import venv, ensurepip'" python3-venv
  # Titles and charts are drawn with a TrueType font: CONVLAB_FONT, or DejaVu Sans where the
  # distributions put it (the list of crates/convlab/src/display.rs, FONT_FILES).
  need_packages "no font for the pictures' titles and charts (DejaVu Sans, or set CONVLAB_FONT to a .ttf file)" \
    font_ok fonts-dejavu-core
}
font_ok() {
  if [ -n "${CONVLAB_FONT:-}" ]; then
    [ -f "$CONVLAB_FONT" ]
  else
    compgen -G "/usr/share/fonts/*/DejaVuSans.ttf" || compgen -G "/usr/share/fonts/*/dejavu/DejaVuSans.ttf" ||
      [ -f /System/Library/Fonts/Supplemental/Arial.ttf ] || [ -f /Library/Fonts/Arial.ttf ]
  fi
}

if $check_only; then
  check_tools
  report() { if "$2"; then echo "  ok       $1"; else echo "  to do    $1"; fi; }
  echo "setup --check: tools ok (cargo, $PYTHON, a font); in $CONVLAB_CACHE:"
  report "Python environment" venv_ok
  report "Python packages of requirements.txt" packages_ok
  report "evcxr_jupyter $EVCXR_VERSION (with the five changes that scripts/build-evcxr.sh applies)" evcxr_ok
  report "kernel 'rust' (scripts/rust-kernel of this clone, its evcxr and cargo settings)" kernel_ok
  report "evcxr build folder prewarmed with convlab" seed_ok
  exit 0
fi

# --- Install what is missing --------------------------------------------------------------

step "checking the tools" "install what the message above names"
check_tools
# evcxr compiles the crates again in its own way (as dynamic libraries), so libtorch's C++
# wrapper is compiled twice, for the command-line tool and for the kernels: with ccache (see
# env.sh) the second time takes seconds. Installed when running as root; optional otherwise.
want_packages "the first setup compiles libtorch's C++ wrapper twice (about 2 minutes more)" \
  "command -v ccache" ccache
. "$CONVLAB_ROOT/scripts/env.sh" # again: ccache may be new
mkdir -p "$CONVLAB_CACHE"

if ! venv_ok; then
  step "creating the Python environment in $CONVLAB_VENV" \
    "check that '$PYTHON -m venv' works (Debian: apt-get install python3-venv)"
  rm -rf "$CONVLAB_VENV" # half-made (an interrupted run): start again
  "$PYTHON" -m venv "$CONVLAB_VENV"
fi
if ! packages_ok; then
  step "installing the Python packages of requirements.txt (torch: 2.5 GB, minutes)" \
    "pip could not install requirements.txt: check access to the package index; if it keeps failing, delete $CONVLAB_VENV"
  rm -f "$CONVLAB_VENV/.convlab-requirements"
  with_heartbeat "$CONVLAB_VENV/bin/pip" install --disable-pip-version-check --progress-bar off \
    -r requirements.txt 2>&1 | { grep -E '^(Collecting|Successfully|ERROR)' || true; }
  "$CONVLAB_VENV/bin/pip" check >/dev/null ||
    die "the Python environment is inconsistent after installing (pip check); delete $CONVLAB_VENV and run again"
  cp requirements.txt "$CONVLAB_VENV/.convlab-requirements"
fi
. "$CONVLAB_ROOT/scripts/env.sh" # again, now that torch's lib/ exists
[ -n "$CONVLAB_TORCH_LIB" ] || die "torch's lib/ not found under $CONVLAB_VENV; delete it and run again"
stop_after python "the Python environment"

if ! evcxr_ok; then
  step "building evcxr_jupyter $EVCXR_VERSION (10-15 minutes on 2 cores, once)" \
    "cargo could not build evcxr_jupyter: check access to the crate registry and free disk space"
  rm -f "$CONVLAB_EVCXR_ROOT/.convlab-evcxr"
  PYTHON="$CONVLAB_VENV/bin/python" with_heartbeat scripts/build-evcxr.sh "$EVCXR_VERSION"
  evcxr_stamp >"$CONVLAB_EVCXR_ROOT/.convlab-evcxr"
fi
stop_after evcxr "evcxr_jupyter"

# The `rust` kernel, inside the Python environment, started through scripts/rust-kernel.
if ! kernel_ok; then
  step "registering the Jupyter kernel 'rust'"
  mkdir -p "$(dirname "$kernel_json")"
  cat >"$kernel_json.tmp" <<JSON
{
  "argv": ["$CONVLAB_ROOT/scripts/rust-kernel", "{connection_file}"],
  "display_name": "Rust",
  "language": "rust",
  "interrupt_mode": "message"
}
JSON
  mv "$kernel_json.tmp" "$kernel_json"
  # evcxr_jupyter installs itself anew over a kernel folder without its version.txt (a bare
  # `evcxr_jupyter` in kernel.json, no launcher): with it, the folder stays ours, also where
  # JUPYTER_PATH names it (nbgrader).
  cp "$CONVLAB_CACHE/evcxr-src/evcxr_jupyter-$EVCXR_VERSION/client/version.txt" "$(dirname "$kernel_json")/version.txt"
  mkdir -p "$(dirname "$evcxr_toml")" "$(dirname "$cargo_config")"
  printf '%s\n' "$evcxr_toml_text" >"$evcxr_toml"
  printf '%s\n' "$cargo_config_text" >"$cargo_config"
fi

step "building convlab (the first time compiles libtorch's bindings: about 6 minutes)" \
  "cargo could not build the crate: the errors above name the file; offline, run once with network access so cargo can fetch the crates"
with_heartbeat cargo build -p convlab --bin convlab

step "fetching the course pictures into data/" \
  "without internet access, set CONVLAB_DATA_MIRROR to a folder holding grace_hopper.jpg, cat.png and coffee.png"
"$CARGO_TARGET_DIR/debug/convlab" fetch-data

# evcxr's seed build folder, prewarmed under its lock (kernels copy it under a shared lock).
if ! seed_ok; then
  step "prewarming the Rust kernel's build folder (minutes the first time)" \
    "the kernel could not load convlab: the messages above name the cell; offline, run once with network access"
  seed="$CONVLAB_EVCXR_SEED"
  mkdir -p "$seed"
  exec 8<>"$seed.lock"
  flock 8
  rm -f "$seed/.convlab-warm"
  EVCXR_TMPDIR="$seed" with_heartbeat "$CONVLAB_VENV/bin/python" tools/nbrun.py --prewarm
  seed_key >"$seed/.convlab-warm"
  exec 8>&-
fi
finish
log "ready"
