"""`facts.Account` objects from the bulk path's tables, for the accounts it decides one by one.

    build = source.prepare(rows)   # reads the tables: polars, in this process
    accounts = build()             # plain Python from here: safe in a forked worker

Building is split in two so that the per-account pass can run on several processes
(`workers.run_split`): every table read (gathers, `to_list`) happens in `prepare`, in
the process that holds the tables, and the returned builder only turns those lists into
objects. Polars and Arrow keep thread pools that a forked child does not inherit, so a
builder must never call them; the lists it closes over are shared with the child by
the fork itself, with nothing copied or pickled.

Values come out as `fixtures.py` makes them: numbers `Decimal`, dates aware datetimes in
the offset they were written with (or the fixture's zone), users `facts.User`; events in
time order, ties in file order.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl

from . import facts
from .bulk_frames import (
    EPOCH,
    IDX,
    TAGS,
    Reads,
    history_key_column,
    micros,
    user_columns,
    zone_is_fixed,
)
from .memory import collector_paused

if TYPE_CHECKING:
    from .bulk_frames import Frames
    from .program import Program

__all__ = ["EXACT_INT", "ColumnSource", "parsed_moment"]

# Integers a float holds exactly: beyond, a number goes to the exact loader.
EXACT_INT = 2**53

Build = Callable[[], list[Any]]


def parsed_moment(us: int, offset: int | None, zone: tzinfo) -> datetime:
    """The datetime `fixtures.py` builds for a parsed text: its own offset, or the zone."""
    tz = zone if offset is None else timezone(timedelta(seconds=offset))
    return (EPOCH + timedelta(microseconds=us)).astimezone(tz)


class ColumnSource:
    """Builds `facts.Account` objects from the frames' columns, for chosen accounts.

    Work is done a column at a time: each table's rows for the chosen accounts are
    gathered at once (the tables are sorted by account), each column turned into Python
    values once (numbers and users through a cache of the values seen, dates by adding
    microseconds to one datetime per offset), and the objects of every account built in
    one pass, then cut into each account's tuple.
    """

    def __init__(self, frames: Frames, contacts: pl.DataFrame, program: Program) -> None:
        self.frames = frames
        self.contacts = contacts
        schema = program.schema
        assert schema is not None
        self.fields = [(d.name.text, frames.field_kind(d.name.text)) for d in schema.fields]
        self.event_specs = {
            event: [(name, column, kind) for name, (column, kind) in own.items()]
            for event, own in frames.event_fields.items()
        }
        self.values = _Values(_Moments(frames.timezone, frames.as_of))

    def accounts(self, indices: Sequence[int]) -> list[facts.Account]:
        return self.prepare(indices)()

    def prepare(self, indices: Sequence[int],
                reads: Sequence[Reads] | None = None,
                ) -> Callable[[], list[facts.Account]]:
        """Read what the accounts at `indices` need; the builder makes them, in order.

        `reads`, when given, holds for each account what deciding its rules reads: its
        `fired` and `events` hold those firings and events only (the bulk path decides a
        rule or two of each account, and most of its events and firings are about others).
        """
        chosen = list(indices)
        if not chosen:
            return list
        frames, values = self.frames, self.values
        wanted = pl.Series(IDX, chosen, dtype=pl.UInt32)
        acc = frames.accounts[chosen]
        there = acc.select(_present(acc, name, kind).alias(name) for name, kind in self.fields)
        fields = [(name, values.column(acc, name, kind), there.get_column(name).to_list())
                  for name, kind in self.fields]
        histories = [
            (name, self._history(table, wanted, name, frames.field_kind(name)),
             acc.get_column(history_key_column(name)).to_list())
            for name, table in frames.history.items()]
        ids, names = acc.get_column("id").to_list(), acc.get_column("name").to_list()
        tags = acc.get_column(TAGS).to_list()
        contacts = self._contacts(wanted)
        events = self._events(wanted, None if reads is None else [
            [(event,) for event in r.events] for r in reads])
        fired = self._fired(wanted, None if reads is None else [list(r.rules) for r in reads])
        as_of = frames.as_of

        def build() -> list[facts.Account]:
            # Hundreds of thousands of objects, none in a reference cycle: the cyclic
            # collector would only walk them again and again (half the time), so it waits.
            with collector_paused():
                return _objects(
                    facts.Account, ids, names, _mappings(len(ids), fields), [as_of] * len(ids),
                    [frozenset(t) if t else _NO_TAGS for t in tags], contacts(), events(),
                    _mappings(len(ids), histories), fired())

        return build

    def _events(self, wanted: pl.Series, types: Sequence[list[tuple[str]]] | None) -> Build:
        rows, bounds = _gathered(self.frames.events, wanted,
                                 None if types is None else (("type",), types))
        if rows is None:
            return _constant([()] * wanted.len())
        # A type at a time, its own fields only: most of an event's columns are empty.
        kinds = rows.get_column("type")
        fills: list[tuple[Build, list[tuple[str, Build, list[bool]]]]] = []
        for event, spec in self.event_specs.items():
            if not spec:
                continue
            where = kinds == event
            if not where.any():
                continue
            own = rows.filter(where)
            there = own.select(_present(own, column, kind).alias(name)
                               for name, column, kind in spec)
            columns: dict[str, Build] = {}
            for _, column, kind in spec:
                if column not in columns:
                    columns[column] = self.values.column(own, column, kind)
            positions = where.arg_true().to_list()
            fills.append((_constant(positions), [
                (name, columns[column], there.get_column(name).to_list())
                for name, column, _ in spec]))
        types, height = kinds.to_list(), rows.height
        moments = self.values.column(rows, "at", "date")

        def build() -> list[tuple[facts.Event, ...]]:
            fields: list[dict[str, facts.Value]] = [{} for _ in range(height)]
            for positions, columns in fills:
                _fill_columns(list(map(fields.__getitem__, positions())), columns)
            return _per_account(_objects(facts.Event, types, moments(), fields), bounds)

        return build

    def _contacts(self, wanted: pl.Series) -> Build:
        rows, bounds = _gathered(self.contacts, wanted)
        if rows is None:
            return _constant([()] * wanted.len())
        columns = [rows.get_column(c).to_list() for c in ("name", "email", "role")]
        return lambda: _per_account(_objects(facts.Contact, *columns), bounds)

    def _fired(self, wanted: pl.Series, rules: Sequence[list[tuple[str, str]]] | None) -> Build:
        rows, bounds = _gathered(self.frames.fired, wanted,
                                 None if rules is None else (("playbook", "rule"), rules))
        if rows is None:
            return _constant([()] * wanted.len())
        playbooks, rules = rows.get_column("playbook").to_list(), rows.get_column("rule").to_list()
        moments = self.values.column(rows, "at", "date")
        return lambda: _per_account(_objects(facts.Firing, playbooks, rules, moments()), bounds)

    def _history(self, table: pl.DataFrame, wanted: pl.Series, name: str, kind: str) -> Build:
        rows, bounds = _gathered(table, wanted)
        if rows is None:
            return _constant([facts.History((), ())] * wanted.len())
        times, values = self.values.column(rows, "at", "date"), self.values.column(rows, name, kind)

        def build() -> list[facts.History]:
            at, made = times(), values()
            return [facts.History(tuple(at[a:b]), tuple(made[a:b]))
                    for a, b in itertools.pairwise(bounds)]

        return build


_NO_TAGS: frozenset[str] = frozenset()


def _constant(value: list[Any]) -> Build:
    return lambda: value


def _mappings(count: int, columns: list[tuple[str, Build, list[bool]]]) -> list[dict[str, Any]]:
    """`count` dicts, each column's value under its name where it is present."""
    mappings: list[dict[str, Any]] = [{} for _ in range(count)]
    _fill_columns(mappings, columns)
    return mappings


def _fill_columns(mappings: list[dict[str, Any]],
                  columns: list[tuple[str, Build, list[bool]]]) -> None:
    """Each column's value under its name where it is present; a column shared by
    several names is built once."""
    built: dict[Build, list[Any]] = {}
    for key, column, where in columns:
        values = built.get(column)
        if values is None:
            values = built[column] = column()
        _fill(mappings, key, values, where)


def _present(table: pl.DataFrame, name: str, kind: str) -> pl.Expr:
    """Where a value of `kind` read as column `name` is there."""
    column = user_columns(name)[0] if kind == "user" else name
    if column not in table.columns:
        return pl.lit(False)
    return pl.col(column).is_not_null()


def _fill(mappings: list[dict[str, Any]], key: str, values: list[Any],
          where: list[bool]) -> None:
    """mappings[k][key] = values[k] wherever where[k], in C loops."""
    collections.deque(map(dict.__setitem__, itertools.compress(mappings, where),
                          itertools.repeat(key), itertools.compress(values, where)), maxlen=0)


Only = tuple[tuple[str, ...], Sequence[Sequence[tuple[str, ...]]]]


def _gathered(table: pl.DataFrame, wanted: pl.Series, only: Only | None = None,
              ) -> tuple[pl.DataFrame | None, list[int]]:
    """The rows of a table sorted by `__idx` for the wanted accounts, in their order, and
    where each account's rows start (one more: where the last one's end).

    `only` = (columns, keys): the rows whose `columns` hold one of their account's keys
    (keys[k] for wanted[k]) only. They are picked on those columns alone, and only the
    rows kept are gathered whole."""
    if table.height == 0:
        return None, []
    starts, ends = _ranges(table.get_column(IDX), wanted)
    bounds = [0, *(ends - starts).cum_sum().to_list()]
    if bounds[-1] == 0:
        return None, []
    positions = pl.select(pl.int_ranges(starts, ends, dtype=pl.Int64)).to_series().explode(
        empty_as_null=False)
    if only is not None:
        columns, keys = only
        narrow = table.select(IDX, *columns)[positions].with_columns(positions.alias("__pos"))
        kept = _matching(narrow, wanted, columns, keys)
        if kept is None:
            return None, []
        positions, bounds = kept.get_column("__pos"), _bounds(kept.get_column(IDX), wanted)
    return table[positions], bounds


def _ranges(keys: pl.Series, wanted: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Where each wanted account's rows start and end in sorted `keys`."""
    return keys.search_sorted(wanted, side="left"), keys.search_sorted(wanted, side="right")


def _bounds(keys: pl.Series, wanted: pl.Series) -> list[int]:
    starts, ends = _ranges(keys, wanted)
    return [0, *(ends - starts).cum_sum().to_list()]


def _matching(rows: pl.DataFrame, wanted: pl.Series, columns: tuple[str, ...],
              keys: Sequence[Sequence[tuple[str, ...]]]) -> pl.DataFrame | None:
    """The rows whose `columns` hold one of their account's `keys` (None: none do)."""
    pairs = [(row, *key) for row, own in zip(wanted.to_list(), keys, strict=True) for key in own]
    if not pairs:
        return None
    table = pl.DataFrame(pairs, schema={IDX: pl.UInt32, **dict.fromkeys(columns, pl.String)},
                         orient="row")
    # Names as stored (categories, enums); one that is not among an Enum's values becomes
    # null and matches nothing, as nothing of that name is there.
    table = table.with_columns(pl.col(c).cast(rows.schema[c], strict=False) for c in columns)
    kept = rows.join(table, on=[IDX, *columns], how="semi", maintain_order="left")
    return kept if kept.height else None


def _per_account(items: list[Any], bounds: list[int]) -> list[tuple[Any, ...]]:
    return [tuple(items[a:b]) for a, b in itertools.pairwise(bounds)]


def _objects(cls: type[Any], *columns: list[Any]) -> list[Any]:
    """Instances of a frozen slotted dataclass, one per row of `columns` (its fields in
    order), their slots filled as its `__init__` fills them, a column at a time, in C
    loops (`map`): a frozen dataclass's `__init__` goes through `object.__setattr__`,
    at several times the cost."""
    fields = dataclasses.fields(cls)
    assert len(fields) == len(columns) and len({len(c) for c in columns}) <= 1
    items = list(map(object.__new__, itertools.repeat(cls, len(columns[0]))))
    for field, column in zip(fields, columns, strict=True):
        collections.deque(map(cls.__dict__[field.name].__set__, items, column), maxlen=0)
    return items


def _number(value: float | None) -> Decimal | None:
    if value is None:
        return None
    if value == int(value) and abs(value) < EXACT_INT:
        return Decimal(int(value))
    return Decimal(repr(value))


class _Values:
    """Columns as `facts` values: numbers `Decimal`, users `User`, dates datetimes.

    `column` reads the table now and returns a builder of the values. Numbers and users
    repeat (scores, plans, the CSMs): each distinct one is made once, and shared (they
    are immutable)."""

    def __init__(self, moments: _Moments) -> None:
        self.moments = moments
        self.numbers = _Made(_number)
        self.users = _Made(_user)

    def column(self, table: pl.DataFrame, name: str, kind: str) -> Build:
        """Column `name` of `table`, of `kind`, as a list of values (None: empty)."""
        if kind == "user":
            present, uname, email = user_columns(name)
            if present not in table.columns:
                return _constant([None] * table.height)
            keys = [table.get_column(c).to_list() for c in (present, uname, email)]
            users = self.users
            return lambda: list(map(users.__getitem__, zip(*keys, strict=True)))
        if name not in table.columns:
            return _constant([None] * table.height)
        col = table.get_column(name)
        if kind == "date":
            offsets = name + "@off"
            return self.moments.column(
                col, table.get_column(offsets) if offsets in table.columns else None)
        values: list[Any] = col.to_list()
        if kind == "number":
            numbers = self.numbers
            return lambda: list(map(numbers.__getitem__, values))
        return _constant(values)


class _Made(dict[Any, Any]):
    """value -> make(value), each made on first use; None -> None."""

    def __init__(self, make: Callable[[Any], Any]) -> None:
        super().__init__({None: None})
        self.make = make

    def __missing__(self, key: Any) -> Any:
        made = self[key] = self.make(key)
        return made


def _user(key: tuple[bool | None, str | None, str | None]) -> facts.User | None:
    there, name, email = key
    return facts.User(name, email) if there else None


class _Moments:
    """Aware datetimes from microseconds and offsets, as `fixtures.py` builds them.

    Each is one datetime per offset (`now` in that offset, or in the zone) plus a
    timedelta: Python adds it in wall-clock time, which is exact in a fixed offset and
    in a zone whose offset does not change around `now` (`zone_is_fixed`). Elsewhere a
    moment in the zone is converted on its own.
    """

    def __init__(self, zone: tzinfo, around: datetime) -> None:
        self.zone = zone
        self.around = around
        self.around_us = micros(around)
        self.bases: dict[int | None, datetime | None] = {
            None: around.astimezone(zone) if zone_is_fixed(zone, around) else None}

    def _base(self, offset: int | None) -> datetime | None:
        if offset not in self.bases:
            assert offset is not None
            self.bases[offset] = self.around.astimezone(timezone(timedelta(seconds=offset)))
        return self.bases[offset]

    def column(self, us: pl.Series, off: pl.Series | None) -> Build:
        """Datetimes for a column of microseconds, each in its offset (null: the zone)."""
        after = (us - self.around_us).to_list()
        single: tuple[int | None] | None
        if off is None or off.null_count() == off.len():
            single = (None,)
        elif off.null_count() == 0 and off.n_unique() == 1:
            single = (int(off[0]),)
        else:
            single = None
        if single is not None and (base := self._base(single[0])) is not None:
            nulls = bool(us.null_count())
            return lambda: _shifted(base, after, nulls)
        offsets = off.to_list() if off is not None else [None] * len(after)
        return lambda: self._each(after, offsets)

    def _each(self, after: list[int | None], offsets: list[int | None]) -> list[datetime | None]:
        out: list[datetime | None] = []
        for d, offset in zip(after, offsets, strict=True):
            if d is None:
                out.append(None)
                continue
            base = self._base(offset)
            out.append(base + timedelta(0, 0, d) if base is not None
                       else parsed_moment(d + self.around_us, None, self.zone))
        return out


def _shifted(base: datetime, after: list[int | None], nulls: bool) -> list[datetime | None]:
    delta = timedelta
    if nulls:
        return [None if d is None else base + delta(0, 0, d) for d in after]
    return [base + delta(0, 0, d) for d in after]  # type: ignore[arg-type]
