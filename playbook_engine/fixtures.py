"""Loading fixture files (YAML, JSON, JSON Lines) into `facts.Account` values.

A fixture is what a reviewer writes by hand to dry-run playbooks (see LANGUAGE.md,
"Fixtures"):

    now: 2026-03-15T09:00:00+09:00
    timezone: Asia/Tokyo
    accounts:
      - id: acme
        tier: tech-touch
        events: [{type: login, at: 2026-03-12T10:00:00+09:00, user: yamada}]

Formats, chosen by the file's extension: `.yaml`/`.yml` (also the default), `.json`,
and `.jsonl`/`.ndjson`, where each line is one account and the first line may be a
header object `{"now": ..., "timezone": ...}` (a first line without an `id` key and with
`now` or `timezone`).

Times: a date without a time is midnight in the fixture's `timezone`, else in the
engine's (`default_tz`). `Account.as_of` is the fixture's `now`. When the fixture has
no `now`, `as_of` is, in this order: the `fallback_now` the caller passes (the CLI's
`--at`), the latest moment in the data (the last event, history entry or firing: the
fixture then describes the accounts as of the last thing known about them), or the
current time when the data holds no moment at all. `Fixture.now` stays None then, so
that callers can tell.

Problems: every problem in the file is collected and raised together in one
`FixtureError`, each as a `Diagnostic` with the file, a line:column (YAML always; JSON
and JSON Lines when the problem can be located, else line 0) and a message that starts
with the path of the bad value, e.g.
`accounts[3].events[2].at: expected a date or date-time like 2026-03-15T09:00:00+09:00,
got "yesterday"`. Bad input never escapes as another exception.

The shape of a fixture (which keys, which are lists or mappings) is described by the
pydantic models `RawFixture`, `RawAccount` and the others below. Validating every
account through pydantic would dominate load time, so accounts are read by a
hand-written pass that checks the same shape cheaply; when an account deviates, pydantic
validates that account and its errors become the diagnostics. The values themselves
(account fields, event fields, history values) are typed against the schema by
converters here: numbers become exact `Decimal`s (0.1 stays 0.1), dates aware
`datetime`s, `yes/no` a bool, a `user` a `facts.User`. Without a schema, values are
typed loosely: numbers become Decimals, text (ISO dates included) stays text, a mapping
of name/email becomes a `User`.

Text fields accept numbers (`plan: 2024` is the text "2024"; in YAML the number is taken
as written, so `1.10` stays "1.10"); a bare YAML yes/no word (`yes`, `no`, `on`, `off`,
`true`, `false`) is not taken as text, since YAML reads it as yes/no: the message says to
quote it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict, ValidationError

from . import facts, nodes
from .errors import ConfigError, Diagnostic, FixtureError, did_you_mean, error
from .memory import collector_paused
from .timeutil import get_zone, parse_moment

__all__ = [
    "Fixture",
    "RawAccount",
    "RawContact",
    "RawEvent",
    "RawFiring",
    "RawFixture",
    "RawHeader",
    "RawHistoryEntry",
    "load_fixture",
    "parse_fixture_text",
]

Loc = tuple[str | int, ...]
Format = Literal["yaml", "json", "jsonl"]


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, slots=True)
class Fixture:
    """A loaded fixture: its accounts, the moment they describe, and its time zone."""

    path: Path
    now: datetime | None  # as written in the file; None when it names no `now`
    timezone: tzinfo
    accounts: tuple[facts.Account, ...]

    @property
    def as_of(self) -> datetime | None:
        """The moment the accounts' facts hold at: `now`, or the one chosen without it."""
        if self.now is not None:
            return self.now
        return self.accounts[0].as_of if self.accounts else None


# --------------------------------------------------------------------------- raw shape


def _number_as_text(value: object) -> object:
    """Numbers are acceptable text (`id: 1001`); yes/no values are not."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return str(value)
    return value


def _none_as_list(value: object) -> object:
    """`tags:` with nothing after it reads as null in YAML: take it as an empty list."""
    return [] if value is None else value


def _none_as_dict(value: object) -> object:
    return {} if value is None else value


_Text = Annotated[str, Strict(), BeforeValidator(_number_as_text)]


class _RawShape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RawContact(_RawShape):
    """One contact of an account: `{name, email, role}`, each optional."""

    name: _Text | None = None
    email: _Text | None = None
    role: _Text | None = None


class RawEvent(_RawShape):
    """One event: `type` and `at`, then the event's own fields (typed by the schema)."""

    model_config = ConfigDict(extra="allow")

    type: _Text
    at: object  # any date or date-time; typed by the loader


class RawHistoryEntry(_RawShape):
    """An earlier value of a field, holding from `at` until the next entry."""

    at: object
    value: object


class RawFiring(_RawShape):
    """An earlier firing of a rule on the account."""

    playbook: _Text
    rule: _Text
    at: object


class RawAccount(_RawShape):
    """One account: `id`, optional `name`, `tags`, ..., then its fields at top level."""

    model_config = ConfigDict(extra="allow")

    id: _Text
    name: _Text | None = None
    tags: Annotated[list[_Text], BeforeValidator(_none_as_list)] = []
    contacts: Annotated[list[RawContact], BeforeValidator(_none_as_list)] = []
    events: Annotated[list[RawEvent], BeforeValidator(_none_as_list)] = []
    history: Annotated[
        dict[str, Annotated[list[RawHistoryEntry], BeforeValidator(_none_as_list)]],
        BeforeValidator(_none_as_dict),
    ] = {}
    fired: Annotated[list[RawFiring], BeforeValidator(_none_as_list)] = []


class RawFixture(_RawShape):
    """A whole fixture file (accounts are validated one by one, as `RawAccount`)."""

    now: object = None
    timezone: _Text | None = None
    accounts: Annotated[list[object], BeforeValidator(_none_as_list)]


class RawHeader(_RawShape):
    """The optional first line of a JSON Lines fixture."""

    now: object = None
    timezone: _Text | None = None


_ACCOUNT_KEYS: Final = frozenset(RawAccount.model_fields)
_CONTACT_KEYS: Final = frozenset(RawContact.model_fields)
_FIRING_KEYS: Final = frozenset(RawFiring.model_fields)
_ENTRY_KEYS: Final = frozenset(RawHistoryEntry.model_fields)
_TOP_KEYS: Final = frozenset(RawFixture.model_fields)


# --------------------------------------------------------------------------- public API


def load_fixture(
    path: Path,
    schema: nodes.Schema | None,
    default_tz: str = "UTC",
    *,
    fallback_now: datetime | None = None,
) -> Fixture:
    """Load the fixture file at `path`, typed against `schema` when one is given.

    Raises FixtureError carrying every problem found, ConfigError when `default_tz`
    is not a time zone.
    """
    filename = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise _fixture_error([error(f"cannot read the fixture file: {reason}", _span(filename),
                                    "fixture-read")]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        message = f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        raise _fixture_error([error(message, _span(filename, line, 1), "fixture-read")]) from None
    return _load(text, Path(path), schema, default_tz, fallback_now)


def parse_fixture_text(
    text: str,
    filename: str,
    schema: nodes.Schema | None,
    default_tz: str = "UTC",
    *,
    fallback_now: datetime | None = None,
) -> Fixture:
    """Load a fixture from `text`, its format chosen by `filename`'s extension."""
    return _load(text, Path(filename), schema, default_tz, fallback_now)


def _load(
    text: str, path: Path, schema: nodes.Schema | None, default_tz: str,
    fallback_now: datetime | None,
) -> Fixture:
    """Read, validate and convert; raise FixtureError if anything was wrong."""
    try:
        engine_zone = get_zone(default_tz)
    except ValueError as exc:
        raise ConfigError(f"engine time zone: {exc}") from None
    filename = str(path)
    with collector_paused():
        document = _read(text, filename, _format_of(filename, text))
        result = None
        if document.readable:
            builder = _Builder(schema, engine_zone, document.locator, document.problems)
            result = builder.fixture(document.data, path, fallback_now)
        # Freed here, by reference counting, so that the collector's first pass after
        # the load does not walk the raw data too.
        document.data = None
    if result is None or document.problems:
        raise _fixture_error(_diagnostics(document, filename))
    return result


def _diagnostics(document: _Document, filename: str) -> list[Diagnostic]:
    """The document's problems as diagnostics, in file order when every one has a line.

    Where the YAML itself was wrong (a bad tag, a self-referring alias), the value there
    became null: what else is said about that place only repeats the problem.
    """
    broken = {p.loc for p in document.problems if p.code == "fixture-syntax" and p.loc}
    kept = [p for p in document.problems
            if p.code == "fixture-syntax" or not any(p.loc[:len(b)] == b for b in broken)]
    found = [_diagnostic(p, document.locator, filename) for p in kept]
    if all(d.span.line > 0 for d in found):
        found.sort(key=lambda d: (d.span.line, d.span.column))  # stable: ties keep order
    return found


def _fixture_error(diagnostics: list[Diagnostic]) -> FixtureError:
    count = len(diagnostics)
    heads = "\n".join(d.render() for d in diagnostics)
    noun = "problem" if count == 1 else "problems"
    return FixtureError(f"{count} {noun} in the fixture:\n{heads}", diagnostics)


# --------------------------------------------------------------------------- problems


@dataclass(slots=True)
class _Problem:
    """A problem found at a location in the document, not yet given a file position."""

    loc: Loc
    message: str
    code: str
    at_key: bool = False
    span: nodes.Span | None = None  # known already (syntax errors)


def _span(filename: str, line: int = 0, column: int = 0) -> nodes.Span:
    return nodes.Span(filename, line, column, line, column)


def _diagnostic(problem: _Problem, locator: _Locator, filename: str) -> Diagnostic:
    span = problem.span or locator.span(problem.loc, problem.at_key)
    where = _format_loc(problem.loc)
    message = f"{where}: {problem.message}" if where else problem.message
    return error(message, span, problem.code)


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _format_loc(loc: Loc) -> str:
    """`accounts[3].events[2].at` for ("accounts", 3, "events", 2, "at")."""
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif _PLAIN_KEY.match(item):
            parts.append(f".{item}" if parts else item)
        else:
            parts.append(f"[{json.dumps(item, ensure_ascii=False)}]")
    return "".join(parts)


def _shown(value: object, raw: str | None = None) -> str:
    """How a bad value reads in a message: as written when known, strings quoted."""
    if value is None:
        return "nothing"
    if raw is not None and not isinstance(value, str):
        return raw
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return json.dumps(text, ensure_ascii=False)
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__} value"


# --------------------------------------------------------------------------- locators


class _Locator:
    """Where a location of the document is in its file; line 0 when unknown."""

    def __init__(self, filename: str) -> None:
        self.filename = filename

    def span(self, loc: Loc, at_key: bool = False) -> nodes.Span:
        return _span(self.filename)

    def raw(self, loc: Loc) -> str | None:
        """The text of a plain YAML scalar as written, for values YAML did not keep as text."""
        return None


_Position = tuple[int, int, int, int]


class _YamlIndex(_Locator):
    """Positions of every value and key of a YAML (or JSON) text, by location."""

    def __init__(self, filename: str, line_offset: int = 0, prefix: Loc = ()) -> None:
        super().__init__(filename)
        self.values: dict[Loc, _Position] = {}
        self.keys: dict[Loc, _Position] = {}
        self.raws: dict[Loc, str] = {}
        self._line_offset = line_offset
        self._prefix = prefix

    def note(self, table: dict[Loc, _Position], loc: Loc, node: yaml.Node) -> None:
        start, end = node.start_mark, node.end_mark
        off = self._line_offset
        table[self._prefix + loc] = (start.line + 1 + off, start.column + 1,
                                     end.line + 1 + off, end.column + 1)

    def span(self, loc: Loc, at_key: bool = False) -> nodes.Span:
        if at_key and loc in self.keys:
            return nodes.Span(self.filename, *self.keys[loc])
        for size in range(len(loc), -1, -1):
            found = self.values.get(loc[:size])
            if found is not None:
                return nodes.Span(self.filename, *found)
        return _span(self.filename)

    def raw(self, loc: Loc) -> str | None:
        return self.raws.get(loc)


# A larger JSON file is not re-read for positions: composing it as YAML is slow, and the
# path in each message still says where the problem is.
_MAX_JSON_INDEX_CHARS = 4_000_000


class _JsonLocator(_Locator):
    """Positions in a JSON text, found only when a problem needs one (JSON is YAML too)."""

    def __init__(
        self, filename: str, text: str, line_offset: int = 0, prefix: Loc = (),
        whole_line: bool = False,
    ) -> None:
        super().__init__(filename)
        self._text = text
        self._line_offset = line_offset
        self._prefix = prefix
        self._whole_line = whole_line  # one line of JSON Lines: at worst, point at it
        self._index: _Locator | None = None

    def _built(self) -> _Locator:
        if self._index is None:
            index = _YamlIndex(self.filename, self._line_offset, self._prefix)
            if len(self._text) <= _MAX_JSON_INDEX_CHARS:
                _read_yaml_into(self._text, index, [])
            self._index = index
        return self._index

    def span(self, loc: Loc, at_key: bool = False) -> nodes.Span:
        found = self._built().span(loc, at_key)
        if found.line == 0 and self._whole_line:
            return _span(self.filename, self._line_offset + 1, 1)
        return found


class _JsonLinesLocator(_Locator):
    """Positions in a JSON Lines file: each account's line, then within it."""

    def __init__(self, filename: str) -> None:
        super().__init__(filename)
        self.account_lines: list[_JsonLocator] = []
        self.header: _JsonLocator | None = None

    def add_line(self, text: str, lineno: int, index: int | None) -> None:
        prefix: Loc = () if index is None else ("accounts", index)
        locator = _JsonLocator(self.filename, text, lineno - 1, prefix, whole_line=True)
        if index is None:
            self.header = locator
        else:
            self.account_lines.append(locator)

    def span(self, loc: Loc, at_key: bool = False) -> nodes.Span:
        if len(loc) >= 2 and loc[0] == "accounts" and isinstance(loc[1], int):
            if 0 <= loc[1] < len(self.account_lines):
                return self.account_lines[loc[1]].span(loc, at_key)
        elif self.header is not None and loc and loc[0] != "accounts":
            return self.header.span(loc, at_key)
        return _span(self.filename)


# --------------------------------------------------------------------------- reading


@dataclass(slots=True)
class _Document:
    """A fixture text read into plain data, with its locator and the problems so far."""

    data: object
    locator: _Locator
    problems: list[_Problem] = field(default_factory=list)
    readable: bool = True


def _format_of(filename: str, text: str) -> Format:
    """The format a file's name says; a file named otherwise is JSON if it looks it."""
    suffix = Path(filename).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    return "json" if text.lstrip()[:1] in ("{", "[") else "yaml"


def _read(text: str, filename: str, fmt: Format) -> _Document:
    if fmt == "json":
        return _read_json(text, filename)
    if fmt == "jsonl":
        return _read_jsonl(text, filename)
    return _read_yaml(text, filename)


def _json_loader() -> Callable[[str], object]:
    """orjson when installed (several times faster); else json with exact decimals."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency, json a fallback
        def loads(text: str) -> object:
            return json.loads(text, parse_float=Decimal)

        return loads
    return orjson.loads


_json_loads: Final = _json_loader()


def _read_json(text: str, filename: str) -> _Document:
    locator = _JsonLocator(filename, text)
    try:
        data = _json_loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError; deep nesting in json
        return _Document(None, locator, [_json_syntax_problem(exc, filename, 0)], False)
    return _Document(data, locator)


def _json_syntax_problem(
    exc: ValueError | RecursionError, filename: str, line_offset: int
) -> _Problem:
    """A problem for JSON that does not parse, at the decoder's line and column."""
    if isinstance(exc, json.JSONDecodeError):
        span = _span(filename, exc.lineno + line_offset, exc.colno)
        reason = exc.msg
    else:
        span = _span(filename, line_offset + 1 if line_offset else 0, 0)
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
    return _Problem((), f"invalid JSON: {reason}", "fixture-syntax", span=span)


def _read_jsonl(text: str, filename: str) -> _Document:
    """One account a line; a first line without `id` but with `now`/`timezone` is a header."""
    locator = _JsonLinesLocator(filename)
    problems: list[_Problem] = []
    header: object = None
    accounts: list[object] = []
    # Not splitlines(): JSON strings may hold U+2028 and friends, which it splits on.
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = _json_loads(line)
        except (ValueError, RecursionError) as exc:
            problems.append(_json_syntax_problem(exc, filename, lineno - 1))
            value = _BROKEN
        if not accounts and header is None and _is_header(value):
            header = value
            locator.add_line(line, lineno, None)
            continue
        locator.add_line(line, lineno, len(accounts))
        accounts.append(value)
    return _Document(_jsonl_document(header, accounts, problems), locator, problems)


def _is_header(value: object) -> bool:
    return isinstance(value, dict) and "id" not in value and ("now" in value or "timezone" in value)


def _jsonl_document(header: object, accounts: list[object], problems: list[_Problem]) -> object:
    """The JSON Lines file as the one-document shape the other formats have."""
    document: dict[str, object] = {"accounts": accounts}
    if isinstance(header, dict):
        if not header.keys() <= RawHeader.model_fields.keys() or not _is_text_or_none(
            header.get("timezone")
        ):
            _explain_shape(RawHeader, header, (), problems, _Locator(""))
        for key in ("now", "timezone"):
            if key in header:
                document[key] = header[key]
    return document


class _Broken:
    """A JSON Lines line that did not parse (already reported): skipped, keeps numbering."""


_BROKEN: Final = _Broken()


# YAML: libyaml's parser when PyYAML was built with it (much faster), with the safe
# constructors either way.
_YamlLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAX_DEPTH = 64
_MERGE_TAG = "tag:yaml.org,2002:merge"
_FLOAT_TAG = "tag:yaml.org,2002:float"


def _exact_decimal(text: str) -> Decimal | None:
    """A YAML float as the decimal written (`0.1`, `1_000.50`), not its binary neighbour.

    None for what Decimal does not read the YAML way (`.inf`, `.nan`, `1:30.5`): the
    float constructor takes those.
    """
    try:
        value = Decimal(text.replace("_", ""))
    except ArithmeticError:
        return None
    return value if value.is_finite() else None


def _read_yaml(text: str, filename: str) -> _Document:
    index = _YamlIndex(filename)
    problems: list[_Problem] = []
    readable, data = _read_yaml_into(text, index, problems)
    return _Document(data, index, problems, readable)


def _read_yaml_into(text: str, index: _YamlIndex, problems: list[_Problem]) -> tuple[bool, object]:
    """Compose `text` and build its data, noting positions in `index`.

    Returns (False, None) after recording a syntax problem when the text is not YAML.
    """
    loader = _YamlLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            problems.append(_yaml_syntax_problem(exc, text, index.filename))
            return False, None
        except RecursionError:
            problems.append(_Problem((), "the YAML is nested too deeply", "fixture-syntax",
                                     span=_span(index.filename, 1, 1)))
            return False, None
        if root is None:
            return True, None
        return True, _YamlReader(loader, index, problems).value(root, (), 0)
    finally:
        loader.dispose()


def _yaml_syntax_problem(exc: yaml.YAMLError, text: str, filename: str) -> _Problem:
    """A problem for text that is not YAML, at the parser's mark."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or exc.context or "not valid YAML"
        if exc.context and exc.problem:
            reason = f"{exc.problem} ({exc.context})"
        span = _span(filename, mark.line + 1, mark.column + 1) if mark else _span(filename)
    elif isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        reason = f"character {exc.character!r} is not allowed here ({exc.reason})"
        span = _span(filename, line, column)
    else:
        reason, span = str(exc), _span(filename)
    return _Problem((), f"invalid YAML: {reason}", "fixture-syntax", span=span)


class _YamlReader:
    """Builds plain data from a composed YAML node tree, one scalar at a time.

    Constructing scalar by scalar (rather than PyYAML's all-or-nothing `load`) lets a
    bad date in one place be one problem among others, and lets the index remember
    where each value was and how a non-text scalar was written.
    """

    def __init__(
        self, loader: yaml.SafeLoader, index: _YamlIndex, problems: list[_Problem]
    ) -> None:
        self._loader = loader
        self._constructors: dict[Any, Any] = loader.yaml_constructors
        self._index = index
        self._problems = problems
        self._built: dict[int, object] = {}  # by node id: aliases share one value
        self._open: set[int] = set()  # collections being built, to catch self-reference

    def value(self, node: yaml.Node, loc: Loc, depth: int) -> object:
        self._index.note(self._index.values, loc, node)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, loc)
        key = id(node)
        if key in self._built:
            return self._built[key]
        if key in self._open or depth > _MAX_DEPTH:
            reason = "an alias refers to the value it is part of" if key in self._open else (
                "nested too deeply")
            self._problems.append(_Problem(loc, reason, "fixture-syntax"))
            return None
        self._open.add(key)
        try:
            if isinstance(node, yaml.MappingNode):
                result: object = self._mapping(node, loc, depth)
            else:
                items = enumerate(node.value)
                result = [self.value(item, (*loc, i), depth + 1) for i, item in items]
        finally:
            self._open.discard(key)
        self._built[key] = result
        return result

    def _scalar(self, node: yaml.ScalarNode, loc: Loc) -> object:
        plain = not node.style  # None from PyYAML's parser, "" from libyaml's
        if plain and node.tag == _FLOAT_TAG:
            exact = _exact_decimal(node.value)
            if exact is not None:
                self._index.raws[loc] = node.value
                return exact
        construct = self._constructors.get(node.tag) or self._constructors[None]
        try:
            value: object = construct(self._loader, node)
        except yaml.YAMLError as exc:
            reason = getattr(exc, "problem", None) or str(exc)
            self._problems.append(_Problem(loc, f"invalid YAML: {reason}", "fixture-syntax"))
            return None
        except Exception:
            # A timestamp-like scalar that is no real date (2026-02-30, or an offset with
            # seconds, on which PyYAML's constructor fails in other ways): keep the text,
            # and let the field's type say what is wrong with it.
            return node.value
        if plain and not isinstance(value, str):
            self._index.raws[loc] = node.value
        return value

    def _mapping(self, node: yaml.MappingNode, loc: Loc, depth: int) -> dict[str, object]:
        own = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
        try:
            self._loader.flatten_mapping(node)  # merge keys: `<<: *defaults`
        except (yaml.YAMLError, RecursionError) as exc:
            reason = getattr(exc, "problem", None) or "a merge key (<<) refers to itself"
            self._problems.append(_Problem(loc, f"invalid YAML: {reason}", "fixture-syntax"))
        merged = len(node.value) - own  # flatten_mapping puts merged pairs first
        result: dict[str, object] = {}
        own_keys: set[str] = set()
        for position, (key_node, value_node) in enumerate(node.value):
            if not isinstance(key_node, yaml.ScalarNode):
                self._problems.append(_Problem(loc, "a key must be plain text", "fixture-shape"))
                continue
            key = key_node.value  # keys as written: `no:` and `1:` are keys, not yes/no or 1
            child = (*loc, key)
            self._index.note(self._index.keys, child, key_node)
            if position >= merged:  # a mapping's own keys override merged ones silently
                if key in own_keys:
                    self._problems.append(
                        _Problem(child, f"duplicate key '{key}'", "fixture-duplicate-key", True))
                own_keys.add(key)
            result[key] = self.value(value_node, child, depth + 1)
        return result


# --------------------------------------------------------------------------- shape errors


def _explain_shape(
    model: type[BaseModel], raw: object, loc: Loc, problems: list[_Problem], locator: _Locator
) -> None:
    """Validate `raw` with `model` and record its errors as problems under `loc`."""
    try:
        model.model_validate(raw)
    except ValidationError as exc:
        for item in exc.errors(include_url=False):
            problems.append(_shape_problem(model, dict(item), loc, locator))
        return
    # The fast pass saw something odd that the model accepts: say so rather than fail
    # silently (the tests hold the two to the same shape).
    problems.append(_Problem(loc, "this entry is malformed", "fixture-shape"))


def _shape_problem(
    model: type[BaseModel], item: dict[str, Any], loc: Loc, locator: _Locator
) -> _Problem:
    """One pydantic error as a problem in the words a fixture author uses."""
    where: Loc = (*loc, *item["loc"])
    kind = item["type"]
    shown = _shown(item.get("input"), locator.raw(where))
    if kind == "missing":
        return _Problem(where[:-1], f"missing required key '{where[-1]}'", "fixture-missing")
    if kind == "extra_forbidden":
        key = str(where[-1])
        hint = did_you_mean(key, _allowed_keys(model, item["loc"]))
        return _Problem(where, f"unknown key '{key}'{hint}", "fixture-unknown-key", True)
    if kind in ("string_type", "string_sub_type"):
        return _Problem(where, f"expected text, got {shown}{_quote_hint(item.get('input'))}",
                        "fixture-type")
    if kind == "list_type":
        return _Problem(where, f"expected a list, got {shown}", "fixture-type")
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        noun = _mapping_noun(model, where)
        return _Problem(where, f"expected {noun}, got {shown}", "fixture-type")
    message = str(item.get("msg", "invalid value"))
    return _Problem(where, message[:1].lower() + message[1:], "fixture-type")


def _allowed_keys(model: type[BaseModel], inner: tuple[Any, ...]) -> frozenset[str]:
    """The keys allowed where an unknown key was found (for did-you-mean)."""
    if model is RawAccount and inner:
        return {"contacts": _CONTACT_KEYS, "fired": _FIRING_KEYS, "history": _ENTRY_KEYS}.get(
            str(inner[0]), _ACCOUNT_KEYS)
    return frozenset(model.model_fields)


def _mapping_noun(model: type[BaseModel], where: Loc) -> str:
    if not where:
        return "a mapping with 'accounts' (and optionally 'now' and 'timezone')"
    if len(where) == 2 and where[0] == "accounts":
        return "an account (a mapping with at least an id)"
    return "a mapping"


def _quote_hint(value: object) -> str:
    if isinstance(value, bool):
        return " (YAML reads a bare yes/no word as yes or no: put text in quotes)"
    return ""


# --------------------------------------------------------------------------- typed values


class _Invalid(Exception):
    """A value of the wrong type; the message is completed where the location is known."""

    def __init__(self, expected: str, hint: str = "", message: str | None = None) -> None:
        super().__init__(expected)
        self.expected = expected
        self.hint = hint
        self.message = message
        self.code = "fixture-type"

    def text(self, shown: str) -> str:
        return self.message or f"expected {self.expected}, got {shown}{self.hint}"


Convert = Callable[[object], facts.Value]


# What the fast path may do with a value without calling its converter (see _fast_event).
_SKIP, _TEXT, _NUMBER, _OTHER, _LOOSE = 0, 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class _Conv:
    """How to type one field's values; `textual` ones may take a YAML scalar as written."""

    fn: Convert
    textual: bool = False
    code: int = _OTHER


def _to_number(value: object) -> facts.Value:
    # `type(...) is` rather than isinstance: bool is an int, and a yes/no is no number.
    if type(value) is int:
        return Decimal(value)
    if type(value) is float:
        if math.isfinite(value):
            return Decimal(repr(value))  # the shortest repr is what was written: 0.1
    elif type(value) is Decimal and value.is_finite():
        return value
    raise _Invalid("a number")


_YES_NO_WORDS: Final = {"yes": True, "no": False, "true": True, "false": False}


def _to_bool(value: object) -> facts.Value:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _YES_NO_WORDS:
        return _YES_NO_WORDS[value.strip().lower()]
    raise _Invalid("yes or no")


def _to_text(value: object) -> facts.Value:
    if type(value) is str:
        return value
    raise _Invalid("text", _quote_hint(value))


def _enum(values: tuple[str, ...]) -> Convert:
    allowed = frozenset(values)
    expected = "one of " + ", ".join(values)

    def convert(value: object) -> facts.Value:
        if type(value) is str and value in allowed:
            return value
        if isinstance(value, str):
            raise _Invalid(expected, did_you_mean(value, values))
        raise _Invalid(expected, _quote_hint(value))

    return convert


def _moment(tz: tzinfo) -> Callable[[object], datetime]:
    fromisoformat = datetime.fromisoformat

    def convert(value: object) -> datetime:
        if type(value) is str:
            # The common case inline (a JSON file holds hundreds of thousands): an ISO
            # string in the form parse_moment requires, read by fromisoformat as is.
            try:
                moment = fromisoformat(value)
            except ValueError:
                pass
            else:
                if len(value) >= 10 and value[4] == "-" and value[7] == "-":
                    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)
        try:
            return parse_moment(value, tz)
        except ValueError as exc:
            raise _Invalid("a date", message=str(exc)) from None

    return convert


_USER_KEYS: Final = ("name", "email")


def _to_user(value: object) -> facts.Value:
    """A user from `{name, email}`; a bare address is a user with only an email."""
    if isinstance(value, dict):
        unknown = [k for k in value if k not in _USER_KEYS]
        if unknown:
            key = str(unknown[0])
            hint = did_you_mean(key, _USER_KEYS)
            raise _Invalid("a user", message=f"unknown key '{key}' in a user{hint}")
        name, email = value.get("name"), value.get("email")
        if (name is None or type(name) is str) and (email is None or type(email) is str):
            return facts.User(name, email)
    elif isinstance(value, str) and "@" in value:
        return facts.User(None, value.strip())
    raise _Invalid("a user like {name: 佐藤 花子, email: sato@example.com}")


def _loose(tz: tzinfo) -> Convert:
    """Typing without a schema: numbers, yes/no, text, dates YAML recognised, users."""

    def convert(value: object) -> facts.Value:
        if isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float, Decimal)):
            return _to_number(value)
        if isinstance(value, date):
            return parse_moment(value, tz)
        if isinstance(value, dict) and value and all(k in _USER_KEYS for k in value):
            return _to_user(value)
        raise _Invalid("a single value (text, a number, yes/no, a date or a user)")

    return convert


def _converter(decl: nodes.FieldDecl, tz: tzinfo) -> _Conv:
    kind = decl.type.kind
    if kind == "number":
        return _Conv(_to_number, code=_NUMBER)
    if kind == "yes/no":
        return _Conv(_to_bool)
    if kind == "date":
        return _Conv(_moment(tz))
    if kind == "user":
        return _Conv(_to_user)
    if kind == "enum":
        return _Conv(_enum(tuple(v.text for v in decl.type.values)), textual=True)
    return _Conv(_to_text, textual=True, code=_TEXT)


@dataclass(frozen=True, slots=True)
class _Types:
    """The schema compiled for loading: a converter per field, event and role sets."""

    fields: dict[str, _Conv]
    events: dict[str, dict[str, _Conv]] | None  # None: any event type (no schema)
    roles: frozenset[str] | None
    loose: _Conv | None  # without a schema, the converter for every field
    # For the fast path: per event type, each key's code (`type` and `at` are skipped);
    # a key not in it has `default_code` (None, an unknown field, with a schema).
    event_codes: dict[str, dict[str, int]] | None
    default_code: int | None
    # Per event type, the keys an event may have when all its fields are text (None:
    # any key, without a schema): such an event's fields are its mapping less two keys.
    text_keys: dict[str, frozenset[str]] | None

    @classmethod
    def of(cls, schema: nodes.Schema | None, tz: tzinfo) -> _Types:
        if schema is None:
            return cls({}, None, None, _Conv(_loose(tz), code=_LOOSE), None, _LOOSE, None)
        fields = {d.name.text: _converter(d, tz) for d in schema.fields}
        events = {e.name.text: {d.name.text: _converter(d, tz) for d in e.fields}
                  for e in schema.events}
        codes = {kind: {**{k: c.code for k, c in convs.items()}, **_EVENT_OWN_CODES}
                 for kind, convs in events.items()}
        text_keys = {kind: frozenset(k for k, code in kind_codes.items() if code in (_SKIP, _TEXT))
                     for kind, kind_codes in codes.items()}
        roles = frozenset(r.text for r in schema.roles)
        return cls(fields, events, roles, None, codes, None, text_keys)


_EVENT_OWN_CODES: Final = {"type": _SKIP, "at": _SKIP}
_STR: Final = {str}


# --------------------------------------------------------------------------- building


_EVENT_TIME = attrgetter("at")
_fromisoformat: Final = datetime.fromisoformat
_FIRST = itemgetter(0)
_NAME_CONV: Final = _Conv(_to_text, textual=True)


class _Builder:
    """Converts a read document into accounts, recording every problem it meets."""

    def __init__(
        self, schema: nodes.Schema | None, engine_zone: tzinfo, locator: _Locator,
        problems: list[_Problem],
    ) -> None:
        self._schema = schema
        self._zone = engine_zone
        self._locator = locator
        self._problems = problems
        self._types = _Types.of(schema, engine_zone)
        self._moment = _moment(engine_zone)
        self._as_of = _EPOCH  # until `now` is known; replaced before any use
        self._malformed = False

    # -- the document

    def fixture(self, data: object, path: Path, fallback_now: datetime | None) -> Fixture:
        if not self._top_well_formed(data):
            _explain_shape(RawFixture, data, (), self._problems, self._locator)
        doc = data if isinstance(data, dict) else {}
        self._set_zone(doc.get("timezone"))
        now = self._now(doc.get("now"))
        self._as_of = now or fallback_now or self._as_of
        raw_accounts = doc.get("accounts")
        accounts = self._accounts(raw_accounts if isinstance(raw_accounts, list) else [])
        if now is None and fallback_now is None and accounts:
            # Known only once every account is read: the accounts are rebuilt with it.
            as_of = _latest_moment(accounts) or _wall_clock(self._zone)
            accounts = [replace(a, as_of=as_of) for a in accounts]
        return Fixture(path, now, self._zone, tuple(accounts))

    def _top_well_formed(self, data: object) -> bool:
        if type(data) is not dict or "accounts" not in data or not data.keys() <= _TOP_KEYS:
            return False
        zone = data.get("timezone")
        return type(data["accounts"]) in (list, type(None)) and _is_text_or_none(zone)

    def _set_zone(self, name: object) -> None:
        if name is None or not _is_text(name):
            return
        try:
            self._zone = get_zone(str(name))
        except ValueError as exc:
            self._problem(("timezone",), str(exc), "fixture-timezone")
            return
        self._types = _Types.of(self._schema, self._zone)
        self._moment = _moment(self._zone)

    def _now(self, raw: object) -> datetime | None:
        if raw is None:
            return None
        return self._typed_moment(raw, ("now",))

    def _accounts(self, raws: list[object]) -> list[facts.Account]:
        accounts: list[facts.Account] = []
        first_seen: dict[str, int] = {}
        for index, raw in enumerate(raws):
            if raw is _BROKEN:
                continue
            account = self._account(raw, index)
            if account is None:
                continue
            earlier = first_seen.setdefault(account.id, index)
            if earlier != index:
                message = f"duplicate account id {_shown(account.id)} (also accounts[{earlier}])"
                self._problem(("accounts", index, "id"), message, "fixture-duplicate-id")
            accounts.append(account)
        return accounts

    # -- one account

    def _account(self, raw: object, index: int) -> facts.Account | None:
        loc: Loc = ("accounts", index)
        if type(raw) is not dict:
            _explain_shape(RawAccount, raw, loc, self._problems, self._locator)
            return None
        self._malformed = False
        account_id = self._structural_text(raw.get("id"), (*loc, "id"), required=True)
        name = self._structural_text(raw.get("name"), (*loc, "name"))
        account = facts.Account(
            id=account_id or "",
            name=name,
            fields=self._fields(raw, loc),
            as_of=self._as_of,
            tags=self._tags(raw.get("tags"), loc),
            contacts=self._contacts(raw.get("contacts"), loc),
            events=self._events(raw.get("events"), loc),
            history=self._history(raw.get("history"), loc),
            fired=self._fired(raw.get("fired"), loc),
        )
        if account_id == "" and "id" in raw and not self._malformed:
            self._problem((*loc, "id"), "an account id cannot be empty", "fixture-type")
        if self._malformed:
            _explain_shape(RawAccount, raw, loc, self._problems, self._locator)
        return account if account_id else None

    def _fields(self, raw: dict[str, object], loc: Loc) -> dict[str, facts.Value]:
        convs, loose = self._types.fields, self._types.loose
        fields: dict[str, facts.Value] = {}
        for key, value in raw.items():
            conv = convs.get(key, loose)
            if conv is None:
                if key not in _ACCOUNT_KEYS:
                    self._unknown_field(key, loc)
                continue
            # Text and whole numbers inline, as in _fast_event; the rest by converter.
            code = conv.code
            if code == _TEXT and type(value) is str:
                fields[key] = value
            elif code == _NUMBER and type(value) is int:
                fields[key] = Decimal(value)
            elif value is not None and key not in _ACCOUNT_KEYS:
                try:
                    fields[key] = conv.fn(value)
                except _Invalid:  # the careful way, which may also take it as written
                    ok, typed = self._typed(conv, value, (*loc, key))
                    if ok and typed is not None:
                        fields[key] = typed
        return fields

    def _unknown_field(self, key: str, loc: Loc) -> None:
        hint = did_you_mean(key, [*self._types.fields, *sorted(_ACCOUNT_KEYS)])
        self._problem((*loc, key), f"unknown field '{key}'{hint}", "fixture-unknown-field", True)

    def _tags(self, raw: object, loc: Loc) -> frozenset[str]:
        if raw is None:
            return frozenset()
        if type(raw) is not list:
            self._malformed = True
            return frozenset()
        tags = (self._structural_text(t, (*loc, "tags", i), True) for i, t in enumerate(raw))
        return frozenset(t for t in tags if t is not None)

    def _contacts(self, raw: object, loc: Loc) -> tuple[facts.Contact, ...]:
        if raw is None:
            return ()
        if type(raw) is not list:
            self._malformed = True
            return ()
        contacts = []
        roles = self._types.roles
        for i, item in enumerate(raw):
            if type(item) is not dict or not item.keys() <= _CONTACT_KEYS:
                self._malformed = True
                continue
            name, email, role = item.get("name"), item.get("email"), item.get("role")
            if ((type(name) is str or name is None) and (type(email) is str or email is None)
                    and (role is None or (type(role) is str and (roles is None or role in roles)))):
                contacts.append(facts.Contact(name, email, role))
                continue
            where = (*loc, "contacts", i)
            role = self._structural_text(item.get("role"), (*where, "role"))
            if role is not None and roles is not None and role not in roles:
                self._problem((*where, "role"),
                              f"unknown contact role '{role}'{did_you_mean(role, sorted(roles))}",
                              "fixture-unknown-role")
            contacts.append(facts.Contact(
                self._structural_text(item.get("name"), (*where, "name")),
                self._structural_text(item.get("email"), (*where, "email")),
                role,
            ))
        return tuple(contacts)

    def _events(self, raw: object, loc: Loc) -> tuple[facts.Event, ...]:
        if raw is None:
            return ()
        if type(raw) is not list:
            self._malformed = True
            return ()
        events: list[facts.Event] = []
        stamps: list[str] = []  # the `at` texts of events built by the fast path
        for i, item in enumerate(raw):
            event = self._fast_event(item, stamps) or self._event(item, loc, i)
            if event is not None:
                events.append(event)
        if len(events) > 1:
            events = _chronological(events, stamps)
        return tuple(events)

    def _fast_event(self, raw: object, stamps: list[str]) -> facts.Event | None:
        """The event when it is plainly well formed, else None for the careful path.

        A large JSON fixture holds hundreds of thousands of events, nearly all of them
        text and whole numbers with an ISO time: those are built here with no call per
        value. Anything else (and every problem) is left to `_event`.
        """
        if type(raw) is not dict:
            return None
        kind, at = raw.get("type"), raw.get("at")
        if type(kind) is not str or type(at) is not str:
            return None
        types = self._types
        if types.event_codes is None:
            codes: dict[str, int] | None = _EVENT_OWN_CODES
            text_keys = None
        else:
            codes = types.event_codes.get(kind)
            text_keys = types.text_keys.get(kind) if types.text_keys is not None else None
        if codes is None or len(at) < 10 or at[4] != "-" or at[7] != "-":
            return None
        try:
            when = _fromisoformat(at)
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=self._zone)
        fields: dict[str, facts.Value] | None
        if (text_keys is None or raw.keys() <= text_keys) and set(map(type, raw.values())) == _STR:
            fields = copied = raw.copy()  # all text: copied in C
            del copied["type"], copied["at"]
        else:
            fields = _fast_fields(raw, codes, types.default_code)
            if fields is None:
                return None
        stamps.append(at)
        return facts.Event(kind, when, fields)

    def _event(self, raw: object, loc: Loc, i: int) -> facts.Event | None:
        if type(raw) is not dict or "at" not in raw:
            self._malformed = True
            return None
        kind = raw.get("type")
        if type(kind) is not str:
            kind = self._structural_text(kind, (*loc, "events", i, "type"), required=True)
            if kind is None:
                return None
        try:
            at = self._moment(raw["at"])
        except _Invalid as exc:
            self._type_problem(exc, raw["at"], (*loc, "events", i, "at"))
            return None
        specs = self._types.events
        if specs is None:
            fields_of: dict[str, _Conv] = {}
        elif kind in specs:
            fields_of = specs[kind]
        else:
            hint = did_you_mean(kind, sorted(specs))
            self._problem((*loc, "events", i, "type"), f"unknown event type '{kind}'{hint}",
                          "fixture-unknown-event")
            return None
        fields: dict[str, facts.Value] = {}
        if len(raw) > 2:
            self._event_fields(raw, kind, fields_of, fields, (*loc, "events", i))
        return facts.Event(kind, at, fields)

    def _event_fields(
        self, raw: dict[str, object], kind: str, declared: dict[str, _Conv],
        out: dict[str, facts.Value], where: Loc,
    ) -> None:
        loose = self._types.loose
        for key, value in raw.items():
            if key == "type" or key == "at":
                continue
            conv = declared.get(key, loose)
            if conv is None:
                hint = did_you_mean(key, sorted(declared))
                self._problem((*where, key), f"unknown field '{key}' of event '{kind}'{hint}",
                              "fixture-unknown-field", True)
            elif value is not None:
                ok, typed = self._typed(conv, value, (*where, key))
                if ok and typed is not None:
                    out[key] = typed

    def _history(self, raw: object, loc: Loc) -> dict[str, facts.History]:
        if raw is None:
            return {}
        if type(raw) is not dict:
            self._malformed = True
            return {}
        history: dict[str, facts.History] = {}
        for name, entries in raw.items():
            where = (*loc, "history", name)
            conv = self._history_conv(name, where)
            if entries is None or conv is None:
                continue
            if type(entries) is not list:
                self._malformed = True
                continue
            pairs = [p for i, e in enumerate(entries) if (p := self._entry(e, conv, (*where, i)))]
            pairs.sort(key=_FIRST)
            history[name] = facts.History(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))
        return history

    def _history_conv(self, name: str, where: Loc) -> _Conv | None:
        if name == "name":
            return _NAME_CONV
        conv = self._types.fields.get(name, self._types.loose)
        if conv is None or name in ("id", "tags"):
            hint = did_you_mean(name, list(self._types.fields))
            self._problem(where, f"unknown field '{name}'{hint}", "fixture-unknown-field", True)
            return None
        return conv

    def _entry(self, raw: object, conv: _Conv, where: Loc) -> tuple[datetime, facts.Value] | None:
        if type(raw) is not dict or raw.keys() != _ENTRY_KEYS:
            self._malformed = True
            return None
        at = self._typed_moment(raw["at"], (*where, "at"))
        value = raw["value"]
        ok, typed = (True, None) if value is None else self._typed(conv, value, (*where, "value"))
        return (at, typed) if at is not None and ok else None

    def _fired(self, raw: object, loc: Loc) -> tuple[facts.Firing, ...]:
        if raw is None:
            return ()
        if type(raw) is not list:
            self._malformed = True
            return ()
        firings = []
        for i, item in enumerate(raw):
            if type(item) is not dict or item.keys() != _FIRING_KEYS:
                self._malformed = True
                continue
            where = (*loc, "fired", i)
            playbook = self._structural_text(item["playbook"], (*where, "playbook"), required=True)
            rule = self._structural_text(item["rule"], (*where, "rule"), required=True)
            at = self._typed_moment(item["at"], (*where, "at"))
            if playbook is not None and rule is not None and at is not None:
                firings.append(facts.Firing(playbook, rule, at))
        return tuple(firings)

    # -- values

    def _structural_text(self, value: object, loc: Loc, required: bool = False) -> str | None:
        """Text in the fixture's own keys (id, names, roles); odd values mark the shape bad."""
        if type(value) is str:
            return value
        if value is None and not required:
            return None
        if _is_text(value):
            return self._locator.raw(loc) or str(value)
        self._malformed = True
        return None

    def _typed(self, conv: _Conv, value: object, loc: Loc) -> tuple[bool, facts.Value]:
        """(ok, value) for a field value; a problem is recorded when it is not ok."""
        try:
            return True, conv.fn(value)
        except _Invalid as exc:
            failure = exc
        # A number or date where text is expected: the text it was written as.
        if conv.textual and not isinstance(value, (bool, str, dict, list)):
            text = self._locator.raw(loc) or _plain_text(value)
            if text is not None:
                try:
                    return True, conv.fn(text)
                except _Invalid as exc:
                    failure = exc
        self._type_problem(failure, value, loc)
        return False, None

    def _typed_moment(self, value: object, loc: Loc) -> datetime | None:
        try:
            return self._moment(value)
        except _Invalid as exc:
            self._type_problem(exc, value, loc)
            return None

    def _type_problem(self, exc: _Invalid, value: object, loc: Loc) -> None:
        self._problem(loc, exc.text(_shown(value, self._locator.raw(loc))), exc.code)

    def _problem(self, loc: Loc, message: str, code: str, at_key: bool = False) -> None:
        self._problems.append(_Problem(loc, message, code, at_key))


def _fast_fields(
    raw: dict[str, Any], codes: dict[str, int], default: int | None
) -> dict[str, facts.Value] | None:
    """An event's text and whole-number fields, or None if any needs the careful path."""
    fields: dict[str, facts.Value] = {}
    for key, value in raw.items():
        code = codes.get(key, default)
        if code == _SKIP:
            continue
        value_type = type(value)
        if value_type is str and code in (_TEXT, _LOOSE):
            fields[key] = value
        elif value_type is int and code in (_NUMBER, _LOOSE):
            fields[key] = Decimal(value)
        else:
            return None
    return fields


def _chronological(events: list[facts.Event], stamps: list[str]) -> list[facts.Event]:
    """The events in time order, stable (same-moment events keep their file order).

    Comparing aware datetimes that each carry their own offset object is slow (each
    comparison works out both UTC offsets). When every event came with an ISO text of
    one layout and one explicit offset, as exported data does, the texts sort in
    time order and much faster.
    """
    if len(stamps) == len(events) and _one_layout(stamps):
        order = sorted(range(len(stamps)), key=stamps.__getitem__)
        return [events[i] for i in order]
    return sorted(events, key=_EVENT_TIME)


def _one_layout(stamps: list[str]) -> bool:
    """True when the texts share length, date-time separator and an explicit offset."""
    first = stamps[0]
    size = len(first)
    if size < 20 or first[size - 6] not in "+-" or first[size - 3] != ":":
        return first.endswith("Z") and _same(stamps, size, first[10], "Z", 1)
    return _same(stamps, size, first[10], first[size - 6:], 6)


def _same(stamps: list[str], size: int, separator: str, offset: str, width: int) -> bool:
    # map() with C callables: several times cheaper than a Python loop over the texts
    return (
        set(map(len, stamps)) == {size}
        and set(map(_AT_10, stamps)) == {separator}
        and set(map(itemgetter(slice(-width, None)), stamps)) == {offset}
    )


_AT_10 = itemgetter(10)


def _is_text(value: object) -> bool:
    return type(value) is str or (
        isinstance(value, (int, float, Decimal)) and not isinstance(value, bool))


def _is_text_or_none(value: object) -> bool:
    return value is None or _is_text(value)


def _plain_text(value: object) -> str | None:
    """A number or date as text, for a text field given one outside YAML."""
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return None


def _latest_moment(accounts: list[facts.Account]) -> datetime | None:
    """The latest event, history or firing moment in the accounts, if any."""
    moments: list[datetime] = []
    for account in accounts:
        if account.events:
            moments.append(account.events[-1].at)
        moments.extend(h.times[-1] for h in account.history.values() if h.times)
        moments.extend(f.at for f in account.fired)
    return max(moments, default=None)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _wall_clock(zone: tzinfo) -> datetime:
    return datetime.now(zone).replace(microsecond=0)
