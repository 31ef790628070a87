"""Nodes back to text: one canonical layout for `.playbook` files (`playbook fmt`).

The layout, so that two people's files diff cleanly:

- two-space indentation; one blank line between top-level blocks, except that
  consecutive `segment`/`metric` one-liners keep the author's choice of zero or one;
- `playbook "X"`, then `description`, `owner`, `status`, `applies to` in that order,
  then the rules, each after one blank line (none when a rule follows the
  `playbook` line directly);
- in a rule: `when` (or `on EVENT [where ...]`), then the actions, then the
  modifiers, one a line, in the order of the language reference: `once per account`,
  `at most once every`, `repeat every`, `unless`, `priority`, `stop when`;
- one action that is not a `wait` goes on the `then` line; several, or a `wait`,
  go in a block under a bare `then`; a rule written without `then` keeps its one-line
  form (`Rule.inline`);
- a condition breaks before a top-level `and`/`or` where its author broke the
  line, and wherever the line would pass 100 columns; continuation lines are
  indented two more than their clause;
- `send email "X" to ...` when recipients are given, `send template "X"` when not;
  `is present` for `is not missing`; object keys bare when they are names;
- numbers are the decimals written, without trailing zeros (`30%`, `1.5`); strings are
  re-quoted with `\\"`, `\\\\`, `\\n` and `\\t`; parentheses stay where they were
  written and are added only where precedence needs them;
- inside blocks the author's blank lines are kept, one at most, except right after a
  block's header line and before a continuation line;
- comments stay: an own-line comment goes before the line that followed it, at that
  line's indentation; a trailing comment stays at the end of its line, in the column
  the author put it in when the code still ends two spaces before it (so aligned
  comments stay aligned), else two spaces after the code.

The formatter re-parses what it wrote and refuses, with `FormatError`, when the tree
or the comments differ: formatting never changes what a file means.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from decimal import Decimal
from pathlib import Path

from . import nodes as n
from .errors import PlaybookError, render_all
from .parse import code_of, parse

INDENT = "  "
MAX_WIDTH = 100


class FormatError(PlaybookError):
    """A file could not be formatted: it has syntax errors, or the result would differ."""


# --------------------------------------------------------------------------- entry points


def format_source(text: str, filename: str = "<string>") -> str:
    """Parse `text` and return it in the canonical layout; raise `FormatError` if it has errors."""
    file, diagnostics = parse(text, filename)
    errors = [d for d in diagnostics if d.is_error]
    if errors:
        raise FormatError(f"{filename} has syntax errors; fix them before formatting", errors)
    return _format(file, text)


def format_file(file: n.File, source: str) -> str:
    """Lay out a parsed file canonically; `source` is the text it was parsed from.

    `source` places the comments and blank lines; pass "" for a tree built by hand.
    A file whose source has syntax errors is refused (its broken blocks are not in
    the tree, and formatting would drop them). The result is parsed again and compared
    with `file`; `FormatError` is raised when the trees or the comments differ, so a
    formatter bug never changes a file.
    """
    if source.strip():
        reparsed, diagnostics = parse(source, file.path)
        errors = [d for d in diagnostics if d.is_error]
        if errors:
            raise FormatError(f"{file.path} has syntax errors; fix them before formatting", errors)
        if reparsed.items != file.items:
            raise FormatError(
                f"the source given for {file.path} is not the text it was parsed from"
            )
    return _format(file, source)


def _format(file: n.File, source: str) -> str:
    source = _normalise(source)
    text = _Writer(source).file(file)
    again, diagnostics = parse(text, file.path)
    if diagnostics:
        raise FormatError(
            f"formatting {file.path} produced text that does not parse "
            f"({diagnostics[0].message}); the file is left as it is",
            diagnostics,
        )
    if again.items != file.items and _without_parens(again.items) != _without_parens(file.items):
        # Parentheses the formatter added to a hand-built tree are fine; nothing else is.
        where = _first_difference(file.items, again.items)
        raise FormatError(
            f"formatting {file.path} would change its meaning{where}; the file is left as it is"
        )
    if sorted(c.text for c in again.comments) != sorted(c.text for c in file.comments):
        raise FormatError(f"formatting {file.path} would lose a comment; the file is left as it is")
    return text


def fmt_command(directory: Path, check: bool) -> int:
    """`playbook fmt DIR [--check]`: format every `.playbook` file under DIR.

    Prints each file that was (with `check`: would be) reformatted. Returns 1 when a
    file has errors, or with `check` when a file would change; 2 when there is nothing
    to format (no such directory, no `.playbook` file in it); 0 otherwise. With `check`,
    nothing is written.
    """
    if not directory.exists():
        print(f"error: {directory} does not exist", file=sys.stderr)
        return 2
    paths = [directory] if directory.is_file() else list(iter_playbook_files(directory))
    if not paths:
        print(f"error: no .playbook files in {directory}", file=sys.stderr)
        return 2
    changed = unchanged = failed = 0
    for path in paths:
        shown = _shown(path, directory)
        try:
            source = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            failed += 1
            print(f"error: cannot format {shown}: it is not UTF-8 text ({exc.reason} "
                  f"at byte {exc.start})", file=sys.stderr)
            continue
        try:
            result = format_source(source, shown)
        except FormatError as exc:
            failed += 1
            print(f"error: cannot format {shown}: {exc}", file=sys.stderr)
            if exc.diagnostics:
                print(render_all(exc.diagnostics, {shown: _normalise(source)}), file=sys.stderr)
            continue
        if result == source:
            unchanged += 1
            continue
        changed += 1
        if check:
            print(f"would reformat {shown}")
        else:
            path.write_text(result, encoding="utf-8", newline="")
            print(f"reformatted {shown}")
    print(_summary(changed, unchanged, failed, check))
    return 1 if failed or (check and changed) else 0


def _shown(path: Path, directory: Path) -> str:
    if directory.is_file():
        return str(path)
    return path.relative_to(directory).as_posix()


def _summary(changed: int, unchanged: int, failed: int, check: bool) -> str:
    def files(k: int) -> str:
        return f"{k} file{'' if k == 1 else 's'}"

    parts = []
    if changed:
        parts.append(f"{files(changed)} {'would be reformatted' if check else 'reformatted'}")
    if unchanged or not (changed or failed):
        parts.append(f"{files(unchanged)} {'would be left' if check else 'left'} unchanged")
    if failed:
        parts.append(f"{files(failed)} with errors")
    return ", ".join(parts)


def _normalise(text: str) -> str:
    # The same normalisation as the parser, so that line numbers agree.
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    return text if text.endswith("\n") else text + "\n"


def _without_parens(value: object) -> object:
    if isinstance(value, n.Paren):
        return _without_parens(value.inner)
    if isinstance(value, tuple):
        return tuple(_without_parens(v) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return replace(
            value,
            **{f.name: _without_parens(getattr(value, f.name)) for f in fields(value) if f.compare},
        )
    return value


def _first_difference(before: Sequence[n.Item], after: Sequence[n.Item]) -> str:
    for old, new in zip(before, after, strict=False):
        if old != new:
            return f" (the block at line {old.span.line})" if old.span.line else ""
    return " (the number of blocks)"


# --------------------------------------------------------------------------- expressions

# Precedence levels, loosest first, as in the grammar: or, and, not, for, a predicate
# (`x is y`, `x < y`, ...), sum, product, unary minus, atom.
_OR, _AND, _NOT, _FOR, _PRED, _SUM, _PRODUCT, _UNARY, _ATOM = range(1, 10)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*")
_UNIT_WORDS = {"day": "day", "hour": "hour", "week": "week"}


def quote(value: str) -> str:
    """A string literal that the parser reads back as `value`."""
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    )
    return f'"{escaped}"'


def decimal_text(value: Decimal) -> str:
    """`Decimal('1.50')` as `1.5`, `Decimal('1E+2')` as `100`: never an exponent."""
    text = format(value.normalize(), "f")
    return "0" if text == "-0" and not value.is_signed() else text


def number_text(number: n.Number) -> str:
    if number.percent:
        return decimal_text(number.value.scaleb(2)) + "%"
    return decimal_text(number.value)


def duration_text(duration: n.Duration) -> str:
    unit = _UNIT_WORDS[duration.unit] + ("" if duration.amount == 1 else "s")
    business = "business " if duration.business else ""
    return f"{decimal_text(duration.amount)} {business}{unit}"


def _level(e: n.Expr) -> int:
    if isinstance(e, n.Or):
        return _OR
    if isinstance(e, n.And):
        return _AND
    if isinstance(e, n.Not):
        return _NOT
    if isinstance(e, n.For):
        return _FOR
    if isinstance(
        e,
        n.Compare | n.Is | n.In | n.Missing | n.TextTest | n.HasTag | n.Relative
        | n.MilestoneState | n.Crossing | n.Changes,
    ):
        return _PRED
    if isinstance(e, n.Arith):
        return _SUM if e.op in "+-" else _PRODUCT
    if isinstance(e, n.Negate):
        return _UNARY
    if isinstance(e, n.Number) and e.value.is_signed():
        return _UNARY
    return _ATOM


def _sub(e: n.Expr, minimum: int) -> str:
    text = expr_text(e)
    return f"({text})" if _level(e) < minimum else text


def expr_text(e: n.Expr) -> str:
    """A condition or value on one line."""
    if isinstance(e, n.Or | n.And):
        return " ".join(
            piece if op is None else f"{op} {piece}"
            for op, piece in ((op, _sub(leaf, lvl)) for op, leaf, lvl in _chain(e))
        )
    if isinstance(e, n.Not):
        return f"not {_sub(e.operand, _NOT)}"
    if isinstance(e, n.For):
        return f"{_sub(e.condition, _PRED)} for {duration_text(e.duration)}"
    if isinstance(e, n.Paren):
        return f"({expr_text(e.inner)})"
    if isinstance(e, n.Name):
        return e.text
    if isinstance(e, n.Number):
        return number_text(e)
    if isinstance(e, n.String):
        return quote(e.value)
    if isinstance(e, n.ListValue):
        return "[" + ", ".join(expr_text(item) for item in e.items) + "]"
    if isinstance(e, n.Arith):
        tight = _SUM if e.op in "+-" else _PRODUCT
        return f"{_sub(e.left, tight)} {e.op} {_sub(e.right, tight + 1)}"
    if isinstance(e, n.Negate):
        return f"-{_sub(e.operand, _UNARY)}"
    return _predicate_text(e) if _level(e) == _PRED else _value_text(e)


def _predicate_text(e: n.Expr) -> str:
    if isinstance(e, n.Compare):
        return f"{_sub(e.left, _SUM)} {e.op} {_sub(e.right, _SUM)}"
    if isinstance(e, n.Is):
        return f"{_sub(e.left, _SUM)} is {'not ' if e.negated else ''}{_sub(e.right, _ATOM)}"
    if isinstance(e, n.In):
        return f"{_sub(e.left, _SUM)} {'not in' if e.negated else 'in'} {expr_text(e.items)}"
    if isinstance(e, n.Missing):
        return f"{_sub(e.operand, _SUM)} is {'present' if e.negated else 'missing'}"
    if isinstance(e, n.TextTest):
        return f"{_sub(e.left, _SUM)} {e.op} {_sub(e.right, _SUM)}"
    if isinstance(e, n.HasTag):
        return f"has tag {quote(e.tag.value)}"
    if isinstance(e, n.Relative):
        return f"{duration_text(e.duration)} {e.direction} {_sub(e.operand, _SUM)}"
    if isinstance(e, n.MilestoneState):
        state = "complete" if e.complete else "incomplete"
        after = f" after {duration_text(e.after)}" if e.after is not None else ""
        return f"{e.milestone.text} {state}{after}"
    if isinstance(e, n.Crossing):
        verb = "drops below" if e.direction == "below" else "rises above"
        return f"{_sub(e.operand, _SUM)} {verb} {_sub(e.threshold, _SUM)}"
    assert isinstance(e, n.Changes), e
    text = f"{_sub(e.operand, _SUM)} changes"
    if e.from_value is not None:
        text += f" from {_sub(e.from_value, _ATOM)}"
    if e.to_value is not None:
        text += f" to {_sub(e.to_value, _ATOM)}"
    return text


def _value_text(e: n.Expr) -> str:
    if isinstance(e, n.Count):
        return f"count {e.event.text}{_where_window(e.where, e.window)}"
    if isinstance(e, n.Aggregate):
        head = f"{e.func} {e.field.text} of {e.event.text}"
        return head + _where_window(e.where, e.window)
    if isinstance(e, n.Last):
        return f"last {e.field.text} of {e.event.text}"
    if isinstance(e, n.DaysSinceLast):
        return f"days since last {e.event.text}"
    assert isinstance(e, n.DaysBetween), e
    return f"days {e.direction} {_sub(e.operand, _ATOM)}"


def _where_window(where: n.Expr | None, window: n.Duration | None) -> str:
    text = f" where {expr_text(where)}" if where is not None else ""
    return text + (f" in last {duration_text(window)}" if window is not None else "")


def _chain(e: n.Expr, minimum: int = _OR) -> list[tuple[str | None, n.Expr, int]]:
    """A condition as its top-level operands with the `and`/`or` before each.

    Each operand comes with the precedence it needs, so that a hand-built tree gets the
    parentheses that keep its shape.
    """
    if isinstance(e, n.Or | n.And) and _level(e) >= minimum:
        level = _level(e)
        op = "or" if isinstance(e, n.Or) else "and"
        right = _chain(e.right, level + 1)
        return [*_chain(e.left, level), (op, right[0][1], right[0][2]), *right[1:]]
    return [(None, e, minimum)]


# --------------------------------------------------------------------------- actions


def _recipients(items: Sequence[n.Recipient]) -> str:
    return ", ".join(expr_text(r) for r in items)


def action_text(action: n.Action) -> str:
    """One action on one line."""
    if isinstance(action, n.SendEmail):
        if action.to:
            text = f"send email {quote(action.template.value)} to {_recipients(action.to)}"
        else:
            text = f"send template {quote(action.template.value)}"
        return text + (f" cc {_recipients(action.cc)}" if action.cc else "")
    if isinstance(action, n.CreateTask):
        text = f"create task {quote(action.title.value)}"
        if action.assignee is not None:
            text += f" for {expr_text(action.assignee)}"
        if action.due is not None:
            text += f" due in {duration_text(action.due)}"
        if action.priority is not None:
            text += f" priority {action.priority.text}"
        return text
    if isinstance(action, n.PostWebhook):
        text = f"post webhook {quote(action.endpoint.value)}"
        if action.payload is not None:
            pairs = ", ".join(f"{_key(k)}: {expr_text(v)}" for k, v in action.payload)
            text += f" with {{{pairs}}}"
        return text
    if isinstance(action, n.Notify):
        return f"notify {quote(action.channel.value)} {quote(action.message.value)}"
    if isinstance(action, n.SetField):
        return f"set {action.field.text} to {expr_text(action.value)}"
    if isinstance(action, n.TagChange):
        return f"{action.op} tag {quote(action.tag.value)}"
    return f"wait {duration_text(action.duration)}"


def _key(key: str) -> str:
    return key if _NAME.fullmatch(key) else quote(key)


# --------------------------------------------------------------------------- layout


@dataclass
class _Line:
    """One output line, and the source lines it was made from (0 when unknown)."""

    depth: int
    text: str
    first: int
    last: int
    # An item or rule header: its blank line before is decided by the layout.
    opens_block: bool = False
    blank_before: bool = False
    # A line that continues a condition: never a blank line before it.
    continuation: bool = False
    comments: list[n.Comment] = field(default_factory=list)
    trailing: list[n.Comment] = field(default_factory=list)


class _Writer:
    """Lays a file out as `_Line`s, then places the comments and joins the lines."""

    def __init__(self, source: str) -> None:
        self.source_lines = source.split("\n")
        self.lines: list[_Line] = []
        self.at_end: list[n.Comment] = []  # comments after the last code line
        self.keep_column: set[tuple[int, int]] = set()

    # -- source look-ups

    def _code(self, number: int) -> str:
        if not 1 <= number <= len(self.source_lines):
            return ""
        return code_of(self.source_lines[number - 1]).strip()

    def _blank(self, number: int) -> bool:
        return 1 <= number <= len(self.source_lines) and not self.source_lines[number - 1].strip()

    def _blank_between(self, after: int, before: int) -> bool:
        return any(self._blank(k) for k in range(after + 1, before))

    def _find(self, word: str, start: int, end: int) -> int:
        """The first line in start..end whose code begins with `word`, else 0."""
        pattern = re.compile(rf"{word}(?![A-Za-z0-9_-])")
        step = 1 if end >= start else -1
        for number in range(start, end + step, step):
            if number >= 1 and pattern.match(self._code(number)):
                return number
        return 0

    # -- emitting

    def _emit(
        self,
        depth: int,
        text: str,
        first: int,
        last: int | None = None,
        *,
        opens_block: bool = False,
        blank_before: bool = False,
    ) -> None:
        last = first if last is None else last
        self.lines.append(_Line(depth, text, first, last, opens_block, blank_before))

    def _clause(self, depth: int, prefix: str, condition: n.Expr, first: int = 0) -> _Line:
        """`prefix` then a condition, broken before `and`/`or` as described above."""
        parts = _chain(condition)
        _, leaf, level = parts[0]
        text = prefix + _sub(leaf, level)
        start = first or leaf.span.line
        last = leaf.span.end_line
        line_depth = depth
        for op, leaf, level in parts[1:]:
            piece = f"{op} {_sub(leaf, level)}"
            broken = 0 < last < leaf.span.line
            if broken or len(INDENT) * line_depth + len(text) + 1 + len(piece) > MAX_WIDTH:
                self._emit(line_depth, text, start, last)
                self.lines[-1].continuation = line_depth > depth
                text, line_depth, start = piece, depth + 1, leaf.span.line or start
            else:
                text += " " + piece
            last = max(last, leaf.span.end_line)
        self._emit(line_depth, text, start, last)
        self.lines[-1].continuation = line_depth > depth
        return self.lines[-1]

    def file(self, file: n.File) -> str:
        previous: n.Item | None = None
        for item in file.items:
            mark = len(self.lines)
            if isinstance(item, n.Schema):
                self._schema(item)
            elif isinstance(item, n.Segment):
                self._clause(0, f"segment {item.name.text}: ", item.condition, item.span.line)
            elif isinstance(item, n.Metric):
                self._clause(0, f"metric {item.name.text}: ", item.value, item.span.line)
            else:
                self._playbook(item)
            if mark < len(self.lines):
                head = self.lines[mark]
                head.opens_block = True
                head.blank_before = previous is not None and self._separated(previous, item)
            previous = item
        self._place_comments(file.comments)
        return self._join(file.comments)

    def _separated(self, previous: n.Item, item: n.Item) -> bool:
        one_liners = n.Segment | n.Metric
        if isinstance(previous, n.Segment) and isinstance(item, one_liners):
            return self._blank_between(previous.condition.span.end_line, item.span.line)
        if isinstance(previous, n.Metric) and isinstance(item, one_liners):
            return self._blank_between(previous.value.span.end_line, item.span.line)
        return True

    def _schema(self, schema: n.Schema) -> None:
        top = schema.span.line
        self._emit(0, "schema", top)
        if schema.fields:
            first_field = schema.fields[0].span.line
            self._emit(1, "account", self._find("account", first_field, top))
            for decl in schema.fields:
                self._field(2, decl)
        if schema.roles:
            roles = ", ".join(r.text for r in schema.roles)
            self._emit(1, f"contact roles: {roles}", schema.roles[0].span.line)
        for event in schema.events:
            self._emit(1, f"event {event.name.text}", event.span.line)
            for decl in event.fields:
                self._field(2, decl)
        for milestone in schema.milestones:
            self._emit(1, f"milestone {milestone.name.text}", milestone.span.line)
            self._emit(2, f"starts at {milestone.starts_at.text}", milestone.starts_at.span.line)
            self._emit(2, f"done at {milestone.done_at.text}", milestone.done_at.span.line)

    def _field(self, depth: int, decl: n.FieldDecl) -> None:
        kind: str = decl.type.kind
        if kind == "enum":
            kind = "one of " + ", ".join(v.text for v in decl.type.values)
        self._emit(depth, f"{decl.name.text}: {kind}", decl.span.line)

    def _playbook(self, playbook: n.Playbook) -> None:
        self._emit(0, f"playbook {quote(playbook.name.value)}", playbook.span.line)
        header = len(self.lines)
        for word, value in (("description", playbook.description), ("owner", playbook.owner)):
            if value is not None:
                self._emit(1, f"{word} {quote(value.value)}", value.span.line)
        if playbook.status is not None:
            self._emit(1, f"status {playbook.status.text}", playbook.status.span.line)
        if playbook.applies_to is not None:
            self._clause(1, "applies to ", playbook.applies_to)
        for rule in playbook.rules:
            blank = len(self.lines) > header or rule is not playbook.rules[0]
            self._rule(rule, blank)

    def _rule(self, rule: n.Rule, blank_before: bool) -> None:
        top, bottom = rule.span.line, rule.span.end_line
        self._emit(1, f"rule {quote(rule.name.value)}", top, opens_block=True,
                   blank_before=blank_before)
        actions = list(rule.actions)
        trigger: _Line | None = None
        if rule.when is not None:
            trigger = self._clause(2, "when ", rule.when)
        if rule.event is not None:
            on = f"on {rule.event.text}"
            if rule.where is None:
                self._emit(2, on, rule.event.span.line)
            else:
                self._clause(2, f"{on} where ", rule.where, rule.event.span.line)
            trigger = trigger or self.lines[-1]
        if rule.inline and trigger is not None and actions:
            inline = actions.pop(0)
            trigger.text += " " + action_text(inline)
            trigger.last = max(trigger.last, inline.span.end_line)
        if actions:
            first = actions[0].span
            then = self._find("then", first.line, top) or first.line
            if len(actions) == 1 and not isinstance(actions[0], n.Wait):
                self._emit(2, "then " + action_text(actions[0]), then, first.end_line)
            else:
                self._emit(2, "then", then)
                for action in actions:
                    self._emit(3, action_text(action), action.span.line, action.span.end_line)
        self._modifiers(rule, top, bottom)

    def _modifiers(self, rule: n.Rule, top: int, bottom: int) -> None:
        if rule.once_per_account:
            self._emit(2, "once per account", self._find("once", top, bottom))
        if rule.at_most_every is not None:
            every = rule.at_most_every
            self._emit(2, f"at most once every {duration_text(every)}", every.span.line)
        if rule.repeat_every is not None:
            every = rule.repeat_every
            self._emit(2, f"repeat every {duration_text(every)}", every.span.line)
        if rule.unless is not None:
            self._clause(2, "unless ", rule.unless)
        if rule.priority is not None:
            self._emit(2, f"priority {rule.priority.text}", rule.priority.span.line)
        if rule.stop_when is not None:
            self._clause(2, "stop when ", rule.stop_when)

    # -- comments

    def _place_comments(self, comments: Sequence[n.Comment]) -> None:
        for comment in comments:
            if comment.trailing:
                covering = [ln for ln in self.lines if ln.first <= comment.line <= ln.last]
                if covering:
                    covering[-1].trailing.append(comment)
                    if len(covering) == 1 and covering[0].first == covering[0].last:
                        # Its line is laid out on its own: the comment may keep its column.
                        self.keep_column.add((comment.line, comment.column))
                    continue
            target = self._line_after(comment.line)
            if target is None:
                self.at_end.append(comment)
            else:
                target.comments.append(comment)

    def _line_after(self, number: int) -> _Line | None:
        """The output line made from the first code line after source line `number`."""
        following = next(
            (k for k in range(number + 1, len(self.source_lines) + 1) if self._code(k)), None
        )
        if following is None:
            return None
        for line in self.lines:
            if line.first <= following <= line.last:
                return line
        later = [ln for ln in self.lines if ln.first >= following]
        return min(later, key=lambda ln: ln.first) if later else None

    def _join(self, comments: Sequence[n.Comment]) -> str:
        out: list[str] = []
        for index, line in enumerate(self.lines):
            pad = INDENT * line.depth
            # Several trailing comments on one line (lines were joined): all but the last
            # go before the line.
            before = [(c, True) for c in sorted(line.comments, key=lambda c: c.line)]
            before += [(c, False) for c in line.trailing[:-1]]
            # The author's blank lines are kept (one at most) between the lines of a
            # block; never right after a block's header, nor before a continuation.
            free = (
                not line.opens_block
                and not line.continuation
                and index > 0
                and self.lines[index - 1].depth >= line.depth
            )
            start = before[0][0].line if before and before[0][1] else line.first
            if out and (line.blank_before or (free and self._blank(start - 1))):
                out.append("")
            previous: int | None = None
            for comment, own_line in before:
                if (previous is not None and own_line and (line.opens_block or free)
                        and self._blank_between(previous, comment.line)):
                    out.append("")
                out.append(pad + comment.text)
                previous = comment.line
            if previous is not None and (line.opens_block or free) and self._blank_between(
                previous, line.first
            ):
                out.append("")
            code = pad + line.text
            out.append(code + self._tail(code, line.trailing[-1]) if line.trailing else code)
        previous = max((ln.last for ln in self.lines), default=0)
        # Comments after the last code line keep their indentation, snapped to a block
        # level no deeper than that line's.
        deepest = self.lines[-1].depth if self.lines else 0
        for comment in sorted(self.at_end, key=lambda c: c.line):
            if out and self._blank_between(previous, comment.line):
                out.append("")
            out.append(INDENT * min(deepest, (comment.column - 1) // 2) + comment.text)
            previous = comment.line
        return "\n".join(out) + "\n" if out else ""


    def _tail(self, code: str, comment: n.Comment) -> str:
        """A trailing comment: two spaces after the code, or in the author's column
        (aligned comments stay aligned) when its line was not joined or split and the
        code still ends two spaces before it."""
        gap = 2
        if (comment.line, comment.column) in self.keep_column:
            gap = max(gap, comment.column - 1 - len(code))
        return " " * gap + comment.text


def iter_playbook_files(directory: Path) -> Iterator[Path]:
    """Every `.playbook` file under `directory` in a stable order, skipping hidden folders."""
    for path in sorted(directory.rglob("*.playbook")):
        if not any(part.startswith(".") for part in path.relative_to(directory).parts[:-1]):
            yield path


__all__ = [
    "FormatError",
    "action_text",
    "decimal_text",
    "expr_text",
    "fmt_command",
    "format_file",
    "format_source",
    "iter_playbook_files",
    "quote",
]
