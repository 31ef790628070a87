"""What every check reads: the program, its names, templates, settings and sources."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from .. import nodes as n
from ..errors import Diagnostic
from ..infer import Symbols
from ..program import Program
from ..settings import Settings
from ..templates import TemplateStore

__all__ = ["Check", "Context", "conditions", "expressions", "first_at", "keyword_span"]


@dataclass
class Context:
    """The program being checked, with what the checks need beside it."""

    program: Program
    templates: TemplateStore | None = None
    settings: Settings = field(default_factory=Settings)
    # File name -> text: lets checks see what the tree does not keep (a second `when`).
    sources: Mapping[str, str] = field(default_factory=dict)
    # Some file had syntax errors: what is missing may just be unparsed.
    incomplete: bool = False
    symbols: Symbols = field(init=False)
    _lines: dict[str, list[str]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.symbols = Symbols(self.program)

    def lines(self, file: str) -> list[str] | None:
        """The lines of a file, split once; None when its text was not given."""
        if file not in self._lines:
            text = self.sources.get(file)
            if text is None:
                return None
            self._lines[file] = text.replace("\r\n", "\n").split("\n")
        return self._lines[file]


Check = Callable[[Context], Iterable[Diagnostic]]


def first_at(span: n.Span, other: n.Span) -> str:
    """Where the first of two things is, said from the second's file."""
    return f"line {span.line}" if span.file == other.file else f"{span.file}:{span.line}"


def keyword_span(span: n.Span, word: str) -> n.Span:
    """The span of `word` written where `span` starts."""
    return n.Span(span.file, span.line, span.column, span.line, span.column + len(word))


def conditions(program: Program) -> Iterator[n.Expr]:
    """Every condition written: segments, `applies to`, and each rule's clauses."""
    for segment in program.segments.values():
        yield segment.condition
    for playbook in program.playbooks:
        if playbook.applies_to is not None:
            yield playbook.applies_to
        for rule in playbook.rules:
            for expr in (rule.when, rule.where, rule.unless, rule.stop_when):
                if expr is not None:
                    yield expr


def expressions(program: Program) -> Iterator[n.Expr]:
    """Every expression written: the conditions, metrics, `set` values, webhook values."""
    yield from conditions(program)
    for metric in program.metrics.values():
        yield metric.value
    for _, rule in program.rules():
        for action in rule.actions:
            if isinstance(action, n.SetField):
                yield action.value
            elif isinstance(action, n.PostWebhook):
                yield from (value for _, value in action.payload or ())
