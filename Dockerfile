# The course image: JupyterLab with the Rust kernel and everything prebuilt, for Zero to
# JupyterHub, Binder or a plain `podman run` / `docker run` (docs/deploy.md). `make image`
# builds it, `make test-image` checks it. `Containerfile` is a link to this file.
#
# What it holds: what the student release holds (tools/release.py's list: the student
# notebooks, the crate without its integration tests, the setup and the kernel's launcher; no
# answer: .dockerignore lets nothing else into the build) in /opt/convlab, and what
# scripts/setup.sh installs from it in /opt/convlab-cache: the Python environment (torch),
# evcxr_jupyter registered as the kernel `rust`, the course pictures and the prewarmed kernel
# build folder.
# Both belong to root: the student (jovyan, uid 1000) reads them and cannot change them. Each
# kernel copies the prewarmed folder into a build folder of its own under /tmp
# (CONVLAB_EVCXR_POOL, scripts/rust-kernel); the notebooks go to the home folder (image/start).
#
# Build arguments:
#   BASE          a Debian bookworm image (debian:bookworm-slim; make image makes one from
#                 Debian's packages with mmdebstrap where no image registry can be reached)
#   RUST          where Rust comes from: `rustup` (downloads RUST_VERSION with rustup), or
#                 `host` (a rustup toolchain folder of that version passed as the build context
#                 `host-rust`: --build-context host-rust=$(rustc --print sysroot))
#   NB_USER, NB_UID   the student's account (Binder passes its own)
# Secret `certs` (optional): a CA bundle for the download steps (image/with-certs); it is
# mounted for those steps only and never kept in a layer.
ARG BASE=debian:bookworm-slim
ARG RUST=rustup
ARG RUST_VERSION=1.95.0

# ---- Rust in /opt/rust: rustc, cargo, the standard library and its sources (rust-src, which
# ---- evcxr's rust-analyzer reads) ------------------------------------------------------------
FROM ${BASE} AS rust-rustup
ARG RUST_VERSION
COPY image/with-certs /usr/local/bin/convlab-with-certs
RUN --mount=type=secret,id=certs,required=false \
    apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl ca-certificates >/dev/null && \
    convlab-with-certs sh -c 'curl --proto "=https" --tlsv1.2 -sSf https://sh.rustup.rs | \
      RUSTUP_HOME=/tmp/rustup CARGO_HOME=/tmp/cargo sh -s -- -y --no-modify-path \
        --profile minimal --component rust-src --default-toolchain "$0"' "$RUST_VERSION" && \
    mv /tmp/rustup/toolchains/"$RUST_VERSION"-* /opt/rust && rm -rf /tmp/rustup /tmp/cargo

FROM ${BASE} AS rust-host
ARG RUST_VERSION
COPY --from=host-rust . /opt/rust
# The documentation (rust-docs, 0.8 GB) stays out; the version must be the one pinned above.
RUN rm -rf /opt/rust/share/doc && \
    /opt/rust/bin/rustc -V | grep -q "^rustc $RUST_VERSION " && \
    test -d /opt/rust/lib/rustlib/src/rust/library

FROM rust-${RUST} AS rust

# ---- The course image -------------------------------------------------------------------------
FROM ${BASE}
ARG NB_USER=jovyan
ARG NB_UID=1000
# Build tools stay: a kernel compiles every cell (cc links it; ccache must be there because the
# prewarmed build folder was built with CXX="ccache c++", scripts/env.sh).
RUN apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      python3 python3-venv g++ git ca-certificates ccache fonts-dejavu-core tini passwd procps >/dev/null && \
    rm -rf /var/lib/apt/lists/*
COPY --from=rust /opt/rust /opt/rust
# The course's places (scripts/env.sh): the caches outside the home folder, which JupyterHub
# covers with the student's volume; each kernel's build folder, the compiler cache and the
# checkpoints in places the student can write.
ENV CONVLAB_CACHE=/opt/convlab-cache \
    CARGO_HOME=/opt/convlab-cache/cargo \
    CONVLAB_EVCXR_POOL=/tmp/convlab-pool \
    CCACHE_DIR=/tmp/convlab-ccache \
    CONVLAB_DATA_DIR=/opt/convlab/data \
    CONVLAB_CHECKPOINT_DIR=/home/${NB_USER}/checkpoints \
    PATH=/opt/convlab-cache/venv/bin:/opt/convlab-cache/evcxr/bin:/opt/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    SHELL=/bin/bash
COPY image/with-certs /usr/local/bin/convlab-with-certs

# 1. The Python environment: JupyterLab, nbclient, torch (libtorch for tch; most of the image).
COPY requirements.txt /opt/convlab/requirements.txt
COPY scripts/env.sh scripts/steps.sh scripts/setup.sh /opt/convlab/scripts/
RUN --mount=type=secret,id=certs,required=false --mount=type=cache,target=/root/.cache/pip \
    convlab-with-certs /opt/convlab/scripts/setup.sh --through python

# 2. evcxr_jupyter with the course's changes; its sources, crates and build folder stay in the
#    build's cache, out of the image, but for the kernel folder's version.txt (setup.sh
#    compares the registered kernel with it).
COPY scripts/build-evcxr.sh scripts/evcxr-*.patch /opt/convlab/scripts/
RUN --mount=type=secret,id=certs,required=false --mount=type=cache,target=/var/cache/convlab-build \
    mkdir -p /var/cache/convlab-build/evcxr-src && \
    ln -sfn /var/cache/convlab-build/evcxr-src "$CONVLAB_CACHE/evcxr-src" && \
    CARGO_HOME=/var/cache/convlab-build/cargo CCACHE_DIR=/var/cache/convlab-build/ccache \
      convlab-with-certs /opt/convlab/scripts/setup.sh --through evcxr && \
    rm "$CONVLAB_CACHE/evcxr-src" && \
    (cd /var/cache/convlab-build && cp --parents evcxr-src/evcxr_jupyter-*/client/version.txt "$CONVLAB_CACHE/")

# 3. The rest of the setup: the kernel `rust`, the crate, the pictures (from the build context's
#    data/ when they are there, else downloaded) and the prewarmed build folder. The crates the
#    kernels resolve offline stay in CARGO_HOME; of the command-line tool's target folder only
#    the example scripts/check-cuda.sh runs stays (the GPU check, docs/deploy.md).
COPY scripts/ /opt/convlab/scripts/
COPY Cargo.toml Cargo.lock /opt/convlab/
COPY crates/ /opt/convlab/crates/
COPY tools/ /opt/convlab/tools/
COPY data/ /opt/convlab/data/
RUN --mount=type=secret,id=certs,required=false --mount=type=cache,target=/var/cache/convlab-build \
    CCACHE_DIR=/var/cache/convlab-build/ccache convlab-with-certs /opt/convlab/scripts/setup.sh && \
    CCACHE_DIR=/var/cache/convlab-build/ccache convlab-with-certs bash -c 'cd /opt/convlab && . scripts/env.sh && \
      cargo build --quiet -p convlab --example check_cuda && \
      mv "$CARGO_TARGET_DIR/debug/examples/check_cuda" /tmp/check_cuda && rm -rf "$CARGO_TARGET_DIR" && \
      mkdir -p "$CARGO_TARGET_DIR/debug/examples" && mv /tmp/check_cuda "$CARGO_TARGET_DIR/debug/examples/"' && \
    rm -rf "$CARGO_HOME"/registry/index/*/.git && \
    chmod -R a+rX /opt/convlab /opt/convlab-cache

# 4. What serving adds (image/requirements.txt): jupyterhub-singleuser, notebook, nbgitpuller.
COPY image/requirements.txt /opt/convlab/image/requirements.txt
RUN --mount=type=secret,id=certs,required=false --mount=type=cache,target=/root/.cache/pip \
    convlab-with-certs pip install -q --disable-pip-version-check \
      -r /opt/convlab/image/requirements.txt -c /opt/convlab/requirements.txt && \
    pip check

# 5. The student notebooks, the entry point and the student.
COPY notebooks/student/ /opt/convlab/notebooks/student/
COPY image/start /usr/local/bin/convlab-start
RUN useradd --create-home --uid "$NB_UID" --shell /bin/bash "$NB_USER"
ENV USER=${NB_USER} NB_USER=${NB_USER} NB_UID=${NB_UID} HOME=/home/${NB_USER}
USER ${NB_UID}
WORKDIR /home/${NB_USER}
RUN convlab-start true
EXPOSE 8888
ENTRYPOINT ["tini", "-g", "--", "convlab-start"]
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser"]
