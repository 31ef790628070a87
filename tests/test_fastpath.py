"""The fast path against compile.py's closures: same truth for every rule and row.

Conditions are generated as text over a small schema (every field type, a segment and a
metric, kinds that do not match, constants on both sides) and parsed; rows hold typed
values (int, Decimal, float), missing ones (absent or None), and now and then a value of
the wrong type, which must reach the closures and give their answer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playbook_engine.engine import Engine
from playbook_engine.fastpath import FastRules, NotFlat, compile_fast, flat_reason
from playbook_engine.parse import parse_expression

SCHEMA = """\
schema
  account
    tier: one of high-touch, low-touch, tech-touch
    stage: one of onboarding, adoption, renewal, churned
    plan: text
    mrr: number
    seats: number
    health: number
    nps: number
    vip_flag: yes/no
    signed_at: date
    csm: user
  contact roles: admin
  event login
    user: text

segment big: mrr >= 100000 or vip_flag
segment odd: tier is high-touch and nps < 3
metric per-seat: mrr / seats
metric login-count: count login in last 7 days
"""

NUMBER_FIELDS = ("mrr", "seats", "health", "nps")
ENUMS = {
    "tier": ("high-touch", "low-touch", "tech-touch"),
    "stage": ("onboarding", "adoption", "renewal", "churned"),
}
ALL_FIELDS = (*NUMBER_FIELDS, *ENUMS, "plan", "vip_flag", "signed_at", "csm", "id", "name")
TEXTS = ("", "a", "enterprise", "Acme 株式会社", 'say "hi"\n', "x-1")


@pytest.fixture(scope="module")
def program() -> Any:
    engine = Engine.from_sources({"schema.playbook": SCHEMA})
    assert engine.ok, [engine.render(d) for d in engine.diagnostics]
    return engine.program


# ------------------------------------------------------------------ conditions as text


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


# Lists take plain numbers (no percent, no sign); values take any.
list_numbers = st.one_of(
    st.integers(0, 200_000).map(str),
    st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False).map(str),
)
numbers_text = st.one_of(
    st.integers(-5, 200_000).map(str),
    st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False).map(str),
    st.integers(0, 150).map(lambda k: f"{k}%"),
)


def number_values(depth: int = 2) -> st.SearchStrategy[str]:
    atoms = st.one_of(st.sampled_from([*NUMBER_FIELDS, "per-seat"]), numbers_text)
    if depth == 0:
        return atoms
    inner = number_values(depth - 1)
    return st.one_of(
        atoms,
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        inner.map(lambda v: f"-{v}" if not v.startswith("-") else v),
    )


def _enum_condition() -> st.SearchStrategy[str]:
    def build(field: str) -> st.SearchStrategy[str]:
        values = st.sampled_from([*ENUMS[field], "unknown-value"])
        return st.one_of(
            values.map(lambda v: f"{field} is {v}"),
            values.map(lambda v: f"{field} is not {v}"),
            st.lists(st.one_of(values, list_numbers), max_size=3).map(
                lambda vs: f"{field} in [{', '.join(vs)}]"
            ),
            st.lists(values, max_size=3).map(lambda vs: f"{field} not in [{', '.join(vs)}]"),
        )

    return st.sampled_from(sorted(ENUMS)).flatmap(build)


def atomic_conditions() -> st.SearchStrategy[str]:
    comparison = st.tuples(
        number_values(), st.sampled_from(["<", "<=", ">", ">=", "=", "!="]), number_values()
    ).map(lambda t: f"{t[0]} {t[1]} {t[2]}")
    texts = st.sampled_from(TEXTS).map(_quote)
    return st.one_of(
        comparison,
        _enum_condition(),
        texts.map(lambda t: f"plan is {t}"),
        texts.map(lambda t: f"plan is not {t}"),
        st.tuples(st.sampled_from(["contains", "starts with", "ends with"]), texts).map(
            lambda t: f"plan {t[0]} {t[1]}"
        ),
        texts.map(lambda t: f"name contains {t}"),
        st.lists(list_numbers, max_size=3).map(lambda vs: f"nps in [{', '.join(vs)}]"),
        st.lists(list_numbers, max_size=3).map(lambda vs: f"seats not in [{', '.join(vs)}]"),
        st.sampled_from([*ALL_FIELDS, "big", "per-seat"]).map(lambda f: f"{f} is missing"),
        st.sampled_from([*ALL_FIELDS, "big", "per-seat"]).map(lambda f: f"{f} is present"),
        st.sampled_from(["vip", "beta"]).map(lambda t: f'has tag "{t}"'),
        st.sampled_from(["vip_flag", "big", "odd", "account.vip_flag", "mrr", "plan"]),
        # kinds that do not match: unknown whatever the row holds
        st.sampled_from(
            ["tier < 5", "plan = 3", "mrr is high-touch", "vip_flag = 1", "mrr contains \"1\"",
             "big = vip_flag", "tier = stage", "plan < \"m\"", "mrr = seats"]
        ),
        # constants on both sides
        st.sampled_from(
            ["90% * 70 = 63", "1 / 0 is missing", "3 in [1, 2, 3]", "\"a\" contains \"\"",
             "2 > 1", "(1 - 1) / (2 - 2) > 0", "\"x\" in [x, 1]", "5 not in [x]"]
        ),
    )


def conditions(depth: int = 3) -> st.SearchStrategy[str]:
    if depth == 0:
        return atomic_conditions()
    inner = conditions(depth - 1)
    return st.one_of(
        atomic_conditions(),
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        inner.map(lambda c: f"not ({c})"),
    )


# ------------------------------------------------------------------ rows


def number_cells() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(-10, 300_000),
        st.sampled_from([0, 1, 63, 70, 100, 100_000, 10**30]),
        st.decimals(min_value=-10**6, max_value=10**6, places=3, allow_nan=False),
        st.sampled_from([Decimal("63.0"), Decimal("0.3"), Decimal("-0"), Decimal("1E+2")]),
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
        st.sampled_from([0.1, 0.3, 63.0, 0.9 * 70, 49.5, 0.25, -7.0625, 2.0**30 + 0.5]),
        st.integers(-4000, 4000).map(lambda k: k / 16),
    )


def cells(field: str) -> st.SearchStrategy[Any]:
    if field in NUMBER_FIELDS:
        typed = number_cells()
    elif field in ENUMS:
        typed = st.sampled_from([*ENUMS[field], "other"])
    elif field == "vip_flag":
        typed = st.booleans()
    elif field == "signed_at":
        typed = st.just("2026-01-01")
    elif field == "csm":
        typed = st.just({"name": "x"})
    else:
        typed = st.sampled_from(TEXTS)
    return st.one_of(typed, st.none())


@st.composite
def rows(draw: st.DrawFn, foreign: bool = False) -> dict[str, Any]:
    """A row; half of them have every field present (the fast block), with small ints."""
    complete = draw(st.booleans())
    row: dict[str, Any] = {}
    for field in ALL_FIELDS:
        if complete:
            row[field] = draw(
                st.one_of(st.integers(-1000, 300_000), st.integers(-1000, 300_000).map(Decimal))
                if field in NUMBER_FIELDS
                else cells(field).filter(lambda v: v is not None)
            )
        elif draw(st.booleans()):
            row[field] = draw(cells(field))
    if draw(st.booleans()):
        row["tags"] = draw(st.lists(st.sampled_from(["vip", "beta", "x"]), max_size=2))
    if foreign:
        field = draw(st.sampled_from([*NUMBER_FIELDS, "plan", "tier", "vip_flag"]))
        row[field] = draw(st.sampled_from(["7", True, 3, [], Decimal("NaN"), "high-touch"]))
    return row


def test_a_test_two_abandoned_rules_share_is_not_computed_unguarded(program: Any) -> None:
    # Both rules give up the two-valued form after counting `plan starts with ""`: it
    # must not become a shared test, computed where `plan` may be missing.
    texts = ['name contains ""', '(not (plan starts with "") and tier < 5)',
             '(not (plan starts with "") and tier < 5)']
    fast = compile_fast(program, [parse_expression(t) for t in texts])
    row = {"seats": Decimal("10.716"), "tier": "high-touch", "name": "", "id": "a"}
    assert _same(fast.evaluate(row), fast.reference(row))


def _same(fast: tuple[Any, ...], slow: tuple[Any, ...]) -> bool:
    """Identical truth values: True, False or None, never 1 for True."""
    return len(fast) == len(slow) and all(a is b for a, b in zip(fast, slow, strict=True))


# ------------------------------------------------------------------ differential tests


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(conditions(), min_size=1, max_size=6), decimal_rows=st.booleans(),
       data=st.data())
def test_same_truth_as_closures(
    program: Any, texts: list[str], decimal_rows: bool, data: st.DataObject
) -> None:
    exprs = [parse_expression(t) for t in texts]
    fast = compile_fast(program, exprs, decimal_rows=decimal_rows)
    for _ in range(8):
        row = data.draw(rows())
        got = fast.evaluate(row)
        want = fast.reference(row)
        assert _same(got, want), (texts, row, got, want, fast.source)
    assert fast.fallbacks == 0, "typed rows must not leave the fast path"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(conditions(), min_size=1, max_size=4), data=st.data())
def test_wrong_types_take_the_closures(
    program: Any, texts: list[str], data: st.DataObject
) -> None:
    exprs = [parse_expression(t) for t in texts]
    fast = compile_fast(program, exprs)
    for _ in range(4):
        row = data.draw(rows(foreign=True))
        try:
            want: Any = fast.reference(row)
        except Exception as exc:  # the closures themselves fail (NaN < 1): so must we
            with pytest.raises(type(exc)):
                fast.evaluate(row)
            continue
        got = fast.evaluate(row)
        assert _same(got, want), (texts, row, got, want)


# ------------------------------------------------------------------ examples


def _truths(program: Any, text: str, row: dict[str, Any]) -> Any:
    fast = compile_fast(program, [parse_expression(text)])
    (got,) = fast.evaluate(row)
    (want,) = fast.reference(row)
    assert got is want
    return got


@pytest.mark.parametrize(
    ("text", "row", "expected"),
    [
        ("nps >= 90% * seats", {"nps": 63, "seats": 70}, True),
        ("nps >= 90% * seats", {"nps": Decimal("62.99"), "seats": 70}, False),
        ("nps >= 90% * seats", {"nps": 63}, None),
        ("90% * 70 = 63", {}, True),
        ("mrr = 0.3", {"mrr": 0.3}, True),  # a float is the decimal it prints as
        ("mrr > 0.1", {"mrr": 0.1}, False),
        ("mrr < 49.5", {"mrr": 49.5}, False),  # kept a float: compared exactly
        ("mrr in [49.5, 3]", {"mrr": 49.5}, True),
        ("mrr * 2 = 99", {"mrr": 49.5}, True),  # arithmetic: converted to Decimal
        ("mrr / seats > 1", {"mrr": 5, "seats": 0}, None),
        ("per-seat >= 2.5", {"mrr": 5, "seats": 2}, True),
        ("tier is high-touch and mrr >= 100000", {"tier": "high-touch"}, None),
        ("tier is low-touch and mrr >= 100000", {"tier": "high-touch"}, False),
        ("tier is high-touch or mrr >= 100000", {"tier": "high-touch"}, True),
        ("not (health < 50)", {}, None),
        ("nps is missing", {"nps": None}, True),
        ("signed_at is present", {"signed_at": "2026-01-01"}, True),
        ("tier in [high-touch, 5]", {"tier": "low-touch"}, None),
        ("tier in [high-touch, low-touch]", {"tier": "low-touch"}, True),
        ('has tag "vip"', {}, False),
        ('has tag "vip"', {"tags": ["vip"]}, True),
        ("big", {"vip_flag": True}, True),
        ("big", {"mrr": 5}, None),
        ("plan", {"plan": "x"}, None),
        ('plan contains "株式"', {"plan": "Acme 株式会社"}, True),
        ("mrr = 1", {"mrr": "1"}, None),  # a text in a number field: the closures' answer
        # integer arithmetic standing for Decimal: exact, and only where Decimal is exact
        ("nps * 3 - seats * 2 = 7", {"nps": 5, "seats": 4}, True),
        ("-nps < 0.5 * seats", {"nps": -3, "seats": 6}, False),
        ("mrr * 1.05 > seats * 1.1", {"mrr": 11, "seats": 10}, True),
        ("mrr * 1.05 > seats * 1.1", {"mrr": 10**16, "seats": 10**16}, False),
        ("mrr * seats * health * nps > 5", {"mrr": 10**9, "seats": 10**9, "health": 10**9,
                                            "nps": 10**9}, True),
        # past 28 digits Decimal rounds both sides to the same number: integers must not
        # answer (they would say False)
        ("mrr * seats = mrr * seats + 1", {"mrr": 10**15 + 1, "seats": 10**15 + 3}, True),
        ("mrr * seats * health = 1000000000000000000000000000000",
         {"mrr": 10**10, "seats": 10**10, "health": 10**10}, True),
    ],
)
def test_examples(program: Any, text: str, row: dict[str, Any], expected: Any) -> None:
    assert _truths(program, text, row) is expected


def test_no_author_text_in_the_source(program: Any) -> None:
    nasty = "\"); import sys  # ''' {{ x }}\n"
    text = f"plan is {_quote(nasty)} or tier is high-touch or plan contains {_quote(nasty)}"
    fast = compile_fast(program, [parse_expression(text)])
    for word in ("import", "sys", "plan", "tier", "high-touch", "{{"):
        assert word not in fast.source
    assert fast.evaluate({"plan": nasty}) == (True,)
    assert fast.evaluate({"plan": "other"}) == (None,)
    assert fast.evaluate.__globals__["__builtins__"] == {}


def test_not_flat(program: Any) -> None:
    for text in (
        "login-count > 1",
        "count login in last 7 days > 2",
        "30 days after signed_at",
        "health drops below 50",
        "csm.email is \"a@b\"",
        "health < 50 for 3 days",
    ):
        assert flat_reason(program, parse_expression(text)) is not None, text
        with pytest.raises(NotFlat):
            compile_fast(program, [parse_expression(text)])


def test_from_program_on_the_spec(spec_dir: Any) -> None:
    engine = Engine.load(spec_dir)
    fast = FastRules.from_program(engine.program)
    reasons = dict(fast.skipped)
    assert ("Voice of the customer", "Detractor follow-up") in reasons  # an event rule
    assert len(fast) + len(fast.skipped) == sum(
        1 for p, _ in engine.program.rules() if p.status_value != "paused"
    )
    # Every rule of the contract looks at time, events or history: none is flat.
    assert fast.evaluate({"tier": "high-touch"}) == ()


def test_from_program_keys_and_skips() -> None:
    playbook = """\
playbook "P"
  rule "Big"
    when mrr >= 100000 and tier is high-touch
    then add tag "big"
  rule "Quiet"
    when count login in last 7 days = 0
    then add tag "quiet"
  rule "Small"
    when big or seats < 5
    then add tag "small"
"""
    engine = Engine.from_sources({"schema.playbook": SCHEMA, "p.playbook": playbook})
    assert engine.ok, [engine.render(d) for d in engine.diagnostics]
    fast = FastRules.from_program(engine.program)
    assert fast.keys == (("P", "Big"), ("P", "Small"))
    assert [key for key, _ in fast.skipped] == [("P", "Quiet")]
    row = {"mrr": 150_000, "tier": "high-touch", "seats": 10}
    assert fast.evaluate(row) == (True, True)
    assert fast.true_keys(row) == [("P", "Big"), ("P", "Small")]


def test_integer_arithmetic_is_used(program: Any) -> None:
    fast = compile_fast(program, [parse_expression("nps >= 90% * seats")])
    assert "ints" in fast.source
    assert fast.evaluate({"nps": 63, "seats": 70}) == (True,)
    assert fast.evaluate({"nps": 62, "seats": 70}) == (False,)
    assert fast.evaluate({"nps": Decimal("63.0"), "seats": 70}) == (True,)  # Decimal code
    assert fast.evaluate({"nps": 63.0, "seats": 70.0}) == (True,)  # floats: 63.0 is 63
    # 90% * seats rounds in Decimal beyond 28 digits: the Decimal code answers, not ints
    big = 10**27 + 1
    want = fast.reference({"nps": big, "seats": big})
    assert fast.evaluate({"nps": big, "seats": big}) == want


def test_many_rules_one_function(program: Any) -> None:
    texts = [f"mrr >= {k * 1000} and tier is high-touch" for k in range(200)]
    fast = compile_fast(program, [parse_expression(t) for t in texts])
    result = fast.evaluate({"mrr": 50_500, "tier": "high-touch"})
    assert result == tuple(k <= 50 for k in range(200))
    assert fast.fields == ("mrr", "tier")
