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
    # The runner's panic hook brings the report on stdout, in order with the cell's end:
    # the panicking cell carries its message, the next cell is clean.
    assert set(failing) == {1, 3}, failing
    assert "boom" in failing[1], failing[1]
    assert "panicked at" in failing[1], failing[1]
    assert "mismatched types" in failing[3] or "expected" in failing[3]
    # The kernel lived on: the cell after the panic ran and saw x.
    out = "".join(o.get("text", "") for o in res.notebook.cells[2].outputs)
    assert "after the panic x = 42" in out
    # The report shows as stderr, where JupyterLab shows a panic.
    err = "".join(o.get("text", "") for o in res.notebook.cells[1].outputs if o.get("name") == "stderr")
    assert "boom" in err, res.notebook.cells[1].outputs
    # The runner's own lines (end marker, panic hook) do not show in the outputs.
    assert len(res.notebook.cells) == 4
    for cell in res.notebook.cells:
        for o in cell.outputs:
            assert nbrun.END_MARKER not in o.get("text", "") and nbrun.PANIC_MARK not in o.get("text", "")


def test_panic_in_a_cell_ending_with_an_expression(tmp_path):
    """No end marker can guard such a cell: the hook alone must bring the report."""
    nb = notebook('let v: Vec<u32> = vec![1, 2];\nv[5]', 'println!("next");')
    res = nbrun.execute(tmp_path / "t.ipynb", timeout=300, notebook=nb, cwd=tmp_path)
    failing = {p.index: p.message for p in res.problems}
    assert set(failing) == {0}, failing
    assert "index out of bounds" in failing[0], failing[0]


def test_clean_notebook_passes(tmp_path):
    res = nbrun.execute(tmp_path / "t.ipynb", timeout=300, notebook=notebook('println!("hi");'), cwd=tmp_path)
    assert res.ok, res.problems
