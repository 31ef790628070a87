"""Seeded fixtures of many accounts for benchmarks: `N` accounts, `M` events each.

    python bench/generate.py DIR N M --out big.json [--seed 7] [--format json|jsonl]
        [--steady]

    from bench.generate import write_fixture, generate_frames, generate_batches
    write_fixture("big.jsonl", Engine.load(DIR), accounts=50_000, events=12, seed=7)
    frames = generate_frames(engine, 1_000_000, 30, seed=7)   # bulk.Frames, no JSON

The accounts follow the schema of the playbook directory `DIR`: every declared field gets
values of its type (about 5% missing), contacts for the declared roles, events of the
declared types with their fields, history for a number field, tags, and earlier firings
of the directory's state rules (each with a chance of 40%, in the last 60 days); with
`--steady`, also yesterday's firings of every rule whose condition was true then, as
after a daily run. The fixture's `now` is fixed (`NOW`), so a seed always gives the
same data.

Values are drawn with polars' seeded hash of the row number, column-wise, a batch of
accounts at a time. They are drawn as typed columns first: those are the bulk path's
`Frames` as they are (`generate_frames`, for measuring the decision pass on a million
accounts without parsing gigabytes of JSON), and the JSON texts are written from them,
so the file and the frames hold the same accounts.

Field names steer plausible ranges where they say what they hold (`health` 0-100,
`seats`, `mrr`, `renewal...` in the future); any other number is 0-1000 and any other
date lies in the past four years.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from playbook_engine import nodes as n
from playbook_engine.bulk_frames import IDX, TAGS, Frames, event_layout, kind_of_schema
from playbook_engine.engine import Engine
from playbook_engine.program import Program

__all__ = ["NOW", "TIMEZONE", "generate_batches", "generate_frames", "steady_firings",
           "write_fixture"]

TIMEZONE = "Asia/Tokyo"
NOW = datetime(2026, 3, 16, 9, 0, tzinfo=ZoneInfo(TIMEZONE))
_DAY_S = 86_400
_BATCH = 50_000
_WORDS = ("standard", "enterprise", "starter", "pro")
_EVENT_WORDS = ("reports", "dashboards", "api", "export", "billing")


# --------------------------------------------------------------------------- draws


def _rand(key: str, seed: int, row: pl.Expr) -> pl.Expr:
    """A uniform 64-bit draw per row, fixed by (`seed`, `key`, row number)."""
    salt = zlib.crc32(key.encode()) ^ (seed * 0x9E3779B1 & 0xFFFFFFFF)
    return row.hash(seed=salt)


def _below(key: str, seed: int, row: pl.Expr, k: int) -> pl.Expr:
    return (_rand(key, seed, row) % k).cast(pl.Int64)


def _chance(key: str, seed: int, row: pl.Expr, p: float) -> pl.Expr:
    return _below(key, seed, row, 1_000_000) < int(p * 1_000_000)


def _pick(values: tuple[str, ...] | list[str], index: pl.Expr) -> pl.Expr:
    return pl.lit(pl.Series(list(values), dtype=pl.String)).get(index)


def _local(seconds: pl.Expr) -> pl.Expr:
    return (pl.from_epoch(seconds, time_unit="s").dt.replace_time_zone("UTC")
            .dt.convert_time_zone(TIMEZONE))


def _midnight_us(seconds: pl.Expr) -> pl.Expr:
    """The instant (microseconds) of local midnight of the day `seconds` falls on."""
    day = _local(seconds).dt.date().cast(pl.Datetime("us")).dt.replace_time_zone(TIMEZONE)
    return day.dt.epoch("us")


def _offset_s(seconds: pl.Expr) -> pl.Expr:
    local = _local(seconds)
    return (local.dt.base_utc_offset().dt.total_seconds()
            + local.dt.dst_offset().dt.total_seconds()).cast(pl.Int32)


def _number_range(name: str) -> tuple[int, int, int]:
    """(low, high, step) for a number field, from what its name says it holds."""
    lowered = name.lower()
    if "health" in lowered or "score" in lowered:
        return 0, 100, 1
    if "seat" in lowered:
        return 1, 300, 1
    if "mrr" in lowered or "arr" in lowered or "revenue" in lowered:
        return 1_000, 600_000, 1_000
    return 0, 1_000, 1


def _state_rule_keys(program: Program) -> list[tuple[str, str]]:
    return [
        (p.name.value, r.name.value)
        for p, r in program.rules()
        if p.status_value != "paused" and r.event is None
    ]


# --------------------------------------------------------------------------- typed tables


@dataclass
class _Batch:
    """One batch of accounts as typed tables (the layout of `bulk_frames`)."""

    accounts: pl.DataFrame
    contacts: pl.DataFrame
    events: pl.DataFrame
    history: dict[str, pl.DataFrame]
    fired: pl.DataFrame


def _field_columns(decl: n.FieldDecl, seed: int, row: pl.Expr, now: int) -> list[pl.Expr]:
    name, kind = decl.name.text, decl.type.kind
    present = ~_chance(name + ":missing", seed, row, 0.05)
    if kind == "number":
        low, high, step = _number_range(name)
        base = (low + _below(name, seed, row, (high - low) // step + 1) * step).cast(pl.Float64)
        half = _chance(name + ":half", seed, row, 0.1) & pl.lit(step == 1)
        value = pl.when(half).then(base + 0.5).otherwise(base)
        return [pl.when(present).then(value).alias(name)]
    if kind == "enum":
        values = tuple(v.text for v in decl.type.values)
        return [pl.when(present).then(_pick(values, _below(name, seed, row, len(values))))
                .alias(name)]
    if kind == "text":
        return [pl.when(present).then(_pick(_WORDS, _below(name, seed, row, len(_WORDS))))
                .alias(name)]
    if kind == "yes/no":
        return [pl.when(present).then(_chance(name, seed, row, 0.5)).alias(name)]
    if kind == "date":
        lowered = name.lower()
        if "renewal" in lowered and "signed" not in lowered:
            offset = _below(name, seed, row, 430) - 30  # days ahead (30 past to 400 ahead)
        else:
            offset = -_below(name, seed, row, 1460)
        if "complete" in lowered or "done" in lowered or ("signed_at" in lowered
                                                          and "renewal" in lowered):
            present = present & _chance(name + ":done", seed, row, 0.5)
        us = _midnight_us(pl.lit(now) + offset * _DAY_S)
        return [pl.when(present).then(us).alias(name),
                pl.lit(None, dtype=pl.Int32).alias(name + "@off")]  # a date: the zone's
    if kind == "user":
        k = _below(name, seed, row, 40).cast(pl.String)
        return [pl.when(present).then(True).alias(name),
                pl.when(present).then(pl.concat_str(pl.lit("CSM "), k)).alias(name + "@name"),
                pl.when(present).then(pl.concat_str(pl.lit("csm"), k, pl.lit("@example.com")))
                .alias(name + "@email")]
    return []


def _batch(engine: Engine, start: int, size: int, per: int, seed: int) -> _Batch:
    program = engine.program
    schema = program.schema
    if schema is None:
        raise ValueError("the playbook directory has no schema to generate accounts for")
    now = int(NOW.timestamp())
    frame = pl.DataFrame({IDX: pl.int_range(start, start + size, eager=True, dtype=pl.UInt32)})
    row = pl.col(IDX).cast(pl.Int64)
    text = row.cast(pl.String)
    columns: list[pl.Expr] = [
        pl.concat_str(pl.lit("acct-"), text.str.zfill(7)).alias("id"),
        pl.when(_chance("name", seed, row, 0.2)).then(pl.concat_str(pl.lit("株式会社 "), text))
        .otherwise(pl.concat_str(pl.lit("Account "), text)).alias("name"),
        pl.when(_chance("tag:vip", seed, row, 0.08)).then(pl.lit(["vip"]))
        .when(_chance("tag:dnc", seed, row, 0.03)).then(pl.lit(["do-not-contact"]))
        .otherwise(pl.lit([], dtype=pl.List(pl.String))).alias(TAGS),
    ]
    for decl in schema.fields:
        columns += _field_columns(decl, seed, row, now)
    accounts = frame.with_columns(columns)

    roles = [r.text for r in schema.roles]
    contacts = pl.concat([
        frame.filter(_chance("contact:" + role, seed, row, 0.6)).select(
            IDX,
            pl.concat_str(pl.lit(f"{role} of "), text).alias("name"),
            pl.concat_str(pl.lit(f"{role}@acct-"), text, pl.lit(".example")).alias("email"),
            pl.lit(role).alias("role"), pl.lit(k).alias("__k"))
        for k, role in enumerate(roles)
    ]).sort(IDX, "__k").drop("__k") if roles else pl.DataFrame(
        {IDX: [], "name": [], "email": [], "role": []},
        schema={IDX: pl.UInt32, "name": pl.String, "email": pl.String, "role": pl.String})

    history: dict[str, pl.DataFrame] = {}
    numbers = [d.name.text for d in schema.fields if d.type.kind == "number"]
    field = next((f for f in numbers if "health" in f), None) or (numbers[0] if numbers else None)
    if field is not None:
        chosen = frame.filter(_chance("history", seed, row, 0.3))
        entries = pl.concat([
            chosen.select(IDX, (pl.lit(now) - (31 + _below("h1", seed, row, 30)) * _DAY_S)
                          .alias("s"), _below("h1v", seed, row, 101).cast(pl.Float64)
                          .alias(field)),
            chosen.select(IDX, (pl.lit(now) - (1 + _below("h2", seed, row, 30)) * _DAY_S)
                          .alias("s"), _below("h2v", seed, row, 101).cast(pl.Float64)
                          .alias(field)),
        ]).sort(IDX, "s")
        history[field] = entries.select(IDX, (pl.col("s") * 1_000_000).alias("at"),
                                        _offset_s(pl.col("s")).alias("at@off"), field)
        accounts = accounts.with_columns(
            pl.col(IDX).is_in(chosen.get_column(IDX).implode()).alias(f"__hk@{field}"))

    keys = _state_rule_keys(program)
    fired_parts = [
        frame.filter(_chance(f"fired:{k}", seed, row, 0.4)).select(
            IDX, pl.lit(playbook).alias("playbook"), pl.lit(rule).alias("rule"),
            (pl.lit(now) - _below(f"fired:at:{k}", seed, row, 60 * _DAY_S)).alias("s"),
            pl.lit(k).alias("__k"))
        for k, (playbook, rule) in enumerate(keys)
    ]
    fired_schema = {IDX: pl.UInt32, "playbook": pl.Categorical, "rule": pl.Categorical,
                    "at": pl.Int64,
                    "at@off": pl.Int32}
    fired = (pl.concat(fired_parts).sort(IDX, "__k").select(
        IDX, pl.col("playbook").cast(pl.Categorical), pl.col("rule").cast(pl.Categorical),
        (pl.col("s") * 1_000_000).alias("at"),
        _offset_s(pl.col("s")).alias("at@off")) if fired_parts
        else pl.DataFrame(schema=fired_schema))
    return _Batch(accounts, contacts, _events(schema, seed, start, size, per, now), history,
                  fired)


def _events(schema: n.Schema, seed: int, start: int, size: int, per: int,
            now: int) -> pl.DataFrame:
    decls = list(schema.events)
    kinds = {d.name.text: {f.name.text: kind_of_schema(f.type.kind) for f in d.fields}
             for d in decls}
    layout = event_layout(kinds)
    types = pl.Enum(sorted(kinds))
    frame = pl.DataFrame({"e": pl.int_range(start * per, (start + size) * per, eager=True)})
    if not decls or per == 0:
        empty: dict[str, pl.DataType] = {IDX: pl.UInt32(), "type": types, "at": pl.Int64(),
                                         "at@off": pl.Int32()}
        for own in layout.values():
            for column, kind in own.values():
                empty[column] = {"number": pl.Float64(), "text": pl.Categorical()}.get(
                    kind, pl.String())
        return pl.DataFrame(schema=empty)
    e = pl.col("e")
    # The first declared event type is the common one (a login, say): half of them.
    weights = [len(decls)] + [1] * (len(decls) - 1)
    cumulative = [sum(weights[: i + 1]) for i in range(len(weights))]
    draw = _below("event:type", seed, e, cumulative[-1])
    kind = pl.lit(len(decls) - 1)
    for i in reversed(range(len(decls) - 1)):
        kind = pl.when(draw < cumulative[i]).then(i).otherwise(kind)
    seconds = pl.lit(now) - _below("event:at", seed, e, 120 * _DAY_S)
    columns: dict[str, pl.Expr] = {}
    texts = {c for own in layout.values() for c, k in own.values() if k == "text"}
    for i, decl in enumerate(decls):
        for f in decl.fields:
            name, ftype = f.name.text, f.type.kind
            column = layout[decl.name.text][name][0]
            if ftype == "number":
                value: pl.Expr = _below("ef:" + name, seed, e, 11).cast(pl.Float64)
            elif ftype == "enum":
                vals = [v.text for v in f.type.values]
                value = _pick(vals, _below("ef:" + name, seed, e, len(vals)))
            elif name == "user":
                value = pl.concat_str(pl.lit("u"), _below("ef:user", seed, e, 20).cast(pl.String))
            else:
                value = _pick(_EVENT_WORDS, _below("ef:" + name, seed, e, len(_EVENT_WORDS)))
            mine = pl.col("k") == i
            earlier = columns.get(column)
            columns[column] = (pl.when(mine).then(value) if earlier is None
                               else pl.when(mine).then(value).otherwise(earlier))
    names = [d.name.text for d in decls]
    return (
        frame.with_columns((e // per).cast(pl.UInt32).alias(IDX), seconds.alias("s"),
                           kind.alias("k"))
        .with_columns(_pick(names, pl.col("k")).cast(types).alias("type"),
                      *[expr.alias(c) for c, expr in columns.items()])
        .sort(IDX, "s", maintain_order=True)
        .select(IDX, "type", (pl.col("s") * 1_000_000).alias("at"),
                _offset_s(pl.col("s")).alias("at@off"),
                *[pl.col(c).cast(pl.Categorical) if isinstance(e, pl.Expr) and c in texts
                  else pl.col(c) for c, e in columns.items()])
    )


def generate_frames(engine: Engine, accounts: int, events: int, seed: int = 0,
                    steady: bool = False) -> Frames:
    """The accounts as the bulk path's tables, with no JSON in between."""
    from playbook_engine.bulk_accounts import ColumnSource
    from playbook_engine.bulk_frames import event_layout as layout_of

    schema = engine.program.schema
    assert schema is not None
    batches = [_batch(engine, start, min(_BATCH, accounts - start), events, seed)
               for start in range(0, accounts, _BATCH)]
    history: dict[str, pl.DataFrame] = {}
    for b in batches:
        for name, table in b.history.items():
            history[name] = pl.concat([history[name], table]) if name in history else table
    kinds = {"id": "text", "name": "text"} | {
        d.name.text: kind_of_schema(d.type.kind) for d in schema.fields}
    frames = Frames(
        path=None, now=NOW, timezone=ZoneInfo(TIMEZONE), as_of=NOW,
        accounts=pl.concat([b.accounts for b in batches]),
        events=pl.concat([b.events for b in batches]),
        history=history,
        fired=pl.concat([b.fired for b in batches]),
        fields=kinds,
        event_fields=layout_of({d.name.text: {f.name.text: kind_of_schema(f.type.kind)
                                              for f in d.fields} for d in schema.events}),
        source=None,  # type: ignore[arg-type]
    )
    frames.source = ColumnSource(frames, pl.concat([b.contacts for b in batches]),
                                 engine.program)
    if steady:
        extra = _steady_rows(engine, frames, seed)
        if extra.height:
            fired = pl.concat([frames.fired, extra]).with_row_index("__pos")
            frames.fired = fired.sort(IDX, "__pos").drop("__pos")
    return frames


# --------------------------------------------------------------------------- steady state


def _steady_rows(engine: Engine, frames: Frames, seed: int, share: float = 0.95
                 ) -> pl.DataFrame:
    """Yesterday's run: for each state rule, a firing at `NOW - 1 day` on about `share`
    of the accounts whose condition and scope were true then (exactly: values the bulk
    plan cannot decide are left out). A daily dry-run normally follows a run that
    already acted; without these, every condition true today fires as if for the first
    time."""
    from playbook_engine.bulk import condition_table

    yesterday = NOW - timedelta(days=1)
    rules = [(p, r) for p, r in engine.program.rules()
             if p.status_value != "paused" and r.when is not None]
    conditions: list[n.Expr] = []
    for p, r in rules:
        assert r.when is not None
        conditions.append(n.And(r.when, p.applies_to) if p.applies_to is not None else r.when)
    table = condition_table(engine, frames, yesterday, conditions)
    at = int(yesterday.timestamp()) * 1_000_000
    offset = int(yesterday.utcoffset().total_seconds())  # type: ignore[union-attr]
    parts = []
    for i, (playbook, rule) in enumerate(rules):
        chosen = table.filter(pl.col(f"c{i}").fill_null(False)
                              & ~_chance(f"steady:{i}", seed, pl.col(IDX).cast(pl.Int64),
                                         1 - share))
        parts.append(chosen.select(
            IDX, pl.lit(playbook.name.value).cast(pl.Categorical).alias("playbook"),
            pl.lit(rule.name.value).cast(pl.Categorical).alias("rule"),
            pl.lit(at, dtype=pl.Int64).alias("at"),
            pl.lit(offset, dtype=pl.Int32).alias("at@off"), pl.lit(i).alias("__k")))
    if not parts:
        return frames.fired.clear()
    return pl.concat(parts).sort(IDX, "__k").drop("__k")


def steady_firings(engine: Engine, frames: Frames, seed: int = 0) -> dict[int, list[str]]:
    """`_steady_rows` as JSON texts by account row (for `generate_batches`)."""
    out: dict[int, list[str]] = {}
    stamp = (NOW - timedelta(days=1)).isoformat()
    for idx, playbook, rule in _steady_rows(engine, frames, seed).select(
            IDX, "playbook", "rule").iter_rows():
        out.setdefault(idx, []).append(
            f'{{"playbook": "{playbook}", "rule": "{rule}", "at": "{stamp}"}}')
    return out


# --------------------------------------------------------------------------- JSON


def _quoted(expr: pl.Expr) -> pl.Expr:
    """A text as a JSON string literal (the generated texts need no escapes)."""
    return pl.concat_str(pl.lit('"'), expr, pl.lit('"'))


def _number_text(expr: pl.Expr) -> pl.Expr:
    whole = expr.floor() == expr
    return pl.when(whole).then(expr.cast(pl.Int64).cast(pl.String)).otherwise(
        expr.cast(pl.String))


def _moment_text(us: pl.Expr) -> pl.Expr:
    return _local(us // 1_000_000).dt.strftime("%Y-%m-%dT%H:%M:%S%:z")


def _pair(name: str, value: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit(f'"{name}": '), value)


def _value_text(kind: str, column: str) -> pl.Expr:
    col = pl.col(column)
    if kind == "number":
        return _number_text(col)
    if kind in ("enum", "text"):
        return _quoted(col.cast(pl.String))
    if kind == "yes/no":
        return pl.when(col).then(pl.lit("true")).otherwise(pl.lit("false"))
    if kind == "date":
        return _quoted(_local(col // 1_000_000).dt.strftime("%Y-%m-%d"))
    if kind == "user":
        return pl.concat_str(pl.lit('{"name": "'), pl.col(column + "@name"),
                             pl.lit('", "email": "'), pl.col(column + "@email"), pl.lit('"}'))
    raise ValueError(kind)


def _joined(table: pl.DataFrame, text: pl.Expr, name: str) -> pl.DataFrame:
    """Per account: `"name": [item, item]` from one JSON text per row."""
    return table.group_by(IDX, maintain_order=True).agg(
        pl.concat_str(pl.lit(f'"{name}": ['), text.str.join(", "), pl.lit("]")).alias(name))


def _texts(engine: Engine, batch: _Batch, extra: dict[int, list[str]] | None) -> list[str]:
    schema = engine.program.schema
    assert schema is not None
    acc = batch.accounts
    parts: list[pl.Expr] = [_pair("id", _quoted(pl.col("id"))),
                            _pair("name", _quoted(pl.col("name")))]
    for decl in schema.fields:
        name = decl.name.text
        parts.append(pl.when(pl.col(name).is_not_null()).then(
            _pair(name, _value_text(decl.type.kind, name))))
    parts.append(pl.when(pl.col(TAGS).list.len() > 0).then(_pair(
        "tags", pl.concat_str(pl.lit('["'), pl.col(TAGS).list.join('", "'), pl.lit('"]')))))
    texts = acc.select(IDX, pl.concat_str(parts, separator=", ", ignore_nulls=True)
                       .alias("body"))
    contact = pl.concat_str(pl.lit('{"name": "'), pl.col("name"), pl.lit('", "email": "'),
                            pl.col("email"), pl.lit('", "role": "'), pl.col("role"),
                            pl.lit('"}'))
    pieces = [_joined(batch.contacts, contact, "contacts")]
    for name, table in batch.history.items():
        entry = pl.concat_str(pl.lit('{"at": "'), _moment_text(pl.col("at")),
                              pl.lit('", "value": '), _number_text(pl.col(name)), pl.lit("}"))
        pieces.append(_joined(table, entry, "history").with_columns(
            pl.concat_str(pl.lit(f'"history": {{"{name}": ['),
                          pl.col("history").str.slice(len('"history": ['))
                          .str.strip_suffix("]"), pl.lit("]}")).alias("history")))
    firing = pl.concat_str(pl.lit('{"playbook": "'), pl.col("playbook").cast(pl.String),
                           pl.lit('", "rule": "'), pl.col("rule").cast(pl.String),
                           pl.lit('", "at": "'),
                           _moment_text(pl.col("at")), pl.lit('"}'))
    pieces.append(_joined(batch.fired, firing, "fired"))
    kinds = {d.name.text: {f.name.text: f.type.kind for f in d.fields} for d in schema.events}
    layout = event_layout({k: {f: kind_of_schema(t) for f, t in v.items()}
                           for k, v in kinds.items()})
    event_text = pl.lit(None, dtype=pl.String)
    for event, own in kinds.items():
        fields = [pl.concat_str(pl.lit(f'"type": "{event}", "at": "'),
                                _moment_text(pl.col("at")), pl.lit('"'))]
        for name, kind in own.items():
            column = layout[event][name][0]
            fields.append(pl.when(pl.col(column).is_not_null()).then(
                _pair(name, _value_text(kind, column))))
        mine = pl.concat_str(pl.lit("{"), pl.concat_str(fields, separator=", ",
                                                        ignore_nulls=True), pl.lit("}"))
        event_text = pl.when(pl.col("type") == event).then(mine).otherwise(event_text)
    if batch.events.height:
        pieces.append(_joined(batch.events, event_text, "events"))
    for piece in pieces:
        texts = texts.join(piece, on=IDX, how="left", maintain_order="left")
    order = ["body", "contacts", "history", "fired", "events"]
    present = [c for c in order if c in texts.columns]
    out = texts.select(IDX, pl.concat_str(pl.lit("{"), pl.concat_str(
        [pl.col(c) for c in present], separator=", ", ignore_nulls=True), pl.lit("}"))
        .alias("t"))
    lines: list[str] = out.get_column("t").to_list()
    if extra:
        first = int(acc.get_column(IDX)[0]) if acc.height else 0
        for i, line in enumerate(lines):
            if first + i in extra:
                lines[i] = _with_fired(line, extra[first + i])
    return lines


def _with_fired(text: str, records: list[str]) -> str:
    """Firing records added at the end of an account's `fired` list."""
    more = ", ".join(records)
    if '"fired": [' in text:
        head, tail = text.split('"fired": [', 1)
        inner, rest = tail.split("]", 1)
        return f'{head}"fired": [{inner}, {more}]{rest}'
    return f'{text[:-1]}, "fired": [{more}]}}'


def generate_batches(
    engine: Engine, accounts: int, events: int, seed: int = 0, batch: int = _BATCH,
    extra_fired: dict[int, list[str]] | None = None,
) -> Iterator[list[str]]:
    """The accounts as JSON texts (one object each), a batch at a time, in order.

    `extra_fired` adds firing records (JSON texts) to the accounts it names (by row).
    """
    for start in range(0, accounts, batch):
        size = min(batch, accounts - start)
        yield _texts(engine, _batch(engine, start, size, events, seed), extra_fired)


def write_fixture(path: str | Path, engine: Engine, accounts: int, events: int,
                  seed: int = 0, fmt: str | None = None, steady: bool = False) -> Path:
    """Write the fixture: JSON (one document) or JSON Lines (a header line, then one
    account a line), by `fmt` or the file's extension. `steady` adds yesterday's
    firings (`steady_firings`; the accounts are drawn twice)."""
    target = Path(path)
    fired = None
    if steady:
        fired = steady_firings(engine, generate_frames(engine, accounts, events, seed), seed)
    kind = fmt or ("jsonl" if target.suffix in (".jsonl", ".ndjson") else "json")
    header = f'"now": "{NOW.isoformat()}", "timezone": "{TIMEZONE}"'
    with target.open("w", encoding="utf-8") as out:
        if kind == "jsonl":
            out.write("{" + header + "}\n")
        else:
            out.write("{" + header + ', "accounts": [\n')
        first = True
        for texts in generate_batches(engine, accounts, events, seed, extra_fired=fired):
            if kind == "jsonl":
                out.write("\n".join(texts) + "\n")
            else:
                out.write(("" if first else ",\n") + ",\n".join(texts))
            first = False
        if kind != "jsonl":
            out.write("\n]}\n")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("directory", help="playbook directory whose schema to follow")
    parser.add_argument("accounts", type=int)
    parser.add_argument("events", type=int, help="events per account")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=["json", "jsonl"], default=None)
    parser.add_argument("--steady", action="store_true",
                        help="add yesterday's firings, as after a daily run (steady state)")
    args = parser.parse_args(argv)
    engine = Engine.load(args.directory)
    write_fixture(args.out, engine, args.accounts, args.events, args.seed, args.format,
                  steady=args.steady)
    return 0


if __name__ == "__main__":
    sys.exit(main())
