"""Reading rule test files (`*.test.yaml`) into checked `TestCase`s, every problem said.

The format is in docs/testing.md; `playbook_engine.testing` runs what this module reads.
A test file is YAML; its shape is described by the pydantic models `RawTestFile` and
`RawTest`, and `load_test_file` then checks what the shape cannot: that fixture files
exist and load, that accounts, rules and playbooks are named as the fixture and the
playbooks name them, that an expected action uses only action keys. Every problem is
collected and raised together in one `TestFileError`, each a `Diagnostic` with the file,
the line and column of the bad value, and a message that starts with its path:

    onboarding.test.yaml:14:30: error: tests[2].expect[0].kind: no action kind "emial"
    (did you mean 'email'?)

An inline `fixture:` is read from the test file's own text, at its own lines, so its
problems point into the test file too (`tests[3].fixture.accounts[0].tier: ...`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict, ValidationError

from . import nodes as n
from .decisions import (
    EmailAction,
    NotifyAction,
    RuleOutcome,
    SetAction,
    TagAction,
    TaskAction,
    WebhookAction,
)
from .engine import Engine
from .errors import Diagnostic, FixtureError, TestFileError, did_you_mean, error
from .fixtures import Fixture, load_fixture, parse_fixture_text
from .timeutil import get_zone, parse_moment

__all__ = [
    "ACTION_KEYS",
    "KINDS",
    "TEST_SUFFIX",
    "FixtureCache",
    "RawTest",
    "RawTestFile",
    "TestCase",
    "TestFile",
    "find_test_files",
    "load_test_file",
]

TEST_SUFFIX: Final = ".test.yaml"
ACTION_KEYS: Final = (
    "account", "playbook", "rule", "kind", "template", "to", "cc", "subject", "title",
    "assignee", "due", "priority", "endpoint", "payload", "channel", "message", "field",
    "value", "tag", "op", "scheduled_at",
)
KINDS: Final = ("email", "task", "webhook", "notify", "set", "tag")
# The keys each kind of action has, as the dry-run's JSON gives them.
KIND_KEYS: Final = {
    model.model_fields["kind"].default: tuple(
        k for k, f in model.model_fields.items() if not f.exclude)
    for model in (EmailAction, TaskAction, WebhookAction, NotifyAction, SetAction, TagAction)
}
_COMMON_KEYS: Final = ("account", "playbook", "rule", "kind", "scheduled_at")
DEFAULT_INTERVAL: Final = timedelta(days=1)

Loc = tuple[str | int, ...]
_M = TypeVar("_M", bound=BaseModel)


# --------------------------------------------------------------------------- file shape


def _number_as_text(value: object) -> object:
    """Account ids may be written as numbers (`accounts: [1001]`)."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return str(value)
    return value


_Text = Annotated[str, Strict(), BeforeValidator(_number_as_text)]
_Name = Annotated[str, Strict()]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RawTest(_Shape):
    """One test as written; `load_test_file` checks its names and values."""

    name: _Name
    fixtures: _Name | None = None
    fixture: dict[str, object] | None = None
    at: object = None
    interval: _Text | None = None
    accounts: list[_Text] | None = None
    rules: list[_Name] | None = None
    exact: Annotated[bool, Strict()] = True
    expect: list[dict[str, object]]


class RawTestFile(_Shape):
    """A test file as written: a default fixture and the tests (each checked as RawTest)."""

    fixtures: _Name | None = None
    tests: list[object]


_HINTS: Final = {
    "tests": "a test file holds `tests:`, a list of tests",
    "name": "every test has a `name:`",
    "expect": "every test has `expect:`, the actions it must give (`expect: []`: none)",
}


# --------------------------------------------------------------------------- tests


@dataclass(frozen=True)
class TestCase:
    """One test, checked and ready to run."""

    __test__ = False  # not a pytest class

    name: str
    index: int
    line: int
    fixture: Fixture
    at: datetime | None
    interval: timedelta
    accounts: tuple[str, ...] | None
    rules: frozenset[tuple[str, str]] | None
    exact: bool
    expect: tuple[dict[str, Any], ...]

    def counts(self, outcome: RuleOutcome) -> bool:
        """Whether this outcome's actions are among those the test looks at."""
        return self.rules is None or (outcome.playbook, outcome.rule) in self.rules


@dataclass(frozen=True)
class TestFile:
    """A test file whose every test is well formed."""

    __test__ = False

    path: Path
    cases: tuple[TestCase, ...]


# --------------------------------------------------------------------------- finding


def find_test_files(directory: Path) -> list[Path]:
    """Every `*.test.yaml` of `directory` and of `directory/tests`, sorted, sub-folder last."""
    found: list[Path] = []
    for folder in (directory, directory / "tests"):
        if folder.is_dir():
            found += sorted(p for p in folder.glob(f"*{TEST_SUFFIX}") if p.is_file())
    return found


# --------------------------------------------------------------------------- YAML


@dataclass
class _Yaml:
    """A YAML text read into data, with the node behind every path (for line numbers)."""

    filename: str
    text: str
    data: object = None
    values: dict[Loc, yaml.Node] = field(default_factory=dict)
    keys: dict[Loc, yaml.Node] = field(default_factory=dict)

    def span(self, loc: Loc, at_key: bool = False) -> n.Span:
        node = self.keys.get(loc) if at_key else None
        for size in range(len(loc), -1, -1):
            if node is not None:
                break
            node = self.values.get(loc[:size])
        if node is None:
            return n.Span(self.filename, 0, 0, 0, 0)
        start, end = node.start_mark, node.end_mark
        return n.Span(self.filename, start.line + 1, start.column + 1, end.line + 1,
                      end.column + 1)

    def problem(self, loc: Loc, message: str, at_key: bool = False) -> Diagnostic:
        where = _path(loc)
        text = f"{where}: {message}" if where else message
        return error(text, self.span(loc, at_key), "test-file")


def _read_yaml(text: str, filename: str, problems: list[Diagnostic]) -> _Yaml | None:
    doc = _Yaml(filename, text)
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return doc
        _index(root, (), doc, problems, set())
        doc.data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = " ".join(p for p in (exc.problem, exc.context and f"({exc.context})") if p)
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        span = n.Span(filename, line, column, line, column)
        problems.append(error(f"invalid YAML: {reason or exc}", span, "test-yaml"))
        return None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        # A date that is no date (2026-02-30) fails the whole document: find which one.
        bad = next((loc for loc, node in doc.values.items() if _not_a_date(loader, node)), ())
        message = f"not a real date: {reason}" if bad else f"invalid YAML: {reason}"
        problems.append(doc.problem(bad, message))
        return None
    finally:
        loader.dispose()
    return doc


def _not_a_date(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:timestamp":
        return False
    try:
        loader.construct_yaml_timestamp(node)
    except ValueError:
        return True
    return False


def _index(node: yaml.Node, loc: Loc, doc: _Yaml, problems: list[Diagnostic],
           open_nodes: set[int]) -> None:
    """Note where each value (and each key) is; report keys given twice."""
    doc.values.setdefault(loc, node)
    if id(node) in open_nodes:  # an alias to an enclosing value: YAML allows it, we stop
        return
    open_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            key = key_node.value
            child = (*loc, key)
            if key in seen:
                doc.keys[child] = key_node
                problems.append(doc.problem(child, f"'{key}' is given twice", at_key=True))
                continue
            seen.add(key)
            doc.keys[child] = key_node
            _index(value_node, child, doc, problems, open_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*loc, i), doc, problems, open_nodes)
    open_nodes.discard(id(node))


def _path(loc: Loc) -> str:
    """`tests[2].expect[0].kind` for ("tests", 2, "expect", 0, "kind")."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _shown(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 60 else value[:57] + "...", ensure_ascii=False)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


# --------------------------------------------------------------------------- loading


class FixtureCache:
    """Fixture files loaded once per run, with their problems reported once."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._loaded: dict[tuple[Path, datetime | None], Fixture | FixtureError] = {}

    def load(self, path: Path, fallback_now: datetime | None = None) -> Fixture | FixtureError:
        key = (path.resolve(), fallback_now)
        if key not in self._loaded:
            try:
                self._loaded[key] = load_fixture(path, self.engine.program.schema,
                                                 self.engine.settings.timezone,
                                                 fallback_now=fallback_now)
            except FixtureError as exc:
                self._loaded[key] = exc
        return self._loaded[key]


def load_test_file(
    path: Path, engine: Engine, *, fixtures: FixtureCache | None = None
) -> TestFile:
    """Read and check a test file against `engine`; TestFileError carries every problem."""
    problems: list[Diagnostic] = []
    filename = str(path)
    whole = n.Span(filename, 0, 0, 0, 0)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise TestFileError(f"cannot read {filename}: {exc.strerror or exc}",
                            [error(f"cannot read the file: {exc.strerror or exc}", whole)]
                            ) from None
    except UnicodeDecodeError as exc:
        message = f"the file is not UTF-8 text (byte 0x{exc.object[exc.start]:02x})"
        raise TestFileError(f"{filename}: {message}", [error(message, whole)]) from None
    doc = _read_yaml(text, filename, problems)
    cases: list[TestCase] = []
    if doc is not None:
        cases = _Checker(path, doc, engine, fixtures or FixtureCache(engine), problems).cases()
    if problems:
        problems.sort(key=lambda d: (d.span.file != filename, d.span.line, d.span.column))
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise TestFileError(f"{count} in the test file {filename}", problems)
    return TestFile(path, tuple(cases))


class _Checker:
    """Turns a test file's data into TestCases, noting every problem on the way."""

    def __init__(self, path: Path, doc: _Yaml, engine: Engine, fixtures: FixtureCache,
                 problems: list[Diagnostic]) -> None:
        self.path = path
        self.doc = doc
        self.engine = engine
        self.fixtures = fixtures
        self.problems = problems
        self.rule_keys: dict[str, set[tuple[str, str]]] = {}
        for playbook, rule in engine.program.rules():
            key = (playbook.name.value, rule.name.value)
            self.rule_keys.setdefault(rule.name.value, set()).add(key)
            self.rule_keys.setdefault(f"{key[0]} / {key[1]}", set()).add(key)
        self.playbooks = [p.name.value for p in engine.program.playbooks]
        self.broken_fixtures: set[Path] = set()

    def problem(self, loc: Loc, message: str, at_key: bool = False) -> None:
        self.problems.append(self.doc.problem(loc, message, at_key))

    def cases(self) -> list[TestCase]:
        data = self.doc.data
        if data is None:
            self.problem((), "the file is empty; " + _HINTS["tests"])
            return []
        if not isinstance(data, dict):
            self.problem((), f"a test file is a mapping with `tests:`, not {_shown(data)}")
            return []
        top = self.validated(RawTestFile, data, ())
        if top is None:
            return []
        if not top.tests:
            self.problem(("tests",), "there are no tests in the list")
        default = self.fixture_file(top.fixtures, ("fixtures",)) if top.fixtures else None
        cases: list[TestCase] = []
        names: dict[str, int] = {}
        for i, item in enumerate(top.tests):
            loc: Loc = ("tests", i)
            if not isinstance(item, dict):
                self.problem(loc, f"a test is a mapping (name:, expect:, ...), not {_shown(item)}")
                continue
            name = item.get("name")
            if isinstance(name, str) and name in names:
                self.problem((*loc, "name"), f"another test (tests[{names[name]}]) has "
                             f"the name {_shown(name)}; give each test its own")
            elif isinstance(name, str):
                names[name] = i
            raw = self.validated(RawTest, item, loc)
            if raw is None:
                self.loose_expectations(item.get("expect"), (*loc, "expect"))
                continue
            case = self.case(raw, loc, default, top.fixtures is not None)
            if case is not None:
                cases.append(case)
        return cases

    def validated(self, model: type[_M], data: object, loc: Loc) -> _M | None:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            for item in exc.errors(include_url=False):
                where: Loc = (*loc, *item["loc"])
                message, at_key = _shape_message(model, dict(item))
                self.problem(where, message, at_key)
            return None

    # -- one test

    def case(self, raw: RawTest, loc: Loc, default: Fixture | None,
             has_default: bool) -> TestCase | None:
        before = len(self.problems)
        fixture = self.test_fixture(raw, loc, default, has_default)
        zone = fixture.timezone if fixture is not None else get_zone(self.engine.settings.timezone)
        at = self.moment(raw.at, (*loc, "at"), zone)
        if fixture is not None and fixture.now is None and at is not None:
            # A fixture without `now` describes its accounts as of the test's moment.
            fixture = self.test_fixture(raw, loc, default, has_default, as_of=at)
        if fixture is not None and at is None and fixture.as_of is None:
            self.problem(loc, "the fixture has no `now` and no accounts; give `at:`")
        interval = self.interval(raw.interval, (*loc, "interval"))
        ids = [a.id for a in fixture.accounts] if fixture is not None else None
        accounts = self.accounts(raw.accounts, (*loc, "accounts"), ids)
        rules = self.rules(raw.rules, (*loc, "rules"))
        expect = tuple(
            e for j, item in enumerate(raw.expect)
            if (e := self.expectation(item, (*loc, "expect", j), ids, accounts, rules)) is not None
        )
        if len(self.problems) > before or fixture is None:
            return None
        return TestCase(raw.name, int(loc[1]), self.doc.span(loc).line, fixture, at, interval,
                        tuple(accounts) if accounts is not None else None,
                        frozenset(rules) if rules is not None else None, raw.exact, expect)

    def test_fixture(self, raw: RawTest, loc: Loc, default: Fixture | None, has_default: bool,
                     as_of: datetime | None = None) -> Fixture | None:
        if raw.fixture is not None and raw.fixtures is not None:
            self.problem((*loc, "fixture"), "give either `fixtures:` (a file) or `fixture:` "
                         "(written here), not both", at_key=True)
            return None
        if raw.fixture is not None:
            return self.inline_fixture((*loc, "fixture"), raw.fixture, as_of)
        if raw.fixtures is not None:
            return self.fixture_file(raw.fixtures, (*loc, "fixtures"), as_of)
        if not has_default:
            self.problem(loc, "no fixture: give `fixtures: FILE` here or at the top of the "
                         "file, or write one under `fixture:`")
            return None
        if default is not None and as_of is not None:
            return self.fixture_file(str(default.path), ("fixtures",), as_of, relative=False)
        return default

    def fixture_file(self, name: str, loc: Loc, as_of: datetime | None = None,
                     relative: bool = True) -> Fixture | None:
        path = self.path.parent / name if relative else Path(name)
        if not path.is_file():
            where = f"{path} is a folder" if path.is_dir() else f"looked for {path}"
            self.problem(loc, f"no fixture file {_shown(name)} ({where}; the path is relative "
                         "to the test file)")
            return None
        found = self.fixtures.load(path, as_of)
        if isinstance(found, FixtureError):
            first = path.resolve() not in self.broken_fixtures
            self.broken_fixtures.add(path.resolve())
            self.problem(loc, f"the fixture file {name} has problems" + (
                ", each listed with its line there" if first else ""))
            if first:
                self.problems.extend(found.diagnostics or [
                    error(str(found), n.Span(str(path), 0, 0, 0, 0), "fixture")])
            return None
        return found

    def inline_fixture(self, loc: Loc, data: dict[str, object], as_of: datetime | None
                       ) -> Fixture | None:
        node = self.doc.values.get(loc)
        if node is not None:
            # The fixture's own text, at its lines and columns: its problems point into
            # the test file.
            start, end = node.start_mark, node.end_mark
            text = "\n" * start.line + " " * start.column + self.doc.text[start.index:end.index]
        else:  # pragma: no cover - every value read from the file has its node
            text = yaml.safe_dump(data, allow_unicode=True)
        try:
            return parse_fixture_text(text, self.doc.filename, self.engine.program.schema,
                                      self.engine.settings.timezone, fallback_now=as_of)
        except FixtureError as exc:
            if as_of is not None:
                return None  # reported when read without the moment
            prefix = _path(loc)
            for d in exc.diagnostics:
                message = (f"{prefix}.{d.message}" if re.match(r"^[\w\[\].-]+: ", d.message)
                           else f"{prefix}: {d.message}")
                self.problems.append(Diagnostic(d.severity, message, d.span, d.code))
            return None

    # -- values

    def moment(self, value: object, loc: Loc, zone: tzinfo) -> datetime | None:
        if value is None:
            return None
        try:
            return parse_moment(value, zone)
        except ValueError as exc:
            self.problem(loc, str(exc))
            return None

    def interval(self, value: str | None, loc: Loc) -> timedelta:
        if value is None:
            return DEFAULT_INTERVAL
        found = _parse_interval(value)
        if found is None:
            self.problem(loc, f"{_shown(value)} is not a duration; write it like 1d, 12h or 30m")
            return DEFAULT_INTERVAL
        return found

    def accounts(self, wanted: list[str] | None, loc: Loc, ids: list[str] | None
                 ) -> list[str] | None:
        if wanted == []:
            self.problem(loc, "the list is empty; leave `accounts:` out to evaluate them all")
        if wanted is None or ids is None:
            return wanted
        for j, account in enumerate(wanted):
            if account not in ids:
                self.problem((*loc, j), f"no account {_shown(account)} in the fixture"
                             + did_you_mean(account, ids))
        return wanted

    def rules(self, wanted: list[str] | None, loc: Loc) -> set[tuple[str, str]] | None:
        if wanted is None:
            return None
        if not wanted:
            self.problem(loc, "the list is empty; leave `rules:` out to count them all")
        keys: set[tuple[str, str]] = set()
        for j, name in enumerate(wanted):
            found = self.rule_keys.get(name)
            if found is None:
                names = [k for k in self.rule_keys if " / " not in k]
                self.problem((*loc, j), f"no rule named {_shown(name)}" + did_you_mean(name, names))
            else:
                keys |= found
        return keys

    def expectation(self, item: dict[str, object], loc: Loc, ids: list[str] | None,
                    accounts: list[str] | None, rules: set[tuple[str, str]] | None
                    ) -> dict[str, Any] | None:
        before = len(self.problems)
        expected: dict[str, Any] = {}
        for key, value in item.items():
            if key not in ACTION_KEYS:
                self.problem((*loc, key), f"unknown key '{key}'{_known(key, ACTION_KEYS)}",
                             at_key=True)
                continue
            if key in ("to", "cc") and isinstance(value, str):
                value = [value]  # `to: x@y` for the one recipient of an email
            expected[key] = _expected_value(value)
        self.check_names(expected, loc, ids, accounts, rules)
        if not item:
            self.problem(loc, "an expected action names at least one key, such as kind")
        return expected if len(self.problems) == before else None

    def loose_expectations(self, items: object, loc: Loc) -> None:
        """The keys and names of a malformed test's expectations, so all is said in one run."""
        if isinstance(items, list):
            for j, item in enumerate(items):
                if isinstance(item, dict) and all(isinstance(k, str) for k in item):
                    self.expectation(item, (*loc, j), None, None, None)

    def check_names(self, expected: dict[str, Any], loc: Loc, ids: list[str] | None,
                    accounts: list[str] | None, rules: set[tuple[str, str]] | None) -> None:
        kind = expected.get("kind")
        if "kind" in expected and kind not in KINDS:
            self.problem((*loc, "kind"), f"no action kind {_shown(kind)}"
                         + did_you_mean(str(kind), KINDS) + f"; the kinds: {', '.join(KINDS)}")
        elif isinstance(kind, str):
            own = KIND_KEYS[kind]
            for key in expected:
                if key not in own:
                    has = ", ".join(k for k in own if k not in _COMMON_KEYS)
                    self.problem((*loc, key), f"a{'n' if kind[0] in 'ae' else ''} {kind} action "
                                 f"has no '{key}' (it has {has})", True)
        account = expected.get("account")
        if "account" in expected and ids is not None:
            if account not in ids:
                self.problem((*loc, "account"), f"no account {_shown(account)} in the fixture"
                             + did_you_mean(str(account), ids))
            elif accounts is not None and account not in accounts:
                self.problem((*loc, "account"), f"{_shown(account)} is not evaluated: the "
                             "test's `accounts:` leaves it out")
        playbook = expected.get("playbook")
        if "playbook" in expected and playbook not in self.playbooks:
            self.problem((*loc, "playbook"), f"no playbook named {_shown(playbook)}"
                         + did_you_mean(str(playbook), self.playbooks))
        rule = expected.get("rule")
        if "rule" in expected:
            keys = self.rule_keys.get(rule) if isinstance(rule, str) and " / " not in rule else None
            if keys is None:
                names = [k for k in self.rule_keys if " / " not in k]
                self.problem((*loc, "rule"), f"no rule named {_shown(rule)}"
                             + did_you_mean(str(rule), names))
            elif rules is not None and not keys & rules:
                self.problem((*loc, "rule"), f"{_shown(rule)} is not counted: the test's "
                             "`rules:` leaves it out")


def _shape_message(model: type[BaseModel], item: dict[str, Any]) -> tuple[str, bool]:
    """A pydantic error in the words of a test file's author; and whether it is at a key."""
    kind = item["type"]
    loc = item["loc"]
    last = loc[-1] if loc else ""
    value = item.get("input")
    if kind == "extra_forbidden":
        return f"unknown key '{last}'{_known(str(last), list(model.model_fields))}", True
    if kind == "missing":
        return "missing; " + _HINTS.get(str(last), f"`{last}:` is required"), False
    if last == "fixture" and isinstance(value, str):
        return ("`fixture:` is a fixture written here (now:, accounts:); to name a file, "
                "write `fixtures:`"), False
    if value is None and kind in ("list_type", "dict_type", "string_type"):
        hint = " (write `expect: []` when nothing should fire)" if last == "expect" else ""
        return f"has no value{hint}", False
    expected = {
        "string_type": "text", "list_type": "a list", "dict_type": "a mapping (key: value)",
        "bool_type": "true or false",
    }.get(kind)
    if expected is not None:
        return f"expected {expected}, got {_shown(value)}", False
    return str(item.get("msg", kind)), False


def _known(word: str, keys: Sequence[str]) -> str:
    """` (did you mean 'x'?)`, or the keys there are when none is close."""
    return did_you_mean(word, keys) or f"; the keys are {', '.join(keys)}"


_INTERVAL = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(d|days?|h|hours?|m|min|mins|minutes?)\s*$", re.IGNORECASE
)


def _parse_interval(text: str) -> timedelta | None:
    match = _INTERVAL.match(text)
    if match is None or float(match.group(1)) <= 0:
        return None
    unit = {"d": "days", "h": "hours", "m": "minutes"}[match.group(2)[0].lower()]
    return timedelta(**{unit: float(match.group(1))})


def _expected_value(value: object) -> Any:
    """An expected value as JSON would have it; date-times stay, to compare as instants."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _expected_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expected_value(v) for v in value]
    return value
