#!/usr/bin/env bash
# The course image (Containerfile; docs/deploy.md):
#   scripts/image.sh build   build it with podman, or docker (`make image`)
#   scripts/image.sh test    start it and run the notebooks in it from a browser outside,
#                            measure, write BENCHMARKS.md (`make test-image`)
# Settings (environment):
#   IMAGE             the image's name (localhost/convlab:latest)
#   CONTAINER_ENGINE  podman or docker (default: podman when installed, else docker)
#   IMAGE_BASE        the Debian bookworm image to start from (default debian:bookworm-slim;
#                     where it cannot be pulled and mmdebstrap is installed, one is made from
#                     Debian's packages: localhost/debian-base:bookworm)
#   IMAGE_RUST        host: the toolchain of `rustc` here (a rustup toolchain of the version the
#                     Containerfile pins, passed as a build context); rustup: downloaded in the
#                     build; auto (default): host when it is that version, else rustup
#   IMAGE_BUILD_ARGS  more options for the build command
# The CA bundle named by SSL_CERT_FILE, when set, is passed to the download steps as the build
# secret `certs` (never stored in the image). CONVLAB_DATA_MIRROR, when set, fills data/ with
# the course pictures the image takes (else the build downloads them).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
SCRIPT_NAME=image
# shellcheck source=steps.sh
. "$here/steps.sh"
cd "$root"

IMAGE="${IMAGE:-localhost/convlab:latest}"
if [ -z "${CONTAINER_ENGINE:-}" ]; then
  if command -v podman >/dev/null 2>&1; then
    CONTAINER_ENGINE=podman
  elif command -v docker >/dev/null 2>&1; then
    CONTAINER_ENGINE=docker
  else
    die "neither podman nor docker is installed (Debian: apt-get install podman)"
  fi
fi
export IMAGE CONTAINER_ENGINE
engine() { "$CONTAINER_ENGINE" "$@"; }

have_image() { engine image inspect "$1" >/dev/null 2>&1; }

# The FROM image: IMAGE_BASE as it is when present or pullable; else, with mmdebstrap, a
# minimal Debian bookworm made from Debian's packages (about a minute, once).
choose_base() {
  local base="${IMAGE_BASE:-debian:bookworm-slim}" made=localhost/debian-base:bookworm
  if have_image "$base" || engine pull -q "$base" >/dev/null 2>&1; then
    echo "$base"
    return
  fi
  if [ -n "${IMAGE_BASE:-}" ]; then
    die "the base image $base is neither here nor pullable"
  fi
  if have_image "$made"; then
    echo "$made"
    return
  fi
  command -v mmdebstrap >/dev/null 2>&1 ||
    die "$base cannot be pulled, and mmdebstrap (apt-get install mmdebstrap) is missing to make a base image from Debian's packages; or set IMAGE_BASE"
  local tmp
  tmp="$(mktemp -d)"
  log "making $made from Debian's packages (mmdebstrap)" >&2
  mmdebstrap --quiet --variant=minbase bookworm "$tmp/rootfs.tar" >&2
  engine import "$tmp/rootfs.tar" "$made" >/dev/null
  rm -rf "$tmp"
  echo "$made"
}

# Rust: the version the Containerfile pins.
rust_version() { sed -n 's/^ARG RUST_VERSION=//p' Containerfile | head -n 1; }
# The sysroot of `rustc` here when it is a whole rustup toolchain of that version (rust-src
# included), else nothing.
host_toolchain() {
  local sysroot want
  want="$(rust_version)"
  command -v rustc >/dev/null 2>&1 || return 0
  rustc -V 2>/dev/null | grep -q "^rustc $want " || return 0
  sysroot="$(rustc --print sysroot)"
  [ -f "$sysroot/lib/rustlib/multirust-channel-manifest.toml" ] &&
    [ -d "$sysroot/lib/rustlib/src/rust/library" ] && echo "$sysroot"
  return 0
}

build() {
  step "choosing the base image and Rust" "set IMAGE_BASE or IMAGE_RUST (see scripts/image.sh)"
  local base rust="${IMAGE_RUST:-auto}" sysroot="" args=()
  base="$(choose_base)"
  case "$rust" in
    auto | host) sysroot="$(host_toolchain)" ;;
    rustup) ;;
    *) die "IMAGE_RUST is host, rustup or auto, not '$rust'" ;;
  esac
  if [ -n "$sysroot" ]; then
    rust=host
    args+=(--build-context "host-rust=$sysroot")
  elif [ "$rust" = host ]; then
    die "IMAGE_RUST=host needs \`rustc\` here to be a rustup toolchain of Rust $(rust_version) with rust-src (rustup toolchain install $(rust_version) --component rust-src)"
  else
    rust=rustup
  fi
  args+=(--build-arg "BASE=$base" --build-arg "RUST=$rust")
  if [ -n "${SSL_CERT_FILE:-}" ] && [ -r "$SSL_CERT_FILE" ]; then
    args+=(--secret "id=certs,src=$SSL_CERT_FILE")
  fi
  log "base $base, Rust from $rust${sysroot:+ ($sysroot)}"
  if [ -n "${CONVLAB_DATA_MIRROR:-}" ]; then
    for picture in grace_hopper.jpg cat.png coffee.png; do
      [ -e "data/$picture" ] || cp "$CONVLAB_DATA_MIRROR/$picture" "data/$picture"
    done
  fi

  step "building $IMAGE with $CONTAINER_ENGINE (the first time: about 30 minutes on 2 cores)" \
    "the build's messages above name the step that failed; run again to resume from the last layer built"
  # shellcheck disable=SC2086 # IMAGE_BUILD_ARGS: options, split on purpose
  engine build -t "$IMAGE" -f Containerfile "${args[@]}" ${IMAGE_BUILD_ARGS:-} .

  step "sizes"
  report_sizes
  finish
}

# The image's size, its layers, and the big parts inside it (the torch wheel, the caches, the
# toolchain); also written to build/image/sizes.json for the benchmarks.
report_sizes() {
  mkdir -p build/image
  engine image inspect --format '{{.Size}}' "$IMAGE" >build/image/size.txt
  engine history --format '{{.Size}}	{{.CreatedBy}}' "$IMAGE" >build/image/layers.txt
  # shellcheck disable=SC2016 # expanded inside the image
  engine run --rm --entrypoint /bin/sh "$IMAGE" -c '
    site=$(echo /opt/convlab-cache/venv/lib/python3*/site-packages)
    du -sb "$site/torch" "$site"/nvidia "$site"/triton /opt/convlab-cache/venv \
      /opt/convlab-cache/evcxr /opt/convlab-cache/evcxr-seed /opt/convlab-cache/cargo \
      /opt/rust /opt/convlab /usr 2>/dev/null' >build/image/parts.txt
  printf 'image %s: %s bytes\n' "$IMAGE" "$(cat build/image/size.txt)"
  echo "layers (newest first):"
  cut -c1-150 build/image/layers.txt
  echo "inside:"
  cat build/image/parts.txt
}

case "${1:-}" in
  build) build ;;
  sizes) report_sizes ;;
  test)
    have_image "$IMAGE" || die "no image $IMAGE here: run \`make image\` first"
    "$root/scripts/setup.sh" # the browser, Playwright and the test data run outside the image
    # shellcheck source=env.sh
    . "$here/env.sh"
    step "sizes"
    report_sizes
    step "the notebooks in the image, from a browser outside (about 30 minutes)" \
      "pytest's summary above names the test that failed; build/image/ holds screenshots and figures"
    CONVLAB_TEST_IMAGE="$IMAGE" python -m pytest -p no:cacheprovider tests/test_image.py -v
    step "writing BENCHMARKS.md"
    python tools/imagebench.py
    finish
    ;;
  *) die "usage: scripts/image.sh build|test|sizes" ;;
esac
