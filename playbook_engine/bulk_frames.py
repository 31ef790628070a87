"""Accounts as polars tables: the columnar form the bulk evaluator scans.

`Frames` holds a fixture's accounts at its `now`, one table per kind of fact:

    accounts   one row per account, fixture order: `__idx` (0, 1, ...), `id`, `name`,
               `__tags` (list of text), one column per field, and `__hk@F` (yes when the
               account has a `history` entry list for field F, even an empty one)
    events     one row per event, sorted by account, then time (ties in file order):
               `__idx`, `type`, `at`, one column per event field
    history    per field: `__idx`, `at`, the value (same columns as the account's field),
               sorted by account, then time (ties in file order)
    fired      `__idx`, `playbook`, `rule`, `at`

Layout of a value by its type: numbers are Float64 (the evaluator tracks how far a float
may be from the decimal it stands for, see `bulk_plan`), text and one-of values String,
yes/no Boolean, dates Int64 microseconds since the epoch (UTC instants), a user three
columns: `F` (Boolean: a user is there), `F@name`, `F@email`. An event field keeps its
name as column unless two event types give it different types (then `F@type`); event
texts may be Categorical (the loader stores them so), events' `type` is an Enum. A date
loaded from text also keeps the offset it was written with (`F@off`, seconds; null for
a date read in the fixture's zone), so that rebuilt objects show the same local dates.

The per-account path still needs `facts.Account` objects for the accounts that may fire:
`Frames.source` builds them on demand (from the fixture's objects when the frames were
made from a loaded `Fixture`, from the columns otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import polars as pl
import pyarrow as pa  # type: ignore[import-untyped]

from . import facts
from .program import Program

__all__ = [
    "EPOCH",
    "Frames",
    "ListSource",
    "frames_from_accounts",
    "micros",
    "zone_is_fixed",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
IDX = "__idx"
TAGS = "__tags"

# Field kinds the tables know; "mixed" is a loosely typed field (no schema) whose values
# are of more than one type, and "null" one that holds no value at all.
KINDS = ("number", "text", "date", "bool", "user", "mixed", "null")


def micros(moment: datetime) -> int:
    """An aware moment as whole microseconds since the epoch (exact)."""
    return (moment - EPOCH) // _MICRO


def user_columns(name: str) -> tuple[str, str, str]:
    """The three columns of a user value: present, name, email."""
    return name, f"{name}@name", f"{name}@email"


def history_key_column(name: str) -> str:
    return f"__hk@{name}"


def kind_of_schema(kind: str) -> str:
    """A schema type as a table kind: `one of` is text, `yes/no` is bool."""
    return {"enum": "text", "yes/no": "bool"}.get(kind, kind)


@dataclass(frozen=True)
class Reads:
    """What deciding some rules of an account reads of it beyond its fields and
    contacts: the earlier firings of these (playbook, rule), the events of these types."""

    rules: frozenset[tuple[str, str]]
    events: frozenset[str]


class AccountSource(Protocol):
    """Builds `facts.Account` objects for chosen rows (by `__idx`), on demand.

    `prepare` does all its table reading at once and returns a builder that reads no
    table (and calls neither polars nor Arrow): the builder may run in a forked worker
    (`workers.run_split`). `accounts(rows)` is `prepare(rows)()`. With `reads`, one
    for each account, its `fired` and `events` may hold only what that `Reads` names:
    enough for deciding the rules it was made for."""

    def accounts(self, indices: Sequence[int]) -> list[facts.Account]: ...

    def prepare(self, indices: Sequence[int],
                reads: Sequence[Reads] | None = None,
                ) -> Callable[[], list[facts.Account]]: ...


@dataclass(frozen=True)
class ListSource:
    """Accounts already built (a YAML fixture, a test): returned as they are."""

    items: Sequence[facts.Account]

    def accounts(self, indices: Sequence[int]) -> list[facts.Account]:
        return [self.items[i] for i in indices]

    def prepare(self, indices: Sequence[int],
                reads: Sequence[Reads] | None = None,
                ) -> Callable[[], list[facts.Account]]:
        chosen = self.accounts(indices)  # everything: more than `reads` asks for
        return lambda: chosen


@dataclass
class Frames:
    """A fixture's accounts as tables (see the module docstring)."""

    path: Path | None
    now: datetime | None
    timezone: tzinfo
    as_of: datetime
    accounts: pl.DataFrame
    events: pl.DataFrame
    history: dict[str, pl.DataFrame]
    fired: pl.DataFrame
    # Account field -> kind ("number", "text", ...); `id` and `name` included.
    fields: dict[str, str]
    # Event type -> field -> (column, kind).
    event_fields: dict[str, dict[str, tuple[str, str]]]
    source: AccountSource
    _stats: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return self.accounts.height

    @property
    def account_ids(self) -> list[str]:
        ids: list[str] = self.accounts.get_column("id").to_list()
        return ids

    def field_kind(self, name: str) -> str:
        return self.fields.get(name, "null")

    def event_column(self, event: str, name: str) -> tuple[str, str] | None:
        return self.event_fields.get(event, {}).get(name)

    # -- statistics the planner uses to prove arithmetic exact (computed once each)

    def number_stats(self, table: str, column: str) -> tuple[bool, float]:
        """(every value a whole number below 2**52, the largest magnitude) of a column."""
        key = (table, column)
        if key not in self._stats:
            frame = self.accounts if table == "accounts" else self.events
            if table.startswith("history:"):
                frame = self.history[table.split(":", 1)[1]]
            if column not in frame.columns or frame.height == 0:
                self._stats[key] = (True, 0.0)
            else:
                col = pl.col(column)
                row = frame.select(
                    ((col.floor() != col) | (col.abs() >= 2.0**52)).any().alias("inexact"),
                    col.abs().max().alias("bound"),
                ).row(0)
                bound = float(row[1]) if row[1] is not None else 0.0
                self._stats[key] = (not row[0] and math.isfinite(bound), bound)
        result: tuple[bool, float] = self._stats[key]
        return result

    def max_events(self, event: str) -> int:
        """An upper bound of the number of events of one type an account has: the most
        events any account has (the table is sorted by account: its longest run)."""
        key = ("max_events", "")
        if key not in self._stats:
            most = (self.events.select(pl.col(IDX).rle().struct.field("len").max()).item()
                    if self.events.height else 0)
            self._stats[key] = int(most or 0)
        value: int = self._stats[key]
        return value


def zone_is_fixed(zone: tzinfo, around: datetime, years: int = 60) -> bool:
    """True when `zone` keeps one UTC offset for `years` either side of `around`.

    Python adds a timedelta to an aware datetime in wall-clock time; in a zone with
    daylight-saving time that is an hour off an exact duration across a change. Where the
    offset never changes, wall-clock and exact arithmetic agree.
    """
    if zone is UTC or type(zone).__name__ == "timezone":
        return True
    start = around.astimezone(zone) - timedelta(days=365 * years)
    offset = start.utcoffset()
    moment = start
    step = timedelta(days=7)  # no zone changes its offset for less than a week
    for _ in range(2 * years * 53):
        moment = moment + step
        if moment.astimezone(zone).utcoffset() != offset:
            return False
    return True


# --------------------------------------------------------------------------- from objects


def _kind_of_value(value: facts.Value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Decimal):
        return "number" if math.isfinite(float(value)) else "mixed"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "date"
    if isinstance(value, facts.User):
        return "user"
    return "mixed"


def _merge_kind(a: str | None, b: str) -> str:
    return b if a is None or a == "null" or a == b else "mixed"


def _dtype(kind: str) -> pl.DataType:
    return {
        "number": pl.Float64(),
        "text": pl.String(),
        "date": pl.Int64(),
        "bool": pl.Boolean(),
    }.get(kind, pl.Null())


_Setter = tuple[Any, ...]


def _set(setter: _Setter, row: int, value: facts.Value) -> None:
    """`_Columns.put` through a setter: value (not None) into row `row`."""
    kind, target = setter[0], setter[1]
    if kind == "number":
        assert isinstance(value, Decimal)
        target[row] = float(value)
    elif kind == "date":
        assert isinstance(value, datetime)
        target[row] = (value - EPOCH) // _MICRO
    elif kind == "user":
        assert isinstance(value, facts.User)
        target[row] = True
        setter[2][row] = value.name
        setter[3][row] = value.email
    else:
        target[row] = value


class _Columns:
    """Column lists being filled row by row, typed by kind."""

    def __init__(self) -> None:
        self.data: dict[str, list[Any]] = {}
        self.types: dict[str, pl.DataType] = {}

    def add(self, name: str, kind: str, rows: int) -> None:
        if kind == "user":
            present, uname, email = user_columns(name)
            self._new(present, pl.Boolean(), rows)
            self._new(uname, pl.String(), rows)
            self._new(email, pl.String(), rows)
        elif kind in ("number", "text", "date", "bool"):
            self._new(name, _dtype(kind), rows)

    def _new(self, name: str, dtype: pl.DataType, rows: int) -> None:
        self.data[name] = [None] * rows
        self.types[name] = dtype

    def put(self, name: str, kind: str, row: int, value: facts.Value) -> None:
        setter = self.setter(name, kind)
        if value is not None and setter is not None:
            _set(setter, row, value)

    def setter(self, name: str, kind: str) -> _Setter | None:
        """What `put(name, kind, ...)` writes to, worked out once: (kind, the lists)."""
        if kind == "user":
            return "user", *(self.data[c] for c in user_columns(name))
        if kind in ("number", "text", "date", "bool"):
            return kind, self.data[name]
        return None

    def frame(self, extra: dict[str, pl.Series]) -> pl.DataFrame:
        series = [*extra.values()]
        series += [pl.Series(k, v, dtype=self.types[k]) for k, v in self.data.items()]
        return pl.DataFrame(series)


def _field_kinds(program: Program | None, accounts: Sequence[facts.Account]) -> dict[str, str]:
    """Each account field's kind: the schema's, or what the values are (no schema)."""
    kinds: dict[str, str] = {"id": "text", "name": "text"}
    if program is not None and program.schema is not None:
        for decl in program.schema.fields:
            kinds[decl.name.text] = kind_of_schema(decl.type.kind)
        return kinds
    found: dict[str, str] = {}
    for account in accounts:
        for name, value in account.fields.items():
            if value is not None:
                found[name] = _merge_kind(found.get(name), _kind_of_value(value))
        for name, hist in account.history.items():
            for value in hist.values:
                if value is not None:
                    found[name] = _merge_kind(found.get(name), _kind_of_value(value))
    kinds.update({k: v for k, v in found.items() if k not in ("id", "name")})
    return kinds


def _event_kinds(
    program: Program | None, accounts: Sequence[facts.Account]
) -> dict[str, dict[str, str]]:
    kinds: dict[str, dict[str, str]] = {}
    if program is not None and program.schema is not None:
        for decl in program.schema.events:
            kinds[decl.name.text] = {
                f.name.text: kind_of_schema(f.type.kind) for f in decl.fields
            }
        return kinds
    for account in accounts:
        for event in account.events:
            own = kinds.setdefault(event.type, {})
            for name, value in event.fields.items():
                if value is not None:
                    own[name] = _merge_kind(own.get(name), _kind_of_value(value))
    return kinds


def event_layout(kinds: dict[str, dict[str, str]]) -> dict[str, dict[str, tuple[str, str]]]:
    """Column names for event fields: the field's name, or `name@kind` when types differ."""
    by_name: dict[str, set[str]] = {}
    for own in kinds.values():
        for name, kind in own.items():
            by_name.setdefault(name, set()).add(kind)
    layout: dict[str, dict[str, tuple[str, str]]] = {}
    for event, own in kinds.items():
        layout[event] = {}
        for name, kind in own.items():
            reserved = name in (IDX, "type", "at")
            column = name if len(by_name[name]) == 1 and not reserved else f"{name}@{kind}"
            layout[event][name] = (column, kind)
    return layout


def frames_from_accounts(
    accounts: Sequence[facts.Account],
    program: Program | None,
    *,
    as_of: datetime,
    timezone: tzinfo,
    now: datetime | None = None,
    path: Path | None = None,
    source: AccountSource | None = None,
) -> Frames:
    """Tables for accounts already loaded as objects (YAML fixtures, tests)."""
    rows = len(accounts)
    kinds = _field_kinds(program, accounts)
    cols = _Columns()
    for name, kind in kinds.items():
        if name not in ("id", "name"):
            cols.add(name, kind, rows)
    history_fields = sorted({name for a in accounts for name in a.history})
    for name in history_fields:
        cols._new(history_key_column(name), pl.Boolean(), rows)
    setters = {name: setter for name, kind in kinds.items() if name not in ("id", "name")
               and (setter := cols.setter(name, kind)) is not None}
    for row, account in enumerate(accounts):
        for name, value in account.fields.items():
            setter = setters.get(name)
            if setter is not None and value is not None:
                _set(setter, row, value)
        if account.history:
            for name in account.history:
                cols.data[history_key_column(name)][row] = True
    for name in history_fields:
        keys = cols.data[history_key_column(name)]
        cols.data[history_key_column(name)] = [k is True for k in keys]
    table = cols.frame({
        IDX: pl.Series(IDX, range(rows), dtype=pl.UInt32),
        "id": pl.Series("id", [a.id for a in accounts], dtype=pl.String),
        "name": pl.Series("name", [a.name for a in accounts], dtype=pl.String),
        TAGS: _tags(accounts),
    })
    layout = event_layout(_event_kinds(program, accounts))
    return Frames(
        path=path,
        now=now,
        timezone=timezone,
        as_of=as_of,
        accounts=table,
        events=_events_frame(accounts, layout),
        history={n: _history_frame(accounts, n, kinds.get(n, "null")) for n in history_fields},
        fired=_fired_frame(accounts),
        fields=kinds,
        event_fields=layout,
        source=source or ListSource(accounts),
    )


def _tags(accounts: Sequence[facts.Account]) -> pl.Series:
    """Each account's tags, sorted, as one list column (built by Arrow from one flat list:
    polars would make a Series of every account's list)."""
    offsets = [0]
    values: list[str] = []
    for account in accounts:
        if account.tags:
            values.extend(sorted(account.tags))
        offsets.append(len(values))
    lists = pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()),
                                          pa.array(values, type=pa.large_string()))
    return pl.Series(TAGS, lists, dtype=pl.List(pl.String))


def _events_frame(
    accounts: Sequence[facts.Account], layout: dict[str, dict[str, tuple[str, str]]]
) -> pl.DataFrame:
    total = sum(len(a.events) for a in accounts)
    cols = _Columns()
    seen: set[str] = set()
    for own in layout.values():
        for column, kind in own.values():
            if column not in seen:
                seen.add(column)
                cols.add(column, kind, total)
    setters = {event: {name: setter for name, (column, kind) in own.items()
                       if (setter := cols.setter(column, kind)) is not None}
               for event, own in layout.items()}
    idx: list[int] = []
    types: list[str] = []
    ats: list[int] = []
    row = 0
    for i, account in enumerate(accounts):
        for event in account.events:  # already in time order, ties in file order
            idx.append(i)
            types.append(event.type)
            ats.append((event.at - EPOCH) // _MICRO)
            if event.fields:
                own = setters.get(event.type, {})
                for name, value in event.fields.items():
                    setter = own.get(name)
                    if setter is not None and value is not None:
                        _set(setter, row, value)
            row += 1
    kinds = sorted(set(layout) | set(types))
    return cols.frame({
        IDX: pl.Series(IDX, idx, dtype=pl.UInt32),
        "type": pl.Series("type", types, dtype=pl.Enum(kinds)),
        "at": pl.Series("at", ats, dtype=pl.Int64),
    })


def _history_frame(accounts: Sequence[facts.Account], name: str, kind: str) -> pl.DataFrame:
    entries = [
        (i, t, v)
        for i, a in enumerate(accounts)
        if name in a.history
        for t, v in zip(a.history[name].times, a.history[name].values, strict=True)
    ]
    cols = _Columns()
    cols.add(name, kind, len(entries))
    for row, (_, _, value) in enumerate(entries):
        cols.put(name, kind, row, value)
    return cols.frame({
        IDX: pl.Series(IDX, [e[0] for e in entries], dtype=pl.UInt32),
        "at": pl.Series("at", [micros(e[1]) for e in entries], dtype=pl.Int64),
    })


def _fired_frame(accounts: Sequence[facts.Account]) -> pl.DataFrame:
    rows = [(i, f.playbook, f.rule, micros(f.at)) for i, a in enumerate(accounts) for f in a.fired]
    return pl.DataFrame(
        {
            IDX: pl.Series(IDX, [r[0] for r in rows], dtype=pl.UInt32),
            "playbook": pl.Series("playbook", [r[1] for r in rows], dtype=pl.String),
            "rule": pl.Series("rule", [r[2] for r in rows], dtype=pl.String),
            "at": pl.Series("at", [r[3] for r in rows], dtype=pl.Int64),
        }
    )


def select_rows(frames: Frames, indices: Iterable[int]) -> Frames:
    """The same frames cut down to some accounts (renumbered from 0, order kept)."""
    chosen = pl.Series(IDX, sorted(set(indices)), dtype=pl.UInt32)
    mapping = pl.DataFrame({IDX: chosen, "__new": pl.Series(range(len(chosen)), dtype=pl.UInt32)})

    def cut(frame: pl.DataFrame) -> pl.DataFrame:
        out = frame.join(mapping, on=IDX, how="inner", maintain_order="left")
        return out.drop(IDX).rename({"__new": IDX}).select(frame.columns)

    picks = chosen.to_list()
    base = frames.source

    class _Mapped:
        def accounts(self, indices: Sequence[int]) -> list[facts.Account]:
            return base.accounts([picks[i] for i in indices])

        def prepare(self, indices: Sequence[int],
                    reads: Sequence[Reads] | None = None,
                    ) -> Callable[[], list[facts.Account]]:
            return base.prepare([picks[i] for i in indices], reads)

    return Frames(
        path=frames.path,
        now=frames.now,
        timezone=frames.timezone,
        as_of=frames.as_of,
        accounts=cut(frames.accounts),
        events=cut(frames.events),
        history={k: cut(v) for k, v in frames.history.items()},
        fired=cut(frames.fired),
        fields=frames.fields,
        event_fields=frames.event_fields,
        source=_Mapped(),
    )


Rebuild = Callable[[int], facts.Account]
