"""The gradebook of a grading run: one result file per submission, written as it is graded, so
that an interrupted run resumes where it stopped and shards graded on several machines merge
into the same gradebook one run would have written.

    out/results/NAME.json   the rows of one submission, with the key it was graded under
    out/gradebook.csv       student, exercise, points, max, feedback (one row per test cell)
    out/totals.csv          student, points, max, seconds
    out/feedback/NAME.*     the feedback notebook (and HTML) of one submission

A result is reused only when its key matches: the same source notebook, the same submitted
file and the same limits. Anything else is graded again.

    >>> shard_of(["a", "b", "c", "d", "e"], 2, 2)
    ['b', 'd']
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Row:
    student: str
    exercise: str  # the test cell's grade_id
    points: float
    max: float
    feedback: str
    task: str = ""  # the answer cell (grade_id) this test checks


def shard_of(items: list, k: int, n: int) -> list:
    """Shard k of n (1-based) of a sorted list: every n-th item from the k-th. Deterministic,
    so the shards of a job array cover every submission exactly once."""
    if not (1 <= k <= n):
        raise ValueError(f"shard {k}/{n}: K must be between 1 and N")
    return items[k - 1::n]


def parse_shard(text: str) -> tuple[int, int]:
    """'2/8' -> (2, 8)."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: write K/N, e.g. 2/8 (shard 2 of 8)") from None
    shard_of([], k, n)
    return k, n


def key(source: Path, submission: Path, limits: dict) -> str:
    """What a result was graded from: source, submission (its bytes) and limits."""
    h = hashlib.sha256()
    for p in (source, submission):
        h.update(p.read_bytes() if p.is_file() else b"<missing>")
        h.update(b"\0")
    h.update(json.dumps(limits, sort_keys=True).encode())
    return h.hexdigest()


def result_path(out: Path, student: str) -> Path:
    return out / "results" / f"{student}.json"


def save(out: Path, student: str, rows: list[Row], seconds: float, status: dict, k: str) -> None:
    """Writes one submission's result atomically (a killed run leaves no half file)."""
    path = result_path(out, student)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": k, "student": student, "seconds": seconds,
                               "status": {str(i): v for i, v in status.items()},
                               "rows": [asdict(r) for r in rows]}, ensure_ascii=False, indent=1))
    os.replace(tmp, path)


def load(out: Path, student: str, k: str | None = None) -> dict | None:
    """The saved result of `student` (only if graded under key `k`, when given)."""
    path = result_path(out, student)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if k is not None and data.get("key") != k:
        return None
    data["rows"] = [Row(**r) for r in data["rows"]]
    return data


def write(out: Path, results: list[dict]) -> None:
    """gradebook.csv and totals.csv from results (dicts as `load` gives them)."""
    out.mkdir(parents=True, exist_ok=True)
    results = sorted(results, key=lambda r: r["student"])
    with open(out / "gradebook.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "exercise", "points", "max", "feedback"])
        for res in results:
            for r in res["rows"]:
                w.writerow([res["student"], r.exercise, f"{r.points:g}", f"{r.max:g}", r.feedback])
    with open(out / "totals.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "points", "max", "seconds"])
        for res in results:
            w.writerow([res["student"], f"{sum(r.points for r in res['rows']):g}",
                        f"{sum(r.max for r in res['rows']):g}", f"{res['seconds']:.1f}"])


def merge(out: Path, shards: list[Path]) -> list[dict]:
    """Joins the results and feedback of shard folders into `out` and writes its gradebook.
    A student graded in two shards is an error (the shards overlap)."""
    results: dict[str, dict] = {}
    for shard in shards:
        files = sorted((shard / "results").glob("*.json"))
        if not files:
            raise SystemExit(f"{shard}: no results/ folder with graded submissions: is it a shard's --out?")
        for f in files:
            res = load(shard, f.stem)
            if res is None:
                raise SystemExit(f"{f}: unreadable result")
            if res["student"] in results:
                raise SystemExit(f"{res['student']} was graded in two shards (the second is {shard}): "
                                 "grade each shard with the same N and a different K")
            results[res["student"]] = res
            if shard.resolve() != out.resolve():
                (out / "results").mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, result_path(out, res["student"]))
                for fb in (shard / "feedback").glob(f"{res['student']}.*"):
                    (out / "feedback").mkdir(parents=True, exist_ok=True)
                    shutil.copy2(fb, out / "feedback" / fb.name)
    write(out, list(results.values()))
    return list(results.values())
