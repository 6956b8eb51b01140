#!/usr/bin/env python3
"""The kernel's preload: what evcxr runs while a notebook's kernel starts.

JupyterLab tells a kernel which notebook it serves (`JPY_SESSION_NAME`). When that notebook
loads convlab (a `:dep convlab = { path = … }` line), scripts/rust-kernel gives evcxr a
configuration folder in which

- `init.evcxr` holds that same `:dep` line, with the path made absolute: the crate is loaded
  before the kernel answers, and the notebook's own `:dep` cell then changes nothing and
  takes a tenth of a second;
- `prelude.rs` stores one small convlab value and uses `?` once: evcxr's first type question
  (its rust-analyzer loads the standard library and every dependency, seconds) and its first
  `?` (compiled twice) are paid during the start, not in the student's first cells.

    python tools/preload.py NOTEBOOK BASE_CONFIG_DIR OUT_DIR

writes OUT_DIR (evcxr.toml copied from BASE_CONFIG_DIR, init.evcxr, prelude.rs) and prints
it; prints nothing, and writes nothing, when the notebook does not load convlab.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

DEP = re.compile(r"^\s*:dep\s+convlab\s*=\s*\{(?P<opts>.*)\}\s*$")
PATH = re.compile(r'path\s*=\s*"(?P<path>[^"]+)"')

PRELUDE = """\
let convlab_ready = convlab::ndarray::Array2::<f32>::zeros((1, 1));
Ok::<(), convlab::Error>(())?;
"""


def dep_line(notebook: Path) -> str | None:
    """The notebook's first `:dep convlab` line, its path made absolute; None without one."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return None
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        for line in (source if isinstance(source, str) else "".join(source)).splitlines():
            m = DEP.match(line)
            if not m:
                continue
            p = PATH.search(m["opts"])
            if not p:
                return None  # a crate from the registry: leave it to the notebook
            crate = (notebook.parent / os.path.expandvars(p["path"])).resolve()  # ${CONVLAB_CRATE}
            if not (crate / "Cargo.toml").is_file():
                return None
            return ":dep convlab = {" + m["opts"].replace(p.group(0), f'path = "{crate}"') + "}"
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    notebook, base, out = (Path(a) for a in argv)
    dep = dep_line(notebook)
    if dep is None:
        return 0
    out.mkdir(parents=True, exist_ok=True)
    if (base / "evcxr.toml").is_file():
        shutil.copyfile(base / "evcxr.toml", out / "evcxr.toml")
    (out / "init.evcxr").write_text(dep + "\n")
    (out / "prelude.rs").write_text(PRELUDE)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
