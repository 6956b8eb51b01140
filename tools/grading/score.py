"""Points and feedback from an executed, assembled notebook (the Score and Feedback steps).
What a cell printed never decides a test: its end line does (grading.execute)."""
from __future__ import annotations

import copy
import re

import nbformat

import gradebook
from grading.markup import (exercise_of_tests, exercise_title, grade_id, is_solution, is_test, nbg, end_line,
                            end_token, strip_hidden)

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
Row = gradebook.Row
AFTER_TESTS = ("*Grading stopped here: no test cell follows, so the cells below cannot change your points "
               "and were not run (run them in your own notebook).*")
NOT_ANSWERED = "not answered yet: replace the todo!() in the answer cell with your code"


def stream_text(cell, name: str) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == name)


def error_text(cell) -> str:
    parts = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            tb = "\n".join(o.get("traceback", [])) or f"{o.get('ename')}: {o.get('evalue')}"
            parts.append(ANSI.sub("", tb))
    return "\n".join(parts)


def panic_message(stderr: str) -> str:
    """The message of a Rust panic as evcxr prints it on stderr, without the boilerplate."""
    lines = ANSI.sub("", stderr).splitlines()
    msg: list[str] = []
    capture = False
    for line in lines:
        if re.match(r"thread '.*?'.*? panicked at", line):
            capture = True
            rest = line.split("panicked at", 1)[1]
            # old format: "panicked at 'message', src/lib.rs:1:2"
            m = re.match(r"\s*'(.*)',\s*\S+:\d+:\d+\s*$", rest)
            if m:
                msg.append(m.group(1))
            continue
        if line.startswith("note: run with") or line.startswith("stack backtrace"):
            capture = False
            continue
        if capture:
            msg.append(line)
    text = "\n".join(msg).strip()
    return text or ANSI.sub("", stderr).strip()


def shorten(text: str, limit: int = 600) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def compile_error(text: str) -> str:
    """The compiler's messages from an evcxr error output, without the code excerpts and the
    drawings around them: at most four distinct ones."""
    keep: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        label = re.search(r"[\^─┬╰]+\s+(\S.*)$", s)  # "^^^^ not found in this scope"
        if label and re.match(r"^[\s\^─┬╰│|]*[\^─╰]", s):
            msg = label.group(1)
        elif re.match(r"^(error|Error|help:|note:)", s):
            msg = s
        elif re.match(r"^[a-z][a-z ,`'’]*[a-z`']", s) and not re.search(r"[;{}=]|\b(let|fn)\b", s):
            msg = s  # plain message lines, e.g. "cannot find function `double` in this scope"
        else:
            continue
        if msg not in keep:
            keep.append(msg)
        if len(keep) >= 4:
            break
    return "\n".join(keep) or text


def hide_ok(cell) -> None:
    """Removes the grader's last line from a test cell's source."""
    token = end_token(cell)
    if token and cell.source.endswith(end_line(token)):
        cell.source = cell.source[: -len(end_line(token))]
    cell.get("metadata", {}).pop("nbgrade", None)


def describe_failure(cell, st: dict) -> str:
    """Feedback a student can act on for a test or answer cell that did not pass."""
    kind = st.get("status")
    if kind in ("timeout", "dead", "not-run", "skipped"):
        why = st.get("why", kind)
        if kind == "timeout":
            return f"{why} (an endless loop, or far too slow?); its kernel was stopped"
        return why
    err = error_text(cell)
    if not err and not stream_text(cell, "stderr") and st.get("why"):
        return st["why"]
    if err:
        return "did not compile or run: " + shorten(compile_error(err))
    stderr = stream_text(cell, "stderr")
    msg = panic_message(stderr)
    if "not yet implemented" in msg:
        return NOT_ANSWERED
    return shorten(msg)





def passed_line(cell) -> str:
    """What a passed test said: its last ✓ line."""
    said = [l for l in stream_text(cell, "stdout").splitlines() if l.strip().startswith("✓")]
    return said[-1].strip() if said else "passed"


def why_not_passed(cell, st: dict, stubbed: bool) -> dict:
    """The status to explain a test cell that ran ("ok") but did not show its end line."""
    if stubbed:
        why = NOT_ANSWERED
    elif st.get("probe", "").startswith("the kernel's output"):
        why = st["probe"]
    else:
        last = printed_lines(cell)
        why = (f"the test stopped before its end; its last output: {shorten(last[-1], 300)}" if last
               else "the test stopped before its end without a message (a panic whose message "
                    "was lost?); run it in your notebook to see why")
    return {"status": "failed", "why": why}


def test_row(cell, st: dict, task: str, not_own: dict[str, list[str]], answer_problems: list[str],
             stubbed: bool) -> Row:
    """The row of one test cell: its points (only when its end line showed and the exercise's
    answer is the student's own) and its feedback."""
    maxp = float(nbg(cell)["points"])
    if task in not_own:
        return Row("", grade_id(cell), 0.0, maxp, " | ".join(not_own[task]), task)
    if st.get("passed"):
        return Row("", grade_id(cell), maxp, maxp, passed_line(cell), task)
    if st["status"] == "ok":
        st = why_not_passed(cell, st, stubbed)
    fb = describe_failure(cell, st)
    if answer_problems:
        fb = " | ".join(answer_problems + [f"test: {fb}"])
    return Row("", grade_id(cell), 0.0, maxp, fb, task)


def grade_executed(nb, status: dict[int, dict], notes: list[str],
                   not_own: dict[str, list[str]] | None = None) -> list[Row]:
    """Points and feedback for each test cell of an executed, assembled notebook (Score). A
    test earns its points only when its end line proved it ran to its end (status
    "passed"), and its exercise's answer is the student's own (`not_own`: exercise -> why
    not). What a cell printed never decides a test. Failures of answer cells (and added cells
    not run) since the last test come first in a failed test's feedback."""
    rows = []
    not_own = not_own or {}
    exercise = exercise_of_tests(nb)
    answer_problems: list[str] = []  # failures of answer cells since the last test cell
    stubbed = False  # an answer cell since the last test cell still has its todo!() stub
    for index, cell in enumerate(nb.cells):
        st = status.get(index, {"status": "not-run", "why": "not run"})
        if is_solution(cell) and cell.cell_type == "code":
            stubbed = stubbed or f'todo!("{grade_id(cell)}:' in cell.source
            if st["status"] == "skipped":
                answer_problems.append(st["why"])
            elif st["status"] not in ("ok", "not-run"):
                answer_problems.append(f"your answer cell {grade_id(cell)!r} failed: {describe_failure(cell, st)}")
        elif nbg(cell) == {} and cell.get("metadata", {}).get("nbgrade", {}).get("skip"):
            answer_problems.append(cell.metadata["nbgrade"]["skip"])
        elif is_test(cell):
            rows.append(test_row(cell, st, exercise.get(index) or "", not_own, answer_problems, stubbed))
            answer_problems = []
            stubbed = False
    notes = [n for n in notes if rows and n not in rows[0].feedback]  # a note said under the first test already
    if notes and rows:
        rows[0].feedback = " | ".join(notes + [rows[0].feedback])
    return rows


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def printed_lines(cell) -> list[str]:
    """What a test cell printed besides its own ✓ line (the student's debug prints, mostly)."""
    return [l for l in stream_text(cell, "stdout").splitlines() if l.strip() and not l.strip().startswith("✓")]


def feedback_notebook(nb, rows: list[Row], student: str, header: str) -> nbformat.NotebookNode:
    """The executed notebook with hidden tests blanked. It opens with a table per exercise
    (points, verdict, the first line of the reason); under each test cell its verdict, and for a
    failed test the message next to the student's answer code."""
    out = copy.deepcopy(nb)
    by_id = {r.exercise: r for r in rows}
    total = sum(r.points for r in rows)
    most = sum(r.max for r in rows)
    lines = [f"# Feedback for {student}: {total:g} / {most:g} points", "", header, "",
             "| exercise | test | points | verdict | reason |", "|---|---|---|---|---|"]
    titles = {grade_id(c): exercise_title(c) for c in out.cells if is_solution(c)}
    for r in rows:
        verdict = "✓ passed" if r.points == r.max else "✗ failed"
        first = r.feedback.split(" | ")[0].splitlines()[0] if r.feedback else ""
        lines.append(f"| {titles.get(r.task, r.task) or '–'} | {r.exercise} | {r.points:g} / {r.max:g} | {verdict} | {_md_cell(shorten(first, 160))} |")
    cells = [nbformat.v4.new_markdown_cell("\n".join(lines))]
    answers = {grade_id(c): c.source for c in out.cells if is_solution(c) and c.cell_type == "code"}
    stopped = False
    for cell in out.cells:
        if not stopped and cell.get("metadata", {}).get("nbgrade", {}).get("after_tests"):
            stopped = True
            cells.append(nbformat.v4.new_markdown_cell(AFTER_TESTS))
        if is_test(cell):
            cell.source = strip_hidden(cell.source, "// (hidden tests, run by the grader)")
            hide_ok(cell)
        else:
            cell.get("metadata", {}).pop("nbgrade", None)
        cells.append(cell)
        if is_test(cell) and grade_id(cell) in by_id:
            r = by_id[grade_id(cell)]
            mark = "✓" if r.points == r.max else "✗"
            text = f"**{mark} {r.exercise}: {r.points:g} / {r.max:g}** — {r.feedback}"
            extra = printed_lines(cell)
            if extra:
                text += (f"\n\nYour code printed {len(extra)} line(s) in this test (in the output above); "
                         "printing never changes a grade.")
            if r.points < r.max and r.task in answers:
                text += f"\n\nYour answer (`{r.task}`):\n\n```rust\n{answers[r.task]}\n```"
            cells.append(nbformat.v4.new_markdown_cell(text))
    out.cells = cells
    return out


