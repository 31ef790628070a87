"""The `playbook` command: a thin layer over `Engine`, one function per sub-command.

    playbook check DIR [--format text|json] [--strict]
    playbook fmt DIR [--check]

Exit codes, for every command: 0 success, 1 problems found (errors; with `--strict`,
warnings too), 2 bad usage (no such directory, no .playbook files in it, bad options).

`check --format json` prints one object:

    {"diagnostics": [{"file", "line", "column", "end_line", "end_column",
                      "severity", "code", "message"}, ...],
     "summary": {"files", "rules", "templates", "errors", "warnings", "ok"}}

A new command is a function decorated with `@app.command()` that loads the directory
with `load_engine()` (which turns a `LoadError` into a clear message and exit 2) and
prints through `console`.
"""

from __future__ import annotations

import gc
import json
import re
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from . import __version__
from .bulk_stats import BulkStats
from .decisions import Evaluation
from .dryrun import print_explanation, print_table, to_json
from .engine import Engine
from .errors import ConfigError, Diagnostic, FixtureError, PlaybookError, did_you_mean
from .fixtures import Fixture
from .settings import Settings
from .workers import available_workers

if TYPE_CHECKING:
    from .bulk_frames import Frames

__all__ = ["app", "console", "err_console", "load_engine", "usage_error"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="playbook",
    help="Check, dry-run and explain customer-success playbooks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# soft_wrap: a diagnostic line is never broken, so editors and CI can parse it.
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def _version(value: bool) -> None:
    if value:
        console.print(f"playbook-engine {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Check, dry-run and explain customer-success playbooks."""


# --------------------------------------------------------------------------- helpers


def usage_error(message: str) -> NoReturn:
    """Print `error: message` on stderr and exit with the usage code, 2."""
    err_console.print(Text(f"error: {message}", style="bold red"))
    raise typer.Exit(EXIT_USAGE)


def load_engine(directory: Path, settings: Settings | None = None) -> Engine:
    """The engine for a directory; a directory that cannot be loaded is a usage error."""
    try:
        return Engine.load(directory, settings)
    except PlaybookError as exc:
        usage_error(str(exc))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _print_diagnostic(engine: Engine, diagnostic: Diagnostic) -> None:
    head, *rest = engine.render(diagnostic).split("\n")
    style = "bold red" if diagnostic.is_error else "bold yellow"
    line = Text(f"{diagnostic.span}: ")
    line.append(diagnostic.severity.value, style=style)
    line.append(head[len(f"{diagnostic.span}: {diagnostic.severity.value}") :])
    console.print(line)
    for text in rest:
        console.print(Text(text, style="cyan" if text.lstrip().startswith("|") else ""))


def _summary(engine: Engine) -> dict[str, object]:
    return {
        "files": len(engine.files),
        "rules": engine.rule_count,
        "templates": len(engine.templates.names()),
        "errors": len(engine.errors),
        "warnings": len(engine.warnings),
        "ok": engine.ok,
    }


# --------------------------------------------------------------------------- commands


@app.command("check")
def check_command(
    directory: Path = typer.Argument(..., help="The playbook directory to check."),
    output: OutputFormat = typer.Option(
        OutputFormat.text, "--format", "-f", help="text (for people and editors) or json."
    ),
    strict: bool = typer.Option(False, "--strict", help="Fail on warnings too."),
) -> None:
    """Report every problem in a playbook directory and its templates."""
    engine = load_engine(directory)
    summary = _summary(engine)
    if output is OutputFormat.json:
        payload = {"diagnostics": [d.as_dict() for d in engine.diagnostics], "summary": summary}
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        for diagnostic in engine.diagnostics:
            _print_diagnostic(engine, diagnostic)
        files = _plural(len(engine.files), "file")
        if engine.diagnostics:
            found = f"{_plural(len(engine.errors), 'error')}, "
            found += f"{_plural(len(engine.warnings), 'warning')} in {files}"
            console.print(Text(found, style="bold"))
        else:
            checked = f"ok: {files}, {_plural(engine.rule_count, 'rule')}, "
            checked += f"{_plural(len(engine.templates.names()), 'template')} checked"
            console.print(Text(checked, style="bold green"))
    failed = bool(engine.errors) or (strict and bool(engine.warnings))
    raise typer.Exit(EXIT_PROBLEMS if failed else EXIT_OK)


# --------------------------------------------------------------------------- evaluation


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        usage_error(f"{option} {value!r} is not a moment; write it like 2026-03-16T09:00:00+09:00")
    if moment.tzinfo is None:
        usage_error(f"{option} {value!r} has no time zone; add one, e.g. +09:00 or Z")
    return moment


_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|day|days|h|hour|hours|m|min|minutes)\s*$")


def _interval(value: str) -> timedelta:
    match = _INTERVAL.match(value)
    if not match or float(match.group(1)) <= 0:
        usage_error(f"--interval {value!r} is not a duration; write it like 1d, 12h or 30m")
    amount, unit = float(match.group(1)), match.group(2)[0]
    units = {"d": "days", "h": "hours", "m": "minutes"}
    return timedelta(**{units[unit]: amount})


def _ready_engine(directory: Path) -> Engine:
    """The engine, or every error printed and exit 1: nothing runs on broken playbooks."""
    engine = load_engine(directory)
    if not engine.ok:
        for diagnostic in engine.errors:
            _print_diagnostic(engine, diagnostic)
        err_console.print(
            Text(f"{_plural(len(engine.errors), 'error')}: fix them first (playbook check)",
                 style="bold red")
        )
        raise typer.Exit(EXIT_PROBLEMS)
    return engine


def _fixture(engine: Engine, path: Path, frames: bool = False) -> Fixture | Frames:
    """The fixture, as objects or (`frames`) as tables; exit 1 with every problem."""
    try:
        return engine.load_frames(path) if frames else engine.load_fixture(path)
    except FixtureError as exc:
        for diagnostic in exc.diagnostics or []:
            err_console.print(Text(diagnostic.render(), style="red"))
        if not exc.diagnostics:
            err_console.print(Text(f"error: {exc}", style="bold red"))
        raise typer.Exit(EXIT_PROBLEMS) from None


def _evaluation(
    directory: Path,
    fixtures: Path,
    at: str | None,
    interval: str,
    accounts: list[str] | None,
    rule: str | None,
    explain: bool,
    stats: BulkStats | None = None,
    workers: int | None = None,
) -> Evaluation:
    engine = _ready_engine(directory)
    stats = stats if stats is not None else BulkStats()
    with stats.phase("load"):
        # Not explaining: the fixture as tables (JSON is read column-wise), for the bulk path.
        fixture = _fixture(engine, fixtures, frames=not explain)
    known = set(fixture.account_ids if not isinstance(fixture, Fixture)
                else (a.id for a in fixture.accounts))
    for wanted in accounts or ():
        if wanted not in known:
            usage_error(
                f"no account {wanted!r} in {fixtures}" + did_you_mean(wanted, sorted(known))
            )
    if rule is not None and rule not in {r.name.value for _, r in engine.program.rules()}:
        names = sorted({r.name.value for _, r in engine.program.rules()})
        usage_error(f"no rule named {rule!r}" + did_you_mean(rule, names))
    try:
        return engine.dry_run(
            fixture,
            _moment(at, "--at"),
            interval=_interval(interval),
            accounts=accounts,
            rule=rule,
            explain=explain,
            stats=stats,
            workers=workers,
        )
    except FixtureError as exc:
        usage_error(str(exc))


def _report_errors(evaluation: Evaluation) -> None:
    problems = [(o, e) for o in evaluation.outcomes for e in o.errors]
    for outcome, problem in problems:
        err_console.print(
            Text(f"{outcome.account} / {outcome.playbook} / {outcome.rule}: {problem}",
                 style="red")
        )
    if problems:
        raise typer.Exit(EXIT_PROBLEMS)


@app.command("dry-run")
def dry_run_command(
    directory: Path = typer.Argument(..., help="The playbook directory."),
    fixtures: Path = typer.Option(..., "--fixtures", help="Accounts to run against (YAML/JSON)."),
    at: str | None = typer.Option(None, "--at", help="The moment (ISO-8601); default: 'now'."),
    interval: str = typer.Option("1d", "--interval", help="Time between evaluations."),
    account: list[str] | None = typer.Option(None, "--account", help="Only this account."),
    output: ReportFormat = typer.Option(ReportFormat.table, "--format", "-f"),
    explain: bool = typer.Option(False, "--explain", help="Show why each rule did or not."),
    stats: bool = typer.Option(
        False, "--stats", help="Print throughput and time per phase on stderr."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Processes deciding accounts on a large fixture "
        "(default: $PLAYBOOK_WORKERS, else one per core; 1: this process only)."
    ),
) -> None:
    """Show what every rule would do to each account, delivering nothing."""
    if workers is None:
        try:
            workers = available_workers()
        except ConfigError as exc:
            usage_error(str(exc))
    counts = BulkStats()
    evaluation = _evaluation(directory, fixtures, at, interval, account, None, explain, counts,
                             workers)
    # What is alive now lives until the process ends: out of the collector's sight, its
    # full passes while the report is written no longer walk a million objects.
    gc.freeze()
    with counts.phase("render"):
        if output is ReportFormat.json:
            typer.echo(to_json(evaluation, explain=explain))
        else:
            print_table(evaluation, console, explain=explain)
    if stats:
        for line in counts.lines():
            err_console.print(Text(line, style="dim"))
    _report_errors(evaluation)


@app.command("explain")
def explain_command(
    directory: Path = typer.Argument(..., help="The playbook directory."),
    fixtures: Path = typer.Option(..., "--fixtures", help="Accounts to run against (YAML/JSON)."),
    account: str = typer.Option(..., "--account", help="The account to explain."),
    rule: str | None = typer.Option(None, "--rule", help="Only this rule."),
    at: str | None = typer.Option(None, "--at", help="The moment (ISO-8601); default: 'now'."),
    interval: str = typer.Option("1d", "--interval", help="Time between evaluations."),
    output: ReportFormat = typer.Option(ReportFormat.table, "--format", "-f"),
) -> None:
    """Explain, rule by rule, why each one fires or does not for one account."""
    evaluation = _evaluation(directory, fixtures, at, interval, [account], rule, True)
    if output is ReportFormat.json:
        typer.echo(to_json(evaluation, explain=True))
    else:
        print_explanation(evaluation, console)
    _report_errors(evaluation)


@app.command("test")
def test_command(
    directory: Path = typer.Argument(Path("."), help="The playbook directory and its tests."),
    junit: Path | None = typer.Option(None, "--junit", help="Also write a JUnit XML report."),
    coverage: bool = typer.Option(True, "--coverage/--no-coverage", help="Rules and "
                                  "conditions no test covered (default: shown)."),
) -> None:
    """Run the rule tests (*.test.yaml in DIR and DIR/tests) against the playbooks."""
    from .testing import find_test_files, print_report, run_tests, write_junit

    engine = _ready_engine(directory)
    files = find_test_files(directory)
    if not files:
        usage_error(f"no *.test.yaml files in {directory} or {directory / 'tests'}")
    report = run_tests(directory, engine, files=files, coverage=coverage)
    print_report(report, console, coverage=coverage)
    if junit is not None:
        try:
            write_junit(report, junit)
        except OSError as exc:
            usage_error(f"cannot write {junit}: {exc.strerror or exc}")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_PROBLEMS)


@app.command("fmt")
def fmt_command(
    directory: Path = typer.Argument(Path("."), help="The playbook directory (or one file)."),
    check: bool = typer.Option(
        False, "--check", help="Write nothing; exit 1 when a file would be reformatted."
    ),
) -> None:
    """Lay out every .playbook file under DIR in the one canonical layout."""
    from .format import fmt_command as run_fmt

    raise typer.Exit(run_fmt(directory, check))


if __name__ == "__main__":
    app()
