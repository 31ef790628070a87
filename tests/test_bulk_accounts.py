"""Accounts built from the bulk path's tables: prepared (tables read) apart from built."""

from __future__ import annotations

from pathlib import Path

from test_bulk import RULES, _engine, _many, _write

from playbook_engine.bulk import _Reads
from playbook_engine.bulk_frames import Frames, Reads
from playbook_engine.facts import Firing


def _frames(tmp_path: Path) -> Frames:
    engine = _engine(RULES)
    accounts = _many(40)
    for i, account in enumerate(accounts):
        account["fired"] = [
            {"playbook": "P", "rule": rule, "at": f"2026-03-0{d}T09:00:00+09:00"}
            for d, rule in enumerate(["Quiet", "NPS", "Quiet", "Gone"][: i % 5], start=1)]
    return engine.load_frames(_write(tmp_path, "f.json", {"now": "2026-03-16T09:00:00+09:00",
                                                         "accounts": accounts}))


def test_built_later_the_same_as_at_once(tmp_path: Path) -> None:
    frames = _frames(tmp_path)
    rows = [3, 0, 7, 39, 12]
    build = frames.source.prepare(rows)
    assert build() == frames.source.accounts(rows)


def test_only_the_firings_of_the_rules_asked_for(tmp_path: Path) -> None:
    frames = _frames(tmp_path)
    rows = list(range(10))
    keys = [[("P", "Quiet")], [], [("P", "NPS"), ("P", "Quiet")], [("P", "Nope")],
            [("Q", "Quiet")], [("P", "Gone")], [("P", "Quiet")], [], [("P", "NPS")],
            [("P", "Gone"), ("P", "NPS"), ("P", "Quiet")]]
    types = [["login"], [], ["nps_submitted", "login"], ["nope"], ["login"], [],
             ["nps_submitted"], ["login", "nps_submitted"], [], ["login"]]
    reads = [Reads(frozenset(k), frozenset(t)) for k, t in zip(keys, types, strict=True)]
    full = frames.source.accounts(rows)
    some = frames.source.prepare(rows, reads)()
    for whole, part, wanted in zip(full, some, reads, strict=True):
        expected: tuple[Firing, ...] = tuple(
            f for f in whole.fired if (f.playbook, f.rule) in wanted.rules)
        assert part.fired == expected
        assert part.events == tuple(e for e in whole.events if e.type in wanted.events)
        assert part.fields == whole.fields and part.contacts == whole.contacts
    assert any(part.fired for part in some) and any(not part.fired for part in some)
    assert any(part.events for part in some)
    assert any(whole.events and not part.events for whole, part in zip(full, some, strict=True))
    nothing = Reads(frozenset(), frozenset())
    assert frames.source.prepare(rows, [nothing for _ in rows])() == [
        a.__class__(**{**{f: getattr(a, f) for f in a.__dataclass_fields__},
                       "fired": (), "events": ()})
        for a in full]


def test_the_events_a_rule_reads_through_its_segments_and_metrics() -> None:
    engine = _engine("""\
segment quiet: count login in last 7 days = 0
segment unhappy: last score of nps_submitted < 7 or quiet
metric seen: days since last login

playbook "P"
  applies to tier is high-touch
  rule "Plain"
    when health < 50
    then notify "c" "low"
  rule "Quiet"
    when quiet
    then notify "c" "quiet"
  rule "Unhappy"
    when unhappy and seen > 3
    then notify "c" "unhappy"
  rule "NPS"
    on nps_submitted where score <= 6
    then notify "c" "NPS {{ event.score }}"
  rule "Stop"
    when health < 10
    then
      notify "c" "now"
      wait 2 days
      notify "c" "later"
    stop when count login in last 2 days > 0
""")
    evaluator = engine.evaluator()
    reads = _Reads(evaluator)
    events = [reads([i]).events for i in range(len(evaluator.rules))]
    assert events == [frozenset(), {"login"}, {"login", "nps_submitted"}, {"nps_submitted"},
                      {"login"}]
    assert reads([0, 3]) == Reads(frozenset({("P", "Plain"), ("P", "NPS")}),
                                  frozenset({"nps_submitted"}))
