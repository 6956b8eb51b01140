"""The setup on a fresh machine, checked in seconds on every test run: the environment script
sources with nothing installed, `setup.sh --check` reports what a first run installs, and every
fault a newcomer can meet stops the setup with a message that says what to do.

The full cold install (clone, empty cache, the README's commands) is scripts/cold-start.sh;
it takes about half an hour and is run by hand when the install path changes."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

SETUP = ROOT / "scripts" / "setup.sh"
STEPS = ROOT / "scripts" / "steps.sh"


def bash(script: str, env: dict, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def fresh_env(tmp_path: Path, **extra) -> dict:
    """The environment of a newcomer's shell: no course cache, no CARGO_TARGET_DIR or
    EVCXR_TMPDIR from an earlier `. scripts/env.sh`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CONVLAB_", "EVCXR_")) and k not in ("CARGO_TARGET_DIR", "VIRTUAL_ENV")}
    env["CONVLAB_CACHE"] = str(tmp_path / "empty-cache")
    env.update(extra)
    return env


def fake_tools(folder: Path, **scripts: str) -> Path:
    """A folder of small executables that stand in for real tools (first on PATH)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in scripts.items():
        exe = folder / name
        exe.write_text("#!/bin/sh\n" + body + "\n")
        exe.chmod(0o755)
    return folder


def test_env_sources_with_nothing_installed(tmp_path):
    env = fresh_env(tmp_path)
    res = bash('set -euo pipefail; . scripts/env.sh; echo "torch-lib=[$CONVLAB_TORCH_LIB]"; '
               'echo "tmpdir=[${EVCXR_TMPDIR:-}]"', env)
    assert res.returncode == 0, res.stderr
    assert "torch-lib=[]" in res.stdout
    # Kernels lease their own build folder: the environment must not name a shared one.
    assert "tmpdir=[]" in res.stdout


def test_check_on_a_fresh_machine_lists_every_step_and_installs_nothing(tmp_path):
    env = fresh_env(tmp_path)
    res = bash(f"{SETUP} --check", env)
    assert res.returncode == 0, res.stdout + res.stderr
    todo = [l for l in res.stdout.splitlines() if l.strip().startswith("to do")]
    assert len(todo) == 5, res.stdout
    assert not any(l.strip().startswith("ok ") for l in res.stdout.splitlines()), res.stdout
    assert not (tmp_path / "empty-cache").exists(), "--check must not install anything"


def test_missing_cargo_says_install_rust(tmp_path):
    # A PATH with every system tool except cargo and rustc, and a HOME without ~/.cargo.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
        for tool in Path(folder).iterdir():
            if tool.name not in ("cargo", "rustc", "rustup") and not (bin_dir / tool.name).exists():
                (bin_dir / tool.name).symlink_to(tool)
    python = shutil.which("python3")
    (bin_dir / "python3").unlink(missing_ok=True)
    (bin_dir / "python3").symlink_to(python)
    env = fresh_env(tmp_path, PATH=str(bin_dir), HOME=str(tmp_path / "home"))
    res = bash(f"{SETUP} --check", env)
    assert res.returncode == 1
    assert "cargo not found: install Rust with rustup" in res.stderr, res.stderr


def test_old_rust_names_the_version_and_the_fix(tmp_path):
    # A HOME without ~/.cargo/bin (which env.sh puts first), and an old rustc beside cargo.
    fake = fake_tools(tmp_path / "fake", rustc='echo "rustc 1.85.1 (4eb161250 2025-03-15)"', cargo="true")
    env = fresh_env(tmp_path, PATH=f"{fake}:{os.environ['PATH']}", HOME=str(tmp_path / "home"))
    res = bash(f"{SETUP} --check", env)
    assert res.returncode == 1
    assert "rustc is 1.85.1; the course needs Rust 1.88 or newer: run `rustup update stable`" in res.stderr, res.stderr


def test_old_python_names_the_version_and_the_fix(tmp_path):
    fake = fake_tools(tmp_path / "fake", python3='echo 3.9')
    env = fresh_env(tmp_path, PATH=f"{fake}:{os.environ['PATH']}")
    res = bash(f"{SETUP} --check", env)
    assert res.returncode == 1
    assert "is Python 3.9; the course needs 3.10 or newer" in res.stderr, res.stderr
    assert "CONVLAB_PYTHON" in res.stderr


def test_no_font_without_root_names_the_package(tmp_path):
    fake = fake_tools(tmp_path / "fake", id='echo 1000')
    env = fresh_env(tmp_path, PATH=f"{fake}:{os.environ['PATH']}", CONVLAB_FONT=str(tmp_path / "none.ttf"))
    res = bash(f"{SETUP} --check", env)
    assert res.returncode == 1
    assert "no font for the pictures' titles and charts" in res.stderr, res.stderr
    assert "sudo apt-get install fonts-dejavu-core" in res.stderr


def test_half_written_venv_is_made_again(tmp_path):
    # An interrupted `python -m venv` leaves a folder without a working interpreter; an
    # interrupted `pip install` leaves no stamp: both steps are to do again.
    cache = tmp_path / "empty-cache"
    (cache / "venv" / "bin").mkdir(parents=True)
    (cache / "venv" / "pyvenv.cfg").write_text("home = /nowhere\n")
    (cache / "venv" / "bin" / "python").symlink_to("/nowhere/python3")
    res = bash(f"{SETUP} --check", fresh_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "to do    Python environment" in res.stdout
    assert "to do    Python packages of requirements.txt" in res.stdout


def test_a_failing_step_names_itself_its_line_and_what_to_do(tmp_path):
    script = tmp_path / "demo.sh"
    script.write_text(f'set -euo pipefail\n. "{STEPS}"\nstep "demo step" "do the thing"\n'
                      'true\nls /no/such/folder\necho unreachable\n')
    res = bash(f"bash {script}", dict(os.environ))
    assert res.returncode == 2  # ls's own status, passed on
    assert "unreachable" not in res.stdout
    assert 'failed during "demo step" (exit status 2)' in res.stderr, res.stderr
    assert f"at {script} line 5: ls /no/such/folder" in res.stderr, res.stderr
    assert "What to do: do the thing" in res.stderr


@pytest.mark.skipif(not (Path(os.environ.get("CONVLAB_CACHE", Path.home() / ".cache/convlab"))
                         / "evcxr" / "bin" / "evcxr_jupyter").exists(),
                    reason="needs the installed environment (the test command runs the setup first)")
def test_offline_without_the_crates_stops_at_the_build_with_what_to_do(tmp_path):
    # The installed environment, but cargo's cache emptied and the network off: the setup
    # gets to its build step and stops there, saying how to get the crates.
    env = {k: v for k, v in os.environ.items() if k != "CARGO_TARGET_DIR"}
    env.update(CARGO_HOME=str(tmp_path / "cargo-home"), CARGO_NET_OFFLINE="true",
               CARGO_TARGET_DIR=str(tmp_path / "target"))
    res = bash(str(SETUP), env)
    assert res.returncode != 0
    assert 'failed during "building convlab' in res.stderr, res.stderr[-3000:]
    assert "run once with network access so cargo can fetch the crates" in res.stderr


def test_a_step_heartbeat_holds_no_lock_of_the_caller(tmp_path):
    """The setup holds the seed's lock on fd 8 while it prewarms; the heartbeat of that step must
    not keep the lock once the step is over (its `sleep 60` used to, for up to a minute)."""
    lock = tmp_path / "lock"
    script = (f". {ROOT}/scripts/steps.sh; STEP=x; exec 8>{lock}; flock 8; with_heartbeat sleep 1; "
              f"exec 8>&-; flock -n {lock} true")
    assert subprocess.run(["bash", "-c", script], timeout=30).returncode == 0


def test_evcxr_patch_applies_to_the_pinned_release_and_keeps_its_lock(tmp_path):
    """scripts/build-evcxr.sh --prepare: the release's sources with the changes, and a Cargo.lock
    that cargo accepts as it is (`--locked`), pointing evcxr_jupyter at the changed evcxr."""
    setup = SETUP.read_text()
    version = setup.split("EVCXR_VERSION=", 1)[1].split()[0]
    env = fresh_env(tmp_path)
    res = subprocess.run([str(ROOT / "scripts" / "build-evcxr.sh"), version, "--prepare"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    jupyter = Path(res.stdout.strip().splitlines()[-1])
    changed = (jupyter.parent / f"evcxr-{version}" / "src" / "eval_context.rs").read_text()
    assert 'let declares = user_code.code_string().contains("let");' in changed
    assert "if declares && let Err(errors) = self.fix_variable_types(" in changed
    # rust-analyzer sees the standard library and the dependencies as libraries
    analyzer = (jupyter.parent / f"evcxr-{version}" / "src" / "rust_analyzer.rs").read_text()
    assert "SourceRoot::new_library(file_set)" in analyzer
    assert ".map(SourceRoot::new_local)" not in analyzer
    # and the reply of a cell waits until its last printed line is sent
    core = (jupyter / "src" / "core.rs").read_text()
    assert "let _passing = self.output_passing.lock()" in core
    assert "drop(server.output_passing.lock()" in core
    # a cell's error reply names the error (nbgrader reads ename, evalue and traceback)
    assert '"ename" => "Error",' in core and '"traceback" => array![evalue],' in core
    # `${NAME}` in a `:dep` path is the environment variable NAME
    config = (jupyter.parent / f"evcxr-{version}" / "src" / "crate_config.rs").read_text()
    assert "let expanded = expand_env(&captures[2])?;" in config
    host = next(l.split()[1] for l in subprocess.run(["rustc", "-vV"], capture_output=True, text=True)
                .stdout.splitlines() if l.startswith("host:"))
    meta = subprocess.run(["cargo", "metadata", "--locked", "--offline", "--format-version", "1",
                           "--filter-platform", host, "--manifest-path", str(jupyter / "Cargo.toml")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert meta.returncode == 0, meta.stderr[-3000:]
    evcxr = [p for p in json.loads(meta.stdout)["packages"] if p["name"] == "evcxr"]
    assert [p["manifest_path"] for p in evcxr] == [str(jupyter.parent / f"evcxr-{version}" / "Cargo.toml")]
