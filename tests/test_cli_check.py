"""`playbook check`: output format, summary, exit codes, JSON and --strict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from playbook_engine.cli import app

CASES = Path(__file__).parent / "check_cases"
SCHEMA = (CASES / "_default" / "schema.playbook").read_text(encoding="utf-8")
runner = CliRunner()

TYPO = 'playbook "P"\n  rule "R"\n    when teir is tech-touch\n    then add tag "x"\n'
WAIT_LAST = (
    'playbook "P"\n  rule "R"\n    when health < 5\n    then\n      add tag "x"\n      wait 1 day\n'
)


def directory(tmp_path: Path, **files: str) -> Path:
    (tmp_path / "schema.playbook").write_text(SCHEMA, encoding="utf-8")
    for name, text in files.items():
        (tmp_path / f"{name}.playbook").write_text(text, encoding="utf-8")
    return tmp_path


def test_clean_directory(spec_dir: Path) -> None:
    result = runner.invoke(app, ["check", str(spec_dir)])
    assert result.exit_code == 0, result.output
    assert result.output == "ok: 7 files, 14 rules, 5 templates checked\n"


def test_errors_are_printed_like_a_compiler(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(directory(tmp_path, main=TYPO))])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "main.playbook:3:10: error: unknown field 'teir' (did you mean 'tier'?)",
        "    3 |     when teir is tech-touch",
        "      |          ^^^^",
        "1 error, 0 warnings in 2 files",
    ]


def test_warnings_pass_unless_strict(tmp_path: Path) -> None:
    path = str(directory(tmp_path, main=WAIT_LAST))
    result = runner.invoke(app, ["check", path])
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "0 errors, 1 warning in 2 files"
    assert runner.invoke(app, ["check", path, "--strict"]).exit_code == 1


def test_json_format(tmp_path: Path) -> None:
    path = str(directory(tmp_path, main=TYPO, other=WAIT_LAST.replace('"P"', '"Q"')))
    result = runner.invoke(app, ["check", path, "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["summary"] == {
        "files": 3, "rules": 2, "templates": 0, "errors": 1, "warnings": 1, "ok": False,
    }
    assert report["diagnostics"][0] == {
        "file": "main.playbook",
        "line": 3,
        "column": 10,
        "end_line": 3,
        "end_column": 14,
        "severity": "error",
        "code": "unknown-field",
        "message": "unknown field 'teir' (did you mean 'tier'?)",
    }
    assert [d["severity"] for d in report["diagnostics"]] == ["error", "warning"]


def test_json_of_a_clean_directory(spec_dir: Path) -> None:
    result = runner.invoke(app, ["check", str(spec_dir), "-f", "json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["diagnostics"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "{tmp}/nope"], "error: no such directory: {tmp}/nope"),
        (["check", "{tmp}"], "error: no .playbook files in {tmp}"),
    ],
)
def test_bad_directories_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2
    assert result.output.strip() == message.format(tmp=tmp_path)
    assert "Traceback" not in result.output


def test_missing_argument_is_a_usage_error() -> None:
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_bad_format_is_a_usage_error(spec_dir: Path) -> None:
    assert runner.invoke(app, ["check", str(spec_dir), "--format", "xml"]).exit_code == 2


def test_the_module_runs_as_a_program(spec_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "playbook_engine.cli", "check", str(spec_dir)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        "ok: 7 files, 14 rules, 5 templates checked\n",
        "",
    )
