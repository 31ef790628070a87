"""Text to nodes: parse one `.playbook` file into a `nodes.File` plus diagnostics.

The grammar is Lark's, LALR(1) with the contextual lexer (one pass, linear time).
`lalr.Driver` runs Lark's tables and builds the nodes while it parses (`_ToNodes`, one
method per rule); a text it cannot parse goes to Lark itself, whose exceptions are
turned into plain words here, at the boundary: no terminal name reaches the author.
A syntax error stops Lark at the first problem, so after one we parse each top-level
block on its own: every broken block in a file is reported in one run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.indenter import DedentError, Indenter

from . import nodes as n
from .errors import Diagnostic, error
from .lalr import Driver, GiveUp, Pos, Unsupported


def grammar_path() -> Path:
    """The grammar shipped in the wheel, else the one at the repository's top level."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "dsl" / "grammar.lark", here.parent / "dsl" / "grammar.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("dsl/grammar.lark is missing from the installation")


class _Indenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types: ClassVar[list[str]] = ["LPAR", "LSQB", "LBRACE"]
    CLOSE_PAREN_types: ClassVar[list[str]] = ["RPAR", "RSQB", "RBRACE"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    # Every parser state also lexes NAME, so that a word is always read whole: without
    # it, where only keywords may come, `whenx` lexed as `when` + `x` and `owners` as
    # `owner` + `s`, and typos like `statusactive` parsed as `status active`.
    always_accept = ("_NL", "NAME")


@lru_cache(maxsize=1)
def _parser() -> Lark:
    """Built once per process; the LALR tables are cached on disk between processes.

    Building them takes ~0.1 s, a third of a cold `playbook check`; loading them ~0.01 s.
    """
    grammar = grammar_path().read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        postlex=_Indenter(),
        propagate_positions=True,
        maybe_placeholders=False,
        cache=_cache_file(grammar),
    )


def _cache_file(grammar: str) -> str | bool:
    """A file in the user's cache directory, named by everything the tables depend on.

    Lark checks its own hash of the grammar and options when it loads the file; the
    name adds the postlexer's settings, which that hash leaves out. Not in the shared
    temporary directory (Lark's default): the file is a pickle. False (no cache) when
    the directory cannot be made.
    """
    import hashlib
    import os
    import sys

    import lark

    indenter = {k: v for k, v in vars(_Indenter).items()
                if isinstance(v, (str, int, tuple, list)) and not k.startswith("__")}
    key = f"{grammar}{sorted(indenter.items())!r}{lark.__version__}{sys.version_info[:2]}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / "playbook-engine"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return str(folder / f"grammar-{digest}.lark")


def parse(text: str, filename: str) -> tuple[n.File, list[Diagnostic]]:
    """Parse one file; on syntax errors, recover block by block and report each."""
    source = _normalise(text)
    comments = tuple(_comments(source))
    tabs = list(_tabs(source, filename))
    try:
        items = _parse_items(source, filename)
        return n.File(filename, items, comments, _file_span(filename, source)), tabs
    except _SyntaxProblem:
        pass
    found: list[n.Item] = []
    diagnostics: list[Diagnostic] = tabs
    for padded in _blocks(source):
        try:
            found.extend(_parse_items(padded, filename))
        except _SyntaxProblem as problem:
            diagnostics.extend(problem.diagnostics)
    return n.File(filename, tuple(found), comments, _file_span(filename, source)), diagnostics


def parse_expression(text: str, filename: str = "<expr>") -> n.Expr:
    """Parse a condition or value on its own (for tests and the Python API)."""
    file, diagnostics = parse(f"segment _expr: {text}\n", filename)
    if diagnostics:
        raise ValueError(diagnostics[0].message)
    item = file.items[0]
    assert isinstance(item, n.Segment)
    return item.condition


class _SyntaxProblem(Exception):
    def __init__(self, diagnostic: Diagnostic, *more: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        self.diagnostics = [diagnostic, *more]


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    return text if text.endswith("\n") else text + "\n"


def _file_span(filename: str, source: str) -> n.Span:
    return n.Span(filename, 1, 1, source.count("\n") + 1, 1)


def _parse_items(source: str, filename: str) -> tuple[n.Item, ...]:
    to_nodes = _ToNodes(filename)
    driver = _driver()
    try:
        if driver is None:
            raise GiveUp("no driver")
        result = driver.parse(source, to_nodes)
    except GiveUp:
        # Lark says what is wrong, in the terms the messages are written from.
        to_nodes = _ToNodes(filename)
        result = to_nodes.from_tree(_lark_parse(source, filename))
    assert isinstance(result, tuple)
    if to_nodes.repeated:
        repeated = sorted(to_nodes.repeated, key=lambda d: (d.span.line, d.span.column))
        raise _SyntaxProblem(*repeated)
    return result


def _lark_parse(source: str, filename: str) -> Tree[Token]:
    try:
        return _parser().parse(source)
    except UnexpectedInput as exc:
        raise _SyntaxProblem(_describe(exc, source, filename)) from exc
    except DedentError as exc:
        line = _dedent_line(source)
        span = n.Span(filename, line, 1, line, 2)
        raise _SyntaxProblem(
            error(
                "this line's indentation does not match any block above it; "
                "indent it exactly like the line it belongs with",
                span,
                "syntax",
            )
        ) from exc


@lru_cache(maxsize=1)
def _driver() -> Driver | None:
    """The lean driver over `_parser()`'s tables; None (Lark alone) if it cannot follow them."""
    try:
        return Driver(_parser(), _METHODS)
    except (Unsupported, AttributeError):  # AttributeError: a Lark whose insides moved
        return None


def _blocks(source: str) -> Iterator[str]:
    """Each top-level block, padded with blank lines so that line numbers stay true."""
    lines = source.split("\n")
    starts = [
        i for i, line in enumerate(lines) if line[:1] not in ("", " ", "\t", "#")
    ]
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        yield "\n" * start + "\n".join(lines[start:end]) + "\n"


def _dedent_line(source: str) -> int:
    widths: list[int] = [0]
    for number, line in enumerate(source.split("\n"), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        width = len(line) - len(line.lstrip(" \t"))
        if width > widths[-1]:
            widths.append(width)
            continue
        while width < widths[-1]:
            widths.pop()
        if width != widths[-1]:
            return number
    return 1


def _tabs(source: str, filename: str) -> Iterator[Diagnostic]:
    """A tab in a code line's indentation: blocks nest by spaces, and a tab's width is a
    matter of the editor, so the block a tabbed line belongs to would be a guess."""
    if "\t" not in source:
        return
    for number, line in enumerate(source.split("\n"), start=1):
        code = line.lstrip(" \t")
        if code and not code.startswith("#") and "\t" in line[: len(line) - len(code)]:
            column = line.index("\t") + 1
            span = n.Span(filename, number, column, number, column + 1)
            yield error("a tab in the indentation; indent with spaces", span, "syntax")


def comment_start(line: str) -> int | None:
    """Where a line's `#` comment starts, or None (a `#` inside a string starts none)."""
    in_string = escaped = False
    for col, ch in enumerate(line):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "#":
            return col
    return None


def _comments(source: str) -> Iterator[n.Comment]:
    """Every `#` comment outside a string, for the formatter to keep."""
    for number, line in enumerate(source.split("\n"), start=1):
        col = comment_start(line) if "#" in line else None
        if col is not None:
            trailing = bool(line[:col].strip())
            yield n.Comment(line[col:].rstrip(), number, col + 1, trailing)


# ---------------------------------------------------------------- errors in plain words

_WORDS = {
    "NAME": "a name",
    "STRING": 'a text in double quotes, like "Welcome"',
    "NUMBER": "a number",
    "PERCENT": "a percentage",
    "CMP": "a comparison such as < or >=",
    "_NL": "the end of the line",
    "_INDENT": "an indented block",
    "_DEDENT": "a line with less indentation",
    "$END": "the end of the file",
    "UNIT": "a unit such as days",
    "TYPE_WORD": "a type (text, number, yes/no, date, user or one of ...)",
    "AGG_FUNC": "sum, average, min or max",
    "IN_LAST": "a window such as 'in last 30 days'",
    "_CONT_AND": "'and'",
    "_CONT_OR": "'or'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
}

# Expected-token sets that describe one idea are summarised rather than listed.
_OPERAND = {"NAME", "NUMBER", "STRING", "PERCENT", "LPAR"}


def _token_words(name: str) -> str:
    if name in _WORDS:
        return _WORDS[name]
    for term in _parser().terminals:
        if term.name == name:
            return f"'{term.pattern.value}'" if term.pattern.type == "str" else name.lower()
    return name.lower()


# After a complete value almost anything may follow (LALR merges the states of every
# context a value appears in), so the list is summarised.
_AFTER_VALUE = {"CMP", "PLUS", "STAR"}
_OPERATORS = {
    "CMP", "IS", "IN", "NOT", "PLUS", "MINUS", "STAR", "SLASH", "AND", "OR", "_CONT_AND",
    "_CONT_OR", "CONTAINS", "STARTS", "ENDS", "DROPS", "RISES", "CHANGES", "FOR", "DOT",
    "COMPLETE", "INCOMPLETE", "IN_LAST", "COMMA", "RPAR", "RSQB", "RBRACE", "TO",
    "SEND", "CREATE", "POST", "NOTIFY", "SET", "ADD", "REMOVE", "WAIT",
}


def _expected_words(expected: set[str]) -> str:
    names = set(expected)
    parts: list[str] = []
    if _AFTER_VALUE <= names:
        parts.append("an operator (and, or, is, <, +, ...)")
        names -= _OPERATORS
    if _ACTION_STARTS <= names:
        parts.append("an action (send, create, post, notify, set, add, remove or wait)")
        names -= _ACTION_STARTS
    if _OPERAND <= names:
        parts.append("a value (a field, a number or a text)")
        names -= _OPERAND | {"MINUS", "COUNT", "DISTINCT", "AGG_FUNC", "LAST", "DAYS"}
        names -= {"HAS", "NOT"}
    words = sorted({_token_words(name) for name in names if not name.startswith("__")})
    parts.extend(words)
    if not parts:
        return "something else"
    if len(parts) > 6:
        parts = [*parts[:6], "..."]
    return ", ".join(parts[:-1]) + (" or " if len(parts) > 1 else "") + parts[-1]


def _found_words(token: Token) -> str:
    if token.type == "$END":
        return "the end of the file"
    if token.type == "_NL":
        return "the end of the line"
    if token.type in ("_INDENT", "_DEDENT"):
        return "a change of indentation"
    return f"'{token.value}'"


def _describe(exc: UnexpectedInput, source: str, filename: str) -> Diagnostic:
    unclosed = _unclosed_bracket(source, exc)
    if unclosed is not None:
        line, column, bracket = unclosed
        closing = {"(": ")", "[": "]", "{": "}"}[bracket]
        return error(
            f"this '{bracket}' is never closed; add the matching '{closing}'",
            n.Span(filename, line, column, line, column + 1),
            "syntax",
        )
    if isinstance(exc, UnexpectedToken) and exc.token.type in ("_CONT_AND", "_CONT_OR"):
        # The token holds the line break before the word; point at the word.
        token = exc.token
        word = "and" if token.type == "_CONT_AND" else "or"
        line, end = token.end_line or 1, token.end_column or 1
        return error(
            f"a line that starts with '{word}' continues a condition, but the line above "
            "does not end with one",
            n.Span(filename, line, end - len(word), line, end),
            "syntax",
        )
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        line, column = _token_position(token, source)
        invisible = token.type in ("_NL", "$END", "_INDENT", "_DEDENT")
        width = 1 if invisible else len(str(token.value))
        names = _state_expected(exc) or set(exc.expected)
        hint = _hint(token, names, source)
        if token.type not in ("_NL", "$END", "_INDENT", "_DEDENT") and _starts_line(token, source):
            # A line may always end early with a blank line; saying so here misleads.
            names.discard("_NL")
        expected = _expected_words(names)
        if token.type == "_NL":
            message = f"the line ends too early; expected {expected}"
        elif token.type in ("$END", "_DEDENT") and names == {"_INDENT"}:
            message = "expected an indented block after this line"
        elif token.type == "$END":
            message = f"the file ends too early; expected {expected}"
        elif token.type in ("_INDENT", "_DEDENT"):
            message = f"the indentation changes here; expected {expected}"
        elif not names:
            message = (
                f"unexpected {_found_words(token)}; this line does not belong in the block "
                "above it; check its indentation"
            )
        else:
            message = f"unexpected {_found_words(token)}; expected {expected}"
        if hint:
            message = hint
        span = n.Span(filename, line, column, line, column + max(1, width))
        return error(message, span, "syntax")
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        ch = source[pos] if pos < len(source) else ""
        shown = ch if ch.isprintable() else repr(ch)[1:-1]
        message = f"unexpected character '{shown}'"
        if ch == "'":
            message += "; text goes in double quotes, like \"Welcome\""
        elif ch == "\t":
            message = "a tab in the indentation; indent with spaces"
        elif _state_expected(exc) or exc.allowed:
            message += f"; expected {_expected_words(_state_expected(exc) or set(exc.allowed))}"
        span = n.Span(filename, exc.line, exc.column, exc.line, exc.column + 1)
        return error(message, span, "syntax")
    if isinstance(exc, UnexpectedEOF):
        line = source.count("\n")
        span = n.Span(filename, line, 1, line, 2)
        return error(
            f"the file ends too early; expected {_expected_words(set(exc.expected))}",
            span,
            "syntax",
        )
    span = n.Span(filename, getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1, 0, 0)
    return error(str(exc).splitlines()[0], span, "syntax")


def _state_expected(exc: UnexpectedInput) -> set[str]:
    """The terminals the parser could take where it stopped.

    A lexer-level error (and the contextual lexer's retry with every terminal) reports
    what that state's lexer knows, where keywords are folded into NAME; the parse table
    names them.
    """
    state = getattr(exc, "state", None)
    try:
        table = state.parse_conf.parse_table.states[state.position]  # type: ignore[union-attr]
    except (AttributeError, KeyError, TypeError):
        return set()
    return {name for name in table if name.isupper()}


def _token_position(token: Token, source: str) -> tuple[int, int]:
    """Where to point: for a newline token, the end of the line it ends."""
    line = token.line or 1
    column = token.column or 1
    if token.type == "_NL" or token.type == "$END":
        lines = source.split("\n")
        if token.type == "$END":
            # The last line with code on it (blocks are padded with blank lines).
            line = max(
                [k for k, text in enumerate(lines, start=1) if code_of(text).strip()] or [1]
            )
        text = lines[line - 1] if line - 1 < len(lines) else ""
        column = len(code_of(text).rstrip()) + 1
    return line, column


def code_of(line: str) -> str:
    """A line without its comment."""
    col = comment_start(line)
    return line if col is None else line[:col]


def _starts_line(token: Token, source: str) -> bool:
    start = token.start_pos
    if not isinstance(start, int):
        return False
    line_start = source.rfind("\n", 0, start) + 1
    return not source[line_start:start].strip()


def _unclosed_bracket(source: str, exc: UnexpectedInput) -> tuple[int, int, str] | None:
    """An opening bracket before the error, on an earlier line, that was never closed.

    Newlines inside brackets are not line ends, so an unclosed `(` makes the parser
    fail somewhere later; the bracket is what the author has to fix.
    """
    token = getattr(exc, "token", None)
    position = getattr(exc, "pos_in_stream", None)
    if isinstance(token, Token) and token.type == "$END":
        end = len(source)
    elif isinstance(token, Token) and isinstance(token.start_pos, int):
        end = token.start_pos
    elif isinstance(position, int):
        end = position
    else:
        return None
    error_line = source.count("\n", 0, end) + 1
    stack: list[tuple[int, int, str]] = []
    # The whole source: a bracket closed after the error is not the problem.
    for number, text in enumerate(source.split("\n"), start=1):
        in_string = escaped = False
        for col, ch in enumerate(code_of(text), start=1):
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch in "([{":
                stack.append((number, col, ch))
            elif ch in ")]}" and stack:
                stack.pop()
    before = [b for b in stack if b[0] < error_line or (b[0] == error_line and end == len(source))]
    return before[-1] if before else None


def _hint(token: Token, expected: set[str], source: str) -> str | None:
    """Hand-written messages for mistakes authors make often."""
    value = str(token.value)
    start = token.start_pos if isinstance(token.start_pos, int) else 0
    if value == "=" and "CMP" not in expected and source[start - 1 : start] == "=":
        return "use a single '=' to compare, e.g. seats = 10"
    if value == "==":
        return "use a single '=' to compare, e.g. seats = 10"
    if token.type == "_INDENT":
        return "unexpected indentation; this line is indented more than the block it is in"
    if "THEN" in expected and token.type == "_NL" and "IN_LAST" not in expected:
        return (
            "the rule's actions are missing; write 'then' followed by an action, "
            'such as then send email "welcome" to admin'
        )
    if value in _ACTION_START_WORDS and "THEN" in expected and token.type not in expected:
        return (
            f"'{value}' starts an action, but this line needs 'then' first; write "
            f"'then' at the start of the line, or put the action on the 'when' line"
        )
    if token.type == "NAME" and value in _ACTION_WORDS and (
        "THEN" in expected or _ACTION_STARTS <= expected
    ):
        return f"'{value}' cannot start an action; actions begin with send, create, post, " \
            "notify, set, add, remove or wait"
    return None


_ACTION_STARTS = {"SEND", "CREATE", "POST", "NOTIFY", "SET", "ADD", "REMOVE", "WAIT"}
_ACTION_START_WORDS = {word.lower() for word in _ACTION_STARTS}
_ACTION_WORDS = {"email", "mail", "task", "webhook", "alert", "message", "call"}


# ---------------------------------------------------------------- tree to nodes


def _tok_span(filename: str, tok: Token) -> n.Span:
    return n.Span(
        filename, tok.line or 0, tok.column or 0, tok.end_line or 0, tok.end_column or 0
    )


def _unquote(raw: str) -> str:
    body = raw[1:-1]
    if "\\" not in body:
        return body
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


_UNITS = {
    "day": "day", "days": "day", "hour": "hour", "hours": "hour", "week": "week", "weeks": "week"
}


class _ToNodes:
    """Builds frozen nodes, one method per rule or alias of the grammar, each given the
    children Lark keeps and where the rule's text stands (`pos`, None for no text)."""

    def __init__(self, filename: str) -> None:
        self.f = filename
        # A clause given twice (two `when` lines, two owners): reported, never dropped.
        self.repeated: list[Diagnostic] = []

    def from_tree(self, tree: Tree[Token]) -> object:
        """The nodes of a parse tree Lark built (when the lean driver gave up on a text)."""
        children = [self.from_tree(c) if isinstance(c, Tree) else c for c in tree.children]
        method = _METHODS.get(tree.data)
        if method is None:
            return Tree(tree.data, children, tree.meta)
        meta = tree.meta
        if getattr(meta, "empty", True):
            return method(self, None, children)
        return method(self, (meta.line, meta.column, meta.end_line, meta.end_column), children)

    def _keep_first(self, found: dict[str, object], key: str, value: object) -> None:
        if key not in found:
            found[key] = value
            return
        first = getattr(found[key], "span", None)
        span = getattr(value, "span", None)
        if not isinstance(span, n.Span) or not isinstance(first, n.Span):
            return
        what, advice = _REPEATED.get(key, (key, ""))
        self.repeated.append(
            error(f"{what} is given twice (first on line {first.line}){advice}", span, "syntax")
        )

    def _s(self, pos: Pos | None) -> n.Span:
        if pos is None:
            return n.NO_SPAN
        return n.Span(self.f, pos[0], pos[1], pos[2], pos[3])

    def _name(self, tok: Token) -> n.Name:
        return n.Name((str(tok),), _tok_span(self.f, tok))

    def _str(self, tok: Token) -> n.String:
        return n.String(_unquote(str(tok)), _tok_span(self.f, tok))

    # -- file and schema
    def start(self, pos: Pos | None, items: list[n.Item]) -> tuple[n.Item, ...]:
        return tuple(items)

    def schema(self, pos: Pos | None, parts: list[object]) -> n.Schema:
        fields: list[n.FieldDecl] = []
        roles: list[n.Name] = []
        events: list[n.EventDecl] = []
        milestones: list[n.MilestoneDecl] = []
        for part in parts:
            if isinstance(part, tuple) and part and part[0] == "fields":
                fields.extend(part[1])
            elif isinstance(part, tuple) and part and part[0] == "roles":
                roles.extend(part[1])
            elif isinstance(part, n.EventDecl):
                events.append(part)
            elif isinstance(part, n.MilestoneDecl):
                milestones.append(part)
        return n.Schema(
            tuple(fields), tuple(roles), tuple(events), tuple(milestones), self._s(pos)
        )

    def account_block(
        self, pos: Pos | None, fields: list[n.FieldDecl]
    ) -> tuple[str, list[n.FieldDecl]]:
        return ("fields", fields)

    def roles_line(self, pos: Pos | None, names: list[Token]) -> tuple[str, list[n.Name]]:
        return ("roles", [self._name(t) for t in names])

    def field_decl(self, pos: Pos | None, args: list[object]) -> n.FieldDecl:
        tok, ftype = args
        assert isinstance(tok, Token) and isinstance(ftype, n.FieldType)
        return n.FieldDecl(self._name(tok), ftype, self._s(pos))

    def simple_type(self, pos: Pos | None, args: list[Token]) -> n.FieldType:
        kind = str(args[0])
        return n.FieldType(kind, (), self._s(pos))  # type: ignore[arg-type]

    def enum_type(self, pos: Pos | None, args: list[Token]) -> n.FieldType:
        return n.FieldType("enum", tuple(self._name(t) for t in args), self._s(pos))

    def event_block(self, pos: Pos | None, args: list[object]) -> n.EventDecl:
        tok = args[0]
        assert isinstance(tok, Token)
        fields = tuple(a for a in args[1:] if isinstance(a, n.FieldDecl))
        return n.EventDecl(self._name(tok), fields, self._s(pos))

    def milestone_block(self, pos: Pos | None, args: list[Token]) -> n.MilestoneDecl:
        name, starts, done = args
        return n.MilestoneDecl(
            self._name(name), self._name(starts), self._name(done), self._s(pos)
        )

    def segment(self, pos: Pos | None, args: list[object]) -> n.Segment:
        tok, expr = args
        assert isinstance(tok, Token)
        return n.Segment(self._name(tok), expr, self._s(pos))  # type: ignore[arg-type]

    def metric(self, pos: Pos | None, args: list[object]) -> n.Metric:
        tok, expr = args
        assert isinstance(tok, Token)
        return n.Metric(self._name(tok), expr, self._s(pos))  # type: ignore[arg-type]

    # -- playbooks
    def playbook(self, pos: Pos | None, args: list[object]) -> n.Playbook:
        name = args[0]
        assert isinstance(name, Token)
        parts: dict[str, object] = {}
        rules: list[n.Rule] = []
        for part in args[1:]:
            if isinstance(part, n.Rule):
                rules.append(part)
            elif isinstance(part, tuple):
                key, value = part
                self._keep_first(parts, key, value)
        return n.Playbook(
            self._str(name),
            tuple(rules),
            description=parts.get("description"),  # type: ignore[arg-type]
            owner=parts.get("owner"),  # type: ignore[arg-type]
            status=parts.get("status"),  # type: ignore[arg-type]
            applies_to=parts.get("applies_to"),  # type: ignore[arg-type]
            span=self._s(pos),
        )

    def description(self, pos: Pos | None, args: list[Token]) -> tuple[str, n.String]:
        return ("description", self._str(args[0]))

    def owner(self, pos: Pos | None, args: list[Token]) -> tuple[str, n.String]:
        return ("owner", self._str(args[0]))

    def status(self, pos: Pos | None, args: list[Token]) -> tuple[str, n.Name]:
        return ("status", self._name(args[0]))

    def applies(self, pos: Pos | None, args: list[n.Expr]) -> tuple[str, n.Expr]:
        return ("applies_to", args[0])

    def rule(self, pos: Pos | None, args: list[object]) -> n.Rule:
        name = args[0]
        assert isinstance(name, Token)
        fields: dict[str, object] = {"actions": []}
        lines = [a for a in args[1:] if isinstance(a, tuple)]
        for kind, value in lines:
            if kind == "actions":
                fields["actions"].extend(value)  # type: ignore[attr-defined]
            elif kind == "trigger":
                for key, item in value.items():
                    if key == "actions":
                        fields["actions"].extend(item)  # type: ignore[attr-defined]
                        if item:
                            fields["inline"] = True
                    else:
                        self._keep_first(fields, key, item)
            else:
                self._keep_first(fields, kind, value)
        return n.Rule(
            name=self._str(name),
            when=fields.get("when"),  # type: ignore[arg-type]
            event=fields.get("event"),  # type: ignore[arg-type]
            where=fields.get("where"),  # type: ignore[arg-type]
            actions=tuple(fields["actions"]),  # type: ignore[arg-type]
            once_per_account="once_per_account" in fields,
            at_most_every=fields.get("at_most_every"),  # type: ignore[arg-type]
            repeat_every=fields.get("repeat_every"),  # type: ignore[arg-type]
            unless=fields.get("unless"),  # type: ignore[arg-type]
            priority=fields.get("priority"),  # type: ignore[arg-type]
            stop_when=fields.get("stop_when"),  # type: ignore[arg-type]
            inline=bool(fields.get("inline", False)),
            span=self._s(pos),
        )

    def when_line(self, pos: Pos | None, args: list[object]) -> tuple[str, dict[str, object]]:
        return ("trigger", {"when": args[0], "actions": list(args[1:])})

    def on_line(self, pos: Pos | None, args: list[object]) -> tuple[str, dict[str, object]]:
        tok = args[0]
        assert isinstance(tok, Token)
        found: dict[str, object] = {"event": self._name(tok), "actions": []}
        for a in args[1:]:
            if isinstance(a, tuple) and a[0] == "where":
                found["where"] = a[1]
            else:
                found["actions"].append(a)  # type: ignore[attr-defined]
        return ("trigger", found)

    def then_line(self, pos: Pos | None, args: list[n.Action]) -> tuple[str, list[n.Action]]:
        return ("actions", list(args))

    def then_block(self, pos: Pos | None, args: list[n.Action]) -> tuple[str, list[n.Action]]:
        return ("actions", list(args))

    def once_per_account(self, pos: Pos | None, args: list[object]) -> tuple[str, _Spanned]:
        # The span stands for True, so that a repeated line can be pointed at.
        return ("once_per_account", _Spanned(self._s(pos)))

    def at_most_every(self, pos: Pos | None, args: list[n.Duration]) -> tuple[str, n.Duration]:
        return ("at_most_every", args[0])

    def repeat_every(self, pos: Pos | None, args: list[n.Duration]) -> tuple[str, n.Duration]:
        return ("repeat_every", args[0])

    def unless(self, pos: Pos | None, args: list[n.Expr]) -> tuple[str, n.Expr]:
        return ("unless", args[0])

    def rule_priority(self, pos: Pos | None, args: list[Token]) -> tuple[str, n.Name]:
        return ("priority", self._name(args[0]))

    def stop_when(self, pos: Pos | None, args: list[n.Expr]) -> tuple[str, n.Expr]:
        return ("stop_when", args[0])

    # -- actions
    def send_email(self, pos: Pos | None, args: list[object]) -> n.SendEmail:
        tpl, to = args[0], args[1]
        # `cc` arrives as ("cc", recipients), as in send_template.
        cc = args[2][1] if len(args) > 2 else ()  # type: ignore[index]
        assert isinstance(tpl, Token)
        return n.SendEmail(self._str(tpl), to, cc, False, self._s(pos))  # type: ignore[arg-type]

    def send_template(self, pos: Pos | None, args: list[object]) -> n.SendEmail:
        tpl = args[0]
        assert isinstance(tpl, Token)
        to: tuple[n.Recipient, ...] = ()
        cc: tuple[n.Recipient, ...] = ()
        for a in args[1:]:
            if isinstance(a, tuple) and a and a[0] == "cc":
                cc = a[1]
            elif isinstance(a, tuple):
                to = a
        return n.SendEmail(self._str(tpl), to, cc, not to, self._s(pos))

    def cc(
        self, pos: Pos | None, args: list[tuple[n.Recipient, ...]]
    ) -> tuple[str, tuple[n.Recipient, ...]]:
        return ("cc", args[0])

    def recipients(self, pos: Pos | None, args: list[n.Recipient]) -> tuple[n.Recipient, ...]:
        return tuple(args)

    def create_task(self, pos: Pos | None, args: list[object]) -> n.CreateTask:
        title = args[0]
        assert isinstance(title, Token)
        opts: dict[str, Any] = dict(a for a in args[1:] if isinstance(a, tuple))
        return n.CreateTask(
            self._str(title),
            opts.get("for"),
            opts.get("due"),
            opts.get("priority"),
            self._s(pos),
        )

    def task_for(self, pos: Pos | None, args: list[n.Recipient]) -> tuple[str, n.Recipient]:
        return ("for", args[0])

    def task_due(self, pos: Pos | None, args: list[n.Duration]) -> tuple[str, n.Duration]:
        return ("due", args[0])

    def task_priority(self, pos: Pos | None, args: list[Token]) -> tuple[str, n.Name]:
        return ("priority", self._name(args[0]))

    def post_webhook(self, pos: Pos | None, args: list[object]) -> n.PostWebhook:
        endpoint = args[0]
        assert isinstance(endpoint, Token)
        payload = args[1] if len(args) > 1 else None
        return n.PostWebhook(self._str(endpoint), payload, self._s(pos))  # type: ignore[arg-type]

    def payload(
        self, pos: Pos | None, pairs: list[tuple[str, n.Expr]]
    ) -> tuple[tuple[str, n.Expr], ...]:
        return tuple(p for p in pairs if p is not None)

    def pair(self, pos: Pos | None, args: list[object]) -> tuple[str, n.Expr]:
        key, value = args
        assert isinstance(key, Token)
        text = _unquote(str(key)) if key.type == "STRING" else str(key)
        return (text, value)  # type: ignore[return-value]

    def notify(self, pos: Pos | None, args: list[Token]) -> n.Notify:
        return n.Notify(self._str(args[0]), self._str(args[1]), self._s(pos))

    def set_field(self, pos: Pos | None, args: list[object]) -> n.SetField:
        name, value = args
        assert isinstance(name, n.Name)
        return n.SetField(name, value, self._s(pos))  # type: ignore[arg-type]

    def add_tag(self, pos: Pos | None, args: list[n.String]) -> n.TagChange:
        return n.TagChange("add", args[0], self._s(pos))

    def remove_tag(self, pos: Pos | None, args: list[n.String]) -> n.TagChange:
        return n.TagChange("remove", args[0], self._s(pos))

    def wait(self, pos: Pos | None, args: list[n.Duration]) -> n.Wait:
        return n.Wait(args[0], self._s(pos))

    # -- expressions
    def or_expr(self, pos: Pos | None, args: list[n.Expr]) -> n.Expr:
        result = args[0]
        for right in args[1:]:
            result = n.Or(result, right, _join(result, right))
        return result

    def and_expr(self, pos: Pos | None, args: list[n.Expr]) -> n.Expr:
        result = args[0]
        for right in args[1:]:
            result = n.And(result, right, _join(result, right))
        return result

    def not_(self, pos: Pos | None, args: list[n.Expr]) -> n.Not:
        return n.Not(args[0], self._s(pos))

    def for_(self, pos: Pos | None, args: list[object]) -> n.For:
        return n.For(args[0], args[1], self._s(pos))  # type: ignore[arg-type]

    def compare(self, pos: Pos | None, args: list[object]) -> n.Compare:
        left, op, right = args
        return n.Compare(str(op), left, right, self._s(pos))  # type: ignore[arg-type]

    def is_(self, pos: Pos | None, args: list[n.Expr]) -> n.Is:
        return n.Is(args[0], _as_literal(args[1]), False, self._s(pos))

    def is_not(self, pos: Pos | None, args: list[n.Expr]) -> n.Is:
        return n.Is(args[0], _as_literal(args[1]), True, self._s(pos))

    def is_missing(self, pos: Pos | None, args: list[n.Expr]) -> n.Missing:
        return n.Missing(args[0], False, self._s(pos))

    def is_present(self, pos: Pos | None, args: list[n.Expr]) -> n.Missing:
        return n.Missing(args[0], True, self._s(pos))

    def in_(self, pos: Pos | None, args: list[object]) -> n.In:
        return n.In(args[0], args[1], False, self._s(pos))  # type: ignore[arg-type]

    def not_in(self, pos: Pos | None, args: list[object]) -> n.In:
        return n.In(args[0], args[1], True, self._s(pos))  # type: ignore[arg-type]

    def contains(self, pos: Pos | None, args: list[n.Expr]) -> n.TextTest:
        return n.TextTest("contains", args[0], args[1], self._s(pos))

    def starts_with(self, pos: Pos | None, args: list[n.Expr]) -> n.TextTest:
        return n.TextTest("starts with", args[0], args[1], self._s(pos))

    def ends_with(self, pos: Pos | None, args: list[n.Expr]) -> n.TextTest:
        return n.TextTest("ends with", args[0], args[1], self._s(pos))

    def has_tag(self, pos: Pos | None, args: list[n.String]) -> n.HasTag:
        return n.HasTag(args[0], self._s(pos))

    def after(self, pos: Pos | None, args: list[object]) -> n.Relative:
        return n.Relative("after", args[0], args[1], self._s(pos))  # type: ignore[arg-type]

    def before(self, pos: Pos | None, args: list[object]) -> n.Relative:
        return n.Relative("before", args[0], args[1], self._s(pos))  # type: ignore[arg-type]

    def complete(self, pos: Pos | None, args: list[Token]) -> n.MilestoneState:
        return n.MilestoneState(self._name(args[0]), True, None, self._s(pos))

    def incomplete(self, pos: Pos | None, args: list[Token]) -> n.MilestoneState:
        return n.MilestoneState(self._name(args[0]), False, None, self._s(pos))

    def incomplete_after(self, pos: Pos | None, args: list[object]) -> n.MilestoneState:
        tok, duration = args
        assert isinstance(tok, Token)
        return n.MilestoneState(self._name(tok), False, duration, self._s(pos))  # type: ignore[arg-type]

    def drops_below(self, pos: Pos | None, args: list[n.Expr]) -> n.Crossing:
        return n.Crossing("below", args[0], args[1], self._s(pos))

    def rises_above(self, pos: Pos | None, args: list[n.Expr]) -> n.Crossing:
        return n.Crossing("above", args[0], args[1], self._s(pos))

    def changes(self, pos: Pos | None, args: list[n.Expr]) -> n.Changes:
        return n.Changes(args[0], None, None, self._s(pos))

    def changes_to(self, pos: Pos | None, args: list[n.Expr]) -> n.Changes:
        return n.Changes(args[0], None, _as_literal(args[1]), self._s(pos))

    def changes_from(self, pos: Pos | None, args: list[n.Expr]) -> n.Changes:
        return n.Changes(args[0], _as_literal(args[1]), None, self._s(pos))

    def changes_from_to(self, pos: Pos | None, args: list[n.Expr]) -> n.Changes:
        return n.Changes(args[0], _as_literal(args[1]), _as_literal(args[2]), self._s(pos))

    def arith(self, pos: Pos | None, args: list[object]) -> n.Arith:
        left, op, right = args
        return n.Arith(str(op), left, right, self._s(pos))  # type: ignore[arg-type]

    def negate(self, pos: Pos | None, args: list[object]) -> n.Expr:
        operand = args[1]
        if isinstance(operand, n.Number):
            return n.Number(-operand.value, operand.percent, self._s(pos))
        return n.Negate(operand, self._s(pos))  # type: ignore[arg-type]

    def paren(self, pos: Pos | None, args: list[n.Expr]) -> n.Paren:
        return n.Paren(args[0], self._s(pos))

    def list_value(self, pos: Pos | None, items: list[object]) -> n.ListValue:
        return n.ListValue(tuple(i for i in items if i is not None), self._s(pos))  # type: ignore[misc]

    def bare_name(self, pos: Pos | None, args: list[Token]) -> n.Name:
        return self._name(args[0])

    def count(self, pos: Pos | None, args: list[object]) -> n.Count:
        event = args[0]
        assert isinstance(event, Token)
        where, window = _where_window(args[1:])
        return n.Count(self._name(event), where, window, self._s(pos))

    def distinct(self, pos: Pos | None, args: list[object]) -> n.Aggregate:
        fld, event = args[0], args[1]
        assert isinstance(fld, Token) and isinstance(event, Token)
        where, window = _where_window(args[2:])
        return n.Aggregate(
            "distinct", self._name(fld), self._name(event), where, window, self._s(pos)
        )

    def aggregate(self, pos: Pos | None, args: list[object]) -> n.Aggregate:
        func, fld, event = args[0], args[1], args[2]
        assert isinstance(func, Token) and isinstance(fld, Token) and isinstance(event, Token)
        where, window = _where_window(args[3:])
        return n.Aggregate(
            str(func), self._name(fld), self._name(event), where, window, self._s(pos)  # type: ignore[arg-type]
        )

    def where(self, pos: Pos | None, args: list[n.Expr]) -> tuple[str, n.Expr]:
        return ("where", args[0])

    def window(self, pos: Pos | None, args: list[object]) -> tuple[str, n.Duration]:
        return ("window", args[-1])  # type: ignore[return-value]

    def last(self, pos: Pos | None, args: list[Token]) -> n.Last:
        return n.Last(self._name(args[0]), self._name(args[1]), self._s(pos))

    def days_since_last(self, pos: Pos | None, args: list[Token]) -> n.DaysSinceLast:
        return n.DaysSinceLast(self._name(args[0]), self._s(pos))

    def days_since(self, pos: Pos | None, args: list[n.Expr]) -> n.DaysBetween:
        return n.DaysBetween("since", args[0], self._s(pos))

    def days_until(self, pos: Pos | None, args: list[n.Expr]) -> n.DaysBetween:
        return n.DaysBetween("until", args[0], self._s(pos))

    def duration(self, pos: Pos | None, args: list[Token]) -> n.Duration:
        amount, unit = args
        return n.Duration(Decimal(str(amount)), _UNITS[str(unit)], False, self._s(pos))  # type: ignore[arg-type]

    def business_duration(self, pos: Pos | None, args: list[Token]) -> n.Duration:
        amount, unit = args
        return n.Duration(Decimal(str(amount)), _UNITS[str(unit)], True, self._s(pos))  # type: ignore[arg-type]

    def dotted(self, pos: Pos | None, args: list[Token]) -> n.Name:
        return n.Name(tuple(str(t) for t in args), self._s(pos))

    def number(self, pos: Pos | None, args: list[Token]) -> n.Number:
        return n.Number(Decimal(str(args[0])), False, self._s(pos))

    def percent(self, pos: Pos | None, args: list[Token]) -> n.Number:
        return n.Number(Decimal(str(args[0])[:-1]) / 100, True, self._s(pos))

    def string(self, pos: Pos | None, args: list[Token]) -> n.String:
        return self._str(args[0])


# Rule or alias name -> its builder, looked up once rather than with getattr per node.
_METHODS: dict[str, Any] = {
    name: member
    for name, member in vars(_ToNodes).items()
    if not name.startswith("_") and name != "from_tree" and callable(member)
}


@dataclass(frozen=True)
class _Spanned:
    span: n.Span


_REPEATED = {
    "when": ("the rule's 'when'", "; join the conditions with 'and' or 'or' on one line"),
    "event": ("the rule's 'on'", "; a rule reacts to one event type"),
    "where": ("the rule's 'where'", "; join the conditions with 'and' or 'or'"),
    "once_per_account": ("'once per account'", ""),
    "at_most_every": ("'at most once every'", "; keep one"),
    "repeat_every": ("'repeat every'", "; keep one"),
    "unless": ("the rule's 'unless'", "; join the conditions with 'or' on one line"),
    "priority": ("the rule's 'priority'", "; keep one"),
    "stop_when": ("the rule's 'stop when'", "; join the conditions with 'or' on one line"),
    "description": ("the playbook's description", "; keep one"),
    "owner": ("the playbook's owner", "; keep one"),
    "status": ("the playbook's status", "; keep one"),
    "applies_to": ("the playbook's 'applies to'", "; join the conditions with 'and'"),
}


def _where_window(args: list[object]) -> tuple[n.Expr | None, n.Duration | None]:
    where: n.Expr | None = None
    window: n.Duration | None = None
    for a in args:
        if isinstance(a, tuple) and a[0] == "where":
            where = a[1]
        elif isinstance(a, tuple) and a[0] == "window":
            window = a[1]
    return where, window


def _as_literal(expr: n.Expr) -> n.Expr:
    return expr


def _join(left: n.Expr, right: n.Expr) -> n.Span:
    a, b = left.span, right.span
    return n.Span(a.file, a.line, a.column, b.end_line, b.end_column)


__all__ = ["Tree", "grammar_path", "parse", "parse_expression"]
