"""The formatter: canonical layout, round-trips, refusals, and `playbook fmt`.

`tests/parse_cases/format.cases` holds input -> formatted pairs (the format of the other
case files, with a `formatted` section; UPDATE_PARSE_CASES=1 rewrites it). Every other
parse case and every spec example must survive formatting with its tree and comments,
and formatting twice must change nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playbook_engine import format as fmt
from playbook_engine import nodes as n
from playbook_engine.format import FormatError, fmt_command, format_file, format_source
from playbook_engine.parse import parse
from tests.strategies import SCHEMA_TEXT, conditions, files, messy, playbooks
from tests.test_parse import CASES, SPEC_FILES, Case, read_cases, write_cases


def _params(name: str) -> list[object]:
    return [pytest.param(c, id=c.id) for c in read_cases(CASES / name)[1]]


def assert_round_trip(text: str) -> str:
    """Format `text`; the result keeps the tree and the comments, and is a fixed point."""
    before, diagnostics = parse(text, "t.playbook")
    assert diagnostics == []
    out = format_source(text, "t.playbook")
    after, diagnostics = parse(out, "t.playbook")
    assert diagnostics == []
    assert after.items == before.items
    assert sorted(c.text for c in after.comments) == sorted(c.text for c in before.comments)
    assert format_source(out, "t.playbook") == out, "formatting is not idempotent"
    assert out == "" or out.endswith("\n")
    assert not any(line != line.rstrip() for line in out.split("\n")), "trailing spaces"
    return out


# --------------------------------------------------------------------------- layout cases


@pytest.mark.parametrize("case", _params("format.cases"))
def test_layout(case: Case) -> None:
    out = assert_round_trip(case.source)
    expected = case.sections["formatted"]
    if os.environ.get("UPDATE_PARSE_CASES"):
        header, cases = read_cases(case.path)
        for other in cases:
            if other.title == case.title:
                other.sections["formatted"] = out.rstrip("\n")
        write_cases(case.path, header, cases)
        return
    assert out.rstrip("\n") == expected


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.name)
def test_spec_examples_are_already_canonical(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert assert_round_trip(text) == text


@pytest.mark.parametrize("case", _params("files.cases"))
def test_every_parse_case_round_trips(case: Case) -> None:
    assert_round_trip(case.source)


@pytest.mark.parametrize("case", _params("expressions.cases"))
def test_every_expression_round_trips(case: Case) -> None:
    out = assert_round_trip(f"segment s: {case.source}")
    assert out.count("\n") == 1  # short enough to stay on one line


def test_the_spec_layout_in_one_example() -> None:
    text = (
        'playbook "P"\n'
        "    applies to stage is adoption\n"
        '    rule "R"\n'
        "        then\n"
        '            create task "Offer more seats" for csm due in 7 days\n'
        '            add tag "expansion-candidate"\n'
        "        at most once every 90 days\n"
        "        when distinct user of login in last 30 days >= 90% * seats\n"
    )
    assert format_source(text) == (
        'playbook "P"\n'
        "  applies to stage is adoption\n"
        "\n"
        '  rule "R"\n'
        "    when distinct user of login in last 30 days >= 90% * seats\n"
        "    then\n"
        '      create task "Offer more seats" for csm due in 7 days\n'
        '      add tag "expansion-candidate"\n'
        "    at most once every 90 days\n"
    )


def test_crlf_and_a_byte_order_mark_are_normalised() -> None:
    text = '\ufeffsegment a: x  # c\r\nsegment b: y\r\n'
    assert format_source(text) == "segment a: x  # c\nsegment b: y\n"


def test_a_missing_final_newline_is_added() -> None:
    assert format_source("segment a: x") == "segment a: x\n"


# --------------------------------------------------------------------------- refusals


def test_syntax_errors_are_reported_not_formatted() -> None:
    with pytest.raises(FormatError) as caught:
        format_source("segment a: health <\nsegment b: x\n", "bad.playbook")
    assert "bad.playbook has syntax errors" in str(caught.value)
    assert [(d.span.line, d.span.column) for d in caught.value.diagnostics] == [(1, 20)]


def test_format_file_refuses_a_tree_from_a_file_with_errors() -> None:
    text = "segment a: health <\nsegment b: x\n"
    file, diagnostics = parse(text, "bad.playbook")
    assert diagnostics and len(file.items) == 1  # the broken block is not in the tree
    with pytest.raises(FormatError, match="syntax errors"):
        format_file(file, text)
    other, _ = parse("segment c: y\n", "bad.playbook")
    with pytest.raises(FormatError, match="not the text it was parsed from"):
        format_file(other, "segment b: x\n")


def test_a_repeated_clause_is_not_formatted_away() -> None:
    # The parser reports it; the formatter must not silently drop the second line.
    text = 'playbook "P"\n  rule "R"\n    when a\n    when b\n    then add tag "x"\n'
    with pytest.raises(FormatError):
        format_source(text)


def test_output_that_changes_the_tree_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real: Callable[[n.Action], str] = fmt.action_text

    def wrong(action: n.Action) -> str:
        return real(action).replace('"x"', '"y"')

    monkeypatch.setattr(fmt, "action_text", wrong)
    with pytest.raises(FormatError, match="would change its meaning"):
        format_source('playbook "P"\n  rule "R"\n    when a\n    then add tag "x"\n')


def test_output_that_does_not_parse_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fmt, "INDENT", " \t")
    with pytest.raises(FormatError, match="does not parse"):
        format_source('playbook "P"\n  rule "R"\n    when a\n    then add tag "x"\n')


# --------------------------------------------------------------------------- hand-built trees


def _name(text: str) -> n.Name:
    return n.Name(tuple(text.split(".")))


def _segment(condition: n.Expr) -> str:
    file = n.File("built.playbook", (n.Segment(_name("s"), condition),))
    return format_file(file, "")


def test_parentheses_are_added_where_precedence_needs_them() -> None:
    a, b, c = _name("a"), _name("b"), _name("c")
    assert _segment(n.And(n.Or(a, b), c)) == "segment s: (a or b) and c\n"
    assert _segment(n.Or(a, n.Or(b, c))) == "segment s: a or (b or c)\n"
    assert _segment(n.Not(n.And(a, b))) == "segment s: not (a and b)\n"
    assert _segment(n.For(n.Or(a, b), n.Duration(Decimal(3)))) == (
        "segment s: (a or b) for 3 days\n"
    )
    one = n.Number(Decimal(1))
    assert _segment(n.Compare(">", n.Arith("-", a, n.Arith("-", b, one)), one)) == (
        "segment s: a - (b - 1) > 1\n"
    )
    assert _segment(n.Compare("<", n.Arith("*", n.Arith("+", a, b), c), one)) == (
        "segment s: (a + b) * c < 1\n"
    )
    assert _segment(n.Is(a, n.Arith("+", b, one))) == "segment s: a is (b + 1)\n"


def test_and_none_where_precedence_does_not() -> None:
    a, b, c = _name("a"), _name("b"), _name("c")
    assert _segment(n.Or(n.And(a, b), c)) == "segment s: a and b or c\n"
    assert _segment(n.And(n.Not(a), n.For(b, n.Duration(Decimal(2), "week")))) == (
        "segment s: not a and b for 2 weeks\n"
    )
    product = n.Arith("*", n.Number(Decimal("0.9"), percent=True), _name("seats"))
    assert _segment(n.Compare(">=", a, product)) == "segment s: a >= 90% * seats\n"


def test_a_hand_built_playbook() -> None:
    rule = n.Rule(
        name=n.String("Welcome"),
        when=n.Relative("after", n.Duration(Decimal(1)), _name("signed_at")),
        event=None,
        where=None,
        actions=(n.SendEmail(n.String("onboarding/welcome"), (_name("admin"),)),),
        once_per_account=True,
    )
    playbook = n.Playbook(n.String("Onboarding"), (rule,), owner=n.String("cs@example.com"))
    assert format_file(n.File("b.playbook", (playbook,)), "") == (
        'playbook "Onboarding"\n'
        '  owner "cs@example.com"\n'
        "\n"
        '  rule "Welcome"\n'
        "    when 1 day after signed_at\n"
        '    then send email "onboarding/welcome" to admin\n'
        "    once per account\n"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [("a", '"a"'), ('say "hi"', r'"say \"hi\""'), ("a\\b", r'"a\\b"'), ("1\n2\t3", r'"1\n2\t3"'),
     ("株式会社 #1", '"株式会社 #1"')],
)
def test_quote(value: str, text: str) -> None:
    assert fmt.quote(value) == text
    file, _ = parse(f"segment s: x is {text}\n", "q")
    segment = file.items[0]
    assert isinstance(segment, n.Segment) and isinstance(segment.condition, n.Is)
    assert segment.condition.right == n.String(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [("1.50", "1.5"), ("100", "100"), ("1E+2", "100"), ("0.000", "0"), ("-0.50", "-0.5"),
     ("12345678901234567890.5", "12345678901234567890.5")],
)
def test_decimal_text(value: str, text: str) -> None:
    assert fmt.decimal_text(Decimal(value)) == text


# --------------------------------------------------------------------------- playbook fmt


def _tree(tmp_path: Path) -> dict[str, str]:
    files = {
        "canonical.playbook": "segment a: x\n",
        "messy.playbook": 'playbook "P"\n    rule "R"\n        when a\n        then add tag "x"\n',
        "nested/deeper.playbook": "metric m:  seats*2\n",
        "templates/ignored.txt": "not a playbook",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return files


def _contents(tmp_path: Path) -> dict[str, str]:
    return {
        p.relative_to(tmp_path).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(tmp_path.rglob("*"))
        if p.is_file()
    }


def test_fmt_check_reports_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tree(tmp_path)
    assert fmt_command(tmp_path, check=True) == 1
    out = capsys.readouterr().out
    assert "would reformat messy.playbook" in out
    assert "would reformat nested/deeper.playbook" in out
    assert "canonical.playbook" not in out
    assert "2 files would be reformatted, 1 file would be left unchanged" in out
    assert _contents(tmp_path) == before


def test_fmt_rewrites_then_check_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _tree(tmp_path)
    assert fmt_command(tmp_path, check=False) == 0
    out = capsys.readouterr().out
    assert "reformatted messy.playbook" in out
    assert "2 files reformatted, 1 file left unchanged" in out
    after = _contents(tmp_path)
    assert after["messy.playbook"] == (
        'playbook "P"\n  rule "R"\n    when a\n    then add tag "x"\n'
    )
    assert after["nested/deeper.playbook"] == "metric m: seats * 2\n"
    assert fmt_command(tmp_path, check=True) == 0
    assert "3 files would be left unchanged" in capsys.readouterr().out


def test_fmt_reports_files_with_errors_and_formats_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.playbook").write_text("segment a: (x\n", encoding="utf-8")
    (tmp_path / "good.playbook").write_text("segment a:  x\n", encoding="utf-8")
    assert fmt_command(tmp_path, check=False) == 1
    captured = capsys.readouterr()
    assert "bad.playbook:1:12: error: this '(' is never closed" in captured.err
    assert "reformatted good.playbook" in captured.out
    assert (tmp_path / "bad.playbook").read_text(encoding="utf-8") == "segment a: (x\n"
    assert (tmp_path / "good.playbook").read_text(encoding="utf-8") == "segment a: x\n"


def test_fmt_refuses_text_that_is_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "latin1.playbook").write_bytes('segment a:  name is "café"\n'.encode("latin-1"))
    assert fmt_command(tmp_path, check=False) == 1
    assert "latin1.playbook: it is not UTF-8 text" in capsys.readouterr().err
    assert (tmp_path / "latin1.playbook").read_bytes().endswith(b'"caf\xe9"\n')


def test_fmt_skips_hidden_folders_and_reports_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.playbook").write_text("segment a:x\n", encoding="utf-8")
    assert fmt_command(tmp_path, check=True) == 2
    assert "no .playbook files in" in capsys.readouterr().err
    assert fmt_command(tmp_path / "nowhere", check=True) == 2
    assert "does not exist" in capsys.readouterr().err


def test_fmt_on_a_single_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "one.playbook"
    path.write_text("segment a:x\r\n", encoding="utf-8")
    assert fmt_command(path, check=False) == 0
    assert path.read_bytes() == b"segment a: x\n"


# --------------------------------------------------------------------------- properties

_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(_SETTINGS, max_examples=100)
@given(st.data())
def test_generated_files_keep_their_tree_and_format_idempotently(data: st.DataObject) -> None:
    text = data.draw(files())
    assert_round_trip(data.draw(messy(text)))


@_SETTINGS
@given(playbooks(indent=4))
def test_generated_playbooks_in_four_space_indentation(text: str) -> None:
    out = assert_round_trip(text)
    assert "\n    rule" not in out


@_SETTINGS
@given(conditions(3))
def test_generated_conditions(condition: str) -> None:
    assert_round_trip(f"{SCHEMA_TEXT}\nsegment s: {condition}\n")


def test_the_fmt_command_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from playbook_engine.cli import app

    path = tmp_path / "a.playbook"
    path.write_text("segment a:x\n", encoding="utf-8")
    runner = CliRunner()
    checked = runner.invoke(app, ["fmt", str(tmp_path), "--check"])
    assert checked.exit_code == 1
    assert "would reformat a.playbook" in checked.output
    assert path.read_text(encoding="utf-8") == "segment a:x\n"
    formatted = runner.invoke(app, ["fmt", str(tmp_path)])
    assert formatted.exit_code == 0
    assert path.read_text(encoding="utf-8") == "segment a: x\n"
    assert runner.invoke(app, ["fmt", str(tmp_path), "--check"]).exit_code == 0
