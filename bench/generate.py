"""Seeded fixtures of many accounts for benchmarks: `N` accounts, `M` events each.

    python bench/generate.py DIR N M --out big.json [--seed 7] [--format json|jsonl]
        [--steady]

    from bench.generate import write_fixture, generate_batches
    write_fixture("big.jsonl", Engine.load(DIR), accounts=50_000, events=12, seed=7)

The accounts follow the schema of the playbook directory `DIR`: every declared field gets
values of its type (about 5% missing), contacts for the declared roles, events of the
declared types with their fields, history for a number field, tags, and earlier firings
of the directory's state rules (each with a chance of 40%, in the last 60 days); with
`--steady`, also yesterday's firings of every rule whose condition was true then, as
after a daily run. The fixture's `now` is fixed (`NOW`), so a seed always gives the
same file. Values are drawn with polars' seeded hash of the row number: the
whole file is built column-wise, a batch of accounts at a time, so a million accounts
take seconds per batch, not minutes.

Field names steer plausible ranges where they say what they hold (`health` 0-100,
`seats`, `mrr`, `renewal...` in the future); any other number is 0-1000 and any other
date lies in the past four years.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from playbook_engine.engine import Engine
from playbook_engine.program import Program

__all__ = ["NOW", "TIMEZONE", "generate_batches", "write_fixture"]

TIMEZONE = "Asia/Tokyo"
NOW = datetime(2026, 3, 16, 9, 0, tzinfo=ZoneInfo(TIMEZONE))
_DAY_S = 86_400
_BATCH = 50_000
_WORDS = ("standard", "enterprise", "starter", "pro")
_EVENT_WORDS = ("reports", "dashboards", "api", "export", "billing")


def _rand(key: str, seed: int, row: pl.Expr) -> pl.Expr:
    """A uniform 64-bit draw per row, fixed by (`seed`, `key`, row number)."""
    salt = zlib.crc32(key.encode()) ^ (seed * 0x9E3779B1 & 0xFFFFFFFF)
    return row.hash(seed=salt)


def _below(key: str, seed: int, row: pl.Expr, k: int) -> pl.Expr:
    return (_rand(key, seed, row) % k).cast(pl.Int64)


def _chance(key: str, seed: int, row: pl.Expr, p: float) -> pl.Expr:
    return _below(key, seed, row, 1_000_000) < int(p * 1_000_000)


def _json_text(expr: pl.Expr) -> pl.Expr:
    """A text as a JSON string literal (the generated texts need no escapes)."""
    return pl.concat_str(pl.lit('"'), expr, pl.lit('"'))


def _moment_text(seconds: pl.Expr, date_only: bool = False) -> pl.Expr:
    """Epoch seconds as ISO-8601 in the fixture's zone (`+09:00`), or as a date."""
    local = pl.from_epoch(seconds, time_unit="s").dt.replace_time_zone("UTC").dt.convert_time_zone(
        TIMEZONE)
    return local.dt.strftime("%Y-%m-%d" if date_only else "%Y-%m-%dT%H:%M:%S%:z")


def _pair(name: str, value: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit(f'"{name}": '), value)


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


def _field_value(name: str, kind: str, values: tuple[str, ...], seed: int, row: pl.Expr,
                 now: int) -> pl.Expr | None:
    """The JSON text of a field's value, or None for a missing one."""
    present = ~_chance(name + ":missing", seed, row, 0.05)
    if kind == "number":
        low, high, step = _number_range(name)
        base = low + _below(name, seed, row, (high - low) // step + 1) * step
        half = _chance(name + ":half", seed, row, 0.1) & (pl.lit(step) == 1)
        text = pl.when(half).then(pl.concat_str(base.cast(pl.String), pl.lit(".5"))).otherwise(
            base.cast(pl.String))
    elif kind == "enum":
        text = _json_text(pl.lit(pl.Series(values)).get(_below(name, seed, row, len(values))))
    elif kind == "text":
        text = _json_text(pl.lit(pl.Series(_WORDS)).get(_below(name, seed, row, len(_WORDS))))
    elif kind == "yes/no":
        text = pl.when(_chance(name, seed, row, 0.5)).then(pl.lit("true")).otherwise(
            pl.lit("false"))
    elif kind == "date":
        lowered = name.lower()
        if "renewal" in lowered and "signed" not in lowered:
            offset = _below(name, seed, row, 430) - 30  # days ahead (30 past to 400 ahead)
        else:
            offset = -_below(name, seed, row, 1460)
        if "complete" in lowered or "done" in lowered or ("signed_at" in lowered and (
                "renewal" in lowered)):
            present = present & _chance(name + ":done", seed, row, 0.5)
        text = _json_text(_moment_text(pl.lit(now) + offset * _DAY_S, date_only=True))
    elif kind == "user":
        k = _below(name, seed, row, 40).cast(pl.String)
        text = pl.concat_str(pl.lit('{"name": "CSM '), k, pl.lit('", "email": "csm'), k,
                             pl.lit('@example.com"}'))
    else:
        return None
    return pl.when(present).then(_pair(name, text))


def _state_rule_keys(program: Program) -> list[tuple[str, str]]:
    return [
        (p.name.value, r.name.value)
        for p, r in program.rules()
        if p.status_value != "paused" and r.event is None
    ]


def generate_batches(
    engine: Engine, accounts: int, events: int, seed: int = 0, batch: int = _BATCH,
    extra_fired: dict[int, list[str]] | None = None,
) -> Iterator[list[str]]:
    """The accounts as JSON texts (one object each), a batch at a time, in order.

    `extra_fired` adds firing records (JSON texts) to the accounts it names (by row).
    """
    program = engine.program
    schema = program.schema
    if schema is None:
        raise ValueError("the playbook directory has no schema to generate accounts for")
    now = int(NOW.timestamp())
    keys = _state_rule_keys(program)
    roles = [r.text for r in schema.roles]
    event_decls = list(schema.events)
    number_fields = [d.name.text for d in schema.fields if d.type.kind == "number"]
    history_field = next((f for f in number_fields if "health" in f), None) or (
        number_fields[0] if number_fields else None)
    for start in range(0, accounts, batch):
        size = min(batch, accounts - start)
        frame = pl.DataFrame({"row": pl.int_range(start, start + size, eager=True)})
        row = pl.col("row")
        parts: list[pl.Expr] = [
            _pair("id", pl.concat_str(pl.lit('"acct-'), row.cast(pl.String).str.zfill(7),
                                      pl.lit('"'))),
            _pair("name", pl.when(_chance("name", seed, row, 0.2))
                  .then(pl.concat_str(pl.lit('"株式会社 '), row.cast(pl.String), pl.lit('"')))
                  .otherwise(pl.concat_str(pl.lit('"Account '), row.cast(pl.String),
                                           pl.lit('"')))),
        ]
        for decl in schema.fields:
            values = tuple(v.text for v in decl.type.values)
            value = _field_value(decl.name.text, decl.type.kind, values, seed, row, now)
            if value is not None:
                parts.append(value)
        parts.append(pl.when(_chance("tag:vip", seed, row, 0.08)).then(pl.lit('"tags": ["vip"]'))
                     .when(_chance("tag:dnc", seed, row, 0.03))
                     .then(pl.lit('"tags": ["do-not-contact"]')))
        contacts = [
            pl.when(_chance("contact:" + role, seed, row, 0.6)).then(pl.concat_str(
                pl.lit(f'{{"name": "{role} of '), row.cast(pl.String),
                pl.lit(f'", "email": "{role}@acct-'), row.cast(pl.String),
                pl.lit(f'.example", "role": "{role}"}}')))
            for role in roles
        ]
        if contacts:
            parts.append(pl.concat_str(pl.lit('"contacts": ['),
                                       pl.concat_str(contacts, separator=", ", ignore_nulls=True),
                                       pl.lit("]")))
        if history_field is not None:
            h = pl.when(_chance("history", seed, row, 0.3)).then(pl.concat_str(
                pl.lit(f'"history": {{"{history_field}": [{{"at": "'),
                _moment_text(pl.lit(now) - (31 + _below("h1", seed, row, 30)) * _DAY_S),
                pl.lit('", "value": '), _below("h1v", seed, row, 101).cast(pl.String),
                pl.lit('}, {"at": "'),
                _moment_text(pl.lit(now) - (1 + _below("h2", seed, row, 30)) * _DAY_S),
                pl.lit('", "value": '), _below("h2v", seed, row, 101).cast(pl.String),
                pl.lit("}]}")))
            parts.append(h)
        if keys:
            # Steady state: most rules have fired for many accounts at some point.
            records = [
                pl.when(_chance(f"fired:{n}", seed, row, 0.4)).then(pl.concat_str(
                    pl.lit(f'{{"playbook": "{playbook}", "rule": "{rule}", "at": "'),
                    _moment_text(pl.lit(now) - _below(f"fired:at:{n}", seed, row,
                                                      60 * _DAY_S)),
                    pl.lit('"}')))
                for n, (playbook, rule) in enumerate(keys)
            ]
            fired = pl.concat_str(records, separator=", ", ignore_nulls=True)
            parts.append(pl.when(fired != "").then(pl.concat_str(pl.lit('"fired": ['), fired,
                                                                  pl.lit("]"))))
        frame = frame.with_columns(pl.concat_str(parts, separator=", ", ignore_nulls=True)
                                   .alias("body"))
        if events and event_decls:
            frame = frame.join(_events(event_decls, seed, start, size, events, now), on="row",
                               how="left")
            body = pl.concat_str(pl.col("body"), pl.lit(', "events": ['), pl.col("events"),
                                 pl.lit("]"))
        else:
            body = pl.col("body")
        texts = frame.select(pl.concat_str(pl.lit("{"), body, pl.lit("}"))).to_series().to_list()
        if extra_fired:
            for at_row in range(start, start + size):
                if at_row in extra_fired:
                    texts[at_row - start] = _with_fired(texts[at_row - start],
                                                        extra_fired[at_row])
        yield texts


def _with_fired(text: str, records: list[str]) -> str:
    extra = ", ".join(records)
    if '"fired": [' in text:
        return text.replace('"fired": [', f'"fired": [{extra}, ', 1)
    return f'{text[:-1]}, "fired": [{extra}]}}'


def steady_firings(engine: Engine, path: Path, share: float = 0.95, seed: int = 0
                   ) -> dict[int, list[str]]:
    """Yesterday's run: for each state rule, firing records at `NOW - 1 day` on about
    `share` of the accounts whose condition and scope were true then (exactly: the bulk
    plan's undecided values are left out). A daily dry-run normally follows a run that
    already acted; without this, every condition true today fires as if for the first
    time."""
    from datetime import timedelta

    from playbook_engine import nodes as n
    from playbook_engine.bulk import condition_table
    from playbook_engine.bulk_load import load_frames

    frames = load_frames(path, engine)
    yesterday = NOW - timedelta(days=1)
    rules = [(p, r) for p, r in engine.program.rules()
             if p.status_value != "paused" and r.when is not None]
    conditions: list[n.Expr] = [
        n.And(r.when, p.applies_to) if p.applies_to is not None else r.when
        for p, r in rules if r.when is not None
    ]
    table = condition_table(engine, frames, yesterday, conditions)
    stamp = yesterday.isoformat()
    out: dict[int, list[str]] = {}
    for i, (playbook, rule) in enumerate(rules):
        chosen = table.filter(pl.col(f"c{i}").fill_null(False)
                              & ~_chance(f"steady:{i}", seed, pl.col("__idx"), 1 - share))
        record = (f'{{"playbook": "{playbook.name.value}", "rule": "{rule.name.value}", '
                  f'"at": "{stamp}"}}')
        for row in chosen.get_column("__idx").to_list():
            out.setdefault(row, []).append(record)
    return out


def _events(decls: list, seed: int, start: int, size: int, per: int,  # type: ignore[type-arg]
            now: int) -> pl.DataFrame:
    """Each account's events as one JSON text (`{...}, {...}`), in time order."""
    frame = pl.DataFrame({"e": pl.int_range(start * per, (start + size) * per, eager=True)})
    e = pl.col("e")
    # The first declared event type is the common one (a login, say): half of them.
    weights = [len(decls)] + [1] * (len(decls) - 1)
    cumulative = [sum(weights[: i + 1]) for i in range(len(weights))]
    draw = _below("event:type", seed, e, cumulative[-1])
    kind = pl.lit(len(decls) - 1)
    for i in reversed(range(len(decls) - 1)):
        kind = pl.when(draw < cumulative[i]).then(i).otherwise(kind)
    seconds = pl.lit(now) - _below("event:at", seed, e, 120 * _DAY_S)
    texts = []
    for i, decl in enumerate(decls):
        parts = [pl.concat_str(pl.lit(f'"type": "{decl.name.text}", "at": "'),
                               _moment_text(seconds), pl.lit('"'))]
        for f in decl.fields:
            name, ftype = f.name.text, f.type.kind
            if ftype == "number":
                value = _below("ef:" + name, seed, e, 11).cast(pl.String)
            elif ftype == "enum":
                vals = [v.text for v in f.type.values]
                value = _json_text(pl.lit(pl.Series(vals)).get(_below("ef:" + name, seed, e,
                                                                      len(vals))))
            elif name == "user":
                value = _json_text(pl.concat_str(pl.lit("u"),
                                                 _below("ef:user", seed, e, 20).cast(pl.String)))
            else:
                value = _json_text(pl.lit(pl.Series(_EVENT_WORDS)).get(
                    _below("ef:" + name, seed, e, len(_EVENT_WORDS))))
            parts.append(_pair(name, value))
        texts.append((i, pl.concat_str(parts, separator=", ")))
    text = pl.lit(None, dtype=pl.String)
    for i, t in reversed(texts):
        text = pl.when(kind == i).then(t).otherwise(text)
    return (
        frame.with_columns(
            (e // per).alias("row"), seconds.alias("s"),
            pl.concat_str(pl.lit("{"), text, pl.lit("}")).alias("t"),
        )
        .sort("row", "s", maintain_order=True)
        .group_by("row", maintain_order=True)
        .agg(pl.col("t").str.join(", ").alias("events"))
    )


def write_fixture(path: str | Path, engine: Engine, accounts: int, events: int,
                  seed: int = 0, fmt: str | None = None, steady: bool = False) -> Path:
    """Write the fixture: JSON (one document) or JSON Lines (a header line, then one
    account a line), by `fmt` or the file's extension. `steady` adds yesterday's
    firings (`steady_firings`): the file is written twice."""
    target = Path(path)
    fired = None
    if steady:
        write_fixture(target, engine, accounts, events, seed, fmt)
        fired = steady_firings(engine, target, seed=seed)
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
