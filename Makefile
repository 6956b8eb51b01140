# The course's commands. `make lab` sets everything up and opens JupyterLab; `make test` runs
# every test. Both install what is missing first and are quick when nothing changed.
SHELL := /bin/bash
.PHONY: setup lab html test bench student grade

setup:
	scripts/setup.sh

lab: setup
	. scripts/env.sh && jupyter lab --notebook-dir=notebooks

html: setup
	. scripts/env.sh && python tools/nbrun.py notebooks/*.ipynb --out build/executed --html build/html

test:
	scripts/test.sh

bench: setup
	. scripts/env.sh && cargo bench --profile dev -p convlab
