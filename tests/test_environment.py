"""environment.yml (for conda users) pins the same Python packages as requirements.txt
(what `make setup` installs)."""
import re

from conftest import ROOT


def pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"^\s*(?:-\s*)?([A-Za-z0-9_.-]+)==([^\s#]+)", text, re.M))


def test_environment_yml_pins_match_requirements():
    req = pins((ROOT / "requirements.txt").read_text())
    env = pins((ROOT / "environment.yml").read_text())
    assert req, "requirements.txt has no pins"
    assert env == req


def test_torch_matches_tch():
    # tch 0.26 is built for libtorch 2.13.
    cargo = (ROOT / "crates" / "convlab" / "Cargo.toml").read_text()
    assert re.search(r'^tch = (\{ version = )?"0\.26"', cargo, re.M)
    assert pins((ROOT / "requirements.txt").read_text())["torch"] == "2.13.0"


def test_kernel_loads_convlab_without_network(monkeypatch):
    # evcxr empties the build folder's Cargo.lock at each kernel start, so `:dep` resolves the
    # crates again: the launcher makes cargo do that offline, from its local cache. Here the
    # network is cut (an unreachable proxy); online resolution would fail.
    import nbformat
    import nbrun
    crate = ROOT / "crates" / "convlab"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f':dep convlab = {{ path = "{crate}", default-features = false }}'),
                nbformat.v4.new_code_cell('println!("{}", convlab::filters::horizontal_edge().sum());')]
    monkeypatch.setenv("CARGO_HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("CARGO_NET_RETRY", "0")
    monkeypatch.delenv("CARGO_NET_OFFLINE", raising=False)
    res = nbrun.execute("offline.ipynb", notebook=nb, timeout=600, cwd=ROOT)
    assert res.ok, [str(p) for p in res.problems]
    assert "0" in "".join(o.get("text", "") for o in res.notebook.cells[1].outputs)
