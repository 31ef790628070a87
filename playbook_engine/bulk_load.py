"""Loading a JSON or JSON Lines fixture straight into `Frames`, with no object per account.

Two readers, tried in turn. Arrow's JSON reader (several times faster than polars', and
on every core) takes files laid out one account a line, JSON Lines and documents as
`bench/generate.py` and most exporters write them, and reads them with an explicit
schema built from the program's (numbers as floats, dates as text, users as structs):
a value of another type, an unknown key, a layout it cannot prove one account a line
(`_arrow_document`) sends the file to polars' reader, which infers one type per key
across every account. Either way each column is then checked and typed against the
schema in bulk: numbers, one-of values, yes/no, users, roles, event types and fields,
history fields, and every date (ISO-8601: the usual layouts checked by pattern and
parsed by Arrow, others per distinct text; a date without a time is midnight in the
fixture's zone, as `fixtures.py` reads it). `facts.Account` objects are built later,
only for the accounts the bulk evaluator sends to the per-account path (`ColumnSource`).

JSON Lines is read 64 MB at a time (each chunk typed, then the chunks joined), so that
a large file is not held twice. Event texts and the names in `fired` are stored as
categories: most events leave most fields empty, and an empty text slot costs 16 bytes.

**Errors.** The columnar reader only takes files it can vouch for. Anything else, a
syntax error, a value of the wrong type, an unknown field, a date in an unusual form, a
fixture without a schema to type it, is handed to `fixtures.py`, which reports every
problem with the file, line and path of the bad value
(`accounts[3].events[2].at: expected a date or date-time like ...`) or, if the file is
fine after all, loads it; its accounts are then turned into frames. So a fixture loads
the same, or fails with the same messages, either way. YAML fixtures (written by hand,
small) always go through `fixtures.py`.

Known leniency: neither reader tells a key written as `null` from a key left out, so an
event carrying `"score": null` on a type that has no `score` field, or a history entry
without its `value`, loads here where `fixtures.py` would complain.
"""

from __future__ import annotations

import io
import mmap
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import polars as pl
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.json as pa_json  # type: ignore[import-untyped]

from . import facts
from .bulk_accounts import EXACT_INT, ColumnSource, parsed_moment
from .bulk_frames import (
    EPOCH,
    IDX,
    TAGS,
    Frames,
    Reads,
    event_layout,
    frames_from_accounts,
    history_key_column,
    kind_of_schema,
    user_columns,
)
from .errors import ConfigError
from .program import Program
from .timeutil import get_zone

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["ColumnSource", "load_frames"]

_ACCOUNT_KEYS = frozenset({"id", "name", "tags", "contacts", "events", "history", "fired"})


class _Fallback(Exception):
    """The columnar reader does not vouch for this file: `fixtures.py` reads it."""


def load_frames(path: str | Path, engine: Engine, *, columnar: bool = True) -> Frames:
    """The fixture at `path` as frames, typed against the engine's schema.

    Raises `FixtureError` (every problem, as `Engine.load_fixture` does) when the file is
    not a valid fixture.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    fmt = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix)
    if columnar and fmt is not None and engine.program.schema is not None:
        reader = _Reader(engine.program, engine.settings.timezone)
        for arrow in (True, False):
            try:
                return reader.read(target, fmt, arrow=arrow)
            except _Slow:  # not for the Arrow reader: polars' reader tries it
                continue
            except pl.exceptions.PolarsError:
                if arrow:
                    continue
                break
            except _Fallback:  # e.g. a date like 2026-02-30: fixtures.py says where
                break
    fixture = engine.load_fixture(target)
    as_of = fixture.as_of or datetime.now(fixture.timezone)
    return frames_from_accounts(
        fixture.accounts, engine.program, as_of=as_of, timezone=fixture.timezone,
        now=fixture.now, path=fixture.path,
    )


# --------------------------------------------------------------------------- reading


def _require(ok: bool) -> None:
    if not ok:
        raise _Fallback


def _read_document(path: Path, fmt: str) -> tuple[object, object, Iterator[pl.DataFrame]]:
    """(now, timezone, accounts) from the file; the accounts as tables of rows (each
    account a row of columns), one or more: JSON Lines is read in chunks of lines, so
    that a file of millions of accounts never has to be held twice."""
    if fmt == "jsonl":
        now, zone, start = _header(path)
        return now, zone, (_parse_lines(block) for block in _blocks(path, start))
    try:
        doc = pl.read_json(path)  # infers over the whole document
    except Exception as exc:  # polars' own errors: a syntax error, a type it cannot unify
        raise _Fallback from exc
    _require(set(doc.columns) <= {"now", "timezone", "accounts"}
             and "accounts" in doc.columns and doc.height == 1)
    now = doc.get_column("now")[0] if "now" in doc.columns else None
    zone = doc.get_column("timezone")[0] if "timezone" in doc.columns else None
    column = doc.get_column("accounts")
    _require(isinstance(column.dtype, pl.List) and isinstance(column.dtype.inner, pl.Struct))
    accounts = doc.select(pl.col("accounts").explode()).unnest("accounts")
    _require(accounts.height == column[0].len() if column[0] is not None else False)
    return now, zone, iter([accounts])


# Bytes of JSON Lines read and typed at a time.
_CHUNK_BYTES = 64 << 20


def _header(path: Path) -> tuple[object, object, int]:
    """JSON Lines: an optional header line (`now`, `timezone`), then one account a line.
    (now, timezone, where the accounts start)."""
    with path.open("rb") as handle:
        first = b""
        while not first.strip():
            first = handle.readline()
            if not first:
                break
        now = zone = None
        start = handle.tell() - len(first)
        try:
            head = orjson.loads(first) if first.strip() else None
        except orjson.JSONDecodeError as exc:
            raise _Fallback from exc
        if isinstance(head, dict) and "id" not in head and ("now" in head or "timezone" in head):
            _require(set(head) <= {"now", "timezone"})
            now, zone = head.get("now"), head.get("timezone")
            start = handle.tell()
    return now, zone, start


def _blocks(path: Path, start: int) -> Iterator[bytes]:
    """The file from `start` in blocks of whole lines of about `_CHUNK_BYTES`."""
    with path.open("rb") as handle:
        handle.seek(start)
        rest = b""
        while True:
            block = handle.read(_CHUNK_BYTES)
            if not block:
                break
            block = rest + block
            cut = block.rfind(b"\n")
            if cut < 0:
                rest = block
                continue
            rest = block[cut + 1:]
            yield block[:cut + 1]
        if rest.strip():
            yield rest


def _parse_lines(data: bytes) -> pl.DataFrame:
    try:
        rows = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
    except Exception as exc:  # polars' own errors: a syntax error, a type it cannot unify
        raise _Fallback from exc
    _require("now" not in rows.columns and "timezone" not in rows.columns)
    return rows


# ---- the Arrow reader: files laid out one account a line, typed by an explicit schema


class _Slow(Exception):
    """The Arrow reader does not take this file: polars' reader (which infers types) tries."""


def _slow(ok: bool) -> None:
    if not ok:
        raise _Slow


def _arrow_value(kind: str) -> pa.DataType:
    """The Arrow type a JSON value of `kind` is read as (dates as text, parsed later)."""
    types = {"number": pa.float64(), "text": pa.string(), "bool": pa.bool_(),
             "date": pa.string(),
             "user": pa.struct([("name", pa.string()), ("email", pa.string())])}
    _slow(kind in types)
    return types[kind]


def _arrow_schema(kinds: dict[str, str],
                  layout: dict[str, dict[str, tuple[str, str]]]) -> pa.Schema:
    """The explicit schema of one account: every field the schema allows, typed."""
    text = pa.string()
    by_name: dict[str, str] = {}
    for own in layout.values():
        for name, (_, kind) in own.items():
            _slow(by_name.setdefault(name, kind) == kind and name not in ("type", "at"))
    event = pa.struct([("type", text), ("at", text)]
                      + [(name, _arrow_value(kind)) for name, kind in by_name.items()])
    history = pa.struct([
        (name, pa.list_(pa.struct([("at", text), ("value", _arrow_value(kind))])))
        for name, kind in kinds.items() if name != "id"])
    fields = [("id", text), ("name", text), ("tags", pa.list_(text)),
              ("contacts", pa.list_(pa.struct([("name", text), ("email", text),
                                                ("role", text)]))),
              ("events", pa.list_(event)), ("history", history),
              ("fired", pa.list_(pa.struct([("playbook", text), ("rule", text),
                                            ("at", text)])))]
    fields += [(name, _arrow_value(kind)) for name, kind in kinds.items()
               if name not in ("id", "name")]
    return pa.schema(fields)


# Where a JSON document puts its accounts one a line: the first line ends the opening.
_OPENING = re.compile(rb'"accounts"[ \t]*:[ \t]*\[[ \t]*\r?\n\Z')


def _arrow_document(path: Path, fmt: str, schema: pa.Schema
                    ) -> tuple[object, object, Iterator[pl.DataFrame]]:
    """(now, timezone, accounts) as `_read_document` gives them, read by Arrow.

    Arrow's JSON reader is several times faster than polars' (and runs on every core),
    but reads JSON Lines only, and takes any whitespace between objects. So it is given
    only files whose layout proves what each account is: JSON Lines where every line
    starts with `{` and ends with `}` (a line break inside an object would put `}` and
    `{` next to each other there, which JSON does not allow), and JSON documents laid out
    as `bench/generate.py` and most exporters write them: an opening line that ends with
    `"accounts": [`, then the accounts, one after the other's `},` and a line break,
    then a line starting with `]` (see the comments below for why that is enough).
    Anything else raises `_Slow`.
    """
    if fmt == "jsonl":
        now, zone, start = _header(path)
        return now, zone, (_arrow_block(block, schema) for block in _blocks(path, start))
    with path.open("rb") as handle:
        _slow(os.fstat(handle.fileno()).st_size > 0)
        data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)  # private: no copy
    opening = data.find(b"\n") + 1
    closing = data.rfind(b"\n]")
    _slow(0 < opening < closing and _OPENING.search(data, 0, opening) is not None)
    head, tail = data[:opening], data[closing + 1:]
    _slow(head.count(b'"accounts"') == 1 and b'"accounts"' not in tail)
    try:
        top = orjson.loads(head + tail)
    except orjson.JSONDecodeError as exc:
        raise _Slow from exc
    _slow(isinstance(top, dict) and top.get("accounts") == [] and set(top) <= {
        "now", "timezone", "accounts"})
    assert isinstance(top, dict)
    _slow(data[opening:opening + 1] == b"{" and data[closing - 1:closing] == b"}")
    # The commas between accounts become spaces, which Arrow takes between objects. A
    # comma inside an account that looked like one (`},\n{` in a list) leaves two
    # values side by side there, which Arrow refuses; a comma left out between accounts
    # makes one account more than commas; any other comma between them, Arrow refuses.
    commas = 0
    for found in _BETWEEN_ITEMS.finditer(data, opening, closing):
        data[found.start() + 1] = 0x20
        commas += 1
    body = pa.py_buffer(data)[opening:closing + 1]
    return top.get("now"), top.get("timezone"), iter([_arrow_lines(body, schema, commas + 1)])


_BETWEEN_ITEMS = re.compile(rb"\},\n\{")
_BETWEEN_LINES = re.compile(rb"\}\n\{")


def _count(pattern: re.Pattern[bytes], data: bytes, start: int, end: int) -> int:
    """How many times `pattern` occurs in data[start:end] (a regular expression searches
    a literal several times faster than `bytes.count` does)."""
    return len(pattern.findall(data, start, end))


# Bytes Arrow parses at a time (per thread): an account longer than this goes to polars.
_ARROW_BLOCK = 4 << 20


def _arrow_block(block: bytes, schema: pa.Schema) -> pl.DataFrame:
    """A block of JSON Lines (whole lines) as a table, if every line is one account."""
    if not block.endswith(b"}\n"):
        block = block.rstrip(b" \t\r\n") + b"\n"
    lines = block.count(b"\n")
    _slow(block[:1] == b"{" and block[-2:] == b"}\n"
          and _count(_BETWEEN_LINES, block, 0, len(block)) == lines - 1)
    return _arrow_lines(pa.py_buffer(block), schema, lines)


def _arrow_lines(data: pa.Buffer, schema: pa.Schema, lines: int) -> pl.DataFrame:
    """JSON objects as a table, if there are `lines` of them (one account each)."""
    _valid_utf8(data)
    try:
        table = pa_json.read_json(
            pa.BufferReader(data),
            read_options=pa_json.ReadOptions(block_size=_ARROW_BLOCK),
            parse_options=pa_json.ParseOptions(explicit_schema=schema,
                                               unexpected_field_behavior="error"))
    except (pa.ArrowException, ValueError) as exc:  # bad JSON, another type, a new key
        raise _Slow from exc
    _slow(table.num_rows == lines)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _valid_utf8(data: pa.Buffer) -> None:
    """Arrow takes strings as they are: bytes that are no UTF-8 go to the fallback."""
    offsets = pa.array([0, data.size], type=pa.int64()).buffers()[1]
    try:
        pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, data]).cast(
            pa.large_string())
    except pa.ArrowInvalid as exc:
        raise _Fallback from exc


def _parse_moments(texts: pl.Series, zone: tzinfo) -> tuple[pl.Series, pl.Series]:
    """(microseconds since the epoch, offset in seconds or null) of ISO-8601 texts.

    The layouts exports write (`2026-03-12T10:00:00+09:00`, `...Z`; of one length, the
    offset checked by pattern) are parsed by Arrow's ISO-8601 parser (strict: no
    February 30, no second 60), each distinct offset once; any other text (a date
    without a time among them) is parsed once per distinct value exactly as
    `fixtures.py` parses it
    (`datetime.fromisoformat`; a text without an offset is a wall-clock time in `zone`).
    A text that is no moment makes the caller fall back.
    """
    present = texts.drop_nulls()
    if present.len() == 0:
        return (pl.Series("us", [None] * texts.len(), dtype=pl.Int64),
                pl.Series("off", [None] * texts.len(), dtype=pl.Int32))
    sizes: list[int] = present.str.len_bytes().unique().to_list()
    size = sizes[0] if len(sizes) == 1 else None
    if size in (20, 25):
        ending = str(present[0])[19:]
        offsets: dict[str, int] | None = None
        if _ENDINGS[size].fullmatch(ending) and present.str.ends_with(ending).all():
            # One offset for all (most files): Arrow's parser checks the rest. (It takes
            # exactly the texts of this length and ending that Python takes, with the
            # same meaning, but for year 0, which is below year one below.)
            offsets = _offsets_of([ending])
        elif present.str.contains(_LAYOUTS[size]).all():
            offsets = _offsets_of(texts.str.slice(19).drop_nulls().unique().to_list())
        try:
            instants = pc.cast(texts.to_arrow(), pa.timestamp("us", "UTC")).cast(pa.int64())
        except pa.ArrowInvalid:
            offsets = None
        if offsets is not None:
            us = pl.Series("us", instants, dtype=pl.Int64)
            low = us.min()
            if low is None or int(low) >= _YEAR_ONE:  # type: ignore[arg-type]
                if len(offsets) == 1:
                    off = pl.select(pl.when(texts.is_not_null()).then(
                        pl.lit(next(iter(offsets.values())), dtype=pl.Int32))).to_series()
                else:
                    off = texts.str.slice(19).replace_strict(offsets, default=None,
                                                             return_dtype=pl.Int32)
                return us, off.alias("off")
    return _parse_distinct(texts, zone)


_DIGITS = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
_LAYOUTS = {25: f"^{_DIGITS}[+-][0-9]{{2}}:[0-9]{{2}}$", 20: f"^{_DIGITS}Z$"}
_ENDINGS = {25: re.compile("[+-][0-9]{2}:[0-9]{2}"), 20: re.compile("Z")}


def _offsets_of(endings: list[str]) -> dict[str, int] | None:
    """Seconds east of UTC of each ending (`+hh:mm`, `Z`), as Python reads it."""
    out: dict[str, int] = {}
    for ending in endings:
        try:
            offset = datetime.fromisoformat("2000-01-01T00:00:00" + ending).utcoffset()
        except ValueError:
            return None
        if offset is None:
            return None
        out[ending] = offset // timedelta(seconds=1)
    return out


_YEAR_ONE = -62135596800 * 1_000_000 + 14 * 3600 * 1_000_000  # 0001-01-01, any offset


def _parse_distinct(texts: pl.Series, zone: tzinfo) -> tuple[pl.Series, pl.Series]:
    """Each distinct text parsed in Python, exactly as `fixtures.py` does."""
    fromisoformat = datetime.fromisoformat
    us_of: dict[str, int] = {}
    off_of: dict[str, int | None] = {}
    for text in texts.drop_nulls().unique().to_list():
        if len(text) < 10 or text[4] != "-" or text[7] != "-":
            raise _Fallback
        try:
            moment = fromisoformat(text)
        except ValueError as exc:
            raise _Fallback from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
            off_of[text] = None
        else:
            offset = moment.utcoffset()
            assert offset is not None
            off_of[text] = offset // timedelta(seconds=1)
        us_of[text] = (moment - EPOCH) // timedelta(microseconds=1)
    us = texts.replace_strict(us_of, default=None, return_dtype=pl.Int64)
    off = texts.replace_strict(off_of, default=None, return_dtype=pl.Int32)
    return us.alias("us"), off.alias("off")


@dataclass
class _Reader:
    program: Program
    default_zone: str

    def read(self, path: Path, fmt: str, *, arrow: bool = False) -> Frames:
        schema = self.program.schema
        assert schema is not None
        self.kinds = {"id": "text", "name": "text"} | {
            d.name.text: kind_of_schema(d.type.kind) for d in schema.fields}
        self.enums = {d.name.text: {v.text for v in d.type.values}
                      for d in schema.fields if d.type.kind == "enum"}
        self.roles = {r.text for r in schema.roles}
        event_kinds = {e.name.text: {f.name.text: kind_of_schema(f.type.kind) for f in e.fields}
                       for e in schema.events}
        self.event_enums = {(e.name.text, f.name.text): {v.text for v in f.type.values}
                            for e in schema.events for f in e.fields if f.type.kind == "enum"}
        self.layout = event_layout(event_kinds)
        if arrow:
            now_raw, zone_raw, chunks = _arrow_document(
                path, fmt, _arrow_schema(self.kinds, self.layout))
        else:
            now_raw, zone_raw, chunks = _read_document(path, fmt)
        _require(zone_raw is None or isinstance(zone_raw, str))
        try:
            self.zone = get_zone(zone_raw if isinstance(zone_raw, str) else self.default_zone)
        except (ValueError, ConfigError) as exc:
            raise _Fallback from exc
        now = None
        if now_raw is not None:
            _require(isinstance(now_raw, str))
            assert isinstance(now_raw, str)
            now_us = self._one_moment(now_raw)
            now = parsed_moment(now_us[0], now_us[1], self.zone)
        parts = [self._tables(raw, offset) for raw, offset in _offsets(chunks)]
        _require(bool(parts))
        accounts = pl.concat([p[0] for p in parts], how="diagonal_relaxed")
        ids = accounts.get_column("id")
        _require(ids.n_unique() == len(ids))
        history_keys = [c for c in accounts.columns if c.startswith("__hk@")]
        accounts = accounts.with_columns(pl.col(c).fill_null(False) for c in history_keys)
        contacts = pl.concat([p[1] for p in parts])
        events = pl.concat([p[2] for p in parts], how="diagonal_relaxed")
        fired = pl.concat([p[4] for p in parts])
        pieces: dict[str, list[pl.DataFrame]] = {}
        for part in parts:
            for name, table in part[3].items():
                pieces.setdefault(name, []).append(table)
        history = {name: pl.concat(tables, how="diagonal_relaxed")
                   for name, tables in pieces.items()}
        as_of = now or self._latest(events, history, fired)
        frames = Frames(
            path=path, now=now, timezone=self.zone, as_of=as_of, accounts=accounts,
            events=events, history=history, fired=fired, fields=dict(self.kinds),
            event_fields=self.layout, source=_EMPTY,
        )
        frames.source = ColumnSource(frames, contacts, self.program)
        return frames

    def _tables(self, raw: pl.DataFrame, offset: int) -> tuple[
            pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, pl.DataFrame], pl.DataFrame]:
        """One chunk of accounts typed: (accounts, contacts, events, history, fired)."""
        _require(set(raw.columns) <= _ACCOUNT_KEYS | set(self.kinds))
        _require("id" in raw.columns)
        raw = raw.with_row_index(IDX, offset=offset)
        accounts, contacts = self._accounts(raw)
        events = self._events(raw)
        history = self._history(raw)
        fired = self._fired(raw)
        accounts = self._history_keys(raw, accounts, history)
        return accounts, contacts, events, history, fired

    # -- values

    def _one_moment(self, text: str) -> tuple[int, int | None]:
        us, off = _parse_moments(pl.Series([text], dtype=pl.String), self.zone)
        _require(us[0] is not None)
        return int(us[0]), None if off[0] is None else int(off[0])

    def _typed(self, frame: pl.DataFrame, name: str, kind: str, enum: set[str] | None,
               out: str) -> list[pl.Series]:
        """The columns for one value of `kind` read as column `name` of `frame`."""
        if name not in frame.columns or frame.get_column(name).dtype == pl.Null:
            return _nulls(kind, out, frame.height)
        col = frame.get_column(name)
        dtype = col.dtype
        if kind == "number":
            _require(dtype in (pl.Int64, pl.Float64))
            if dtype == pl.Int64:
                _require(col.abs().max() is None or col.abs().max() <= EXACT_INT)  # type: ignore[operator]
            as_float = col.cast(pl.Float64)
            _require(as_float.is_finite().all() in (True, None))
            if dtype == pl.Float64:  # 2**53 + 1 read as a float is 2**53: not exact
                _require(col.abs().max() is None or col.abs().max() < EXACT_INT)  # type: ignore[operator]
            return [as_float.alias(out)]
        if kind == "text":
            _require(dtype == pl.String)
            if enum is not None:
                _require(col.drop_nulls().is_in(sorted(enum)).all())
            return [col.alias(out)]
        if kind == "bool":
            _require(dtype == pl.Boolean)
            return [col.alias(out)]
        if kind == "date":
            _require(dtype == pl.String)
            us, off = _parse_moments(col, self.zone)
            _require(us.null_count() == col.null_count())
            return [us.alias(out), off.alias(out + "@off")]
        if kind == "user":
            _require(isinstance(dtype, pl.Struct))
            assert isinstance(dtype, pl.Struct)
            names = {f.name: f.dtype for f in dtype.fields}
            _require(set(names) <= {"name", "email"} and all(
                t in (pl.String, pl.Null) for t in names.values()))
            present, uname, email = user_columns(out)
            parts = frame.select(
                pl.when(pl.col(name).is_not_null()).then(True).otherwise(None).alias(present),
                (pl.col(name).struct.field("name").cast(pl.String) if "name" in names
                 else pl.lit(None, dtype=pl.String)).alias(uname),
                (pl.col(name).struct.field("email").cast(pl.String) if "email" in names
                 else pl.lit(None, dtype=pl.String)).alias(email),
            )
            return parts.get_columns()
        raise _Fallback

    # -- tables

    def _accounts(self, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        ids = raw.get_column("id")
        _require(ids.dtype in (pl.String, pl.Int64))
        ids = ids.cast(pl.String)
        _require(ids.null_count() == 0 and (ids != "").all() and ids.n_unique() == len(ids))
        series: list[pl.Series] = [raw.get_column(IDX), ids.alias("id")]
        series += self._typed(raw, "name", "text", None, "name")
        if "tags" in raw.columns:
            tags = raw.get_column("tags")
            _require(tags.dtype in (pl.List(pl.String), pl.List(pl.Null), pl.Null))
            tags = tags.cast(pl.List(pl.String))
            _require(tags.explode().null_count() == tags.list.len().eq(0).sum()
                     + tags.null_count())
            series.append(tags.fill_null([]).alias(TAGS))
        else:
            series.append(pl.Series(TAGS, [[]] * raw.height, dtype=pl.List(pl.String)))
        for name, kind in self.kinds.items():
            if name not in ("id", "name"):
                series += self._typed(raw, name, kind, self.enums.get(name), name)
        return pl.DataFrame(series), self._contacts(raw)

    def _exploded(self, raw: pl.DataFrame, name: str, keys: set[str]) -> pl.DataFrame | None:
        """A list-of-mappings column, one row per item, in file order: `__idx`, the keys."""
        if name not in raw.columns:
            return None
        col = raw.get_column(name)
        if col.dtype == pl.Null or col.dtype == pl.List(pl.Null):
            _require(col.dtype == pl.Null or col.list.len().fill_null(0).max() in (0, None))
            return None
        _require(isinstance(col.dtype, pl.List) and isinstance(col.dtype.inner, pl.Struct))
        items = raw.select(IDX, pl.col(name)).explode(name, empty_as_null=False,
                                                       keep_nulls=False)
        _require(items.get_column(name).null_count() == 0)
        items = items.unnest(name)
        _require(set(items.columns) - {IDX} <= keys)
        return items

    def _contacts(self, raw: pl.DataFrame) -> pl.DataFrame:
        items = self._exploded(raw, "contacts", {"name", "email", "role"})
        columns = ("name", "email", "role")
        if items is None:
            return pl.DataFrame({IDX: pl.Series([], dtype=pl.UInt32)} | {
                c: pl.Series([], dtype=pl.String) for c in columns})
        out = [items.get_column(IDX)]
        for c in columns:
            out += self._typed(items, c, "text", self.roles if c == "role" else None, c)
        return pl.DataFrame(out)

    def _events(self, raw: pl.DataFrame) -> pl.DataFrame:
        declared = {f for own in self.layout.values() for f in own}
        items = self._exploded(raw, "events", {"type", "at"} | declared)
        if items is None:
            series = [pl.Series(IDX, [], dtype=pl.UInt32),
                      pl.Series("type", [], dtype=pl.Enum(sorted(self.layout))),
                      pl.Series("at", [], dtype=pl.Int64), pl.Series("at@off", [], dtype=pl.Int32)]
            return pl.DataFrame(series)
        types = items.get_column("type")
        _require(types.dtype == pl.String and types.null_count() == 0)
        _require(types.is_in(sorted(self.layout)).all())
        types = types.cast(pl.Enum(sorted(self.layout)))
        items = items.with_columns(types)
        out = [items.get_column(IDX), types]
        at = self._typed(items, "at", "date", None, "at")
        _require(at[0].null_count() == 0)
        out += at
        # A field an event's type does not have must stay empty: which types have which.
        extra = [c for c in items.columns if c not in (IDX, "type", "at")]
        if extra:
            present = items.group_by("type").agg(pl.col(c).is_not_null().any() for c in extra)
            for row in present.iter_rows(named=True):
                own = self.layout[row["type"]]
                _require(all(c in own for c in extra if row[c]))
        done: set[str] = set()
        for event, own in self.layout.items():
            for name, (column, kind) in own.items():
                enum = self.event_enums.get((event, name))
                if enum is not None and name in items.columns:
                    values = items.filter(pl.col("type") == event).get_column(name)
                    _require(values.dtype in (pl.String, pl.Null))
                    _require(values.drop_nulls().is_in(sorted(enum)).all())
                if column in done:
                    continue
                done.add(column)
                out += self._typed(items, name, kind, None, column)
        texts = [c for own in self.layout.values() for c, k in own.values() if k == "text"]
        frame = pl.DataFrame(out).with_columns(
            # Most events leave most fields empty: 4 bytes a row, not a text's 16.
            *[pl.col(c).cast(pl.Categorical) for c in sorted(set(texts))])
        return _in_time_order(frame)

    def _history(self, raw: pl.DataFrame) -> dict[str, pl.DataFrame]:
        if "history" not in raw.columns or raw.get_column("history").dtype == pl.Null:
            return {}
        dtype = raw.get_column("history").dtype
        _require(isinstance(dtype, pl.Struct))
        assert isinstance(dtype, pl.Struct)
        tables: dict[str, pl.DataFrame] = {}
        for f in dtype.fields:
            name = f.name
            _require(name in self.kinds and name != "id")
            kind = self.kinds[name]
            per = raw.select(IDX, pl.col("history").struct.field(name).alias(name))
            if per.get_column(name).null_count() == per.height:
                continue  # no account has this key (or only as null)
            items = self._exploded(per, name, {"at", "value"})
            if items is None:
                tables[name] = pl.DataFrame(
                    [pl.Series(IDX, [], dtype=pl.UInt32), pl.Series("at", [], dtype=pl.Int64)])
                continue
            at = self._typed(items, "at", "date", None, "at")
            _require(at[0].null_count() == 0)
            values = self._typed(items, "value", kind, self.enums.get(name), name)
            tables[name] = _in_time_order(pl.DataFrame([items.get_column(IDX), *at, *values]))
        return tables

    def _history_keys(self, raw: pl.DataFrame, accounts: pl.DataFrame,
                      history: dict[str, pl.DataFrame]) -> pl.DataFrame:
        if not history:
            return accounts
        return accounts.with_columns(
            raw.select(pl.col("history").struct.field(name).is_not_null()
                       .alias(history_key_column(name))).to_series()
            for name in history
        )

    def _fired(self, raw: pl.DataFrame) -> pl.DataFrame:
        items = self._exploded(raw, "fired", {"playbook", "rule", "at"})
        if items is None:
            return pl.DataFrame([
                pl.Series(IDX, [], dtype=pl.UInt32), pl.Series("playbook", [], dtype=pl.String),
                pl.Series("rule", [], dtype=pl.String), pl.Series("at", [], dtype=pl.Int64)])
        _require({"playbook", "rule", "at"} <= set(items.columns))
        out = [items.get_column(IDX)]
        for c in ("playbook", "rule"):
            col = items.get_column(c)
            _require(col.dtype == pl.String and col.null_count() == 0)
            out.append(col.cast(pl.Categorical))
        at = self._typed(items, "at", "date", None, "at")
        _require(at[0].null_count() == 0)
        return pl.DataFrame(out + at)

    def _latest(self, events: pl.DataFrame, history: dict[str, pl.DataFrame],
                fired: pl.DataFrame) -> datetime:
        """No `now`: the latest moment in the data, as `fixtures.py` takes it."""
        found = [t.select(pl.col("at").max()).item() for t in (events, fired, *history.values())
                 if t.height]
        moments = [int(m) for m in found if m is not None]
        if not moments:
            return datetime.now(self.zone).replace(microsecond=0)
        return parsed_moment(max(moments), None, self.zone)


def _in_time_order(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows (in file order, by account) sorted by account, then time; ties in file order."""
    ordered = frame.select(((pl.col("at").diff() >= 0)
                            | (pl.col(IDX).cast(pl.Int64).diff() > 0)).all()).item()
    return frame if ordered else frame.sort(IDX, "at", maintain_order=True)


def _nulls(kind: str, out: str, height: int) -> list[pl.Series]:
    """The columns of a value no account has."""
    def empty(name: str, dtype: pl.DataType) -> pl.Series:
        return pl.Series(name, [None] * height, dtype=dtype)

    if kind == "user":
        present, uname, email = user_columns(out)
        return [empty(present, pl.Boolean()), empty(uname, pl.String()),
                empty(email, pl.String())]
    if kind == "date":
        return [empty(out, pl.Int64()), empty(out + "@off", pl.Int32())]
    dtype = {"number": pl.Float64(), "bool": pl.Boolean()}.get(kind, pl.String())
    return [empty(out, dtype)]


def _offsets(chunks: Iterator[pl.DataFrame]) -> Iterator[tuple[pl.DataFrame, int]]:
    """Each chunk with the account number of its first row."""
    offset = 0
    for chunk in chunks:
        yield chunk, offset
        offset += chunk.height


# --------------------------------------------------------------------------- objects


class _Empty:
    def accounts(self, indices: Sequence[int]) -> list[facts.Account]:
        raise AssertionError("no source yet")

    def prepare(self, indices: Sequence[int],
                reads: Sequence[Reads] | None = None,
                ) -> Callable[[], list[facts.Account]]:
        raise AssertionError("no source yet")


_EMPTY = _Empty()
