"""Rule tests: `*.test.yaml` files of expected actions, run against a playbook directory.

In the spirit of Prometheus' `promtool test rules`: a test names a fixture (a file, or
one written inline), a moment, and the actions the playbooks must decide then. `playbook
test DIR` runs every test file of DIR (and of DIR/tests) and says, for each test, which
expected actions are missing and which actions came in extra, with the explain of the
accounts involved; then which rules no test made fire and which conditions were never
seen true or never seen false. docs/testing.md describes the format for its authors:

    fixtures: fixtures/accounts.yaml        # the default fixture, relative to this file
    tests:
      - name: Stalled tech-touch onboarding gets a nudge
        at: 2026-03-16T09:00:00+09:00      # default: the fixture's `now`
        accounts: [acme]                    # only these accounts are evaluated
        expect:
          - {rule: Stalled onboarding nudge, kind: email, to: [yamada@acme.example]}

Matching is that of /work/shared/tools/compare_dryrun.py, made one to one: each
expected action pairs with its own actual action, equal on every key it names (values
compared as JSON: 8 equals 8.0, a date equals its `YYYY-MM-DD` text, a date-time equals
the same instant); actual actions left unpaired are failures unless the test says
`exact: false`. Pairing is a maximum matching, so the order of `expect` never matters.

Reading and checking test files is `testfiles.py`'s part: a file with problems (YAML,
shape, unknown keys or names, fixtures) is reported with every problem, by line and path
(`tests[2].expect[0].kind`), and its tests do not run; the other files' do.

    find_test_files(directory)          the test files, sorted
    load_test_file(path, engine)        a TestFile, or TestFileError
    run_tests(directory, engine)        a TestReport: results, file errors, coverage
    print_report(report, console)       what `playbook test` prints
    junit_xml(report)                   the same as JUnit XML, for CI systems
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from . import nodes as n
from .decisions import Action, Evaluation, RuleOutcome
from .dryrun import describe
from .engine import Engine
from .errors import Diagnostic, PlaybookError, TestFileError
from .explain import Explainer, _predicates
from .testfiles import (
    ACTION_KEYS,
    TEST_SUFFIX,
    FixtureCache,
    TestCase,
    TestFile,
    find_test_files,
    load_test_file,
)
from .timeutil import format_moment

__all__ = [
    "ACTION_KEYS",
    "ConditionCoverage",
    "Coverage",
    "FileReport",
    "RuleCoverage",
    "TestCase",
    "TestFile",
    "TestReport",
    "TestResult",
    "find_test_files",
    "junit_xml",
    "load_test_file",
    "match_actions",
    "print_report",
    "run_case",
    "run_tests",
    "write_junit",
]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class TestResult:
    """How one test went: what was expected and not given, what was given and not expected."""

    __test__ = False

    file: str
    name: str
    line: int
    at: str
    expected: int
    actual: int
    missing: tuple[dict[str, Any], ...] = ()
    extra: tuple[Action, ...] = ()
    # For each missing expectation, the nearest actual action and how it differs.
    closest: tuple[str | None, ...] = ()
    errors: tuple[str, ...] = ()
    explain: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.missing and not self.extra and not self.errors

    def diff_lines(self) -> list[str]:
        """Expected against got, one line per missing or extra action."""
        return [text for text, _ in _diff(self)]


@dataclass(frozen=True)
class FileReport:
    """One test file: its results, or the problems that kept its tests from running."""

    path: str
    results: tuple[TestResult, ...] = ()
    errors: tuple[Diagnostic, ...] = ()
    source: str | None = None

    def rendered_errors(self) -> list[str]:
        """Each problem as `file:line:col: error: ...` with its source line and caret."""
        return [d.render(self.source if d.span.file == self.path else None) for d in self.errors]


@dataclass(frozen=True)
class ConditionCoverage:
    """One predicate of a rule's `when`/`where`, and the values tests saw it take."""

    text: str
    location: str
    seen_true: bool
    seen_false: bool


@dataclass(frozen=True)
class RuleCoverage:
    """One rule: whether any test made it fire, and its conditions' coverage."""

    playbook: str
    rule: str
    fired: bool
    # False when no test looked at the rule (their `accounts:`/`rules:` left it out).
    evaluated: bool
    conditions: tuple[ConditionCoverage, ...]

    @property
    def title(self) -> str:
        return f"{self.playbook} / {self.rule}"


@dataclass(frozen=True)
class Coverage:
    """Across every test run: which rules fired, which conditions went which way."""

    rules: tuple[RuleCoverage, ...]

    @property
    def never_fired(self) -> list[RuleCoverage]:
        return [r for r in self.rules if not r.fired]

    @property
    def never_true(self) -> list[tuple[RuleCoverage, ConditionCoverage]]:
        """Conditions seen false, never true."""
        return [(r, c) for r in self.rules for c in r.conditions
                if c.seen_false and not c.seen_true]

    @property
    def never_false(self) -> list[tuple[RuleCoverage, ConditionCoverage]]:
        """Conditions seen true, never false."""
        return [(r, c) for r in self.rules for c in r.conditions
                if c.seen_true and not c.seen_false]

    @property
    def never_decided(self) -> list[tuple[RuleCoverage, ConditionCoverage]]:
        """Conditions of evaluated rules never seen true nor false: not reached, or unknown."""
        return [(r, c) for r in self.rules if r.evaluated for c in r.conditions
                if not c.seen_true and not c.seen_false]


@dataclass(frozen=True)
class TestReport:
    """Every test file of a directory, run."""

    __test__ = False

    files: tuple[FileReport, ...]
    coverage: Coverage | None = None

    @property
    def results(self) -> list[TestResult]:
        return [r for f in self.files for r in f.results]

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.passed)

    @property
    def broken_files(self) -> list[FileReport]:
        return [f for f in self.files if f.errors]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.broken_files

    def result(self, name: str) -> TestResult:
        """The result of the test of that name (KeyError if there is none)."""
        for found in self.results:
            if found.name == name:
                return found
        raise KeyError(name)


# --------------------------------------------------------------------------- matching


def _same(expected: object, actual: object) -> bool:
    """Equal as JSON values: 8 equals 8.0; a date-time equals the same instant."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    numbers = (int, float, Decimal)
    if isinstance(expected, numbers) and isinstance(actual, numbers):
        return Decimal(str(expected)) == Decimal(str(actual))
    if isinstance(expected, datetime):
        if not isinstance(actual, str):
            return False
        try:
            moment = datetime.fromisoformat(actual)
        except ValueError:
            return False
        if expected.tzinfo is None or moment.tzinfo is None:
            return expected.replace(tzinfo=None) == moment.replace(tzinfo=None)
        return expected == moment
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and expected.keys() == actual.keys()
                and all(_same(v, actual[k]) for k, v in expected.items()))
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(_same(e, a) for e, a in zip(expected, actual, strict=True)))
    return expected == actual


def _matches(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    # `assignee: null` means "no assignee": the dry-run JSON leaves empty keys out.
    return all(
        _same(v, actual[k]) if k in actual else v is None for k, v in expected.items()
    )


def match_actions(
    expected: Sequence[dict[str, Any]], actual: Sequence[dict[str, Any]]
) -> tuple[list[int], list[int]]:
    """Pair expected with actual actions one to one, as many as can be; the unpaired of each.

    A maximum bipartite matching (augmenting paths), so that a loose expectation listed
    first does not take the action a precise one needs.
    """
    candidates = [[j for j, a in enumerate(actual) if _matches(e, a)] for e in expected]
    owner: dict[int, int] = {}

    def assign(i: int, seen: set[int]) -> bool:
        for j in candidates[i]:
            if j not in seen:
                seen.add(j)
                if j not in owner or assign(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    for i in range(len(expected)):
        assign(i, set())
    paired = set(owner.values())
    missing = [i for i in range(len(expected)) if i not in paired]
    extra = [j for j in range(len(actual)) if j not in owner]
    return missing, extra


def _closest(expected: dict[str, Any], actions: Sequence[Action],
             shown: Sequence[dict[str, Any]]) -> str | None:
    """The actual action agreeing with `expected` on most keys, and the keys it differs on."""
    best: tuple[int, int] | None = None
    for j, actual in enumerate(shown):
        score = sum(1 for k, v in expected.items() if k in actual and _same(v, actual[k]))
        if best is None or score > best[0]:
            best = (score, j)
    if best is None or best[0] * 2 < len(expected) or best[0] == 0:
        return None
    actual = shown[best[1]]
    differs = [
        f"{k} is {json.dumps(actual[k], ensure_ascii=False)}" if k in actual else f"no {k}"
        for k, v in expected.items() if not (k in actual and _same(v, actual[k]))
    ]
    action = actions[best[1]]
    return f"closest: {_title(action)}: {describe(action)} ({'; '.join(differs)})"


def _title(action: Action) -> str:
    return f"{action.account} · {action.playbook} / {action.rule}"


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, default=_moment_text)


def _moment_text(value: object) -> str:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return format_moment(value)
    return str(value)


# --------------------------------------------------------------------------- running


def run_tests(
    directory: Path,
    engine: Engine | None = None,
    *,
    files: Sequence[Path] | None = None,
    coverage: bool = True,
) -> TestReport:
    """Run every test file of `directory` (or `files`) against its playbooks.

    Without an `engine`, the directory is loaded; LoadError if its playbooks have errors.
    A test file with problems is reported in its FileReport and its tests do not run.
    """
    if engine is None:
        engine = Engine.load(directory)
        engine.raise_for_errors()
    fixtures = FixtureCache(engine)
    tracker = _CoverageTracker(engine) if coverage else None
    reports: list[FileReport] = []
    for path in find_test_files(directory) if files is None else files:
        try:
            source: str | None = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            source = None
        try:
            test_file = load_test_file(path, engine, fixtures=fixtures)
        except TestFileError as exc:
            reports.append(FileReport(str(path), errors=tuple(exc.diagnostics), source=source))
            continue
        results = tuple(run_case(engine, case, str(path), tracker) for case in test_file.cases)
        reports.append(FileReport(str(path), results, source=source))
    return TestReport(tuple(reports), tracker.coverage() if tracker else None)


def run_case(
    engine: Engine, case: TestCase, file: str = "", tracker: _CoverageTracker | None = None
) -> TestResult:
    """Run one test: dry-run its fixture at its moment and match the actions."""
    started = time.perf_counter()
    explain = tracker is not None
    try:
        evaluation = _evaluate(engine, case, case.accounts, explain)
    except PlaybookError as exc:
        return TestResult(file, case.name, case.line, "", len(case.expect), 0, errors=(str(exc),))
    counted = [o for o in evaluation.outcomes if case.counts(o)]
    if tracker is not None:
        tracker.add(counted)
    actions = [a for o in counted if o.fired for a in o.actions]
    shown = [a.as_json() for a in actions]
    missing, extra = match_actions(case.expect, shown)
    if not case.exact:
        extra = []
    erred = [o for o in counted if o.errors]
    errors = tuple(f"{o.account} · {o.playbook} / {o.rule}: {e}" for o in erred for e in o.errors)
    lost = tuple(case.expect[i] for i in missing)
    result = TestResult(
        file, case.name, case.line, evaluation.at, len(case.expect), len(actions),
        missing=tuple({k: _moment_text(v) if isinstance(v, datetime) else v
                       for k, v in e.items()} for e in lost),
        extra=tuple(actions[j] for j in extra),
        closest=tuple(_closest(e, actions, shown) for e in lost),
        errors=errors,
    )
    if not result.passed:
        lines = _involved(engine, case, evaluation, result, lost, erred, explain)
        result = replace(result, explain=tuple(lines))
    return replace(result, seconds=time.perf_counter() - started)


def _evaluate(engine: Engine, case: TestCase, accounts: Iterable[str] | None,
              explain: bool) -> Evaluation:
    return engine.dry_run(case.fixture, case.at, interval=case.interval,
                          accounts=accounts, explain=explain)


def _involved(engine: Engine, case: TestCase, evaluation: Evaluation, result: TestResult,
              lost: Sequence[dict[str, Any]], erred: Sequence[RuleOutcome],
              explained: bool) -> list[str]:
    """The explain of each account and rule a failure involves.

    An expectation that names no account involves every account evaluated; one that
    names no rule (nor playbook), every rule of its accounts.
    """
    everyone = any("account" not in e for e in lost)
    accounts = {str(e["account"]) for e in lost if "account" in e}
    accounts |= {a.account for a in result.extra} | {o.account for o in erred}
    any_rule = any("rule" not in e and "playbook" not in e for e in lost)
    rules = {(a.playbook, a.rule) for a in result.extra} | {(o.playbook, o.rule) for o in erred}
    named = {(str(e.get("playbook", "")), str(e["rule"])) for e in lost if "rule" in e}
    playbooks = {str(e["playbook"]) for e in lost if "playbook" in e and "rule" not in e}

    def wanted(o: RuleOutcome) -> bool:
        if not case.counts(o) or (not everyone and o.account not in accounts):
            return False
        return (any_rule or o.playbook in playbooks or (o.playbook, o.rule) in rules
                or (o.playbook, o.rule) in named or ("", o.rule) in named)

    if not explained:
        ids = case.accounts if everyone else sorted(accounts)
        evaluation = _evaluate(engine, case, ids, True)
    lines: list[str] = []
    for outcome in evaluation.outcomes:
        if wanted(outcome):
            verdict = "FIRES" if outcome.fired else f"does not fire: {outcome.reason}"
            when = f" (event at {outcome.event_at})" if outcome.event_at else ""
            lines.append(f"{outcome.account} · {outcome.playbook} / {outcome.rule}{when}: "
                         f"{verdict}")
            lines.extend(f"  {line}" for line in outcome.explanation)
    return lines


# --------------------------------------------------------------------------- coverage


@dataclass
class _Tracked:
    playbook: str
    rule: str
    label: str
    condition: n.Expr | None
    parts: list[n.Expr]
    texts: list[str]
    locations: list[str]
    fired: bool = False
    evaluated: bool = False
    true: set[int] = field(default_factory=set)
    false: set[int] = field(default_factory=set)


class _CoverageTracker:
    """Collects, across tests, which rules fired and the values each predicate took.

    The values come from the explain lines of each outcome, which list every predicate
    of the condition in order (`✓ text → true`), as `explain.Explainer` writes them:
    split by the same `_predicates`, so that the two cannot disagree.
    """

    def __init__(self, engine: Engine) -> None:
        self.explainer = Explainer(engine.program, engine.sources)
        self.rules: dict[tuple[str, str], _Tracked] = {}
        for playbook, rule in engine.program.rules():
            if playbook.status_value == "paused":
                continue
            condition = rule.where if rule.event is not None else rule.when
            parts = _predicates(condition) if condition is not None else []
            self.rules[(playbook.name.value, rule.name.value)] = _Tracked(
                playbook.name.value, rule.name.value,
                "where" if rule.event is not None else "when", condition, parts,
                [self.explainer.text(p) for p in parts],
                [f"{p.span.file}:{p.span.line}" for p in parts],
            )

    def add(self, outcomes: Iterable[RuleOutcome]) -> None:
        for outcome in outcomes:
            tracked = self.rules.get((outcome.playbook, outcome.rule))
            if tracked is None:
                continue
            tracked.fired |= outcome.fired
            tracked.evaluated = True
            for i, value in enumerate(self.values(tracked, outcome.explanation)):
                if value is True:
                    tracked.true.add(i)
                elif value is False:
                    tracked.false.add(i)

    def values(self, tracked: _Tracked, lines: Sequence[str]) -> list[bool | None]:
        """Each predicate's value in one outcome's explain lines (None: not known)."""
        if tracked.condition is None:
            return []
        head = f"{tracked.label} {self.explainer.text(tracked.condition)} → "
        start = next((i for i, line in enumerate(lines) if line.startswith(head)), None)
        if start is None:
            return []
        if len(tracked.parts) == 1 and tracked.parts[0] is tracked.condition:
            return [_truth(lines[start][len(head):])]
        found: list[bool | None] = []
        for offset, text in enumerate(tracked.texts, start + 1):
            line = lines[offset] if offset < len(lines) else ""
            if line[:2] == "  " and line[3:4] == " " and line[4:].startswith(f"{text} → "):
                found.append(_truth(line[4 + len(text) + 3:]))
            else:
                found.append(None)
        return found

    def coverage(self) -> Coverage:
        return Coverage(tuple(
            RuleCoverage(t.playbook, t.rule, t.fired, t.evaluated, tuple(
                ConditionCoverage(text, location, i in t.true, i in t.false)
                for i, (text, location) in enumerate(zip(t.texts, t.locations, strict=True))
            ))
            for t in self.rules.values()
        ))


def _truth(text: str) -> bool | None:
    if text.startswith("true"):
        return True
    if text.startswith("false"):
        return False
    return None


# --------------------------------------------------------------------------- output


def _diff(result: TestResult) -> list[tuple[str, str]]:
    """Expected against got, with the style each line prints in."""
    lines: list[tuple[str, str]] = []
    if result.at:
        lines.append((f"at {result.at}: expected {result.expected} action"
                      f"{'s' if result.expected != 1 else ''}, got {result.actual}", "dim"))
    for expected, hint in zip(result.missing, result.closest, strict=True):
        lines.append((f"missing  {_json(expected)}", "red"))
        if hint:
            lines.append((f"         {hint}", "dim"))
    for action in result.extra:
        lines.append((f"extra    {_title(action)}: {describe(action)}", "yellow"))
    lines += [(f"error    {e}", "red") for e in result.errors]
    return lines


def _failure_lines(result: TestResult) -> list[tuple[str, str]]:
    lines = _diff(result)
    if result.explain:
        lines.append(("explain", "bold"))
        lines += [(f"  {line}", "dim") for line in result.explain]
    return lines


def print_report(report: TestReport, console: Console, *, coverage: bool = True) -> None:
    """Per file, a ✓/✗ line per test with what failed; coverage; `N passed, N failed`."""
    for file in report.files:
        console.print(Text(file.path, style="bold"))
        for message in file.rendered_errors():
            head, *rest = message.split("\n")
            console.print(Text(f"  {head}", style="red"))
            for text in rest:
                console.print(Text(f"  {text}", style="cyan"))
        for result in file.results:
            if result.passed:
                console.print(Text(f"  ✓ {result.name}", style="green"))
                continue
            line = Text(f"  ✗ {result.name}", style="bold red")
            line.append(f"  ({file.path}:{result.line})", style="dim")
            console.print(line)
            for text, style in _failure_lines(result):
                console.print(Text(f"      {text}", style=style))
    if coverage and report.coverage is not None and report.results:
        print_coverage(report.coverage, console)
    broken = report.broken_files
    if broken:
        console.print(Text(
            f"{len(broken)} test file{'s' if len(broken) != 1 else ''} with problems: "
            "fix them to run their tests", style="bold red"))
    style = "bold green" if report.ok else "bold red"
    console.print(Text(f"{report.passed} passed, {report.failed} failed", style=style))


def print_coverage(coverage: Coverage, console: Console) -> None:
    """Rules no test made fire; predicates never seen true, never false, or neither."""
    rules = len(coverage.rules)
    unfired = coverage.never_fired
    conditions = sum(len(r.conditions) for r in coverage.rules)
    groups = (("never true", coverage.never_true), ("never false", coverage.never_false),
              ("never decided", coverage.never_decided))
    console.print(Text(
        f"coverage: {rules - len(unfired)} of {rules} rules fired; {conditions} conditions, "
        + ", ".join(f"{len(found)} {label}" for label, found in groups), style="bold"))
    sections = [("never fired", [r.title + ("" if r.evaluated else "  (no test looks at it)")
                                 for r in unfired])]
    sections += [(label, [f"{r.title}: {c.text}  ({c.location})" for r, c in found])
                 for label, found in groups]
    for label, items in sections:
        for i, item in enumerate(items):
            console.print(Text(f"  {label if i == 0 else '':<13} {item}", style="yellow"))


def junit_xml(report: TestReport) -> ET.ElementTree[ET.Element]:
    """JUnit XML: a testsuite per file, a testcase per test, failures with their diff."""
    root = ET.Element("testsuites", {
        "name": "playbook test", "tests": str(len(report.results)),
        "failures": str(report.failed), "errors": str(len(report.broken_files)),
    })
    for file in report.files:
        suite = ET.SubElement(root, "testsuite", {
            "name": file.path, "tests": str(len(file.results) or (1 if file.errors else 0)),
            "failures": str(sum(1 for r in file.results if not r.passed)),
            "errors": str(1 if file.errors else 0),
            "time": f"{sum(r.seconds for r in file.results):.3f}",
        })
        classname = Path(file.path).name.removesuffix(TEST_SUFFIX)
        if file.errors:
            case = ET.SubElement(suite, "testcase", {"name": "(test file)",
                                                     "classname": classname,
                                                     "file": file.path})
            problems = ET.SubElement(case, "error", {
                "message": f"{len(file.errors)} problem{'s' if len(file.errors) != 1 else ''} "
                           "in the test file", "type": "TestFileError"})
            problems.text = "\n".join(file.rendered_errors())
        for result in file.results:
            case = ET.SubElement(suite, "testcase", {
                "name": result.name, "classname": classname, "file": file.path,
                "line": str(result.line), "time": f"{result.seconds:.3f}",
            })
            if not result.passed:
                summary = [f"{len(result.missing)} missing", f"{len(result.extra)} extra"]
                if result.errors:
                    summary.append(f"{len(result.errors)} errors")
                failure = ET.SubElement(case, "failure", {"message": ", ".join(summary),
                                                          "type": "ActionsDiffer"})
                failure.text = "\n".join(text for text, _ in _failure_lines(result))
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(report: TestReport, path: Path) -> None:
    """Write `junit_xml(report)` to `path` (UTF-8, with an XML declaration)."""
    junit_xml(report).write(path, encoding="utf-8", xml_declaration=True)


