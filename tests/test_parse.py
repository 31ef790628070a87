"""The parser: fixture cases of what must parse (and to which tree) and of syntax errors.

The cases live in `tests/parse_cases/*.cases`, one per block:

    === title
    source text (an expression in expressions.cases, a whole file elsewhere)
    --- tree
    the tree, in the notation of `dump_item` / `dump_expr` below
    --- comments
    line:column own|trailing text        (one line per comment in the file)
    --- errors
    line:column: message                 (errors.cases: the exact diagnostics)

Lines before the first `===` describe the file. With UPDATE_PARSE_CASES=1 the `tree`,
`comments` and `errors` sections are rewritten from what the parser says now (review
the diff!).
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playbook_engine import nodes as n
from playbook_engine.errors import Diagnostic
from playbook_engine.parse import parse, parse_expression

CASES = Path(__file__).parent / "parse_cases"
SPEC = Path(__file__).resolve().parent.parent.parent / "shared" / "spec"
SPEC_FILES = sorted(SPEC.glob("*.playbook")) if SPEC.is_dir() else []


# --------------------------------------------------------------------------- tree notation


def dec(value: Decimal) -> str:
    return format(value.normalize(), "f")


def dur(d: n.Duration) -> str:
    """`14d`, `2bd` (business days), `3h`, `1w`."""
    return f"{dec(d.amount)}{'b' if d.business else ''}{d.unit[0]}"


def q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def dump_expr(e: object) -> str:
    if isinstance(e, n.Name):
        return e.text
    if isinstance(e, n.Number):
        return dec(e.value.scaleb(2)) + "%" if e.percent else dec(e.value)
    if isinstance(e, n.String):
        return q(e.value)
    if isinstance(e, n.ListValue):
        return "[" + " ".join(dump_expr(i) for i in e.items) + "]"
    if isinstance(e, n.Arith):
        return f"({e.op} {dump_expr(e.left)} {dump_expr(e.right)})"
    if isinstance(e, n.Negate):
        return f"(neg {dump_expr(e.operand)})"
    if isinstance(e, n.Count | n.Aggregate):
        if isinstance(e, n.Count):
            head = f"count {e.event.text}"
        else:
            head = f"{e.func} {e.field.text} {e.event.text}"
        where = f" where={dump_expr(e.where)}" if e.where is not None else ""
        window = f" last={dur(e.window)}" if e.window is not None else ""
        return f"({head}{where}{window})"
    if isinstance(e, n.Last):
        return f"(last {e.field.text} {e.event.text})"
    if isinstance(e, n.DaysSinceLast):
        return f"(days-since-last {e.event.text})"
    if isinstance(e, n.DaysBetween):
        return f"(days-{e.direction} {dump_expr(e.operand)})"
    if isinstance(e, n.Compare):
        return f"({e.op} {dump_expr(e.left)} {dump_expr(e.right)})"
    if isinstance(e, n.Is):
        return f"({'is-not' if e.negated else 'is'} {dump_expr(e.left)} {dump_expr(e.right)})"
    if isinstance(e, n.In):
        return f"({'not-in' if e.negated else 'in'} {dump_expr(e.left)} {dump_expr(e.items)})"
    if isinstance(e, n.Missing):
        return f"({'present' if e.negated else 'missing'} {dump_expr(e.operand)})"
    if isinstance(e, n.TextTest):
        return f"({e.op.replace(' ', '-')} {dump_expr(e.left)} {dump_expr(e.right)})"
    if isinstance(e, n.HasTag):
        return f"(has-tag {dump_expr(e.tag)})"
    if isinstance(e, n.And | n.Or):
        op = "and" if isinstance(e, n.And) else "or"
        return f"({op} {dump_expr(e.left)} {dump_expr(e.right)})"
    if isinstance(e, n.Not):
        return f"(not {dump_expr(e.operand)})"
    if isinstance(e, n.Relative):
        return f"({e.direction} {dur(e.duration)} {dump_expr(e.operand)})"
    if isinstance(e, n.MilestoneState):
        after = f" after={dur(e.after)}" if e.after is not None else ""
        return f"({'complete' if e.complete else 'incomplete'} {e.milestone.text}{after})"
    if isinstance(e, n.Crossing):
        verb = "drops-below" if e.direction == "below" else "rises-above"
        return f"({verb} {dump_expr(e.operand)} {dump_expr(e.threshold)})"
    if isinstance(e, n.Changes):
        parts = [f"changes {dump_expr(e.operand)}"]
        if e.from_value is not None:
            parts.append(f"from={dump_expr(e.from_value)}")
        if e.to_value is not None:
            parts.append(f"to={dump_expr(e.to_value)}")
        return "(" + " ".join(parts) + ")"
    if isinstance(e, n.For):
        return f"(for {dump_expr(e.condition)} {dur(e.duration)})"
    if isinstance(e, n.Paren):
        return f"(paren {dump_expr(e.inner)})"
    raise TypeError(f"not an expression: {e!r}")


def _recipients(items: tuple[n.Recipient, ...]) -> str:
    return "[" + " ".join(dump_expr(r) for r in items) + "]"


def dump_action(a: n.Action) -> str:
    if isinstance(a, n.SendEmail):
        if a.default_recipient:
            head = f"send-template {q(a.template.value)}"
        else:
            head = f"send-email {q(a.template.value)} to={_recipients(a.to)}"
        return f"({head}{f' cc={_recipients(a.cc)}' if a.cc else ''})"
    if isinstance(a, n.CreateTask):
        parts = [f"task {q(a.title.value)}"]
        if a.assignee is not None:
            parts.append(f"for={dump_expr(a.assignee)}")
        if a.due is not None:
            parts.append(f"due={dur(a.due)}")
        if a.priority is not None:
            parts.append(f"priority={a.priority.text}")
        return "(" + " ".join(parts) + ")"
    if isinstance(a, n.PostWebhook):
        if a.payload is None:
            return f"(webhook {q(a.endpoint.value)})"
        pairs = " ".join(f"{q(k)}:{dump_expr(v)}" for k, v in a.payload)
        return f"(webhook {q(a.endpoint.value)} {{{pairs}}})"
    if isinstance(a, n.Notify):
        return f"(notify {q(a.channel.value)} {q(a.message.value)})"
    if isinstance(a, n.SetField):
        return f"(set {a.field.text} {dump_expr(a.value)})"
    if isinstance(a, n.TagChange):
        return f"({a.op}-tag {q(a.tag.value)})"
    return f"(wait {dur(a.duration)})"


def dump_rule(r: n.Rule) -> str:
    parts = [f"rule {q(r.name.value)}"]
    if r.when is not None:
        parts.append(f"when={dump_expr(r.when)}")
    if r.event is not None:
        parts.append(f"on={r.event.text}")
    if r.where is not None:
        parts.append(f"where={dump_expr(r.where)}")
    if r.inline:
        parts.append("inline")
    parts.append("then=[" + " ".join(dump_action(a) for a in r.actions) + "]")
    if r.once_per_account:
        parts.append("once-per-account")
    if r.at_most_every is not None:
        parts.append(f"at-most-every={dur(r.at_most_every)}")
    if r.repeat_every is not None:
        parts.append(f"repeat-every={dur(r.repeat_every)}")
    if r.unless is not None:
        parts.append(f"unless={dump_expr(r.unless)}")
    if r.priority is not None:
        parts.append(f"priority={r.priority.text}")
    if r.stop_when is not None:
        parts.append(f"stop-when={dump_expr(r.stop_when)}")
    return "(" + " ".join(parts) + ")"


def _field(f: n.FieldDecl) -> str:
    kind: str = f.type.kind
    if kind == "enum":
        kind = "(" + " ".join(v.text for v in f.type.values) + ")"
    return f"{f.name.text}:{kind}"


def dump_item(i: n.Item) -> list[str]:
    """One line per item; a playbook's rules follow on lines of their own, indented."""
    if isinstance(i, n.Segment):
        return [f"(segment {i.name.text} {dump_expr(i.condition)})"]
    if isinstance(i, n.Metric):
        return [f"(metric {i.name.text} {dump_expr(i.value)})"]
    if isinstance(i, n.Schema):
        parts = ["schema", "account=[" + " ".join(_field(f) for f in i.fields) + "]"]
        parts.append("roles=[" + " ".join(r.text for r in i.roles) + "]")
        for e in i.events:
            parts.append(f"event={e.name.text}[" + " ".join(_field(f) for f in e.fields) + "]")
        for m in i.milestones:
            parts.append(f"milestone={m.name.text}[{m.starts_at.text} {m.done_at.text}]")
        return ["(" + " ".join(parts) + ")"]
    head = [f"playbook {q(i.name.value)}"]
    if i.description is not None:
        head.append(f"description={q(i.description.value)}")
    if i.owner is not None:
        head.append(f"owner={q(i.owner.value)}")
    if i.status is not None:
        head.append(f"status={i.status.text}")
    if i.applies_to is not None:
        head.append(f"applies={dump_expr(i.applies_to)}")
    return ["(" + " ".join(head) + ")", *("  " + dump_rule(r) for r in i.rules)]


def dump_file(f: n.File) -> str:
    return "\n".join(line for i in f.items for line in dump_item(i))


def dump_comments(f: n.File) -> str:
    return "\n".join(
        f"{c.line}:{c.column} {'trailing' if c.trailing else 'own'} {c.text}" for c in f.comments
    )


def dump_diagnostics(diagnostics: list[Diagnostic]) -> str:
    return "\n".join(f"{d.span.line}:{d.span.column}: {d.message}" for d in diagnostics)


# --------------------------------------------------------------------------- case files


@dataclass
class Case:
    path: Path
    title: str
    source: str
    sections: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.path.stem}: {self.title}"


def read_cases(path: Path) -> tuple[str, list[Case]]:
    """The file's header (text before the first case) and its cases."""
    header: list[str] = []
    raw: list[tuple[str, dict[str, list[str]]]] = []
    body = header
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("=== "):
            raw.append((line[4:].strip(), {"source": []}))
            body = raw[-1][1]["source"]
        elif line.startswith("--- ") and raw:
            body = raw[-1][1].setdefault(line[4:].strip(), [])
        else:
            body.append(line)
    cases = []
    for title, sections in raw:
        texts = {name: "\n".join(lines).strip("\n") for name, lines in sections.items()}
        source = texts.pop("source") + "\n"
        cases.append(Case(path, title, source, texts))
    return "\n".join(header).rstrip("\n"), cases


def write_cases(path: Path, header: str, cases: list[Case]) -> None:
    out = [header, ""] if header else []
    for case in cases:
        out.append(f"=== {case.title}")
        out.append(case.source.rstrip("\n"))
        for name, text in case.sections.items():
            out.append(f"--- {name}")
            if text:
                out.append(text)
        out.append("")
    path.write_text("\n".join(out), encoding="utf-8")


def _cases(name: str) -> list[Case]:
    return read_cases(CASES / name)[1]


def _params(name: str) -> list[object]:
    return [pytest.param(case, id=case.id) for case in _cases(name)]


def actual_sections(case: Case) -> dict[str, str]:
    """What the parser says now, for each section the case states."""
    if case.path.name == "expressions.cases":
        return {"tree": dump_expr(parse_expression(case.source.rstrip("\n")))}
    file, diagnostics = parse(case.source, "case.playbook")
    found = {
        "tree": dump_file(file),
        "comments": dump_comments(file),
        "errors": dump_diagnostics(diagnostics),
    }
    return {name: found[name] for name in case.sections}


def _check(case: Case) -> None:
    actual = actual_sections(case)
    if os.environ.get("UPDATE_PARSE_CASES"):
        header, cases = read_cases(case.path)
        for other in cases:
            if other.title == case.title and other.source == case.source:
                other.sections.update(actual)
        write_cases(case.path, header, cases)
        return
    for name, expected in case.sections.items():
        assert actual[name] == expected, f"{name} of {case.title!r}"


def test_case_files_exist() -> None:
    names = {p.name for p in CASES.glob("*.cases")}
    assert {"expressions.cases", "files.cases", "errors.cases"} <= names
    for name in names:
        titles = [c.title for c in _cases(name)]
        assert len(titles) == len(set(titles)), f"two cases share a title in {name}"


@pytest.mark.parametrize("case", _params("expressions.cases"))
def test_expression(case: Case) -> None:
    assert "tree" in case.sections, "an expression case states its tree"
    _check(case)


@pytest.mark.parametrize("case", _params("files.cases"))
def test_file(case: Case) -> None:
    file, diagnostics = parse(case.source, "case.playbook")
    assert dump_diagnostics(diagnostics) == "", "this case must parse without diagnostics"
    assert file.items
    _check(case)


@pytest.mark.parametrize("case", _params("errors.cases"))
def test_syntax_error(case: Case) -> None:
    assert "errors" in case.sections, "an error case states its diagnostics"
    _, diagnostics = parse(case.source, "case.playbook")
    assert diagnostics, "this case must not parse"
    for d in diagnostics:
        assert_plain_words(d, case.source)
    _check(case)


# --------------------------------------------------------------------------- the spec


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.name)
def test_spec_example_parses_clean(path: Path) -> None:
    file, diagnostics = parse(path.read_text(encoding="utf-8"), path.name)
    assert diagnostics == []
    assert file.items


def test_spec_examples_found() -> None:
    if not SPEC.is_dir():
        pytest.skip(f"the shared language spec is not at {SPEC}")
    assert len(SPEC_FILES) >= 7


def test_spec_schema_tree() -> None:
    if not SPEC.is_dir():
        pytest.skip(f"the shared language spec is not at {SPEC}")
    file, _ = parse((SPEC / "schema.playbook").read_text(encoding="utf-8"), "schema.playbook")
    schema = file.items[0]
    assert isinstance(schema, n.Schema)
    assert [f.name.text for f in schema.fields][:3] == ["tier", "stage", "plan"]
    assert [r.text for r in schema.roles] == ["admin", "champion", "decision-maker", "billing"]
    assert [e.name.text for e in schema.events] == [
        "login", "feature_used", "nps_submitted", "executive_meeting"
    ]
    assert dump_item(file.items[1]) == [
        "(segment at-risk (or (< health 50) (= (count login last=30d) 0)))"
    ]


# --------------------------------------------------------------------------- spans


def test_spans_point_at_the_source() -> None:
    source = 'playbook "P"\n  rule "R"\n    when tier is tech-touch\n    then add tag "x"\n'
    file, _ = parse(source, "p.playbook")
    playbook = file.items[0]
    assert isinstance(playbook, n.Playbook)
    rule = playbook.rules[0]
    assert (rule.span.line, rule.span.column) == (2, 3)
    assert isinstance(rule.when, n.Is)
    left = rule.when.left
    assert str(left.span) == "p.playbook:3:10"
    assert (left.span.end_line, left.span.end_column) == (3, 14)
    assert (rule.actions[0].span.line, rule.actions[0].span.column) == (4, 10)


def test_recovery_reports_every_broken_block_and_keeps_the_rest() -> None:
    source = (
        "segment a: health <\n"
        "segment b: health < 50\n"
        'playbook "P"\n  rule "R"\n    when b\n    then add tag\n'
        "metric c: seats / 2\n"
    )
    file, diagnostics = parse(source, "x.playbook")
    assert [d.span.line for d in diagnostics] == [1, 6]
    assert [i.name.text for i in file.items if isinstance(i, n.Segment | n.Metric)] == ["b", "c"]


# --------------------------------------------------------------------------- plain words

# A terminal or rule name of the grammar, or Lark's own vocabulary.
_JARGON = re.compile(
    r"__ANON|\$END|\b_?[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|\b(NAME|STRING|NUMBER|PERCENT|CMP|UNIT|"
    r"LPAR|RPAR|LSQB|RSQB|LBRACE|RBRACE|COLON|COMMA|DOT|PLUS|MINUS|STAR|SLASH|IN_LAST)\b"
    r"|_NL|_INDENT|_DEDENT|_CONT|Token\(|Tree\(|expected one of|\bstate\b"
)


def _without_quoted(message: str) -> str:
    """The message with quoted source text (which may say anything) taken out."""
    return re.sub(r"'[^']*'|\"[^\"]*\"", "", message)


def assert_plain_words(d: Diagnostic, source: str) -> None:
    assert not _JARGON.search(_without_quoted(d.message)), d.message
    assert "\n" not in d.message
    assert d.code == "syntax"
    lines = source.replace("\r\n", "\n").split("\n")
    assert 1 <= d.span.line <= max(1, len(lines)), (d.span, d.message)
    assert d.span.column >= 1, (d.span, d.message)


def _mutations(text: str, rnd: random.Random) -> str:
    kind = rnd.randrange(5)
    if kind == 0:
        at = rnd.randrange(len(text))
        return text[:at] + text[at + rnd.randint(1, 6) :]
    if kind == 1:
        at = rnd.randrange(len(text))
        junk = rnd.choice(["(", ")", '"', "#", "\n", "  ", ":", "[", ",", "and ", "then ",
                           "\t", "=", "==", "%", "-", "when ", "{", "}", "'", "\\", "\n    x"])
        return text[:at] + junk + text[at:]
    lines = text.split("\n")
    a, b = rnd.randrange(len(lines)), rnd.randrange(len(lines))
    if kind == 2:
        lines[a], lines[b] = lines[b], lines[a]
    elif kind == 3:
        del lines[a]
    else:
        lines.insert(a, lines[b])
    return "\n".join(lines)


def _broken_inputs() -> list[str]:
    rnd = random.Random(20260315)
    texts = [p.read_text(encoding="utf-8") for p in SPEC_FILES]
    texts += [c.source for c in _cases("files.cases")]
    found: list[str] = []
    while texts and len(found) < 400:
        mutated = _mutations(rnd.choice(texts), rnd)
        if parse(mutated, "m.playbook")[1]:
            found.append(mutated)
    return found


def test_messages_are_plain_words_across_many_broken_inputs() -> None:
    inputs = _broken_inputs() + [c.source for c in _cases("errors.cases")]
    assert len(inputs) > 300
    messages = set()
    for text in inputs:
        _, diagnostics = parse(text, "m.playbook")
        assert diagnostics
        for d in diagnostics:
            assert_plain_words(d, text)
            messages.add(d.message)
    assert len(messages) > 40  # the inputs really are varied


# --------------------------------------------------------------------------- properties


def _spec_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in SPEC_FILES] or [
        c.source for c in _cases("files.cases")
    ]


@st.composite
def mutated_examples(draw: st.DrawFn) -> str:
    """A spec example with characters and lines deleted, inserted or swapped."""
    text = draw(st.sampled_from(_spec_texts()))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 4))
        lines = text.split("\n")
        if kind == 0 and text:
            at = draw(st.integers(0, len(text) - 1))
            text = text[:at] + text[at + draw(st.integers(1, 8)) :]
        elif kind == 1:
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.text(max_size=4)) + text[at:]
        elif kind == 2:
            a = draw(st.integers(0, len(lines) - 1))
            b = draw(st.integers(0, len(lines) - 1))
            lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
        elif kind == 3:
            del lines[draw(st.integers(0, len(lines) - 1))]
            text = "\n".join(lines)
        elif text:
            a = draw(st.integers(0, len(text) - 1))
            b = draw(st.integers(0, len(text) - 1))
            chars = list(text)
            chars[a], chars[b] = chars[b], chars[a]
            text = "".join(chars)
    return text


def _never_raises(text: str) -> None:
    file, diagnostics = parse(text, "h.playbook")
    assert isinstance(file, n.File)
    for d in diagnostics:
        assert_plain_words(d, text)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_gives_diagnostics_not_exceptions(text: str) -> None:
    _never_raises(text)


_LANGUAGE_ISH = st.sampled_from(
    ["playbook", "rule", "when", "then", "and", "or", "not", "is", "in", "(", ")", "[", "]",
     "{", "}", '"x"', "#c", "\n", "\n  ", "\n    ", "  ", "x", "1", "30%", ":", ",", "-", "days",
     "count", "login", "in last", "for", "segment", "schema", "account", "send", "email"]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_LANGUAGE_ISH, max_size=30).map(" ".join))
def test_language_like_text_gives_diagnostics_not_exceptions(text: str) -> None:
    _never_raises(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_examples())
def test_mutated_examples_give_diagnostics_not_exceptions(text: str) -> None:
    _never_raises(text)


# --------------------------------------------------------------------------- the lean driver

# `parse` runs Lark's tables through `lalr.Driver` and asks Lark itself only when that
# gives up; both must agree on every text: the same nodes with the same spans, and a
# give-up exactly where Lark finds a syntax error.

EXAMPLES = Path(__file__).resolve().parent.parent / "playbooks" / "examples"
CHECK_CASES = Path(__file__).parent / "check_cases"


def _deep(value: object) -> object:
    """A node as nested tuples, spans included (node equality leaves spans out)."""
    if hasattr(value, "__dataclass_fields__"):
        names = value.__dataclass_fields__  # type: ignore[attr-defined]
        return (type(value).__name__, *((k, _deep(getattr(value, k))) for k in names))
    if isinstance(value, (tuple, list)):
        return tuple(_deep(v) for v in value)
    return value


def _both_ways(text: str) -> None:
    from playbook_engine import parse as p
    from playbook_engine.lalr import GiveUp

    source = p._normalise(text)
    driver = p._driver()
    assert driver is not None, "the lean driver does not support the grammar"
    lean = p._ToNodes("d.playbook")
    try:
        fast: object = driver.parse(source, lean)
    except GiveUp:
        fast = GiveUp
    slow_nodes = p._ToNodes("d.playbook")
    try:
        slow: object = slow_nodes.from_tree(p._lark_parse(source, "d.playbook"))
    except p._SyntaxProblem:
        slow = GiveUp
    assert _deep(fast) == _deep(slow)
    if fast is not GiveUp:
        assert _deep(lean.repeated) == _deep(slow_nodes.repeated)


def _corpus() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in SPEC_FILES]
    texts += [p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.playbook"))]
    texts += [p.read_text(encoding="utf-8") for p in sorted(CHECK_CASES.rglob("*.playbook"))]
    for path in sorted(CHECK_CASES.glob("*.case")):
        for part in path.read_text(encoding="utf-8").split("@@ ")[1:]:
            name, _, body = part.partition("\n")
            if name.endswith(".playbook"):
                texts.append(body)
    for name in ("files.cases", "errors.cases"):
        texts += [c.source for c in _cases(name)]
    texts += [f"segment _expr: {c.source}" for c in _cases("expressions.cases")]
    return texts


def test_driver_and_lark_agree_on_every_fixture() -> None:
    texts = _corpus()
    assert len(texts) > 100
    for text in texts:
        _both_ways(text)


def test_driver_and_lark_agree_on_broken_inputs() -> None:
    for text in _broken_inputs():
        _both_ways(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_examples())
def test_driver_and_lark_agree_on_mutated_examples(text: str) -> None:
    _both_ways(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(_LANGUAGE_ISH, max_size=30).map(" ".join))
def test_driver_and_lark_agree_on_language_like_text(text: str) -> None:
    _both_ways(text)
