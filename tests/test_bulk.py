"""The bulk path's parts: columnar loading, the plan's logic and numbers, the wiring.

The end-to-end comparison with the per-account path on generated playbooks and accounts
is `test_bulk_differential.py`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from typer.testing import CliRunner

from playbook_engine import facts
from playbook_engine import nodes as n
from playbook_engine.bulk import (
    BulkEvaluation,
    BulkStats,
    condition_table,
    evaluate_bulk,
    frames_from_fixture,
    load_frames,
)
from playbook_engine.bulk_accounts import ColumnSource
from playbook_engine.bulk_frames import ListSource, frames_from_accounts, zone_is_fixed
from playbook_engine.bulk_plan import Ctx, Planner
from playbook_engine.cli import app
from playbook_engine.dryrun import dry_run
from playbook_engine.engine import Engine
from playbook_engine.errors import FixtureError
from playbook_engine.parse import parse_expression

TOKYO = ZoneInfo("Asia/Tokyo")
AT = datetime(2026, 3, 16, 9, 0, tzinfo=TOKYO)

SCHEMA = """\
schema
  account
    tier: one of high-touch, low-touch, tech-touch
    seats: number
    active: number
    health: number
    plan: text
    vip: yes/no
    signed_at: date
    csm: user
  contact roles: admin, billing
  event login
    user: text
  event nps_submitted
    score: number
"""


def _engine(rules: str = "", **templates: str) -> Engine:
    engine = Engine.from_sources({"schema.playbook": SCHEMA, "p.playbook": rules},
                                 {f"templates/{k}.txt": v for k, v in templates.items()})
    assert engine.ok, [engine.render(d) for d in engine.errors]
    return engine


def _write(tmp_path: Path, name: str, doc: object) -> Path:
    """`.jsonl`: one account a line; `.lines.json`: a document with one account a line
    (as bench/generate.py writes it); other `.json`: a document on one line."""
    path = tmp_path / name
    if name.endswith(".lines.json"):
        assert isinstance(doc, dict)
        header = json.dumps({k: v for k, v in doc.items() if k != "accounts"},
                            ensure_ascii=False)[:-1]
        lines = [json.dumps(a, ensure_ascii=False) for a in doc["accounts"]]
        opening = f'{header}, "accounts": [\n' if header != "{" else '{"accounts": [\n'
        path.write_text(opening + ",\n".join(lines) + "\n]}\n", encoding="utf-8")
    elif name.endswith(".jsonl"):
        assert isinstance(doc, dict)
        header = {k: v for k, v in doc.items() if k != "accounts"}
        lines = [json.dumps(header, ensure_ascii=False)] if header else []
        lines += [json.dumps(a, ensure_ascii=False) for a in doc["accounts"]]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


ACCOUNTS = [
    {"id": "a", "name": "Acme 株式会社", "tier": "high-touch", "seats": 70, "active": 63,
     "health": 48.5, "plan": "standard", "vip": True, "signed_at": "2026-02-20",
     "csm": {"name": "佐藤", "email": "sato@example.com"}, "tags": ["vip", "x"],
     "contacts": [{"name": "A", "email": "a@acme.example", "role": "admin"},
                  {"email": "b@acme.example", "role": "billing"}],
     "events": [
         {"type": "login", "at": "2026-03-12T10:00:00+09:00", "user": "u1"},
         {"type": "login", "at": "2026-03-10T10:00:00Z", "user": "u2"},
         {"type": "nps_submitted", "at": "2026-03-15T23:30:00-05:00", "score": 4},
         {"type": "login", "at": "2026-03-12T10:00:00+09:00", "user": "u3"},
     ],
     "history": {"health": [{"at": "2026-03-14", "value": 62}, {"at": "2026-03-01",
                                                                 "value": 70}],
                 "tier": []},
     "fired": [{"playbook": "P", "rule": "R", "at": "2026-03-01T09:00:00+09:00"}]},
    {"id": 1002, "seats": 0.1, "signed_at": "2025-12-31T23:59:59.5"},
    {"id": "c", "name": None, "csm": {"email": "c@example.com"}, "events": []},
]


@pytest.mark.parametrize("name", ["f.json", "f.jsonl", "f.lines.json"])
@pytest.mark.parametrize("header", [
    {"now": "2026-03-16T09:00:00+09:00", "timezone": "Asia/Tokyo"},
    {"timezone": "+09:00"},
    {},
])
def test_columnar_load_builds_the_same_accounts(tmp_path: Path, name: str,
                                                header: dict[str, str]) -> None:
    engine = _engine()
    path = _write(tmp_path, name, {**header, "accounts": ACCOUNTS})
    frames = load_frames(path, engine)
    assert isinstance(frames.source, ColumnSource)  # read column-wise, not by fixtures.py
    fixture = engine.load_fixture(path)
    built = frames.source.accounts(range(len(ACCOUNTS)))
    assert built == list(fixture.accounts)
    for mine, theirs in zip(built, fixture.accounts, strict=True):
        # Same instants, and written in the same offsets (templates show local dates).
        for a, b in zip(mine.events, theirs.events, strict=True):
            assert a.at.utcoffset() == b.at.utcoffset()
    assert frames.as_of == fixture.as_of
    assert frames.now == fixture.now
    assert frames.account_ids == [a.id for a in fixture.accounts]


BAD = {
    "a date that is no date": {"id": "a", "signed_at": "2026-02-30"},
    "an event time": {"id": "a", "events": [{"type": "login", "at": "yesterday"}]},
    "an unknown field": {"id": "a", "teir": "high-touch"},
    "a one-of value": {"id": "a", "tier": "hi-touch"},
    "a text in a number field": {"id": "a", "seats": "ten"},
    "an unknown event type": {"id": "a", "events": [{"type": "logon", "at": "2026-03-01"}]},
    "an unknown role": {"id": "a", "contacts": [{"email": "x@y", "role": "boss"}]},
    "an event field of another type": {
        "id": "a", "events": [{"type": "login", "at": "2026-03-01", "score": 3}]},
    "a yes/no as text": {"id": "a", "vip": "maybe"},
    "a missing id": {"name": "no id"},
}


@pytest.mark.parametrize("name", ["f.json", "f.jsonl", "f.lines.json"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_fixtures_fail_with_the_reference_messages(tmp_path: Path, name: str,
                                                       case: str) -> None:
    engine = _engine()
    path = _write(tmp_path, name, {"now": "2026-03-16T09:00:00+09:00",
                                   "accounts": [ACCOUNTS[2], BAD[case]]})
    with pytest.raises(FixtureError) as reference:
        engine.load_fixture(path)
    with pytest.raises(FixtureError) as ours:
        load_frames(path, engine)
    assert str(ours.value) == str(reference.value)
    assert "accounts[1]" in str(ours.value)


def test_a_duplicate_id_and_a_syntax_error_too(tmp_path: Path) -> None:
    engine = _engine()
    for path in (_write(tmp_path, "d.json", {"accounts": [{"id": "a"}, {"id": "a"}]}),
                 tmp_path / "s.json"):
        if path.name == "s.json":
            path.write_text('{"accounts": [{"id": "a",}]}')
        with pytest.raises(FixtureError) as reference:
            engine.load_fixture(path)
        with pytest.raises(FixtureError) as ours:
            load_frames(path, engine)
        assert str(ours.value) == str(reference.value)


def _readers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records which columnar reader read each file: "arrow" or "polars"."""
    import playbook_engine.bulk_load as bulk_load

    used: list[str] = []
    arrow, polars = bulk_load._arrow_lines, bulk_load._read_document

    def arrow_lines(*args: object) -> pl.DataFrame:
        frame = arrow(*args)  # type: ignore[arg-type]
        used.append("arrow")
        return frame

    def read_document(*args: object) -> object:
        used.append("polars")
        return polars(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(bulk_load, "_arrow_lines", arrow_lines)
    monkeypatch.setattr(bulk_load, "_read_document", read_document)
    return used


LAID_OUT = [dict(a, id=str(a["id"])) for a in ACCOUNTS]  # Arrow reads ids as text


def _exactly(accounts: Iterable[facts.Account]) -> list[str]:
    """Accounts written out: types, offsets and order show (history fields sorted)."""
    return [repr(replace(a, history=dict(sorted(a.history.items())))) for a in accounts]


@pytest.mark.parametrize(("name", "reader"), [
    ("f.lines.json", "arrow"), ("f.jsonl", "arrow"), ("f.json", "polars"),
    ("pretty.json", "polars"),
])
def test_files_laid_out_one_account_a_line_are_read_by_arrow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, reader: str) -> None:
    engine = _engine()
    doc = {"now": "2026-03-16T09:00:00+09:00", "accounts": LAID_OUT}
    path = _write(tmp_path, name, doc)
    if name == "pretty.json":
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    used = _readers(monkeypatch)
    frames = load_frames(path, engine)
    assert used == [reader]
    assert isinstance(frames.source, ColumnSource)
    fixture = engine.load_fixture(path)
    built = frames.source.accounts(range(len(LAID_OUT)))
    assert built == list(fixture.accounts)
    assert _exactly(built) == _exactly(fixture.accounts)


def test_what_arrow_does_not_type_goes_to_polars(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A number as id (Arrow's schema says text): polars' reader, still column-wise."""
    engine = _engine()
    path = _write(tmp_path, "f.jsonl", {"accounts": ACCOUNTS})
    used = _readers(monkeypatch)
    frames = load_frames(path, engine)
    assert used == ["polars"]
    assert isinstance(frames.source, ColumnSource)
    assert frames.source.accounts(range(len(ACCOUNTS))) == list(engine.load_fixture(
        path).accounts)


# JSON that Arrow's reader would take but a fixture must not hold, or that only reads
# right one line at a time: the same messages as fixtures.py.
LAYOUTS = {
    "two accounts on a line": ("f.jsonl", b'{"id": "a"} {"id": "b"}\n{"id": "c"}\n'),
    "an account on two lines": ("f.jsonl", b'{"id": "a",\n"name": "A"}\n{"id": "c"}\n'),
    "an object split to look whole": (
        "f.jsonl", b'{"id": "a", "csm": {"name": "x"}} {"id": "b", "csm":\n{"name": "y"}}\n'),
    "a missing comma": ("f.lines.json", b'{"accounts": [\n{"id": "a"}\n{"id": "b"}\n]}\n'),
    "a comma too many": ("f.lines.json",
                         b'{"accounts": [\n{"id": "a"},\n{"id": "b"},\n]}\n'),
    "an account over two lines": (
        "f.lines.json", b'{"accounts": [\n{"id": "a",\n"name": "A"},\n{"id": "b"}\n]}\n'),
    "two accounts on a line of a document": (
        "f.lines.json", b'{"accounts": [\n{"id": "a"}, {"id": "b"},\n{"id": "c"}\n]}\n'),
    "two accounts without a comma in a document": (
        "f.lines.json", b'{"accounts": [\n{"id": "a"} {"id": "b"},\n{"id": "c"}\n]}\n'),
    "a list of contacts over two lines": (
        "f.lines.json", b'{"accounts": [\n{"id": "a", "contacts": [{"role": "admin"},\n'
                        b'{"role": "billing"}]},\n{"id": "b"}\n]}\n'),
    "NaN": ("f.jsonl", b'{"id": "a", "seats": NaN}\n'),
    "Infinity": ("f.lines.json", b'{"accounts": [\n{"id": "a", "seats": -Infinity}\n]}\n'),
    "bytes that are no UTF-8": ("f.jsonl", b'{"id": "a", "name": "\xff"}\n'),
    "a leap second": ("f.jsonl", b'{"id": "a", "signed_at": "2026-03-12T10:00:60+09:00"}\n'),
    "a 24th hour": ("f.lines.json",
                    b'{"accounts": [\n{"id": "a", "signed_at": "2026-03-12T24:00:00Z"}\n]}\n'),
    "an offset of a day": ("f.jsonl",
                           b'{"id": "a", "signed_at": "2026-03-12T10:00:00+24:00"}\n'),
    "year 0": ("f.jsonl", b'{"id": "a", "signed_at": "0000-12-31T23:00:00-05:00"}\n'),
    "a space for the T": ("f.jsonl",
                          b'{"id": "a", "signed_at": "2026-03-12 10:00:00+09:00"}\n'),
    "a key twice": ("f.jsonl", b'{"id": "a", "seats": 1, "seats": "x"}\n'),
    "a field of another type in a list": (
        "f.jsonl", b'{"id": "a", "events": [{"type": "login", "at": "2026-03-01", '
                   b'"user": 5}]}\n'),
}


@pytest.mark.parametrize("case", sorted(LAYOUTS))
def test_what_only_looks_like_one_account_a_line(tmp_path: Path, case: str) -> None:
    engine = _engine()
    name, data = LAYOUTS[case]
    path = tmp_path / name
    path.write_bytes(data)
    try:
        reference = engine.load_fixture(path)
    except FixtureError as problem:
        with pytest.raises(FixtureError) as ours:
            load_frames(path, engine)
        assert str(ours.value) == str(problem)
    else:  # fixtures.py takes it after all: then the same accounts
        built = load_frames(path, engine).source.accounts(range(len(reference.accounts)))
        if b'"now"' not in data:  # `now` is the second each load ran in: they may differ
            built = [replace(a, as_of=r.as_of)
                     for a, r in zip(built, reference.accounts, strict=True)]
        assert _exactly(built) == _exactly(reference.accounts)


@pytest.mark.parametrize("name", ["f.jsonl", "f.lines.json"])
def test_numbers_past_2_to_the_53_stay_exact(tmp_path: Path, name: str) -> None:
    engine = _engine()
    path = _write(tmp_path, name, {"accounts": [
        {"id": "a", "seats": 2**53 + 1}, {"id": "b", "seats": 0.5}]})
    frames = load_frames(path, engine)
    built = frames.source.accounts(range(2))
    assert built == list(engine.load_fixture(path).accounts)
    assert built[0].fields["seats"] == Decimal(2**53 + 1)


@pytest.mark.parametrize("name", ["f.jsonl", "f.lines.json"])
def test_moments_in_many_offsets(tmp_path: Path, name: str) -> None:
    engine = _engine()
    times = ["2026-03-12T10:00:00+09:00", "2026-03-12T10:00:00-05:00", None,
             "2026-03-12T10:00:00+00:00", "2026-03-12T10:00:00-00:00",
             "2026-03-12T10:00:00+05:45", "1970-01-01T00:00:00+14:00"]
    accounts = [{"id": f"a{i}", "signed_at": t,
                 "events": [{"type": "login", "at": t or "2026-03-01T00:00:00Z"}]}
                for i, t in enumerate(times)]
    path = _write(tmp_path, name, {"now": "2026-03-16T09:00:00+09:00",
                                   "timezone": "America/New_York", "accounts": accounts})
    frames = load_frames(path, engine)
    assert isinstance(frames.source, ColumnSource)
    fixture = engine.load_fixture(path)
    built = frames.source.accounts(range(len(times)))
    assert _exactly(built) == _exactly(fixture.accounts)


def test_yaml_goes_through_fixtures_py(spec_dir: Path) -> None:
    engine = Engine.load(spec_dir)
    frames = load_frames(spec_dir / "fixtures" / "accounts.yaml", engine)
    fixture = engine.load_fixture(spec_dir / "fixtures" / "accounts.yaml")
    assert isinstance(frames.source, ListSource)
    assert frames.source.accounts(range(len(fixture.accounts))) == list(fixture.accounts)


# --------------------------------------------------------------------------- the plan


def test_polars_booleans_are_kleene() -> None:
    """The plan relies on it: polars' &, | and ~ are three-valued logic's and, or, not."""
    values = [True, False, None]
    frame = pl.DataFrame({"a": [a for a in values for _ in values],
                          "b": [b for _ in values for b in values]},
                         schema={"a": pl.Boolean, "b": pl.Boolean})
    out = frame.select(
        (pl.col("a") & pl.col("b")).alias("and"), (pl.col("a") | pl.col("b")).alias("or"),
        (~pl.col("a")).alias("not"), (pl.col("a").cast(pl.Int8) < 1).alias("cmp"))
    from playbook_engine import logic
    for row, (a, b) in zip(out.iter_rows(), zip(frame["a"], frame["b"], strict=True),
                           strict=True):
        assert row[:3] == (logic.and3(a, b), logic.or3(a, b), logic.not3(a))
        assert row[3] is None if a is None else True  # a comparison with null is null


def _truth(engine: Engine, accounts: list[facts.Account], text: str,
           at: datetime = AT) -> list[bool | None]:
    frames = frames_from_accounts(accounts, engine.program, as_of=AT, timezone=TOKYO)
    table = condition_table(engine, frames, at, [parse_expression(text)])
    return table.get_column("c0").to_list()


def _account(i: int = 0, **fields: object) -> facts.Account:
    typed: dict[str, facts.Value] = {
        k: Decimal(str(v)) if isinstance(v, (int, float)) else v  # type: ignore[misc]
        for k, v in fields.items()}
    return facts.Account(id=f"a{i}", name=None, fields=typed, as_of=AT)


@pytest.mark.parametrize(("text", "expected"), [
    ("active >= 90% * seats", [True, False, None]),  # 63 >= 63 exactly
    ("active > 90% * seats", [False, False, None]),
    ("active / seats >= 0.9", [True, False, None]),
    ("active / seats < 0.9", [False, True, None]),
    ("0.1 + 0.2 = 0.3", [True, True, True]),
    ("seats - active = 7", [True, False, None]),
    ("active / 0 > 1", [None, None, None]),  # dividing by zero is unknown
])
def test_numbers_are_exact_decimals(text: str, expected: list[bool | None]) -> None:
    engine = _engine()
    accounts = [_account(0, seats=70, active=63), _account(1, seats=70, active=62),
                _account(2, seats=70)]
    ours = _truth(engine, accounts, text)
    # A value too close to call in floats is null here (decided per account later);
    # anything decided must be the exact answer.
    for got, want in zip(ours, expected, strict=True):
        assert got is None or got == want
    frames = frames_from_accounts(accounts, engine.program, as_of=AT, timezone=TOKYO)
    planner = Planner(engine.program, frames, AT, timedelta(days=1), True)
    mask = planner.maybe(planner.condition(parse_expression(text), Ctx(AT)))
    maybe = planner.select(frames.accounts, [mask]).to_series().to_list()
    for candidate, want in zip(maybe, expected, strict=True):
        assert candidate or want is not True  # never misses a true


def test_whole_numbers_are_decided_exactly() -> None:
    engine = _engine()
    accounts = [_account(i, seats=i, active=10 - i) for i in range(10)]
    assert _truth(engine, accounts, "seats * 2 >= active") == [2 * i >= 10 - i for i in
                                                               range(10)]


# --------------------------------------------------------------------------- the wiring


RULES = """\
playbook "P"
  rule "Low"
    when health < 50 and has tag "vip"
    then notify "c" "{{ account.name }} at {{ health }}"
  rule "Quiet"
    when count login in last 7 days = 0
    then create task "Call {{ account.name }}" for csm due in 2 business days
    at most once every 30 days
  rule "NPS"
    on nps_submitted where score <= 6
    then notify "c" "NPS {{ event.score }}"
"""


def _many(count: int) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(count):
        account: dict[str, object] = {"id": f"a{i}", "name": f"Acct {i}", "health": i % 100}
        if i % 3 == 0:
            account["tags"] = ["vip"]
        if i % 4 == 0:
            account["events"] = [{"type": "login", "at": "2026-03-14T10:00:00+09:00",
                                  "user": "u"}]
        if i % 7 == 0:
            account["events"] = [{"type": "nps_submitted", "at": "2026-03-16T08:00:00+09:00",
                                  "score": i % 10}]
        if i % 5 == 0:
            account["fired"] = [{"playbook": "P", "rule": "Quiet",
                                 "at": "2026-03-01T09:00:00+09:00"}]
        out.append(account)
    return out


def test_engine_dry_run_takes_the_bulk_path_for_big_fixtures(tmp_path: Path) -> None:
    engine = _engine(RULES)
    path = _write(tmp_path, "big.json", {"now": "2026-03-16T09:00:00+09:00",
                                         "accounts": _many(600)})
    fixture = engine.load_fixture(path)
    stats = BulkStats()
    bulk = engine.dry_run(fixture, stats=stats)
    assert isinstance(bulk, BulkEvaluation)
    assert stats.accounts == 600 and stats.rules == 3
    per_account = engine.dry_run(fixture, bulk=False)
    assert not isinstance(per_account, BulkEvaluation)
    assert bulk.as_json() == per_account.as_json()
    assert bulk.as_json()["actions"]
    frames = engine.load_frames(path)
    assert engine.dry_run(frames).as_json() == per_account.as_json()
    assert engine.dry_run(frames, bulk=False).as_json() == per_account.as_json()
    chosen = engine.dry_run(frames, accounts=["a3", "a7"], rule="NPS")
    assert chosen.as_json() == engine.dry_run(fixture, bulk=False, accounts=["a3", "a7"],
                                              rule="NPS").as_json()


def test_the_table_view_is_the_same(tmp_path: Path) -> None:
    from rich.console import Console

    from playbook_engine.dryrun import print_table

    engine = _engine(RULES)
    fixture = engine.load_fixture(_write(tmp_path, "f.json", {
        "now": "2026-03-16T09:00:00+09:00", "accounts": _many(40)}))
    texts = []
    for bulk in (True, False):
        console = Console(record=True, width=200)
        print_table(engine.dry_run(fixture, bulk=bulk), console)
        texts.append(console.export_text())
    assert texts[0] == texts[1]


def cli_setup(tmp_path: Path) -> tuple[Path, Path]:
    """A playbook directory (`SCHEMA`, `RULES`) and a JSON fixture of 700 accounts."""
    root = tmp_path / "pb"
    root.mkdir()
    (root / "schema.playbook").write_text(SCHEMA)
    (root / "p.playbook").write_text(RULES)
    path = _write(tmp_path, "big.json", {"now": "2026-03-16T09:00:00+09:00",
                                         "accounts": _many(700)})
    return root, path


def test_cli_dry_run_with_stats(tmp_path: Path) -> None:
    root, path = cli_setup(tmp_path)
    result = CliRunner().invoke(app, ["dry-run", str(root), "--fixtures", str(path),
                                      "--format", "json", "--stats"])
    assert result.exit_code == 0, result.output
    engine = Engine.load(root)
    expected = engine.dry_run(engine.load_fixture(path), bulk=False).as_json()
    out = result.stdout
    assert json.loads(out) == json.loads(json.dumps(expected))
    assert "accounts/s" in result.stderr and "rule checks/s" in result.stderr
    for phase in ("load", "plan", "scan", "per-account", "render"):
        assert f"{phase} " in result.stderr


def test_progress_bar_on_a_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                    ) -> None:
    engine = _engine(RULES)
    frames = load_frames(_write(tmp_path, "f.json", {"now": "2026-03-16T09:00:00+09:00",
                                                     "accounts": _many(5000)}), engine)
    evaluation = evaluate_bulk(engine, frames, progress=True)
    assert evaluation.as_json()["actions"]
    assert sys.stderr is not None


# --------------------------------------------------------------------------- fallbacks


def test_daylight_saving_zones_send_durations_per_account(tmp_path: Path) -> None:
    engine = _engine("""\
playbook "P"
  rule "Welcome"
    when 14 days after signed_at
    then notify "c" "hi"
  rule "Tier"
    when tier is high-touch
    then notify "c" "hi"
""")
    assert not zone_is_fixed(ZoneInfo("America/New_York"), AT)
    assert zone_is_fixed(TOKYO, AT)
    accounts = [{"id": f"a{i}", "tier": "high-touch",
                 "signed_at": f"2026-02-{20 + i % 9:02d}"} for i in range(30)]
    path = _write(tmp_path, "f.json", {"now": "2026-03-16T09:00:00", "accounts": accounts,
                                       "timezone": "America/New_York"})
    fixture = engine.load_fixture(path)
    stats = BulkStats()
    bulk = evaluate_bulk(engine, frames_from_fixture(fixture, engine), stats=stats)
    assert list(stats.fallback) == ["P / Welcome"]
    assert "daylight-saving" in stats.fallback["P / Welcome"]
    evaluator = engine.evaluator(fixture.timezone)
    assert fixture.as_of is not None
    assert bulk.as_json() == dry_run(evaluator, fixture.accounts, fixture.as_of).as_json()


def test_the_spec_playbooks_need_no_fallback(spec_dir: Path) -> None:
    engine = Engine.load(spec_dir)
    frames = load_frames(spec_dir / "fixtures" / "accounts.yaml", engine)
    stats = BulkStats()
    evaluate_bulk(engine, frames, stats=stats)
    assert stats.fallback == {}
    examples = Path(__file__).resolve().parent.parent / "playbooks" / "examples"
    if (examples / "fixtures" / "accounts.yaml").exists():
        engine = Engine.load(examples)
        stats = BulkStats()
        evaluate_bulk(engine, load_frames(examples / "fixtures" / "accounts.yaml", engine),
                      stats=stats)
        assert stats.fallback == {}


def test_condition_table_reads_like_the_closures() -> None:
    engine = _engine()
    accounts = [
        _account(0, health=40, plan="standard"),
        _account(1, health=60),
        facts.Account(id="a2", name="株式会社 Z", fields={}, as_of=AT,
                      tags=frozenset({"vip"})),
    ]
    cases = {
        "health < 50": [True, False, None],
        'plan is "standard" or health > 50': [True, True, None],
        'not (has tag "vip")': [True, True, False],
        'name starts with "株式会社"': [None, None, True],
        "health is missing": [False, False, True],
    }
    frames = frames_from_accounts(accounts, engine.program, as_of=AT, timezone=TOKYO)
    exprs: list[n.Expr] = [parse_expression(t) for t in cases]
    table = condition_table(engine, frames, AT, exprs)
    for i, expected in enumerate(cases.values()):
        assert table.get_column(f"c{i}").to_list() == expected


def test_json_lines_in_many_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A big JSON Lines file is read a chunk of lines at a time: the same frames."""
    import playbook_engine.bulk_load as bulk_load

    engine = _engine(RULES)
    many = _many(60)
    many[7]["history"] = {"health": [{"at": "2026-03-01", "value": 70}]}
    many[41]["history"] = {"seats": []}
    path = _write(tmp_path, "f.jsonl", {"now": "2026-03-16T09:00:00+09:00", "accounts": many})
    whole = load_frames(path, engine)
    monkeypatch.setattr(bulk_load, "_CHUNK_BYTES", 500)
    chunked = load_frames(path, engine)
    assert isinstance(chunked.source, ColumnSource)
    fixture = engine.load_fixture(path)
    assert chunked.source.accounts(range(60)) == list(fixture.accounts)
    assert whole.accounts.equals(chunked.accounts.select(whole.accounts.columns))
    assert whole.events.equals(chunked.events.select(whole.events.columns))
    assert evaluate_bulk(engine, chunked).as_json() == engine.dry_run(
        fixture, bulk=False).as_json()


# --------------------------------------------------------------------------- re-arming


def test_the_scan_hands_over_the_rules_it_proves_re_armed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A state rule that fired before: held back where its condition was surely not false
    since, handed to the evaluator as re-armed where it was surely false at an evaluation
    since (the evaluator then does not look back), left to the evaluator otherwise."""
    from playbook_engine.evaluate import Evaluator

    engine = _engine("""\
playbook "P"
  rule "Low"
    when health < 50
    then notify "c" "low"
  rule "Low, again"
    when health < 50
    then notify "c" "low again"
    repeat every 3 days
""")
    day = timedelta(days=1)

    def account(i: int, values: list[object], fired: datetime | None) -> facts.Account:
        times = tuple(AT - day * (len(values) - j) for j in range(len(values)))
        typed = tuple(None if v is None else Decimal(str(v)) for v in values)
        firings = () if fired is None else (
            facts.Firing("P", "Low", fired), facts.Firing("P", "Low, again", fired))
        return facts.Account(id=f"a{i}", name=None, fields={"health": Decimal(40)}, as_of=AT,
                             history={"health": facts.History(times, typed)}, fired=firings)

    accounts = [
        account(0, [40, 40, 60, 40, 40], AT - day * 5),  # false 3 days ago: re-armed
        account(1, [40, 40, 40, 40, 40], AT - day * 5),  # true since: held back
        account(2, [40, 40, None, 40, 40], AT - day * 5),  # unknown does not re-arm
        account(3, [40, 60, 40, 40, 40], AT - day),  # fired at the previous evaluation
        account(4, [40, 60, 40, 40, 40], None),  # never fired
        account(5, [60, 40, 40, 40, 40], AT - day * 100),  # false long after it fired
    ]
    seen: dict[str, list[int]] = {}
    decide = Evaluator.evaluate_rules

    def spy(self: Evaluator, account: facts.Account, at: datetime, indices: Iterable[int],
            known: dict[int, bool] | None = None, rearmed: Iterable[int] = ()) -> list[object]:
        if rearmed:
            seen[account.id] = sorted(rearmed)
        return decide(self, account, at, indices, known, rearmed)  # type: ignore[arg-type]

    monkeypatch.setattr(Evaluator, "evaluate_rules", spy)
    frames = frames_from_accounts(accounts, engine.program, as_of=AT, timezone=TOKYO)
    evaluator = engine.evaluator(TOKYO)
    bulk = evaluate_bulk(evaluator, frames, AT)
    assert seen == {"a0": [0, 1], "a5": [0, 1]}
    fired = sorted((o.account, o.rule) for o in bulk.outcomes if o.fired)
    assert fired == [("a0", "Low"), ("a0", "Low, again"), ("a1", "Low, again"),
                     ("a2", "Low, again"), ("a4", "Low"), ("a4", "Low, again"),
                     ("a5", "Low"), ("a5", "Low, again")]
    assert bulk.as_json() == dry_run(evaluator, accounts, AT).as_json()


# --------------------------------------------------------------------------- aggregates


def test_aggregates_in_two_steps_are_the_filtered_ones() -> None:
    """`AggSpec.split` (columns over the events, then plain aggregations) gives what the
    filter per account and aggregate gives: nulls, users without an email, no events."""
    from playbook_engine.bulk_plan import AggSpec, Val

    rows = 400
    events = pl.DataFrame({
        "__idx": [i % 37 for i in range(rows)],
        "type": ["login" if i % 5 else "nps" for i in range(rows)],
        "at": [(i * 7919) % 100 for i in range(rows)],
        "n": [None if i % 11 == 0 else float((i * 31) % 17) for i in range(rows)],
        "t": [None if i % 13 == 0 else f"v{(i * 17) % 5}" for i in range(rows)],
        "u": [None if i % 7 == 0 else True for i in range(rows)],
        "u@name": [f"n{i % 3}" for i in range(rows)],
        "u@email": [None if i % 4 == 0 else f"e{(i * 3) % 6}" for i in range(rows)],
    }, schema_overrides={"__idx": pl.UInt32})
    where = Val("bool", pl.col("n") > 3, x=pl.col("n") > 12)
    specs = [
        AggSpec("c0", "count", "login", None, "null", None, 20, 80),
        AggSpec("c1", "count", "login", None, "null", where, None, 90),
        AggSpec("c2", "distinct", "login", "t", "text", None, 10, 70),
        AggSpec("c3", "distinct", "login", "u", "user", None, 0, 99),
        AggSpec("c4", "distinct", "login", "u", "user", where, 30, 60),
        AggSpec("c5", "min", "login", "n", "number", None, 5, 50),
        AggSpec("c6", "max", "login", "n", "number", where, 40, 95),
        AggSpec("c7", "days_since", "login", None, "null", None, None, 66),
        AggSpec("c8", "count", "login", None, "null", None, 200, 300),  # no event
    ]
    filtered = events.group_by("__idx").agg(
        e for s in specs for e in s.aggregations()).sort("__idx")
    flat: list[pl.Expr] = []
    grouped: list[pl.Expr] = []
    for s in specs:
        parts = s.split()
        assert parts is not None
        flat += parts[0]
        grouped += parts[1]
    split = events.with_columns(flat).group_by("__idx").agg(grouped).sort("__idx")
    assert split.equals(filtered.select(split.columns))
    assert sorted(split.columns) == sorted(filtered.columns)
    assert AggSpec("c9", "sum", "login", "n", "number", None, 0, 99).split() is None
    # `distinct` as `_with_aggregates` counts it: (account, value) pairs among the events read.
    for s in specs:
        if s.func == "distinct":
            value, read = s.values_read()
            pairs = (events.select("__idx", pl.col(value).alias("v"), read.alias("r"))
                     .group_by("__idx", "v").agg(pl.col("r").any())
                     .group_by("__idx").agg(pl.col("r").sum().cast(pl.UInt32)).sort("__idx"))
            assert pairs.get_column("r").to_list() == filtered.get_column(s.column).to_list()
