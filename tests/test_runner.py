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
    assert set(failing) == {1, 3}, failing
    assert "boom" in failing[1]
    assert "mismatched types" in failing[3] or "expected" in failing[3]
    # The kernel lived on: the cell after the panic ran and saw x.
    out = "".join(o.get("text", "") for o in res.notebook.cells[2].outputs)
    assert "after the panic x = 42" in out


def test_clean_notebook_passes(tmp_path):
    res = nbrun.execute(tmp_path / "t.ipynb", timeout=300, notebook=notebook('println!("hi");'), cwd=tmp_path)
    assert res.ok, res.problems
