"""The checker's API: `infer`, `check`, `CHECKS` and the `Engine` that runs them.

The diagnostics themselves, one kind per file, are in tests/check_cases/.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playbook_engine.checks import CHECKS, check
from playbook_engine.engine import Engine
from playbook_engine.errors import LoadError
from playbook_engine.infer import Kind, Scope, Symbols, infer
from playbook_engine.parse import parse, parse_expression
from playbook_engine.program import Program
from playbook_engine.settings import Settings

CASES = Path(__file__).parent / "check_cases"
SCHEMA = (CASES / "_default" / "schema.playbook").read_text(encoding="utf-8")


def program(*texts: str) -> Program:
    files = []
    for i, text in enumerate(texts):
        file, diagnostics = parse(text, f"f{i}.playbook")
        assert diagnostics == []
        files.append(file)
    return Program.from_files(files)


# --------------------------------------------------------------------------- the contract


def test_the_spec_checks_clean(spec_dir: Path) -> None:
    engine = Engine.load(spec_dir)
    assert [engine.render(d) for d in engine.diagnostics] == []
    assert len(engine.files) == 7
    assert engine.rule_count == 14


def test_unused_definitions_are_opt_in(spec_dir: Path) -> None:
    # The spec defines `at-risk` for reuse and uses it nowhere: with the opt-in lint it is
    # the one warning; by default the contract's "checks clean" holds with no output.
    engine = Engine.load(spec_dir, Settings(warn_unused_definitions=True))
    assert [(d.span.file, d.message) for d in engine.diagnostics] == [
        ("schema.playbook", "segment 'at-risk' is never used")
    ]


# --------------------------------------------------------------------------- infer


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("count login in last 7 days", Kind.NUMBER),
        ("distinct user of login in last 30 days / seats", Kind.NUMBER),
        ("last comment of nps_submitted", Kind.TEXT),
        ("days since signed_at", Kind.NUMBER),
        ("csm", Kind.USER),
        ("csm.email", Kind.TEXT),
        ("account.csm.name", Kind.TEXT),
        ("tags", Kind.TAGS),
        ("name", Kind.TEXT),
        ("at-risk", Kind.YESNO),
        ("login-rate", Kind.NUMBER),
        ("login-rate * 100", Kind.NUMBER),
        ("tier is high-touch and not vip", Kind.YESNO),
        ("(seats)", Kind.NUMBER),
        ("teir", Kind.UNKNOWN),
    ],
)
def test_infer(text: str, kind: Kind) -> None:
    scope = Scope(Symbols(program(SCHEMA)))
    assert infer(parse_expression(text), scope).kind is kind


def test_infer_enum_knows_its_values() -> None:
    found = infer(parse_expression("tier"), Scope(Symbols(program(SCHEMA))))
    assert (found.field, found.values) == ("tier", ("high-touch", "low-touch", "tech-touch"))


def test_event_fields_come_first_in_event_scope() -> None:
    schema = "schema\n  account\n    score: text\n  event nps\n    score: number\n"
    symbols = Symbols(program(schema))
    expr = parse_expression("score")
    assert infer(expr, Scope(symbols)).kind is Kind.TEXT
    assert infer(expr, Scope(symbols, event="nps")).kind is Kind.NUMBER
    assert infer(parse_expression("account.score"), Scope(symbols, event="nps")).kind is Kind.TEXT


def test_infer_reports_only_when_asked() -> None:
    symbols = Symbols(program(SCHEMA))
    expr = parse_expression("teir > 3 and tier > 5")
    assert infer(expr, Scope(symbols)).kind is Kind.YESNO  # silent: nothing to report to
    found: list[object] = []
    infer(expr, Scope(symbols, report=found.append))
    assert len(found) == 2


# --------------------------------------------------------------------------- check


def test_checks_are_small_documented_functions() -> None:
    names = [c.__name__ for c in CHECKS]
    assert len(names) == len(set(names))
    assert all(c.__doc__ for c in CHECKS)


def test_check_without_sources_still_finds_problems() -> None:
    rules = 'playbook "P"\n  rule "R"\n    when teir > 3\n    then add tag "x"\n'
    found = check(program(SCHEMA, rules))
    assert [(d.span.line, d.span.column, d.message) for d in found] == [
        (3, 10, "unknown field 'teir' (did you mean 'tier'?)")
    ]


def test_check_collects_every_problem_sorted() -> None:
    rules = 'playbook "P"\n  rule "R"\n    when teir > 3 and plan is x\n    then add tag "x"\n'
    found = check(program(rules, SCHEMA))
    assert [d.span.column for d in found] == [10, 31]


def test_syntax_errors_come_with_the_rest_without_a_cascade() -> None:
    # The parser's own wording is tested with the parser; here: a broken schema is one
    # syntax error, not also "no schema" and an unknown-name error for every field.
    broken = "schema\n  account\n    tier one of a, b\n"
    rules = 'playbook "P"\n  rule "R"\n    when tier is a\n    then add tag "x"\n'
    engine = Engine.from_sources({"schema.playbook": broken, "main.playbook": rules})
    assert [(str(d.span), d.code) for d in engine.diagnostics] == [
        ("schema.playbook:3:10", "syntax")
    ]


def test_deep_nesting_is_a_diagnostic_not_a_crash() -> None:
    deep = "(" * 400 + "health < 3" + ")" * 400
    engine = Engine.from_sources({"s.playbook": SCHEMA, "d.playbook": f"segment deep: {deep}\n"})
    assert all(isinstance(d.message, str) for d in engine.diagnostics)


# --------------------------------------------------------------------------- Engine.load


def test_names_in_diagnostics_are_relative(tmp_path: Path) -> None:
    (tmp_path / "schema.playbook").write_text(SCHEMA, encoding="utf-8")
    (tmp_path / "main.playbook").write_text(
        'playbook "P"\n  rule "R"\n    when teir is tech-touch\n    then add tag "x"\n',
        encoding="utf-8",
    )
    engine = Engine.load(tmp_path)
    assert [str(d.span) for d in engine.errors] == ["main.playbook:3:10"]
    assert engine.render(engine.errors[0]).splitlines()[1:] == [
        "    3 |     when teir is tech-touch",
        "      |          ^^^^",
    ]
    with pytest.raises(LoadError) as raised:
        engine.raise_for_errors()
    assert raised.value.diagnostics == engine.diagnostics


def test_crlf_and_bom_keep_positions(tmp_path: Path) -> None:
    (tmp_path / "schema.playbook").write_text(SCHEMA, encoding="utf-8")
    text = '\ufeffplaybook "P"\r\n  rule "R"\r\n    when teir is tech-touch\r\n'
    text += '    then add tag "x"\r\n'
    (tmp_path / "main.playbook").write_bytes(text.encode("utf-8"))
    engine = Engine.load(tmp_path)
    assert engine.render(engine.errors[0]).splitlines()[1:] == [
        "    3 |     when teir is tech-touch",
        "      |          ^^^^",
    ]


def test_not_utf8_is_a_diagnostic(tmp_path: Path) -> None:
    (tmp_path / "schema.playbook").write_text(SCHEMA, encoding="utf-8")
    (tmp_path / "latin.playbook").write_bytes(b'playbook "P"\n  description "caf\xe9"\n')
    engine = Engine.load(tmp_path)
    assert [(str(d.span), d.message) for d in engine.diagnostics] == [
        (
            "latin.playbook:2:19",
            "'latin.playbook' is not UTF-8 text (byte 0xe9 on line 2): save it as UTF-8",
        )
    ]


def test_unreadable_file_is_a_diagnostic(tmp_path: Path) -> None:
    (tmp_path / "schema.playbook").write_text(SCHEMA, encoding="utf-8")
    (tmp_path / "gone.playbook").symlink_to(tmp_path / "nowhere")
    engine = Engine.load(tmp_path)
    assert [d.message for d in engine.diagnostics] == [
        "cannot read 'gone.playbook': No such file or directory"
    ]


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="no such directory"):
        Engine.load(tmp_path / "nope")


def test_a_file_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "schema.playbook").write_text(SCHEMA, encoding="utf-8")
    with pytest.raises(LoadError, match="is a file"):
        Engine.load(tmp_path / "schema.playbook")


def test_no_playbook_files(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"no \.playbook files in"):
        Engine.load(tmp_path)


def test_sub_folders_are_not_read_and_the_error_says_so(tmp_path: Path) -> None:
    (tmp_path / "drafts").mkdir()
    (tmp_path / "drafts" / "x.playbook").write_text(SCHEMA, encoding="utf-8")
    with pytest.raises(LoadError, match=r"drafts/x\.playbook is in a sub-folder"):
        Engine.load(tmp_path)


# --------------------------------------------------------------------------- robustness


PIECES = [
    "schema", "account", "event", "playbook", "rule", "when", "on", "then", "where",
    "and", "or", "not", "is", "in", "count", "last", "days", "since", "in last", "of",
    "send email", "create task", "for", "set", "to", "wait", "unless", "stop when",
    "tier", "teir", "health", "seats", "csm.email", "event.score", "login", "at-risk",
    "tech-touch", '"x"', '"{{ a }"', "3", "30%", "14 days", "<", ">=", "=", "+", "-", "*",
    "(", ")", "[", "]", ",", ":", "{", "}", "\n", "\n  ", "\n    ", "\n      ", "#",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_no_input_crashes_the_checker(pieces: list[str]) -> None:
    text = " ".join(pieces)
    engine = Engine.from_sources({"schema.playbook": SCHEMA, "x.playbook": text})
    for diagnostic in engine.diagnostics:
        engine.render(diagnostic)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_examples_never_crash(data: st.DataObject) -> None:
    files = {p.name: p.read_text(encoding="utf-8") for p in CASES.glob("*.case")}
    name = data.draw(st.sampled_from(sorted(files)))
    text = files[name]
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 12)))
    damaged = text[:start] + text[end:]
    Engine.from_sources({"schema.playbook": SCHEMA, "x.playbook": damaged})


def test_checking_is_linear_enough() -> None:
    rule = (
        '  rule "R{i}"\n'
        "    when health < {i} and tier is tech-touch and count login in last 7 days < 2\n"
        "    then\n"
        '      create task "Check in with {{{{ account.name }}}} {i}" for csm\n'
        "      wait 3 days\n"
        "      set stage to adoption\n"
    )
    texts = [SCHEMA] + [
        f'playbook "P{p}"\n' + "".join(rule.format(i=p * 20 + i) for i in range(20))
        for p in range(50)
    ]
    big = program(*texts)
    started = time.perf_counter()
    assert check(big) == []
    elapsed = time.perf_counter() - started
    # Generous: the benchmark holds the whole `playbook check` to its own budget.
    limit = float(os.environ.get("CHECK_TIME_LIMIT", "2.0"))
    assert elapsed < limit, f"check of 1,000 rules took {elapsed:.2f}s"


# --------------------------------------------------------------------------- settings


def test_settings_problems_are_a_config_error() -> None:
    from playbook_engine.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Base'"):
        Settings.from_mapping({"timezone": "Mars/Base"})
    with pytest.raises(ConfigError, match="colour"):
        Settings.from_mapping({"colour": "blue"})
    assert Settings.from_mapping({"holidays": ["2026-01-01"]}).holidays[0].year == 2026
