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
    assert re.search(r'^tch = "0\.26"', cargo, re.M)
    assert pins((ROOT / "requirements.txt").read_text())["torch"] == "2.13.0"
