#!/usr/bin/env python3
"""Runs your notebooks top to bottom, as they are saved, and lists every test cell ✓ or ✗.

    python tools/check.py                          # every notebook in notebooks/
    python tools/check.py 01 notebooks/02-vgg16.ipynb --timeout 300
    python tools/check.py 01 --out build/checked   # also keep the notebook with its outputs

Each notebook runs in a fresh `rust` kernel, every cell in order, going on after a failure
(as "Run All" would if it did not stop). A test cell is ✓ when it ran to its end without an
error or a panic; otherwise ✗, with the first lines of what went wrong. Other cells that
failed (an answer cell that does not compile, a todo!() you have not replaced yet) are listed
too. Exit status 0 when every notebook ran to its end, whatever the tests said; 1 when a
notebook could not (its kernel did not start or died, or a cell ran past the time limit).
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def find_notebooks(names: list[str]) -> list[Path]:
    """Notebook paths from paths or name prefixes ("01", "02-vgg16")."""
    folder = ROOT / "notebooks"
    if not names:
        return sorted(folder.glob("*.ipynb"))
    found = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            found.append(path)
            continue
        matches = sorted(folder.glob(f"{name}*.ipynb"))
        if len(matches) != 1:
            known = ", ".join(p.name for p in sorted(folder.glob("*.ipynb")))
            raise SystemExit(f"check: {name!r} names {len(matches)} notebooks in {folder}; "
                             f"name one of: {known}")
        found.append(matches[0])
    return found


def is_test(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {}) or {}
    return bool(meta.get("grade")) and not meta.get("solution") and cell.get("cell_type") == "code"


def test_name(cell, index: int) -> str:
    meta = cell.get("metadata", {}).get("nbgrader", {}) or {}
    return meta.get("grade_id") or f"test in cell {index}"


def what_went_wrong(message: str) -> str:
    """The few lines of an error or a panic report that say what is wrong."""
    lines = [l.rstrip() for l in ANSI.sub("", message).splitlines()]
    for i, line in enumerate(lines):  # a panic: the message after "panicked at …:"
        if "panicked at" in line:
            after = line.split("panicked at", 1)[1]
            old = re.match(r"\s*'(.*)',\s*\S+:\d+:\d+\s*$", after)  # older Rust: one line
            if old:
                return old.group(1)
            rest = [l for l in lines[i + 1:] if l.strip() and not l.startswith("note: run with")]
            text = " ".join(l.strip() for l in rest[:3])
            if "not yet implemented" in text:
                return "not answered yet: " + text.split("not yet implemented:", 1)[-1].strip()
            return text
    errors = compile_errors(lines)
    if errors:
        return " / ".join(errors[:2]) + (f" (and {len(errors) - 2} more)" if len(errors) > 2 else "")
    return " ".join(l.strip() for l in lines if l.strip())


def compile_errors(lines: list[str]) -> list[str]:
    """The compiler's messages, once each, without code excerpts and warnings. evcxr writes
    them as "[E0425] Error: message", "Error: message", "error: message", or as a caret line
    under the code followed by the message."""
    found: list[str] = []
    for i, line in enumerate(lines):
        m = re.match(r"^\s*(?:\[E\d+\]\s*)?(?:error|Error)(?:\[E\d+\])?:\s*(.+)$", line)
        msg = m.group(1).strip() if m else None
        if msg is None and i > 0 and re.match(r"^\s*\^+", lines[i - 1]) and line and not line[0].isspace():
            msg = line.strip()
        if not msg or msg.startswith(("warning", "unused")):
            continue
        name = re.match(r"cannot find value `(\w+)` in this scope", msg)
        if name:
            msg = (f"`{name.group(1)}` is not defined: the cell that makes it failed or did not run "
                   "(see above; answer the exercises in order)")
        if msg not in found:
            found.append(msg)
    return found


def shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def passed_line(cell) -> str:
    """What a passing test printed last (its ✓ line), if anything."""
    said = "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")
    lines = [l.strip() for l in said.splitlines() if l.strip()]
    return lines[-1].lstrip("✓ ").strip() if lines else ""


def check(path: Path, timeout: int, out: Path | None = None) -> bool:
    """Runs one notebook and prints its report; True when it ran to its end."""
    import nbformat
    import nbrun

    rel = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
    print(f"\n{rel}: running every cell (a fresh kernel; a minute or two)", flush=True)
    t0 = time.monotonic()
    try:
        nb = nbformat.read(path, as_version=4)
        # a kernel may compile the crate while it starts (after the crate changed): give it the
        # time a cell gets, not nbclient's default minute
        result = nbrun.execute(path, timeout=timeout, notebook=nb, startup_timeout=timeout)
    except Exception as e:  # the kernel did not start, or the file is not a notebook
        print(f"  could not run {rel}: {type(e).__name__}: {shorten(str(e), 1000)}")
        return False
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(result.notebook, out / path.name)
    problems = {p.index: p for p in result.problems}
    code = [i for i, c in enumerate(result.notebook.cells) if c.cell_type == "code"]
    not_run = [i for i in code if i not in result.cell_seconds]
    passed = failed = 0
    for i in code:
        cell = result.notebook.cells[i]
        if is_test(cell):
            if i in problems:
                failed += 1
                print(f"  ✗ {test_name(cell, i)}: {shorten(what_went_wrong(problems[i].message))}")
            elif i in result.cell_seconds:
                passed += 1
                said = passed_line(cell)
                print(f"  ✓ {test_name(cell, i)}" + (f": {said}" if said else ""))
            else:
                failed += 1
                print(f"  ✗ {test_name(cell, i)}: not run")
        elif i in problems:
            first = next((l for l in cell.source.splitlines() if l.strip()), "(empty)")
            print(f"    cell {i} ({shorten(first.strip(), 50)}) failed: "
                  f"{shorten(what_went_wrong(problems[i].message))}")
    tests = passed + failed
    seconds = time.monotonic() - t0
    if not_run:
        stop = next((p for p in result.problems if p.index not in result.cell_seconds), None)
        why = f": {shorten(what_went_wrong(stop.message))}" if stop else ""
        print(f"{rel}: STOPPED before its end: {len(not_run)} of {len(code)} code cells did not run{why}")
        return False
    print(f"{rel}: ran to its end in {seconds:.0f} s; {passed} of {tests} test cells pass"
          + ("" if passed == tests else " (✗ above: answer the exercise, save, and run again)"))
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*", help="notebook paths or name prefixes (default: all)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    ap.add_argument("--out", type=Path, help="write the executed notebooks, with their outputs, here")
    args = ap.parse_args(argv)
    notebooks = find_notebooks(args.notebooks)
    ran = [check(p, args.timeout, args.out) for p in notebooks]
    if all(ran):
        print(f"\ncheck: {len(notebooks)} notebook(s) ran to their end")
        return 0
    stopped = [p.name for p, ok in zip(notebooks, ran) if not ok]
    print(f"\ncheck: {', '.join(stopped)} did not run to the end: see the message above", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
