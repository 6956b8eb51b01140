# The course's commands. `make lab` sets everything up and opens JupyterLab; `make test` runs
# every test. Both install what is missing first and are quick when nothing changed.
SHELL := /bin/bash
.PHONY: setup lab html test bench student grade fetch-weights fetch-cifar fetch-data

setup:
	scripts/setup.sh

# JUPYTER_ARGS: more options for JupyterLab, e.g. JUPYTER_ARGS="--no-browser --port=8899"
JUPYTER_ARGS ?=
lab: setup
	. scripts/env.sh && jupyter lab --notebook-dir=notebooks $(JUPYTER_ARGS) $$([ "$$(id -u)" = 0 ] && echo --allow-root)

html: setup
	scripts/html.sh

test:
	scripts/test.sh

# Speed beside the Python stack (BENCHMARKS.md, sections "Convolution" and "Networks"; about 10
# minutes). SciPy and OpenCV are installed for it alone, into $CONVLAB_CACHE/bench-peers.
# Quick: make bench BENCH_PY_ARGS=--quick; one part: BENCH_PY_ARGS="--only conv"
BENCH_PY_ARGS ?=
bench: setup
	. scripts/env.sh && python tools/bench.py $(BENCH_PY_ARGS)

# Grading speed (BENCHMARKS.md, section "Grading"): six copies of notebook 1's fixture class (102
# submissions, about 14 minutes) graded with the default settings; notebooks 2 and 3 per
# submission. One copy: make bench-grading BENCH_GRADING_ARGS="--copies 1"
.PHONY: bench-grading
BENCH_GRADING_ARGS ?=
bench-grading: setup
	. scripts/env.sh && python tools/gradebench.py $(BENCH_GRADING_ARGS)

# Student notebooks (solutions blanked, hidden tests removed) from the answer notebooks.
student:
	. scripts/env.sh && python tools/nbgrade.py student

# Grade a folder of submissions:  make grade SUBMISSIONS=path/to/folder [NB=01-convolutions] [WORKERS=n]
# (WORKERS: submissions at a time; default the cores + 1)
# [SHARD=K/N: every N-th submission from the K-th, into build/grades/NB/shard-K; join the shards
# with: python tools/nbgrade.py merge build/grades/NB build/grades/NB/shard-*]. A second run
# grades only what is not graded yet.
NB ?= 01-convolutions
WORKERS ?=
SHARD ?=
GRADE_OUT = build/grades/$(NB)$(if $(SHARD),/shard-$(firstword $(subst /, ,$(SHARD))))
grade: setup
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=folder [NB=$(NB)] [WORKERS=n] [SHARD=K/N]" >&2; exit 2; }
	. scripts/env.sh && python tools/nbgrade.py grade "$(SUBMISSIONS)" --source notebooks/$(NB).ipynb --out $(GRADE_OUT) $(if $(WORKERS),--workers $(WORKERS)) $(if $(SHARD),--shard $(SHARD))

# Data that is not fetched by the setup: VGG-16's weights (528 MB) and CIFAR-10 (163 MB).
fetch-weights fetch-cifar fetch-data: setup
	scripts/convlab $@

# Notebook latency (BENCHMARKS.md, build/bench/notebooks.json): each notebook on fresh kernels,
# cell by cell, against the seed's Python LA1-LA4. Quick: make bench-notebooks BENCH_ARGS="--runs 1 --notebooks 01"
.PHONY: bench-notebooks
BENCH_ARGS ?=
bench-notebooks: setup
	. scripts/env.sh && python tools/nbbench.py --notebooks 01 02 03 $(BENCH_ARGS)

# The student release, without the answers: build/release/convlab-student/ and its .tar.gz
# (tools/release.py; tests/test_release.py checks that no answer line is in it).
.PHONY: release
release:
	. scripts/env.sh && python tools/release.py

# The seed's CIFAR-10 model on the real data (make fetch-cifar first): quick mode (4 000 pictures,
# 3 epochs) and full mode (50 000, 50 epochs), test accuracy after every epoch; resumes when
# stopped. Only one mode or fewer epochs: make cifar-accuracy CIFAR_ARGS="quick --epochs 1"
.PHONY: cifar-accuracy
CIFAR_ARGS ?=
cifar-accuracy: setup
	. scripts/env.sh && cargo run --example cifar_accuracy -p convlab -- $(CIFAR_ARGS)

# The course image for JupyterHub and Binder (Containerfile, docs/deploy.md), with podman or
# docker: make image (about 30 minutes the first time), then make test-image (the notebooks in
# it, from a browser outside; sizes and timings to BENCHMARKS.md, section "Course image").
.PHONY: image test-image
image:
	scripts/image.sh build

test-image:
	scripts/image.sh test
