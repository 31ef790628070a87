"""Accounts built from the bulk path's tables: prepared (tables read) apart from built."""

from __future__ import annotations

from pathlib import Path

from test_bulk import RULES, _engine, _many, _write

from playbook_engine.bulk_frames import Frames
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
    wanted = [[("P", "Quiet")], [], [("P", "NPS"), ("P", "Quiet")], [("P", "Nope")],
              [("Q", "Quiet")], [("P", "Gone")], [("P", "Quiet")], [], [("P", "NPS")],
              [("P", "Gone"), ("P", "NPS"), ("P", "Quiet")]]
    full = frames.source.accounts(rows)
    some = frames.source.prepare(rows, wanted)()
    for whole, part, keys in zip(full, some, wanted, strict=True):
        expected: tuple[Firing, ...] = tuple(
            f for f in whole.fired if (f.playbook, f.rule) in set(keys))
        assert part.fired == expected
        assert part.events == whole.events and part.fields == whole.fields
    assert any(part.fired for part in some) and any(not part.fired for part in some)
    assert frames.source.prepare(rows, [[] for _ in rows])() == [
        a.__class__(**{**{f: getattr(a, f) for f in a.__dataclass_fields__}, "fired": ()})
        for a in full]
