"""Diagnostics and the exception tree of playbook-engine.

Problems in what users write (playbooks, templates, fixtures, config) are collected as
`Diagnostic` values, never thrown one at a time. When a caller needs an exception,
the collected diagnostics travel inside one:

    PlaybookError                  the root: catch this to catch everything of ours
    ├── LoadError                  a playbook directory has errors (carries diagnostics)
    ├── FixtureError               a fixture file is malformed (carries diagnostics)
    ├── TemplateError              a template failed to compile or render
    ├── ConfigError                bad engine configuration
    └── TestFileError              a `*.test.yaml` file is malformed

Third-party exceptions (lark, jinja2, pydantic, yaml) are mapped to these at the
boundary that calls the library, with `raise ... from exc`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from .nodes import Span


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in user input, with where it is and how to fix it."""

    severity: Severity
    message: str
    span: Span
    # A stable identifier of the kind of problem, for --format json and tests.
    code: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.span.file,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
        }

    def render(self, source: str | None = None) -> str:
        """`file:line:col: error: message`, then the source line with a caret."""
        head = f"{self.span}: {self.severity.value}: {self.message}"
        if source is None or self.span.line < 1:
            return head
        lines = source.splitlines()
        if self.span.line > len(lines):
            return head
        text = lines[self.span.line - 1]
        if self.span.end_line == self.span.line and self.span.end_column > self.span.column:
            width = self.span.end_column - self.span.column
        else:
            width = max(1, len(text.rstrip()) - self.span.column + 1)
        gutter = f"{self.span.line:>5} | "
        pad = " " * (len(gutter) - 2) + "| "
        caret = " " * (self.span.column - 1) + "^" * max(1, width)
        return f"{head}\n{gutter}{text}\n{pad}{caret}"


def error(message: str, span: Span, code: str = "") -> Diagnostic:
    return Diagnostic(Severity.ERROR, message, span, code)


def warning(message: str, span: Span, code: str = "") -> Diagnostic:
    return Diagnostic(Severity.WARNING, message, span, code)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return sorted(
        diagnostics, key=lambda d: (d.span.file, d.span.line, d.span.column, d.message)
    )


def render_all(diagnostics: Sequence[Diagnostic], sources: dict[str, str]) -> str:
    return "\n".join(d.render(sources.get(d.span.file)) for d in diagnostics)


def to_json(diagnostics: Sequence[Diagnostic]) -> str:
    return json.dumps([d.as_dict() for d in diagnostics], ensure_ascii=False, indent=2)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when a candidate is close, else the empty string."""
    import difflib

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class PlaybookError(Exception):
    """The root of every exception playbook-engine raises on purpose."""

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.diagnostics: list[Diagnostic] = list(diagnostics)


class LoadError(PlaybookError):
    """A playbook directory could not be loaded without errors."""


class FixtureError(PlaybookError):
    """A fixture file is malformed or does not match the schema."""


class TemplateError(PlaybookError):
    """A template failed to compile or to render."""


class ConfigError(PlaybookError):
    """The engine's configuration is invalid."""


class TestFileError(PlaybookError):
    """A playbook test file (`*.test.yaml`) is malformed."""

    __test__ = False  # not a pytest test class
