"""Every `tests/check_cases/*.case`: a small playbook directory and the exact diagnostics.

See tests/check_cases/README.md for the format. With UPDATE_CHECK_CASES=1 the expected
sections are rewritten from what the checker says now.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from playbook_engine.engine import Engine
from playbook_engine.settings import Settings

CASES = Path(__file__).parent / "check_cases"
DEFAULT = CASES / "_default"
EXPECTED = "expected"


@dataclass
class Case:
    head: str
    files: dict[str, str]
    settings: Settings
    expected: str


def read_case(path: Path) -> Case:
    head: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] = head
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("@@ "):
            current = sections.setdefault(line[3:].strip(), [])
        else:
            current.append(line)
    texts = {name: "\n".join(lines).strip("\n") + "\n" for name, lines in sections.items()}
    expected = texts.pop(EXPECTED, "").strip("\n")
    settings = Settings.model_validate(json.loads(texts.pop("settings.json", "{}")))
    files = {
        p.relative_to(DEFAULT).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(DEFAULT.rglob("*"))
        if p.is_file()
    }
    files.update(texts)
    return Case("\n".join(head).strip("\n"), files, settings, expected)


def run_case(case: Case) -> str:
    playbooks = {name: text for name, text in case.files.items() if name.endswith(".playbook")}
    templates = {name: text for name, text in case.files.items() if name.startswith("templates/")}
    engine = Engine.from_sources(playbooks, templates, case.settings)
    return "\n".join(engine.render(d) for d in engine.diagnostics)


def _rewrite(path: Path, actual: str) -> None:
    text = path.read_text(encoding="utf-8")
    before = text.split(f"\n@@ {EXPECTED}\n")[0].rstrip("\n")
    body = f"{actual}\n" if actual else ""
    path.write_text(f"{before}\n@@ {EXPECTED}\n{body}", encoding="utf-8")


CASE_FILES = sorted(CASES.glob("*.case"))


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_check_case(path: Path) -> None:
    case = read_case(path)
    actual = run_case(case)
    if os.environ.get("UPDATE_CHECK_CASES") and actual != case.expected:
        _rewrite(path, actual)
        pytest.skip("expected output rewritten")
    assert actual == case.expected, f"{path.name}: {case.head}"


def test_every_case_says_what_it_shows() -> None:
    for path in CASE_FILES:
        assert read_case(path).head.startswith("#"), f"{path.name} has no description"
