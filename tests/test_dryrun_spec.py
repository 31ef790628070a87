"""The contract's own example: the spec directory and its fixture give exactly the 21
actions of `fixtures/expected.json`, through the Engine API and through the CLI.

Each expected object lists the keys that matter; an action matches it when it has every
one of those keys with that value. The match is one to one, and nothing else may come.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from evalkit import SCHEMA
from typer.testing import CliRunner

from playbook_engine.cli import app
from playbook_engine.engine import Engine


def _matches(action: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(key in action and action[key] == value for key, value in expected.items())


def assert_same_actions(actions: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Every expected object matched by exactly one action, in order, and no other action."""
    unmatched = [e for e in expected if not any(_matches(a, e) for a in actions)]
    extra = [a for a in actions if not any(_matches(a, e) for e in expected)]
    assert not unmatched and not extra, (
        "missing:\n" + "\n".join(map(str, unmatched)) + "\nextra:\n" + "\n".join(map(str, extra))
    )
    assert len(actions) == len(expected)
    # One to one, in the contract's stable order.
    for action, wanted in zip(actions, expected, strict=True):
        assert _matches(action, wanted), (action, wanted)


@pytest.fixture(scope="module")
def spec_engine(spec_dir: Path) -> Engine:
    engine = Engine.load(spec_dir)
    assert engine.ok, [engine.render(d) for d in engine.errors]
    return engine


@pytest.fixture(scope="module")
def expected(spec_dir: Path) -> list[dict[str, Any]]:
    data = json.loads((spec_dir / "fixtures" / "expected.json").read_text(encoding="utf-8"))
    assert len(data) == 21
    return data  # type: ignore[no-any-return]


def test_engine_api_gives_the_21_expected_actions(
    spec_engine: Engine, spec_dir: Path, expected: list[dict[str, Any]]
) -> None:
    fixture = spec_engine.load_fixture(spec_dir / "fixtures" / "accounts.yaml")
    evaluation = spec_engine.dry_run(fixture)
    assert evaluation.at == "2026-03-16T09:00:00+09:00"
    doc = evaluation.as_json()
    assert set(doc) == {"at", "actions"}
    assert_same_actions(doc["actions"], expected)
    for action in doc["actions"]:
        assert {"account", "playbook", "rule", "kind"} <= action.keys()
        if action["kind"] == "email":
            assert len(action["to"]) == 1
    assert all(not o.errors for o in evaluation.outcomes)


def test_cli_dry_run_json_gives_the_21_expected_actions(
    spec_dir: Path, expected: list[dict[str, Any]]
) -> None:
    fixture = spec_dir / "fixtures" / "accounts.yaml"
    result = CliRunner().invoke(
        app, ["dry-run", str(spec_dir), "--fixtures", str(fixture), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["at"] == "2026-03-16T09:00:00+09:00"
    assert_same_actions(doc["actions"], expected)


def test_cli_dry_run_at_the_fixtures_now_is_the_default(spec_dir: Path) -> None:
    fixture = str(spec_dir / "fixtures" / "accounts.yaml")
    args = ["dry-run", str(spec_dir), "--fixtures", fixture, "--format", "json"]
    default = CliRunner().invoke(app, args)
    explicit = CliRunner().invoke(app, [*args, "--at", "2026-03-16T09:00:00+09:00"])
    assert default.exit_code == explicit.exit_code == 0
    assert json.loads(default.stdout) == json.loads(explicit.stdout)


def test_the_spec_fixtures_comments_hold(spec_engine: Engine, spec_dir: Path) -> None:
    """The reasons the fixture's comments give for what does not fire."""
    fixture = spec_engine.load_fixture(spec_dir / "fixtures" / "accounts.yaml")
    outcomes = spec_engine.dry_run(fixture).outcomes

    def outcome(account: str, rule: str) -> Any:
        (found,) = [o for o in outcomes if o.account == account and o.rule == rule]
        return found

    assert "once per account" in outcome("acme", "Welcome").reason
    assert outcome("soylent", "Gone quiet").reason == "its 'unless' condition is true"
    assert outcome("cyberdyne", "Gone quiet").condition is None
    assert outcome("cyberdyne", "Health dropped").condition is None
    assert "scope" in outcome("cyberdyne", "Seats nearly full").reason
    assert not any(o.fired for o in outcomes if o.account == "wayne")
    # The score-3 answer on 1 March is older than the last evaluation: no outcome for it.
    stark_nps = [o for o in outcomes if o.account == "stark" and o.event_at]
    assert all((o.event_at or "").startswith("2026-03-16") for o in stark_nps)


def test_a_twelve_hour_interval_changes_what_the_previous_evaluation_is(
    spec_engine: Engine, spec_dir: Path
) -> None:
    fixture = spec_engine.load_fixture(spec_dir / "fixtures" / "accounts.yaml")
    daily = spec_engine.dry_run(fixture).as_json()["actions"]
    half = spec_engine.dry_run(fixture, interval=timedelta(hours=12)).as_json()["actions"]
    # The detractor answer came 18 hours before `at`: inside a day, outside 12 hours.
    assert any(a["rule"] == "Detractor follow-up" for a in daily)
    assert not any(a["rule"] == "Detractor follow-up" for a in half)
    # Umbrella's health is 62 in its history up to the fixture's `now`, 48 at it: a drop
    # seen 12 hours earlier as well as a day earlier.
    assert any(a["rule"] == "Health dropped" for a in half)


def test_cli_explain_for_one_account(spec_dir: Path) -> None:
    fixture = str(spec_dir / "fixtures" / "accounts.yaml")
    result = CliRunner().invoke(
        app, ["explain", str(spec_dir), "--fixtures", fixture, "--account", "cyberdyne",
              "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    lines = {(e["rule"]): e for e in doc["explain"]}
    health = lines["Health dropped"]
    assert not health["fired"]
    assert any("health is missing" in line for line in health["lines"])
    assert "unknown" in health["reason"]


def test_cli_interval_sets_the_evaluations_for_looks_at(tmp_path: Path) -> None:
    """`for 14 days` is 15 daily evaluations, or 29 with `--interval 12h`."""
    (tmp_path / "schema.playbook").write_text(SCHEMA, encoding="utf-8")
    (tmp_path / "p.playbook").write_text(
        'playbook "P"\n  rule "Sustained"\n    when health < 50 for 14 days\n'
        '    then notify "c" "{{ account.name }}"\n',
        encoding="utf-8",
    )
    # Healthy for two hours around 13.5 days ago: between two daily evaluations.
    (tmp_path / "f.yaml").write_text(
        "now: 2026-03-16T09:00:00+09:00\n"
        "timezone: Asia/Tokyo\n"
        "accounts:\n"
        "  - id: a\n"
        "    name: Acme\n"
        "    health: 40\n"
        "    history:\n"
        "      health:\n"
        "        - {at: 2026-02-01, value: 40}\n"
        "        - {at: 2026-03-02T20:00:00+09:00, value: 70}\n"
        "        - {at: 2026-03-02T22:00:00+09:00, value: 40}\n",
        encoding="utf-8",
    )
    args = ["dry-run", str(tmp_path), "--fixtures", str(tmp_path / "f.yaml"), "--format", "json"]
    daily = CliRunner().invoke(app, args)
    half = CliRunner().invoke(app, [*args, "--interval", "12h"])
    assert daily.exit_code == half.exit_code == 0, daily.output + half.output
    assert [a["message"] for a in json.loads(daily.stdout)["actions"]] == ["Acme"]
    assert json.loads(half.stdout)["actions"] == []
