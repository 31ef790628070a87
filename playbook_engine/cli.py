"""The `playbook` command: a thin layer over `Engine`, one function per sub-command.

    playbook check DIR [--format text|json] [--strict]

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

import json
from enum import StrEnum
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from . import __version__
from .engine import Engine
from .errors import Diagnostic, PlaybookError
from .settings import Settings

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


if __name__ == "__main__":
    app()
