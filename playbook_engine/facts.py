"""What the engine knows about an account: field values over time, events, earlier firings.

Facts are plain immutable data. Loading them (fixtures, a feed, a database) happens at
the edges; evaluation only reads them. Values are typed as the schema says:
numbers are `Decimal`, dates are timezone-aware `datetime`, `yes/no` is `bool`,
text and enum values are `str`, a `user` is a `User`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class User:
    name: str | None = None
    email: str | None = None


Value = str | Decimal | bool | datetime | User | None


@dataclass(frozen=True, slots=True)
class Contact:
    name: str | None
    email: str | None
    role: str | None


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    at: datetime
    fields: dict[str, Value] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class Firing:
    """An earlier firing of a rule on an account (from a fixture's `fired` or the store)."""

    playbook: str
    rule: str
    at: datetime


@dataclass(frozen=True, slots=True)
class History:
    """Earlier values of one field: each holds from its `at` until the next."""

    times: tuple[datetime, ...]
    values: tuple[Value, ...]

    def value_at(self, when: datetime) -> tuple[bool, Value]:
        """(found, value): found is False before the first entry."""
        i = bisect.bisect_right(self.times, when)
        if i == 0:
            return False, None
        return True, self.values[i - 1]


@dataclass(frozen=True, slots=True)
class Account:
    """One account's facts. `fields` hold the values at `as_of` (the fixture's `now`)."""

    id: str
    name: str | None
    fields: dict[str, Value]
    as_of: datetime
    tags: frozenset[str] = frozenset()
    contacts: tuple[Contact, ...] = ()
    events: tuple[Event, ...] = ()  # sorted by time
    history: dict[str, History] = field(default_factory=dict)
    fired: tuple[Firing, ...] = ()

    def value(self, name: str, when: datetime) -> Value:
        """The field's value at `when`: from history before `as_of`, else the current one."""
        hist = self.history.get(name)
        if hist is not None and when < self.as_of:
            return hist.value_at(when)[1]
        if name == "id":
            return self.id
        if name == "name":
            return self.name
        return self.fields.get(name)

    def events_of(self, event_type: str) -> list[Event]:
        return [e for e in self.events if e.type == event_type]


def number(value: int | float | str | Decimal) -> Decimal:
    """A Decimal as people write it: 0.1 stays 0.1, not its binary neighbour."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)
