#!/usr/bin/env python3
"""`make bench-grading`: how long grading takes, written to BENCHMARKS.md (section "## Grading").

Notebook 1: N copies of the fixture class of tests/test_grading.py (24 submissions: right,
wrong, an endless loop, a stack overflow, memory refused, panics, forgers, shadowed asserts, …)
graded with the default limits and WORKERS workers; every submission's points are checked against the fixture's expected points. It
prints the wall time per submission and the projection for a class of 100. Notebooks 2 and
3: the answer notebook and the student notebook graded by one worker each, on the test data
the tests use (random VGG-16-shaped weights, 200-picture CIFAR-10 batches), seconds per
submission.

    python tools/gradebench.py                        # notebook 1 (4 copies: 96), 2 and 3
    python tools/gradebench.py --copies 1 --only 01   # 24 submissions of notebook 1
    python tools/gradebench.py --fresh-kernels        # a new kernel per submission, to compare
    python tools/gradebench.py --no-write             # print only
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))
import nbbench  # noqa: E402
import nbgrade  # noqa: E402

SECTION = "## Grading"
JSON_OUT = ROOT / "build" / "bench" / "grading.json"
DATA = nbgrade.CACHE / "grading-bench-data"


def test_data() -> dict[str, str]:
    """The environment that points notebooks 2 and 3 at the tests' data (made once, kept)."""
    weights, cifar = DATA / "vgg16-test.safetensors", DATA / "cifar-10-batches-bin"
    cli = ["cargo", "run", "--quiet", "-p", "convlab", "--bin", "convlab", "--"]
    if not weights.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        subprocess.run([*cli, "make-test-weights", str(weights)], cwd=ROOT, check=True)
    if not (cifar / "data_batch_5.bin").exists():
        subprocess.run([*cli, "make-test-cifar", str(cifar), "--per-batch", "200"], cwd=ROOT, check=True)
    return {"CONVLAB_VGG_WEIGHTS": str(weights), "CONVLAB_CIFAR_DIR": str(cifar), "CONVLAB_DEVICE": "cpu"}


def grade_timed(subs: Path, source: Path, out: Path, workers: int, fresh: bool, **limits) -> tuple[list, float]:
    t0 = time.monotonic()
    graded = nbgrade.grade_class(subs, source, out, workers=workers, build_base=nbgrade.default_base(),
                                 resume=False, reuse_kernels=not fresh, log=lambda m: print("  " + m), **limits)
    return graded, time.monotonic() - t0


def bench_nb1(work: Path, copies: int, workers: int, fresh: bool) -> dict:
    """Notebook 1: the fixture class, `copies` times, with the default limits."""
    import test_grading as fixture

    subs = work / "nb1"
    # Named copy first (01-correct, …, 02-correct, …): graded in name order, copy after copy, so
    # the endless loops come one per copy, as in a class, not all in a row.
    for k in range(copies):
        fixture.write_nb1_class(subs, f"{k + 1:02d}-")
    graded, wall = grade_timed(subs, fixture.NB1, work / "nb1-out", workers, fresh)

    def name(g) -> str:  # the fixture's name, without the copy
        return g.student.split("-", 1)[1]

    wrong = []
    for g in graded:
        got = {r.exercise: r.points for r in g.rows}
        if name(g) == "protocol_forger":
            ok = got["test-multiply-sum"] == got["test-convolve-size"] == got["test-convolve-reference"] == 0
        else:
            ok = got == fixture.NB1_EXPECTED[name(g)]
        if not ok:
            wrong.append(g.student)
    n = len(graded)
    per_worker = sum(g.seconds for g in graded) / n
    loop = [g.seconds for g in graded if name(g) == "endless_loop"]
    # Faults (a cell past its limit, a kernel's process ended): the fresh kernel and the cells
    # run again before grading goes on (execute.run_notebook).
    recoveries = [st["recovery_seconds"] for g in graded for st in g.status.values() if "recovery_seconds" in st]
    return {"n": n, "wall": wall, "per_submission": wall / n, "per_worker": per_worker,
            "faults": len(recoveries), "recovery": sum(recoveries),
            "fault_subs": sorted({name(g) for g in graded
                                  if any("recovery_seconds" in st for st in g.status.values())}),
            "without_loop": (wall - sum(loop) / workers) / max(1, n - len(loop)),
            "correct": [round(g.seconds, 1) for g in graded if name(g) == "correct"],
            "median": statistics.median(g.seconds for g in graded),
            "wrong": wrong}


def bench_other(work: Path, name: str, fresh: bool, env: dict) -> dict:
    """Notebook 2 or 3: its answer and its student notebook, one worker."""
    import test_grading as fixture
    from nbgrade_helpers import student_of, submission_from

    src = next(p for p in fixture.GRADED_SOURCES if p.name.startswith(name))
    subs = work / name
    submission_from(src, subs, "answer", nbgrade.nbformat.read(src, as_version=4))
    submission_from(src, subs, "student", student_of(src))
    os.environ.update(env)
    graded, wall = grade_timed(subs, src, work / f"{name}-out", 1, fresh, cell_timeout=300, notebook_timeout=1500)
    by = {g.student: g for g in graded}
    return {"n": len(graded), "wall": wall, "answer": by["answer"].seconds, "student": by["student"].seconds,
            "answer_full": all(r.points == r.max for r in by["answer"].rows),
            "student_zero": all(r.points == 0 for r in by["student"].rows)}


def _faults_text(r: dict, workers: int) -> str:
    """What going on after faults cost (a fresh kernel, the cells before the fault run again)."""
    if "faults" not in r:
        return ""
    if not r["faults"]:
        return "No cell faulted. "
    return (f"{r['faults']} cells faulted ({', '.join(r['fault_subs'])}: a cell past its limit or a kernel's "
            f"process ended); going on after each in a fresh kernel, with the cells before it run again, took "
            f"{r['recovery'] / r['faults']:.1f} s of a worker's time per fault, {r['recovery']:.0f} s in all: "
            f"{r['recovery'] / r['n']:.1f} s per submission of the class, "
            f"about {r['recovery'] / r['n'] / workers:.1f} s of wall time with {workers} workers. ")


def section_text(res: dict) -> str:
    m = res["machine"]
    load = ", ".join(f"{x:.2f}" for x in m["loadavg_at_start"])
    end = ", ".join(f"{x:.2f}" for x in res["loadavg_at_end"])
    mode = "a new kernel per submission (--fresh-kernels)" if res["fresh"] else \
        "one kernel per worker, cleared between submissions (the default)"
    lines = [SECTION, "",
             f"`make bench-grading` (`tools/gradebench.py`), {res['date']}: {mode}. Machine: {m['nproc']} cores "
             f"(`nproc`), {m['cpu']}, {m['memory_gib']} GiB memory; load average {load} at the start, "
             f"{end} at the end (other work on the machine slows every figure).", ""]
    def load(r) -> str:
        return " → ".join(", ".join(f"{x:.1f}" for x in la) for la in r["load"])

    if "01" in res:
        r = res["01"]
        lines += ["| notebook | submissions | workers | wall time per submission | per worker | 100 submissions |",
                  "|---|---|---|---|---|---|",
                  f"| 01-convolutions, the fixture class × {res['copies']} | {r['n']} | {res['workers']} | "
                  f"{r['per_submission']:.1f} s | {r['per_worker']:.1f} s | {r['per_submission'] * 100 / 60:.0f} min |",
                  "",
                  f"The class holds one endless loop per copy, which runs to the {nbgrade.CELL_TIMEOUT:.0f} s cell limit; without it "
                  f"the wall time is {r['without_loop']:.1f} s per submission "
                  f"({r['without_loop'] * 100 / 60:.0f} min per 100). The right answer took "
                  f"{', '.join(f'{s:g}' for s in r['correct'])} s of its worker's time (a worker's first "
                  f"submission also starts its kernel); the median submission {r.get('median', 0):.1f} s. "
                  f"{_faults_text(r, res['workers'])}"
                  f"Points as expected "
                  f"for every submission: {'yes' if not r['wrong'] else 'NO: ' + ', '.join(r['wrong'])}. "
                  f"Load average during the run ({r['date']}): {load(r)}.", ""]
    if res.get("earlier"):
        lines += ["Figures of an earlier run: " + ", ".join(f"notebook {k} ({d})" for k, d in res["earlier"].items())
                  + " (`--only` ran the rest).", ""]
    others = [k for k in ("02", "03") if k in res]
    if others:
        lines += ["| notebook (test data, 1 worker) | answer notebook | student notebook | load average (start → end) |",
                  "|---|---|---|---|"]
        for k in others:
            r = res[k]
            lines.append(f"| {k} | {r['answer']:.0f} s ({'full marks' if r['answer_full'] else 'NOT full marks'}) | "
                         f"{r['student']:.0f} s ({'0 points' if r['student_zero'] else 'NOT 0 points'}) | "
                         f"{load(r)} ({r['date']}) |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=4,
                    help="copies of notebook 1's fixture class (24 each; default 4: 96 submissions)")
    ap.add_argument("--workers", type=int, default=nbgrade.default_workers())
    ap.add_argument("--only", nargs="+", choices=["01", "02", "03"], default=["01", "02", "03"])
    ap.add_argument("--fresh-kernels", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md")
    args = ap.parse_args(argv)
    res = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M+00:00"),
           "machine": nbbench.machine(), "fresh": args.fresh_kernels, "copies": args.copies,
           "workers": args.workers}
    env = test_data() if set(args.only) & {"02", "03"} else {}
    with tempfile.TemporaryDirectory(prefix="gradebench-") as tmp:
        for name in args.only:
            print(f"grading notebook {name} …", flush=True)
            start = os.getloadavg()
            res[name] = (bench_nb1(Path(tmp), args.copies, args.workers, args.fresh_kernels) if name == "01"
                         else bench_other(Path(tmp), name, args.fresh_kernels, env))
            res[name]["load"] = [start, os.getloadavg()]
            res[name]["date"] = res["date"]
            print(f"  {name}: {res[name]}", flush=True)
    res["loadavg_at_end"] = os.getloadavg()
    if JSON_OUT.exists() and set(args.only) != {"01", "02", "03"}:
        # a part: the other notebooks' last figures stay (their dates and loads are kept)
        old = json.loads(JSON_OUT.read_text())
        res = {**{k: v for k, v in old.items() if k in ("01", "02", "03") and k not in res}, **res}
        res["earlier"] = {k: old[k].get("date", old.get("date")) for k in ("01", "02", "03")
                          if k in old and k not in args.only}
    JSON_OUT.parent.mkdir(parents=True, exist_ok=True)
    JSON_OUT.write_text(json.dumps(res, indent=1) + "\n")
    text = section_text(res)
    print(text)
    if not args.no_write:
        path = ROOT / "BENCHMARKS.md"
        path.write_text(nbbench.replace_section(path.read_text(), text, SECTION))
        print(f"wrote {path.relative_to(ROOT)} (section '{SECTION}')")
    return 0 if not res.get("01", {}).get("wrong") else 1


if __name__ == "__main__":
    sys.exit(main())
