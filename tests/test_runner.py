"""The notebook runner fails for real: a panic (which evcxr reports only on stderr) and a
compile error both count, and a clean notebook passes."""
import nbformat
from nbformat.v4 import new_code_cell, new_notebook

import nbrun


def notebook(*sources):
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "rust", "display_name": "Rust", "language": "rust"}
    return nb


def test_panic_and_compile_error_are_failures(tmp_path):
    nb = notebook(
        "let x = 40 + 2;",
        'panic!("boom");',
        'println!("after the panic x = {x}");',
        "let y: u32 = \"not a number\";",
    )
    res = nbrun.execute(tmp_path / "t.ipynb", timeout=300, notebook=nb, cwd=tmp_path)
    failing = {p.index: p.message for p in res.problems}
    # evcxr sometimes delivers a panic's report with the next cell's output: that cell is
    # then flagged too, never the panicking cell missed (its end marker is absent).
    assert {1, 3} <= set(failing) <= {1, 2, 3}, failing
    assert "boom" in failing[1] or "before its last line" in failing[1]
    if 2 in failing:
        assert "boom" in failing[2]
    assert "mismatched types" in failing[3] or "expected" in failing[3]
    # The kernel lived on: the cell after the panic ran and saw x.
    out = "".join(o.get("text", "") for o in res.notebook.cells[2].outputs)
    assert "after the panic x = 42" in out
    # The runner's end-of-cell marker does not show in the outputs.
    for cell in res.notebook.cells:
        assert all(nbrun.END_MARKER not in o.get("text", "") for o in cell.outputs)


def test_clean_notebook_passes(tmp_path):
    res = nbrun.execute(tmp_path / "t.ipynb", timeout=300, notebook=notebook('println!("hi");'), cwd=tmp_path)
    assert res.ok, res.problems
