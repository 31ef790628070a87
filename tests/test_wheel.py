"""The built wheel installs into a fresh venv and works away from the checkout.

One test, because under pytest-xdist separate tests could each build their own wheel and
venv. It checks, in order: the wheel's contents (the grammar and the adapters inside the
package, the console script), an install into a venv that sees nothing of this checkout, that
the installed package carries its grammar, and that ``playbook check`` passes on the spec.
Installing pulls the dependencies from the package index (pip's cache makes repeats quick);
set PLAYBOOK_WHEELHOUSE to a directory of wheels to look there first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

# Variables that would let the fresh venv see this checkout or the venv running the tests.
_LEAKY_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV")

# Run inside the installed venv: where the package is and where it finds its grammar.
_PROBE = """
import importlib.metadata, json, pathlib
import playbook_engine
pkg = pathlib.Path(playbook_engine.__file__).resolve().parent
try:
    from playbook_engine.parse import grammar_path
except ImportError:
    grammar = None
else:
    grammar = str(grammar_path().resolve())
print(json.dumps({
    "package_dir": str(pkg),
    "grammar": grammar,
    "version": playbook_engine.__version__,
    "dist_version": importlib.metadata.version("playbook-engine"),
}))
"""


def _run(
    cmd: list[str | Path], cwd: Path, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _ok(proc: subprocess.CompletedProcess[str], what: str) -> str:
    assert proc.returncode == 0, (
        f"{what} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
    return proc.stdout


def _build_wheel(out: Path) -> Path:
    _ok(
        _run([sys.executable, "-m", "build", "--wheel", "--outdir", out, REPO_ROOT], cwd=REPO_ROOT),
        "python -m build --wheel",
    )
    wheels = sorted(out.glob("playbook_engine-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {out}, found {wheels}"
    return wheels[0]


def _check_wheel_contents(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert len(names) == len(set(names)), "the wheel holds a path twice"
        assert "playbook_engine/__init__.py" in names
        assert (
            zf.read("playbook_engine/dsl/grammar.lark")
            == (REPO_ROOT / "dsl" / "grammar.lark").read_bytes()
        )
        assert "playbook_engine/adapters/__init__.py" in names
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "playbook = playbook_engine.cli:app" in zf.read(entry_points).decode()
    top_level = {n.split("/", 1)[0] for n in names if ".dist-info/" not in n}
    assert top_level == {"playbook_engine"}, f"the wheel installs more: {sorted(top_level)}"


def test_wheel_installs_and_checks_spec(tmp_path: Path, spec_dir: Path) -> None:
    wheel = _build_wheel(tmp_path / "dist")
    _check_wheel_contents(wheel)

    venv = tmp_path / "venv"
    _ok(_run([sys.executable, "-m", "venv", venv], cwd=tmp_path), "python -m venv")
    bindir = venv / "bin"
    install: list[str | Path] = [bindir / "python", "-m", "pip", "install", "--quiet"]
    if wheelhouse := os.environ.get("PLAYBOOK_WHEELHOUSE"):
        install += ["--find-links", wheelhouse]
    _ok(_run([*install, wheel], cwd=tmp_path), "pip install <wheel>")

    # From a directory outside the checkout, so nothing can come from the repo.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = json.loads(_ok(_run([bindir / "python", "-c", _PROBE], cwd=elsewhere), "probe"))
    package_dir = Path(probe["package_dir"])
    assert package_dir.is_relative_to(venv.resolve()), f"imported from {package_dir}"
    assert (package_dir / "dsl" / "grammar.lark").is_file()
    assert (package_dir / "adapters" / "__init__.py").is_file()
    if probe["grammar"] is not None:
        assert Path(probe["grammar"]) == package_dir / "dsl" / "grammar.lark"
    assert probe["version"] == probe["dist_version"]

    _ok(_run([bindir / "playbook", "check", spec_dir], cwd=elsewhere), "playbook check <spec>")
