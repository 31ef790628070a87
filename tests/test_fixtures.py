"""Tests of fixture loading: the spec fixture, formats, typing, and every kind of problem."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from schema_helpers import field, schema, spec_schema

from playbook_engine import facts, fixtures, nodes
from playbook_engine.errors import ConfigError, Diagnostic, FixtureError
from playbook_engine.fixtures import Fixture, RawAccount, load_fixture, parse_fixture_text

TOKYO = ZoneInfo("Asia/Tokyo")
PLUS9 = timezone(timedelta(hours=9))
SPEC = spec_schema()


def load(text: str, filename: str = "f.yaml", schema: nodes.Schema | None = SPEC,
         **kwargs: object) -> Fixture:
    return parse_fixture_text(textwrap.dedent(text), filename, schema, **kwargs)  # type: ignore[arg-type]


def problems(text: str, filename: str = "f.yaml", schema: nodes.Schema | None = SPEC,
             ) -> list[Diagnostic]:
    with pytest.raises(FixtureError) as info:
        parse_fixture_text(textwrap.dedent(text), filename, schema)
    return info.value.diagnostics


def problem(text: str, filename: str = "f.yaml", schema: nodes.Schema | None = SPEC) -> str:
    """The one problem in `text`, as `line:column: message`."""
    found = problems(text, filename, schema)
    assert len(found) == 1, [d.message for d in found]
    return f"{found[0].span.line}:{found[0].span.column}: {found[0].message}"


def at_marker(text: str, marker: str, message: str) -> str:
    """`line:column: message`, the position being where `marker` first stands in `text`."""
    index = text.index(marker)
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"{line}:{column}: {message}"


def account(fixture: Fixture, account_id: str) -> facts.Account:
    return next(a for a in fixture.accounts if a.id == account_id)


# --------------------------------------------------------------------------- the spec fixture


@pytest.fixture(scope="module")
def spec_fixture(spec_dir: Path) -> Fixture:
    return load_fixture(spec_dir / "fixtures" / "accounts.yaml", SPEC)


def test_hand_built_schema_matches_the_parser(spec_dir: Path) -> None:
    from playbook_engine import parse

    parsed, diagnostics = parse.parse((spec_dir / "schema.playbook").read_text(), "schema.playbook")
    assert diagnostics == []
    assert [i for i in parsed.items if isinstance(i, nodes.Schema)] == [SPEC]


def test_spec_fixture_loads(spec_fixture: Fixture) -> None:
    assert [a.id for a in spec_fixture.accounts] == [
        "acme", "globex", "initech", "umbrella", "hooli", "soylent", "stark", "cyberdyne", "wayne",
    ]
    now = datetime(2026, 3, 16, 9, tzinfo=PLUS9)
    assert spec_fixture.now == now
    assert spec_fixture.as_of == now
    assert spec_fixture.timezone == TOKYO
    assert all(a.as_of == now for a in spec_fixture.accounts)


def test_spec_fixture_exact_decimals(spec_fixture: Fixture) -> None:
    umbrella = account(spec_fixture, "umbrella")
    assert umbrella.fields["mrr"] == Decimal("500000")
    assert umbrella.fields["seats"] == Decimal("200")
    assert isinstance(umbrella.fields["health"], Decimal)
    assert account(spec_fixture, "acme").fields["seats"] == Decimal("20")


def test_spec_fixture_date_only_is_midnight_in_tokyo(spec_fixture: Fixture) -> None:
    signed = account(spec_fixture, "acme").fields["signed_at"]
    assert signed == datetime(2026, 2, 20, tzinfo=TOKYO)
    assert isinstance(signed, datetime) and signed.utcoffset() == timedelta(hours=9)


def test_spec_fixture_fields_and_people(spec_fixture: Fixture) -> None:
    acme = account(spec_fixture, "acme")
    assert acme.name == "Acme 株式会社"
    assert acme.fields["tier"] == "tech-touch"
    assert acme.fields["csm"] == facts.User("佐藤 花子", "sato@example.com")
    assert acme.contacts == (
        facts.Contact("山田 太郎", "yamada@acme.example", "admin"),
        facts.Contact("経理 部", "keiri@acme.example", "billing"),
    )
    assert account(spec_fixture, "soylent").tags == frozenset({"do-not-contact"})
    assert account(spec_fixture, "globex").tags == frozenset()
    assert "health" not in account(spec_fixture, "cyberdyne").fields


def test_spec_fixture_events_sorted_and_typed(spec_fixture: Fixture) -> None:
    umbrella = account(spec_fixture, "umbrella")
    assert [e.type for e in umbrella.events] == [
        "executive_meeting", "login", "login", "nps_submitted",
    ]
    nps = umbrella.events[-1]
    assert nps.at == datetime(2026, 3, 15, 15, tzinfo=PLUS9)
    assert nps.fields == {"score": Decimal("4"), "comment": "遅い"}
    times = [e.at for e in account(spec_fixture, "stark").events]
    assert times == sorted(times)


def test_spec_fixture_history(spec_fixture: Fixture) -> None:
    umbrella = account(spec_fixture, "umbrella")
    history = umbrella.history["health"]
    assert history.times == (
        datetime(2026, 3, 1, tzinfo=TOKYO), datetime(2026, 3, 14, tzinfo=TOKYO),
    )
    assert history.values == (Decimal("70"), Decimal("62"))
    assert umbrella.value("health", datetime(2026, 3, 15, 9, tzinfo=TOKYO)) == Decimal("62")
    assert umbrella.value("health", datetime(2026, 2, 28, tzinfo=TOKYO)) is None
    assert umbrella.value("health", umbrella.as_of) == Decimal("48")


def test_spec_fixture_fired(spec_fixture: Fixture) -> None:
    assert account(spec_fixture, "acme").fired == (
        facts.Firing("Tech-touch onboarding", "Welcome", datetime(2026, 2, 21, 9, tzinfo=PLUS9)),
    )


def test_spec_fixture_as_json_loads_the_same(spec_dir: Path, spec_fixture: Fixture) -> None:
    data = yaml.safe_load((spec_dir / "fixtures" / "accounts.yaml").read_text())
    text = json.dumps(data, default=lambda d: d.isoformat(), ensure_ascii=False)
    assert parse_fixture_text(text, "accounts.json", SPEC) == Fixture(
        Path("accounts.json"), spec_fixture.now, spec_fixture.timezone, spec_fixture.accounts,
    )


# --------------------------------------------------------------------------- values


def test_decimals_stay_exact_in_yaml_and_json() -> None:
    yaml_fixture = load("""
        accounts:
          - {id: a, health: 0.1, seats: 70, mrr: 1_000.50, plan: 0.12345678901234567890}
    """, schema=None)
    assert account(yaml_fixture, "a").fields == {
        "health": Decimal("0.1"), "seats": Decimal(70), "mrr": Decimal("1000.50"),
        "plan": Decimal("0.12345678901234567890"),
    }
    assert str(account(yaml_fixture, "a").fields["plan"]) == "0.12345678901234567890"
    json_fixture = load('{"accounts": [{"id": "a", "health": 0.1, "seats": 70}]}', "f.json")
    assert account(json_fixture, "a").fields == {"health": Decimal("0.1"), "seats": Decimal(70)}
    assert str(account(json_fixture, "a").fields["health"]) == "0.1"


def test_text_fields_take_numbers_as_written() -> None:
    fixture = load("""
        accounts:
          - {id: 1001, name: 2024, plan: 1.10, contacts: [{name: 42, role: admin}]}
    """)
    acct = fixture.accounts[0]
    assert (acct.id, acct.name, acct.fields["plan"]) == ("1001", "2024", "1.10")
    assert acct.contacts[0].name == "42"
    json_fixture = load('{"accounts": [{"id": 7, "plan": 2024}]}', "f.json")
    assert json_fixture.accounts[0].id == "7"
    assert json_fixture.accounts[0].fields["plan"] == "2024"


def test_yes_no_fields() -> None:
    flag = schema(fields=(field("vip", "yes/no"),))
    fixture = load("""
        accounts:
          - {id: a, vip: yes}
          - {id: b, vip: false}
          - {id: c, vip: "no"}
    """, schema=flag)
    assert [a.fields["vip"] for a in fixture.accounts] == [True, False, False]


def test_user_from_mapping_or_address() -> None:
    fixture = load("""
        accounts:
          - {id: a, csm: {name: Alice}}
          - {id: b, csm: bob@example.com}
    """)
    assert fixture.accounts[0].fields["csm"] == facts.User("Alice", None)
    assert fixture.accounts[1].fields["csm"] == facts.User(None, "bob@example.com")


def test_null_values_are_missing() -> None:
    fixture = load("""
        accounts:
          - id: a
            health: ~
            tags:
            contacts:
            events: [{type: login, at: 2026-03-01, user: null}]
    """)
    acct = fixture.accounts[0]
    assert acct.fields == {}
    assert acct.tags == frozenset() and acct.contacts == ()
    assert acct.events[0].fields == {}


def test_naive_times_are_in_the_fixture_zone_else_the_engine_zone() -> None:
    text = """
        {timezone}
        now: 2026-03-16T09:00:00
        accounts:
          - {{id: a, signed_at: 2026-02-20, events: [{{type: login, at: "2026-03-01 10:00"}}]}}
    """
    tokyo = load(text.format(timezone="timezone: Asia/Tokyo"), default_tz="Europe/Berlin")
    assert tokyo.now == datetime(2026, 3, 16, 9, tzinfo=TOKYO)
    assert tokyo.accounts[0].events[0].at == datetime(2026, 3, 1, 10, tzinfo=TOKYO)
    berlin = load(text.format(timezone=""), default_tz="Europe/Berlin")
    zone = ZoneInfo("Europe/Berlin")
    assert berlin.timezone == zone
    assert berlin.accounts[0].fields["signed_at"] == datetime(2026, 2, 20, tzinfo=zone)


def test_events_with_mixed_offsets_sort_by_instant() -> None:
    fixture = load("""
        accounts:
          - id: a
            events:
              - {type: login, at: "2026-03-01T10:00:00+09:00", user: first}
              - {type: login, at: "2026-03-01T00:30:00Z", user: third}
              - {type: login, at: "2026-03-01T01:00:00+00:00", user: fourth}
              - {type: login, at: "2026-03-01T09:00:00+09:00", user: zeroth}
              - {type: login, at: "2026-03-01T10:00:00+09:00", user: second}
    """)
    # 00:00Z, 00:30Z, then three at 01:00Z in file order
    assert [e.fields["user"] for e in fixture.accounts[0].events] == [
        "zeroth", "third", "first", "fourth", "second",
    ]


def test_events_sort_stably_on_one_layout() -> None:
    lines = [
        '{"id": "a", "events": [',
        '{"type": "login", "at": "2026-03-02T09:00:00+09:00", "user": "late"},',
        '{"type": "login", "at": "2026-03-01T09:00:00+09:00", "user": "tie-1"},',
        '{"type": "login", "at": "2026-03-01T09:00:00+09:00", "user": "tie-2"},',
        '{"type": "nps_submitted", "at": "2026-02-01T09:00:00+09:00", "score": 9}]}',
    ]
    fixture = load("".join(lines), "f.jsonl")
    assert [e.fields.get("user") for e in fixture.accounts[0].events] == [
        None, "tie-1", "tie-2", "late",
    ]
    assert fixture.accounts[0].events[0].fields == {"score": Decimal(9)}


def test_history_is_sorted_and_may_hold_missing() -> None:
    fixture = load("""
        now: 2026-03-16T09:00:00+09:00
        timezone: Asia/Tokyo
        accounts:
          - id: a
            stage: adoption
            history:
              stage:
                - {at: 2026-03-10, value: onboarding}
                - {at: 2026-03-01, value: null}
    """)
    history = fixture.accounts[0].history["stage"]
    assert history.times == (
        datetime(2026, 3, 1, tzinfo=TOKYO), datetime(2026, 3, 10, tzinfo=TOKYO),
    )
    assert history.values == (None, "onboarding")


def test_yaml_anchors_and_merge_keys() -> None:
    fixture = load("""
        accounts:
          - &first {id: a, tier: tech-touch, seats: 5}
          - {<<: *first, id: b, seats: 6}
    """)
    assert [(a.id, a.fields["tier"], a.fields["seats"]) for a in fixture.accounts] == [
        ("a", "tech-touch", Decimal(5)), ("b", "tech-touch", Decimal(6)),
    ]


def test_without_a_schema_values_are_typed_loosely() -> None:
    fixture = load("""
        accounts:
          - id: a
            seats: 12
            ratio: 0.25
            vip: yes
            renewal: "2026-04-01"
            signed: 2026-02-01
            csm: {name: Alice, email: alice@example.com}
            anything: goes
            events: [{type: made_up, at: 2026-03-01, n: 3, who: x}]
            history: {seats: [{at: 2026-03-01, value: 10}]}
    """, schema=None)
    acct = fixture.accounts[0]
    assert acct.fields == {
        "seats": Decimal(12), "ratio": Decimal("0.25"), "vip": True, "renewal": "2026-04-01",
        "signed": datetime(2026, 2, 1, tzinfo=UTC), "anything": "goes",
        "csm": facts.User("Alice", "alice@example.com"),
    }
    assert acct.events[0].fields == {"n": Decimal(3), "who": "x"}
    assert acct.history["seats"].values == (Decimal(10),)


# --------------------------------------------------------------------------- now and as_of


def test_without_now_as_of_is_the_latest_moment() -> None:
    fixture = load("""
        accounts:
          - {id: a, events: [{type: login, at: "2026-03-01T10:00:00+09:00"}]}
          - id: b
            fired: [{playbook: P, rule: R, at: "2026-03-05T00:00:00Z"}]
            history: {health: [{at: 2026-03-02, value: 1}]}
    """)
    assert fixture.now is None
    latest = datetime(2026, 3, 5, tzinfo=UTC)
    assert fixture.as_of == latest
    assert all(a.as_of == latest for a in fixture.accounts)


def test_without_now_the_callers_moment_wins() -> None:
    at = datetime(2026, 4, 1, tzinfo=UTC)
    fixture = load("""
        accounts: [{id: a, events: [{type: login, at: 2026-03-01}]}]
    """, fallback_now=at)
    assert fixture.now is None
    assert fixture.accounts[0].as_of == at


def test_without_any_moment_as_of_is_the_current_time() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    fixture = load("accounts: [{id: a}]")
    as_of = fixture.accounts[0].as_of
    assert before <= as_of <= datetime.now(UTC)


def test_an_empty_account_list_is_a_fixture() -> None:
    fixture = load("now: 2026-03-16\naccounts: []")
    assert fixture.accounts == ()
    assert fixture.as_of == datetime(2026, 3, 16, tzinfo=UTC)


# --------------------------------------------------------------------------- JSON Lines


def test_json_lines_with_a_header() -> None:
    text = "\n".join([
        '{"now": "2026-03-16T09:00:00+09:00", "timezone": "Asia/Tokyo"}',
        '{"id": "a", "signed_at": "2026-02-20"}',
        "",
        '{"id": "b", "events": [{"type": "login", "at": "2026-03-01", "user": "u"}]}',
    ])
    fixture = parse_fixture_text(text, "f.jsonl", SPEC)
    assert fixture.now == datetime(2026, 3, 16, 9, tzinfo=PLUS9)
    assert [a.id for a in fixture.accounts] == ["a", "b"]
    assert fixture.accounts[0].fields["signed_at"] == datetime(2026, 2, 20, tzinfo=TOKYO)


def test_json_lines_without_a_header() -> None:
    fixture = parse_fixture_text('{"id": "a"}\n{"id": "b"}\n', "f.ndjson", SPEC)
    assert [a.id for a in fixture.accounts] == ["a", "b"]
    assert fixture.now is None


def test_json_lines_problems_name_their_line() -> None:
    text = "\n".join([
        '{"now": "2026-03-16"}',
        '{"id": "a", "seats": "x"}',
        '{"id": "b", oops}',
        '{"id": "c", "teir": "x"}',
    ])
    found = problems(text, "f.jsonl")
    assert [(d.span.line, d.message) for d in found] == [
        (2, 'accounts[0].seats: expected a number, got "x"'),
        (3, "invalid JSON: unexpected character, expected a string key"),
        (4, "accounts[2].teir: unknown field 'teir' (did you mean 'tier'?)"),
    ]
    assert found[0].span.column == len('{"id": "a", "seats": ') + 1


def test_json_lines_header_problems() -> None:
    found = problems('{"now": "soon", "timezone": "UTC", "tz": 1}\n{"id": "a"}', "f.jsonl")
    assert [(d.span.line, d.message) for d in found] == [
        (1, 'now: expected a date or date-time like 2026-03-15T09:00:00+09:00, got "soon"'),
        (1, "tz: unknown key 'tz'"),
    ]


# --------------------------------------------------------------------------- problems: files


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(FixtureError) as info:
        load_fixture(tmp_path / "missing.yaml", SPEC)
    (found,) = info.value.diagnostics
    assert found.message == "cannot read the fixture file: No such file or directory"
    assert (found.span.file, found.span.line, found.code) == (
        str(tmp_path / "missing.yaml"), 0, "fixture-read",
    )


def test_a_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match="cannot read the fixture file"):
        load_fixture(tmp_path, SPEC)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(b"accounts:\n  - id: \xff\n")
    with pytest.raises(FixtureError) as info:
        load_fixture(path, SPEC)
    (found,) = info.value.diagnostics
    assert found.message == "the file is not UTF-8 text (byte 0xff at offset 18)"
    assert found.span.line == 2


def test_load_fixture_reads_a_file_with_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(b'\xef\xbb\xbf{"accounts": [{"id": "a"}]}')
    assert load_fixture(path, SPEC).accounts[0].id == "a"


def test_invalid_yaml() -> None:
    assert problem("accounts:\n  - id: a\n   bad: [") == (
        "3:4: invalid YAML: did not find expected '-' indicator (while parsing a block "
        "collection)"
    )


def test_invalid_json() -> None:
    assert problem('{"accounts": [\n  {"id": "a",}\n]}', "f.json") == (
        "2:13: invalid JSON: trailing comma is not allowed"
    )


def test_json_too_deep() -> None:
    assert "invalid JSON" in problem("[" * 5000 + "]" * 5000, "f.json")


def test_yaml_control_character() -> None:
    assert problem("accounts:\n  - id: a\x07\n").startswith("2:10: invalid YAML: character")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- id: a", "1:1: expected a mapping with 'accounts' (and optionally 'now' and "
                    "'timezone'), got a list"),
        ("", "0:0: expected a mapping with 'accounts' (and optionally 'now' and 'timezone'), "
             "got nothing"),
        ("now: 2026-03-16", "1:1: missing required key 'accounts'"),
        ("acounts: []\naccounts: []", "1:1: acounts: unknown key 'acounts' "
                                      "(did you mean 'accounts'?)"),
        ("accounts: {id: a}", "1:11: accounts: expected a list, got a mapping"),
    ],
)
def test_top_level_shape(text: str, message: str) -> None:
    assert problem(text) == message


# --------------------------------------------------------------------------- problems: accounts


def test_bad_event_time_names_the_full_path() -> None:
    text = """
        accounts:
          - {id: a}
          - {id: b}
          - {id: c}
          - id: d
            events:
              - {type: login, at: 2026-03-01}
              - {type: login, at: 2026-03-02}
              - {type: login, at: yesterday}
    """
    assert problem(text) == at_marker(
        textwrap.dedent(text), "yesterday",
        'accounts[3].events[2].at: expected a date or date-time like 2026-03-15T09:00:00+09:00, '
        'got "yesterday"',
    )


@pytest.mark.parametrize(
    ("body", "marker", "message"),
    [
        ("- 5", "5", "accounts[0]: expected an account (a mapping with at least an id), got 5"),
        ("- {name: x}", "{", "accounts[0]: missing required key 'id'"),
        ("- {id: ~}", "~", "accounts[0].id: expected text, got nothing"),
        ("- {id: ''}", "''", "accounts[0].id: an account id cannot be empty"),
        ("- {id: yes}", "yes", "accounts[0].id: expected text, got yes (YAML reads a bare "
                               "yes/no word as yes or no: put text in quotes)"),
        ("- {id: a, teir: x}", "teir", "accounts[0].teir: unknown field 'teir' (did you mean "
                                       "'tier'?)"),
        ("- {id: a, seats: lots}", "lots", 'accounts[0].seats: expected a number, got "lots"'),
        ("- {id: a, seats: .nan}", ".nan", "accounts[0].seats: expected a number, got .nan"),
        ("- {id: a, seats: [1]}", "[1]", "accounts[0].seats: expected a number, got a list"),
        ("- {id: a, tier: tech_touch}", "tech_touch",
         'accounts[0].tier: expected one of high-touch, low-touch, tech-touch, got "tech_touch" '
         "(did you mean 'tech-touch'?)"),
        ("- {id: a, plan: no}", "no", "accounts[0].plan: expected text, got no (YAML reads a "
                                      "bare yes/no word as yes or no: put text in quotes)"),
        ("- {id: a, signed_at: 2026-02-30}", "2026", "accounts[0].signed_at: expected a date or "
                                                    "date-time like 2026-03-15T09:00:00+09:00, "
                                                    'got "2026-02-30" (day is out of range for '
                                                    "month)"),
        ("- {id: a, signed_at: 5}", "5", "accounts[0].signed_at: expected a date or date-time "
                                         "like 2026-03-15T09:00:00+09:00, got 5"),
        ("- {id: a, csm: 5}", "5", "accounts[0].csm: expected a user like {name: 佐藤 花子, "
                                   "email: sato@example.com}, got 5"),
        ("- {id: a, csm: {mail: x@y}}", "{mail", "accounts[0].csm: unknown key 'mail' in a user "
                                                 "(did you mean 'email'?)"),
        ("- {id: a, tags: vip}", "vip", 'accounts[0].tags: expected a list, got "vip"'),
        ("- {id: a, tags: [x, [y]]}", "[y]", "accounts[0].tags[1]: expected text, got a list"),
    ],
)
def test_account_problems(body: str, marker: str, message: str) -> None:
    text = f"accounts:\n\n  {body}\n"
    assert problem(text) == at_marker(text, marker, message)


def test_yes_no_problem() -> None:
    flag = schema(fields=(field("vip", "yes/no"),))
    assert problem("accounts: [{id: a, vip: maybe}]", schema=flag) == (
        '1:25: accounts[0].vip: expected yes or no, got "maybe"'
    )


def test_duplicate_id() -> None:
    text = "accounts:\n  - {id: a}\n  - {id: b}\n  - {id: a}"
    assert problem(text) == '4:10: accounts[2].id: duplicate account id "a" (also accounts[0])'


@pytest.mark.parametrize(
    ("body", "marker", "message"),
    [
        ("contacts: [{name: A, role: admn}]", "admn",
         "accounts[0].contacts[0].role: unknown contact role 'admn' (did you mean 'admin'?)"),
        ("contacts: [{name: A, mail: a@x}]", "mail",
         "accounts[0].contacts[0].mail: unknown key 'mail' (did you mean 'email'?)"),
        ("contacts: [admin]", "admin",
         'accounts[0].contacts[0]: expected a mapping, got "admin"'),
        ("events: [{type: logn, at: 2026-03-01}]", "logn",
         "accounts[0].events[0].type: unknown event type 'logn' (did you mean 'login'?)"),
        ("events: [{type: login, at: 2026-03-01, usr: x}]", "usr",
         "accounts[0].events[0].usr: unknown field 'usr' of event 'login' (did you mean 'user'?)"),
        ("events: [{type: nps_submitted, at: 2026-03-01, score: high}]", "high",
         'accounts[0].events[0].score: expected a number, got "high"'),
        ("events: [{at: 2026-03-01}]", "{at",
         "accounts[0].events[0]: missing required key 'type'"),
        ("events: [{type: login}]", "{type",
         "accounts[0].events[0]: missing required key 'at'"),
        ("events: {type: login}", "{type",
         "accounts[0].events: expected a list, got a mapping"),
        ("history: {helth: [{at: 2026-03-01, value: 1}]}", "helth",
         "accounts[0].history.helth: unknown field 'helth' (did you mean 'health'?)"),
        ("history: {health: [{at: 2026-03-01}]}", "{at",
         "accounts[0].history.health[0]: missing required key 'value'"),
        ("history: {health: [{at: 2026-03-01, value: x}]}", "x}",
         'accounts[0].history.health[0].value: expected a number, got "x"'),
        ("history: {health: {at: 2026-03-01, value: 1}}", "{at",
         "accounts[0].history.health: expected a list, got a mapping"),
        ("history: {health: [{at: later, value: 1}]}", "later",
         "accounts[0].history.health[0].at: expected a date or date-time like "
         '2026-03-15T09:00:00+09:00, got "later"'),
        ("fired: [{playbook: P, at: 2026-03-01}]", "{playbook",
         "accounts[0].fired[0]: missing required key 'rule'"),
        ("fired: [{playbook: P, rule: R, at: 2026-03-01, by: me}]", "by",
         "accounts[0].fired[0].by: unknown key 'by'"),
        ("fired: [{playbook: [P], rule: R, at: 2026-03-01}]", "[P]",
         "accounts[0].fired[0].playbook: expected text, got a list"),
    ],
)
def test_nested_problems(body: str, marker: str, message: str) -> None:
    text = f"accounts: [{{id: a, {body}}}]"
    assert problem(text) == at_marker(text, marker, message)


def test_a_shape_problem_reports_everything_pydantic_finds() -> None:
    text = "accounts: [{id: a, history: {health: [{at: 2026-03-01, vaule: 1}]}}]"
    assert [d.message for d in problems(text)] == [
        "accounts[0].history.health[0]: missing required key 'value'",
        "accounts[0].history.health[0].vaule: unknown key 'vaule' (did you mean 'value'?)",
    ]


def test_unknown_time_zone() -> None:
    assert problem("timezone: Asia/Tokio\naccounts: []") == (
        "1:11: timezone: unknown time zone 'Asia/Tokio' (did you mean 'Asia/Tokyo'?)"
    )


def test_bad_now() -> None:
    assert problem("now: tomorrow\naccounts: []") == (
        '1:6: now: expected a date or date-time like 2026-03-15T09:00:00+09:00, got "tomorrow"'
    )


def test_duplicate_yaml_key() -> None:
    assert problem("accounts: [{id: a, seats: 1, seats: 2}]") == (
        "1:30: accounts[0].seats: duplicate key 'seats'"
    )


def test_yaml_alias_to_itself() -> None:
    # libyaml resolves an alias to its node: the position is the anchored value's.
    assert problem("accounts: &x [*x]") == (
        "1:11: accounts[0]: an alias refers to the value it is part of"
    )


def test_unknown_yaml_tag() -> None:
    found = problem("accounts: [{id: !python/name:os.system a}]")
    assert found.startswith("1:17: accounts[0].id: invalid YAML: could not determine a constructor")


def test_yaml_offset_with_seconds() -> None:
    # PyYAML's timestamp constructor fails on it; the text is still a good moment.
    fixture = load("accounts: [{id: a, signed_at: 1888-01-01 00:00:00+09:18:59}]")
    offset = timedelta(hours=9, minutes=18, seconds=59)
    assert fixture.accounts[0].fields["signed_at"] == datetime(1888, 1, 1, tzinfo=timezone(offset))


def test_bad_engine_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        parse_fixture_text("accounts: []", "f.yaml", SPEC, "Mars/Olympus")


def test_every_problem_is_reported_in_file_order() -> None:
    text = """
        now: 2026-03-16T09:00:00+09:00
        accounts:
          - id: acme
            teir: tech-touch
            seats: lots
            contacts:
              - {name: B, mail: b@x}
            events:
              - {type: login, at: yesterday}
              - {type: logn, at: 2026-03-01}
          - id: acme
            tags: vip
          - name: no id
    """
    found = problems(text)
    assert [(d.span.line, d.code) for d in found] == [
        (5, "fixture-unknown-field"),
        (6, "fixture-type"),
        (8, "fixture-unknown-key"),
        (10, "fixture-type"),
        (11, "fixture-unknown-event"),
        (12, "fixture-duplicate-id"),
        (13, "fixture-type"),
        (14, "fixture-missing"),
    ]
    assert all(d.span.file == "f.yaml" and d.is_error for d in found)


def test_fixture_error_message_lists_the_problems() -> None:
    with pytest.raises(FixtureError) as info:
        parse_fixture_text("accounts: [{id: a, seats: x}, {id: b, seats: y}]", "f.yaml", SPEC)
    assert str(info.value) == (
        "2 problems in the fixture:\n"
        'f.yaml:1:27: error: accounts[0].seats: expected a number, got "x"\n'
        'f.yaml:1:46: error: accounts[1].seats: expected a number, got "y"'
    )


def test_json_problems_are_located() -> None:
    text = '{"accounts": [\n  {"id": "a",\n   "seats": "x"}\n]}'
    assert problem(text, "f.json") == at_marker(
        text, '"x"', 'accounts[0].seats: expected a number, got "x"')


def test_large_json_problems_have_no_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fixtures, "_MAX_JSON_INDEX_CHARS", 10)
    text = '{"accounts": [{"id": "a", "seats": "x"}]}'
    assert problem(text, "f.json") == '0:0: accounts[0].seats: expected a number, got "x"'


def test_file_format_by_content_when_the_name_does_not_say() -> None:
    assert load('{"accounts": [{"id": "a"}]}', "fixture.txt").accounts[0].id == "a"
    assert load("accounts: [{id: a}]", "fixture.txt").accounts[0].id == "a"


# --------------------------------------------------------------------------- properties


FIXTURE_WORDS = [
    "now", "timezone", "accounts", "id", "name", "tags", "contacts", "events", "history",
    "fired", "type", "at", "value", "role", "email", "playbook", "rule", "tier", "seats",
    "health", "signed_at", "csm", "login", "user", "score",
]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(FIXTURE_WORDS),
    st.sampled_from(["2026-03-15", "2026-03-15T09:00:00+09:00", "2026-02-30", "yesterday",
                     "Asia/Tokyo", "tech-touch", "admin", "x@example.com"]),
    st.dates(),
    # From 1950: PyYAML's own safe_load (used by some tests) fails on Tokyo's 1888 LMT offset
    # of +09:18:59; the loader copes with it (test_yaml_offset_with_seconds).
    st.datetimes(min_value=datetime(1950, 1, 1), timezones=st.sampled_from([UTC, TOKYO, PLUS9])),
)
KEYS = st.one_of(st.sampled_from(FIXTURE_WORDS), st.text(max_size=6))
DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=25,
)
FIXTURE_DATA = st.fixed_dictionaries(
    {"accounts": st.lists(st.dictionaries(KEYS, DATA, max_size=6), max_size=3)},
    optional={"now": SCALARS, "timezone": SCALARS},
)


def loads_or_explains(text: str, filename: str, schema: nodes.Schema | None) -> None:
    """Loading `text` gives a Fixture or a FixtureError with diagnostics, never another error."""
    try:
        parse_fixture_text(text, filename, schema)
    except FixtureError as exc:
        assert exc.diagnostics
        assert all(d.message and d.span.file == filename for d in exc.diagnostics)
        assert not any("malformed" in d.message for d in exc.diagnostics), exc.diagnostics


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["f.yaml", "f.json", "f.jsonl"]))
def test_any_text_loads_or_explains(text: str, filename: str) -> None:
    loads_or_explains(text, filename, SPEC)


YAMLISH = st.lists(
    st.tuples(
        st.sampled_from(["", "  ", "    ", "      ", "- ", "  - ", "    - "]),
        st.sampled_from([*FIXTURE_WORDS, "<<", "? ", "&a ", "*a", "!!binary ", "!x "]),
        st.sampled_from([":", ": ", ":\n", " ", ": [", ": {", "}", "]", ", ", ": *a", ": &a "]),
        st.one_of(SCALARS.map(str), st.sampled_from(["|", ">", "'q'", '"q"', "#c", "~", "-"])),
    ).map("".join),
    max_size=12,
).map("\n".join)


@settings(max_examples=400, deadline=None)
@given(YAMLISH, st.booleans())
def test_yaml_ish_text_loads_or_explains(text: str, with_schema: bool) -> None:
    loads_or_explains(text, "f.yaml", SPEC if with_schema else None)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FIXTURE_DATA, st.booleans())
def test_structured_data_loads_or_explains(data: dict[str, object], with_schema: bool) -> None:
    schema_ = SPEC if with_schema else None
    loads_or_explains(yaml.safe_dump(data, allow_unicode=True), "f.yaml", schema_)
    as_json = json.dumps(data, default=str, ensure_ascii=False)
    loads_or_explains(as_json, "f.json", schema_)


ACCOUNT_KEYS = st.sampled_from(["id", "name", "tags", "contacts", "events", "history", "fired"])
JSON_DATA = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
              st.sampled_from(FIXTURE_WORDS)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=25,
)


def assert_shape_errors_are_caught(raw: dict[str, object], text: str, filename: str) -> None:
    try:
        RawAccount.model_validate(raw)
    except ValidationError:
        with pytest.raises(FixtureError):
            parse_fixture_text(text, filename, None)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(ACCOUNT_KEYS, JSON_DATA, max_size=5))
def test_shape_errors_are_never_missed_in_json(raw: dict[str, object]) -> None:
    """Whatever pydantic's shape rejects, the loader rejects (it checks the shape itself)."""
    assert_shape_errors_are_caught(raw, json.dumps({"accounts": [raw]}), "f.json")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(ACCOUNT_KEYS, DATA, max_size=5))
def test_shape_errors_are_never_missed_in_yaml(raw: dict[str, object]) -> None:
    text = yaml.safe_dump({"accounts": [raw]}, allow_unicode=True)
    assert_shape_errors_are_caught(yaml.safe_load(text)["accounts"][0], text, "f.yaml")


EVENT_VALUES = st.one_of(
    st.text(max_size=5), st.integers(-1000, 1000), st.none(),
    st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
)
EVENTS = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["login", "feature_used", "nps_submitted", "other"]),
            "at": st.datetimes(
                min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1),
                timezones=st.sampled_from([UTC, PLUS9, TOKYO]),
            ).map(lambda d: d.isoformat()),
        },
        optional={"user": EVENT_VALUES, "score": EVENT_VALUES, "feature": EVENT_VALUES},
    ),
    max_size=8,
)


def _careful_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fixtures._Builder, "_fast_event", lambda self, raw, stamps: None)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(EVENTS, st.booleans())
def test_fast_path_builds_what_the_careful_path_builds(
    monkeypatch: pytest.MonkeyPatch, events: list[dict[str, object]], with_schema: bool
) -> None:
    text = json.dumps({"now": "2026-03-16", "accounts": [{"id": "a", "events": events}]})
    schema_ = SPEC if with_schema else None

    def outcome() -> object:
        try:
            return parse_fixture_text(text, "f.json", schema_)
        except FixtureError as exc:
            return [d.message for d in exc.diagnostics]

    fast = outcome()
    with monkeypatch.context() as patch:
        _careful_only(patch)
        careful = outcome()
    assert fast == careful


def test_chronological_falls_back_for_mixed_layouts() -> None:
    def ev(at: str) -> facts.Event:
        return facts.Event("login", datetime.fromisoformat(at))

    stamps = ["2026-03-01T10:00:00+09:00", "2026-03-01T00:30:00+00:00"]  # 01:00Z, 00:30Z
    events = [ev(s) for s in stamps]
    assert fixtures._chronological(events, stamps) == [events[1], events[0]]
    stamps = ["2026-03-01T10:00:00Z", "2026-03-01T09:00:00Z"]
    events = [ev(s) for s in stamps]
    assert fixtures._chronological(events, stamps) == [events[1], events[0]]
    assert fixtures._one_layout(["2026-03-01T10:00:00", "2026-03-01T09:00:00"]) is False


def test_accounts_hold_dates_as_aware_datetimes() -> None:
    fixture = load("accounts: [{id: a, signed_at: 2026-02-20T10:00:00}]", default_tz="+09:00")
    signed = fixture.accounts[0].fields["signed_at"]
    assert isinstance(signed, datetime)
    assert signed.utcoffset() == timedelta(hours=9)
    assert signed.date() == date(2026, 2, 20)
