"""Email templates and inline message templates: loading, checking and sandboxed rendering.

A playbook directory's `templates/` folder holds email templates named by path without
extension: `templates/onboarding/stalled.txt` is "onboarding/stalled". Each has a plain-text
part `NAME.txt` and optionally an HTML part `NAME.html`, each opening with a YAML front
matter block whose `subject` is itself a template:

    ---
    subject: "{{ account.name }} 様、ご契約ありがとうございます"
    ---
    {{ contact.name }} 様

Strings in playbooks (task titles, notify messages) are templates too ("inline" templates);
there, account fields can also be named bare (`{{ health }}`), event fields first in event
rules, as in conditions.

Missing values. `playbook check` is strict: an unknown variable or field is an error, with
its file and line. Rendering is lenient about *data*: any field may be missing (the
language says so), and a template that passed the check must not fail because one is.
A missing value renders as the empty string, takes `| default(...)`, is false in `{% if %}`,
stays missing through arithmetic and attribute access (`account.csm.name` with no csm),
and compares as false (unknown, like a condition on missing data, never holds).

Values render as people write them: `48` (not `48.0`), `0.3`, dates as `YYYY-MM-DD`,
yes/no fields as `yes`/`no`, a user as its name, a list as `a, b`.

Templates run in jinja2's immutable sandbox: no attribute starting with `_`, no mutation,
no include/import/extends (a template is data, never a way to run code). Any failure while
rendering is raised as `errors.TemplateError` carrying the template file and line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import facts
from .errors import Diagnostic, TemplateError, did_you_mean, error, warning
from .nodes import Span

__all__ = [
    "ACCOUNT_BUILTINS",
    "CONTEXT_NAMES",
    "KnownNames",
    "Missing",
    "RenderedEmail",
    "Scope",
    "TemplateStore",
    "format_value",
    "template_context",
]

#: The names every template sees.
CONTEXT_NAMES = ("account", "contact", "event", "playbook", "rule", "now")
#: Fields every account has, whatever the schema says.
ACCOUNT_BUILTINS = ("id", "name", "tags")
USER_ATTRIBUTES = ("name", "email")
CONTACT_ATTRIBUTES = ("name", "email", "role")
EVENT_BUILTINS = ("type", "at")

TEMPLATES_DIR = "templates"
_NAME_RE = re.compile(r"[a-z0-9_-]+(?:/[a-z0-9_-]+)*")
_PART_SUFFIXES = (".txt", ".html")
_FRONT_MATTER_KEYS = ("subject",)
# `*` on text and `**` can build values large enough to exhaust memory.
_MAX_REPEAT = 100_000
_MAX_EXPONENT = 100
# The filters whose very purpose is to replace a missing value.
_FILLS_MISSING = frozenset({"default", "d"})
_IDENTIFIER_RE = r"(?<![A-Za-z0-9_]){}(?![A-Za-z0-9_])"


# --------------------------------------------------------------------------- public types


@dataclass(frozen=True, slots=True)
class KnownNames:
    """What the schema declares, so that `account.X` and `event.X` can be checked."""

    # None: the schema is unknown, so account fields (and bare names) are not checked.
    account_fields: frozenset[str] | None = None
    # Account fields of type `user`: they have only `name` and `email`.
    user_fields: frozenset[str] = frozenset()
    # None: `event.X` is not checked (e.g. an email template used from several rules).
    event_fields: frozenset[str] | None = None
    # Further names usable bare in inline templates (segments and metrics).
    extra_names: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """One email rendered for one recipient."""

    subject: str
    text: str
    html: str | None = None


class Missing(ChainableUndefined):
    """A missing value: renders empty, takes `default(...)`, stays missing when used."""

    __slots__ = ()

    def _stay_missing(self, *args: object, **kwargs: object) -> Missing:
        return self

    def _unknown(self, other: object) -> bool:
        # A comparison with a missing value is unknown, and unknown never holds.
        return False

    __add__ = __radd__ = __sub__ = __rsub__ = _stay_missing  # type: ignore[assignment]
    __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _stay_missing  # type: ignore[assignment]
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _stay_missing  # type: ignore[assignment]
    __pow__ = __rpow__ = __pos__ = __neg__ = __call__ = _stay_missing  # type: ignore[assignment]
    __lt__ = __le__ = __gt__ = __ge__ = _unknown  # type: ignore[assignment]
    __eq__ = __ne__ = _unknown
    __hash__ = ChainableUndefined.__hash__


# --------------------------------------------------------------------------- value rendering


def _format_decimal(value: Decimal) -> str:
    """A decimal as people write it: `48`, `0.3`, `1234.5`, never an exponent."""
    if not value.is_finite():
        return str(value)
    if value == value.to_integral_value():
        text = format(value.to_integral_value(), "f")
        return "0" if text == "-0" else text
    return format(value.normalize(), "f")


def format_value(value: object) -> str:
    """How a value reads in rendered text: numbers, dates, users, yes/no, lists, missing."""
    if value is None or isinstance(value, Undefined):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return _format_decimal(value)
    if isinstance(value, float):
        return _format_decimal(Decimal(repr(value)))
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, facts.User):
        return value.name or ""
    if isinstance(value, set | frozenset):
        return ", ".join(sorted(format_value(v) for v in value))
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def _finalize(value: object) -> object:
    """Jinja's output hook: keep markup as it is (autoescape decides), format the rest."""
    return value if isinstance(value, str) else format_value(value)


def _exact(other: object) -> Any:
    # Jinja parses `1.1` as a float; Decimal refuses to mix with floats, people expect 1.1.
    return Decimal(repr(other)) if isinstance(other, float) else other


class _Number(Decimal):
    """A template number: prints as people write it and mixes exactly with `1.5` literals."""

    __slots__ = ()

    def __str__(self) -> str:
        return _format_decimal(self)

    def __add__(self, other: Any) -> Any:
        return _number_or_same(Decimal.__add__(self, _exact(other)))

    def __radd__(self, other: Any) -> Any:
        return _number_or_same(Decimal.__radd__(self, _exact(other)))

    def __sub__(self, other: Any) -> Any:
        return _number_or_same(Decimal.__sub__(self, _exact(other)))

    def __rsub__(self, other: Any) -> Any:
        return _number_or_same(Decimal.__rsub__(self, _exact(other)))

    def __mul__(self, other: Any) -> Any:
        return _number_or_same(Decimal.__mul__(self, _exact(other)))

    def __rmul__(self, other: Any) -> Any:
        return _number_or_same(Decimal.__rmul__(self, _exact(other)))

    def __truediv__(self, other: Any) -> Any:
        return _number_or_same(Decimal.__truediv__(self, _exact(other)))

    def __rtruediv__(self, other: Any) -> Any:
        return _number_or_same(Decimal.__rtruediv__(self, _exact(other)))


def _number_or_same(value: object) -> object:
    """Keep arithmetic results printable as numbers (NotImplemented passes through)."""
    return _Number(value) if isinstance(value, Decimal) else value


class _Moment(datetime):
    """A template date-time: prints as its date, `YYYY-MM-DD`, in its own time zone."""

    def __str__(self) -> str:
        return self.date().isoformat()


def _moment(value: datetime) -> _Moment:
    """The same instant, printable as a date."""
    return _Moment(
        value.year, value.month, value.day, value.hour, value.minute, value.second,
        value.microsecond, value.tzinfo, fold=value.fold,
    )


class _View:
    """Read-only attribute access to a record (account, contact, user, event)."""

    __slots__ = ("_label", "_values")

    def __init__(self, values: Mapping[str, object], label: object) -> None:
        self._values = dict(values)
        self._label = label

    def find(self, key: str) -> tuple[bool, object]:
        """(present, value): whether the record has `key` at all, and its value."""
        try:
            return True, self._values[key]
        except KeyError:
            return False, None

    def lookup(self, key: str) -> object:
        """The value of `key`, or Missing (for absent and for unknown names alike)."""
        value = self.find(key)[1]
        return Missing(name=key) if value is None else value

    def values(self) -> dict[str, object]:
        """Every value by name, for bare names in inline templates."""
        return dict(self._values)

    def __str__(self) -> str:
        return format_value(self._label)


class _AccountView(_View):
    """The `account` variable, each field's value looked up when a template first asks.

    The same values as `_account_view` over every field: a template names a few fields,
    and one view serves every template rendered for the account at that moment.
    """

    __slots__ = ("_account", "_at", "_fields", "_names")

    def __init__(
        self, account: facts.Account, at: datetime, fields: Sequence[str], names: frozenset[str]
    ) -> None:
        self._values = {}  # a cache of what was asked for
        self._label = None
        self._account = account
        self._at = at
        self._fields = fields  # the schema's fields, in order
        self._names = names  # the same, as a set

    def find(self, key: str) -> tuple[bool, object]:
        try:
            return True, self._values[key]
        except KeyError:
            pass
        account = self._account
        value: object
        if key == "id":
            value = account.id
        elif key == "name":
            value = (account.value(key, self._at) if key in self._names else None) or account.name
        elif key == "tags":
            value = tuple(sorted(account.tags))
        elif key in self._names:
            value = _wrap(account.value(key, self._at))
        else:
            return False, None
        self._values[key] = value
        return True, value

    def values(self) -> dict[str, object]:
        return {key: self.find(key)[1] for key in (*self._fields, "id", "name", "tags")}

    def __str__(self) -> str:
        return format_value(self.find("name")[1])


def _wrap(value: object) -> object:
    """A fact value as templates see it."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Decimal):
        return _Number(value)
    if isinstance(value, datetime):
        return _moment(value)
    if isinstance(value, facts.User):
        if value.name is None and value.email is None:
            return None
        return _View({"name": value.name, "email": value.email}, value.name)
    return value


def _account_view(account: facts.Account, field_values: Mapping[str, facts.Value]) -> _View:
    """The `account` variable: field values as of the moment, and the built-in id, name, tags."""
    values: dict[str, object] = {k: _wrap(v) for k, v in field_values.items()}
    values["id"] = account.id
    values["name"] = field_values.get("name") or account.name
    values["tags"] = tuple(sorted(account.tags))
    return _View(values, values["name"])


def _contact_view(contact: facts.Contact) -> _View:
    """The `contact` variable: the recipient."""
    values = {"name": contact.name, "email": contact.email, "role": contact.role}
    return _View(values, contact.name)


def _event_view(event: facts.Event) -> _View:
    """The `event` variable: its fields, with `type` and `at` winning over same-named ones."""
    values: dict[str, object] = {k: _wrap(v) for k, v in event.fields.items()}
    values["type"] = event.type
    values["at"] = _moment(event.at)
    return _View(values, event.type)


def template_context(
    account: facts.Account,
    at: datetime,
    contact: facts.Contact | None,
    event: facts.Event | None,
    playbook: str,
    rule: str,
    field_values: dict[str, facts.Value],
) -> dict[str, object]:
    """The variables a template sees when rendered for one account at one moment."""
    return {
        "account": _account_view(account, field_values),
        "contact": _contact_view(contact) if contact else Missing(name="contact"),
        "event": _event_view(event) if event else Missing(name="event"),
        "playbook": playbook,
        "rule": rule,
        "now": _moment(at),
    }


class Scope:
    """What templates see for one account at one moment (and event), built on first use.

    `template_context` with every field's value computed up front gives the same
    variables; a scope computes a field when a template names it, and serves every rule,
    action and recipient rendered for that account at that moment (`context`).
    """

    __slots__ = ("_account", "_contacts", "_event", "_now")

    def __init__(
        self,
        account: facts.Account,
        at: datetime,
        event: facts.Event | None,
        fields: Sequence[str],
        names: frozenset[str] | None = None,
    ) -> None:
        """`fields`: the schema's field names in order (`names`: the same as a set)."""
        self._account = _AccountView(account, at, fields, names or frozenset(fields))
        self._event: object = _event_view(event) if event else Missing(name="event")
        self._now = _moment(at)
        self._contacts: dict[facts.Contact, _View] = {}

    def context(
        self, playbook: str, rule: str, contact: facts.Contact | None
    ) -> dict[str, object]:
        """The variables for one rule's templates, sent to `contact` (if an email)."""
        view: object
        if contact is None:
            view = Missing(name="contact")
        else:
            view = self._contacts.get(contact)
            if view is None:
                view = self._contacts[contact] = _contact_view(contact)
        return {
            "account": self._account,
            "contact": view,
            "event": self._event,
            "playbook": playbook,
            "rule": rule,
            "now": self._now,
        }


# --------------------------------------------------------------------------- environment


class _Environment(ImmutableSandboxedEnvironment):
    """The one sandbox all templates run in."""

    intercepted_binops = frozenset(["*", "**"])

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Views answer by name; names starting with `_` never reach Python objects."""
        _refuse_private(attribute)
        if isinstance(obj, _View):
            return obj.lookup(attribute)
        if type(obj) is Missing:
            # What the sandbox answers, without its checks: a missing value stays missing
            # (`account.csm.name` with no csm), and Missing has no public attributes.
            return obj
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """`account["x"]` is `account.x`."""
        if isinstance(argument, str):
            _refuse_private(argument)
            if isinstance(obj, _View):
                return obj.lookup(argument)
        return super().getitem(obj, argument)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        """Fail loudly: jinja's default renders a blocked attribute as empty text."""
        raise SecurityError(f"'{attribute}' is not allowed in templates")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """`*` and `**` within limits that keep a template from exhausting memory."""
        if operator == "**" and _is_number(right) and abs(right) > _MAX_EXPONENT:
            raise SecurityError(f"the exponent {format_value(right)} is too large")
        if operator == "*" and _repeats_too_much(left, right):
            raise SecurityError("the repeated text is too long")
        return super().call_binop(context, operator, left, right)


def _refuse_private(name: str) -> None:
    """Attributes starting with `_` lead to Python internals: never in a template."""
    if name.startswith("_"):
        raise SecurityError(f"'{name}' is not allowed in templates")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _repeats_too_much(left: object, right: object) -> bool:
    """Whether `left * right` repeats a text or list past the limit."""
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(times, int):
            return len(seq) * times > _MAX_REPEAT
    return False


def _missing_passes_through(func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that returns a missing value as it is: `health | round` stays missing."""
    # Filters marked pass_context/pass_eval_context/pass_environment get that first.
    position = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)
    def filter_(*args: Any, **kwargs: Any) -> Any:
        if len(args) > position and isinstance(args[position], Missing):
            return args[position]
        return func(*args, **kwargs)

    return filter_


def _make_environment() -> _Environment:
    """An environment with the template conventions of this module."""
    env = _Environment(
        autoescape=lambda name: name is not None and name.endswith(".html"),
        undefined=Missing,
        finalize=_finalize,
        keep_trailing_newline=True,
    )
    # Placeholder text has no place in customer email.
    del env.globals["lipsum"]
    for name, func in env.filters.items():
        if name not in _FILLS_MISSING:
            env.filters[name] = _missing_passes_through(func)
    return env


# --------------------------------------------------------------------------- compiled parts


@dataclass(slots=True)
class _Compiled:
    """The outcome of compiling one template source."""

    ast: nodes.Template | None = None
    template: Template | None = None
    # The names the template reads from its context (its free variables): only these
    # are looked up when rendering.
    free: tuple[str, ...] = ()
    # (line in the source, message) when the source does not compile.
    problem: tuple[int, str] | None = None
    # A template of text and `{{ name.attr | filter("...") }}` only: its pieces, which
    # `_render_plain` renders without setting up a jinja context.
    plain: tuple[str | _Lookup, ...] | None = None


@dataclass(frozen=True, slots=True)
class _Lookup:
    """`{{ name.attr... | filter(constant, ...) ... }}`: what the compiled template does
    for it, step by step (resolve the name, the sandbox's getattr, each filter)."""

    name: str
    attrs: tuple[str, ...]
    filters: tuple[tuple[str, tuple[Any, ...]], ...]


def _plain_pieces(
    env: _Environment, ast: nodes.Template, name: str
) -> tuple[str | _Lookup, ...] | None:
    """The pieces of a template that is text and lookups only, or None for any other.

    Not for autoescaped (HTML) templates, nor for filters that take jinja's context or
    environment: the general path handles those.
    """
    if env.autoescape(name) if callable(env.autoescape) else env.autoescape:
        return None
    pieces: list[str | _Lookup] = []
    for output in ast.body:
        if not isinstance(output, nodes.Output):
            return None
        for child in output.nodes:
            piece = child.data if isinstance(child, nodes.TemplateData) else _lookup(env, child)
            if piece is None:
                return None
            pieces.append(piece)
    return tuple(pieces)


def _lookup(env: _Environment, node: nodes.Node) -> _Lookup | None:
    """`node` as a `_Lookup`, or None when it is anything else."""
    filters: list[tuple[str, tuple[Any, ...]]] = []
    while isinstance(node, nodes.Filter):
        step = _filter_step(env, node)
        if step is None or node.node is None:
            return None
        filters.append(step)
        node = node.node
    attrs: list[str] = []
    while isinstance(node, nodes.Getattr) and node.ctx == "load":
        attrs.append(node.attr)
        node = node.node
    if not isinstance(node, nodes.Name) or node.ctx != "load":
        return None
    return _Lookup(node.name, tuple(reversed(attrs)), tuple(reversed(filters)))


def _filter_step(env: _Environment, node: nodes.Filter) -> tuple[str, tuple[Any, ...]] | None:
    """`| name(constant, ...)` as (name, arguments), or None for any other filter call."""
    func = env.filters.get(node.name)
    if func is None or getattr(func, "jinja_pass_arg", None) is not None:
        return None  # unknown (an error jinja reports), or wants jinja's context
    if node.kwargs or node.dyn_args is not None or node.dyn_kwargs is not None:
        return None
    args = tuple(arg.value for arg in node.args if isinstance(arg, nodes.Const))
    return (node.name, args) if len(args) == len(node.args) else None


@dataclass(slots=True)
class _Part:
    """One template source: a subject, a text or HTML body, or an inline message."""

    name: str  # the jinja name; `.html` switches autoescape on
    file: str  # where it is written, relative to the playbook directory
    source: str
    lines: tuple[str, ...] = ()  # the file's lines, to place columns
    first_line: int = 1  # the file line of the source's first line
    fixed_line: int | None = None  # a subject: every problem is on its `subject:` line
    fixed_span: Span | None = None  # an inline message: every problem is at its string
    compiled: _Compiled | None = None

    def span(self, lineno: int, word: str = "") -> Span:
        """Where line `lineno` of the source is, pointing at `word` when it can."""
        if self.fixed_span is not None:
            return self.fixed_span
        line = self.fixed_line or self.first_line + max(lineno, 1) - 1
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        column = _column_of(text, word)
        if column:
            return Span(self.file, line, column, line, column + len(word))
        return Span(self.file, line, 1, line, 1)


def _column_of(text: str, word: str) -> int:
    """The 1-based column of `word` as a whole name in `text`, or 0."""
    if not word:
        return 0
    found = re.search(_IDENTIFIER_RE.format(re.escape(word)), text)
    return found.start() + 1 if found else 0


@dataclass(slots=True)
class _Email:
    """An email template: the subject, the text part and maybe an HTML part."""

    name: str
    subject: _Part
    text: _Part
    html: _Part | None = None

    def parts(self) -> list[_Part]:
        return [p for p in (self.subject, self.text, self.html) if p is not None]


# --------------------------------------------------------------------------- front matter


@dataclass(slots=True)
class _Parsed:
    """A template file split into its front matter and its body."""

    body: str
    body_line: int  # the file line where the body starts
    subject: str | None = None
    subject_line: int = 0
    diagnostics: list[Diagnostic] = field(default_factory=list)


def _file_span(file: str, line: int = 1) -> Span:
    return Span(file, line, 1, line, 1)


def _split_front_matter(file: str, text: str, required: bool) -> _Parsed:
    """Cut the `---` block off the top of a template file and read its subject."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "---":
        if not required:
            return _Parsed(body=text, body_line=1)
        hint = 'start the file with a line "---", then subject: "...", then "---"'
        return _Parsed(text, 1, diagnostics=[_front_error(file, 1, f"no front matter: {hint}")])
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
    if end is None:
        message = 'the front matter is not closed: add a line "---" after it'
        return _Parsed("", len(lines) + 1, diagnostics=[_front_error(file, 1, message)])
    parsed = _Parsed(body="".join(lines[end + 1 :]), body_line=end + 2)
    _read_front_matter(file, "".join(lines[1:end]), parsed, required)
    return parsed


def _front_error(file: str, line: int, message: str) -> Diagnostic:
    return error(message, _file_span(file, line), "template-front-matter")


def _read_front_matter(file: str, front: str, parsed: _Parsed, required: bool) -> None:
    """Fill in the subject from the YAML between the `---` lines (which start on line 2)."""
    try:
        root = yaml.compose(front, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 2 if exc.problem_mark else 2
        parsed.diagnostics.append(_front_error(file, line, f"invalid front matter: {exc.problem}"))
        return
    except (yaml.YAMLError, RecursionError) as exc:
        parsed.diagnostics.append(_front_error(file, 2, f"invalid front matter: {exc}"))
        return
    if root is not None and not isinstance(root, yaml.MappingNode):
        message = 'the front matter must be lines of "key: value", like subject: "..."'
        parsed.diagnostics.append(_front_error(file, 2, message))
        return
    _read_keys(file, root.value if root is not None else [], parsed)
    if required and parsed.subject is None and not parsed.diagnostics:
        message = 'the front matter has no subject: add a line subject: "..."'
        parsed.diagnostics.append(_front_error(file, 1, message))


def _read_keys(file: str, pairs: list[tuple[yaml.Node, yaml.Node]], parsed: _Parsed) -> None:
    """Check each front matter key and take the subject."""
    seen: set[str] = set()
    for key_node, value_node in pairs:
        line = key_node.start_mark.line + 2
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else ""
        if key not in _FRONT_MATTER_KEYS:
            hint = did_you_mean(str(key), _FRONT_MATTER_KEYS)
            message = f"unknown front matter key '{key}'{hint}"
            parsed.diagnostics.append(_front_error(file, line, message))
        elif key in seen:
            parsed.diagnostics.append(_front_error(file, line, f"'{key}' is given twice"))
        elif _is_text(value_node) and value_node.value.strip():
            parsed.subject, parsed.subject_line = value_node.value, line
        elif _is_text(value_node):
            parsed.diagnostics.append(_front_error(file, line, "the subject is empty"))
        else:
            message = 'the subject must be text in double quotes: subject: "..."'
            parsed.diagnostics.append(_front_error(file, line, message))
        seen.add(str(key))


def _is_text(node: yaml.Node) -> bool:
    """Whether YAML reads the node as a string (not a number, a yes/no or a mapping)."""
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str"


# --------------------------------------------------------------------------- file names


def _suggested_name(stem: str) -> str:
    """A valid template name close to `stem`, or "" when nothing usable is left."""
    parts = []
    for piece in stem.lower().split("/"):
        slug = re.sub(r"[^a-z0-9_-]+", "-", piece).strip("-")
        if slug:
            parts.append(slug)
    return "/".join(parts)


def _name_problem(relative: str) -> Diagnostic | None:
    """A diagnostic when a file under templates/ is not a well-named .txt or .html."""
    file = f"{TEMPLATES_DIR}/{relative}"
    stem, dot, suffix = relative.rpartition(".")
    suffix = f".{suffix.lower()}" if dot else ""
    if suffix == ".htm":
        suffix = ".html"
    if suffix not in _PART_SUFFIXES:
        message = f"'{file}' is not a template: email templates end in .txt or .html"
        return warning(message, _file_span(file), "template-not-a-template")
    if _NAME_RE.fullmatch(stem) and relative.endswith(suffix):
        return None
    allowed = "lowercase letters, digits, '-', '_' and '/'"
    message = f"template file name '{file}' may use only {allowed}"
    better = _suggested_name(stem if dot else relative)
    if better:
        message += f": rename it to '{TEMPLATES_DIR}/{better}{suffix}'"
    return error(message, _file_span(file), "template-file-name")


# --------------------------------------------------------------------------- checking


def _compile(env: _Environment, source: str, name: str, filename: str) -> _Compiled:
    """Parse and compile one source; a syntax error becomes a problem, not an exception."""
    try:
        ast = env.parse(source, name, filename)
        code = env.compile(ast, name, filename)
    except TemplateSyntaxError as exc:
        return _Compiled(problem=(exc.lineno, f"template syntax error: {exc.message}"))
    except (ValueError, RecursionError, OverflowError) as exc:
        # Pathological input (a 5000-digit number, deep nesting) fails outside jinja's
        # syntax errors; it is still the template's problem, not a crash.
        return _Compiled(problem=(1, f"template cannot be compiled: {exc}"))
    # A plain dict rather than jinja's ChainMap: every render copies the globals, and
    # copying a ChainMap costs more than the rest of rendering a short message.
    template = env.template_class.from_code(env, code, dict(env.make_globals(None)))
    free = tuple(sorted(meta.find_undeclared_variables(ast)))
    return _Compiled(ast=ast, template=template, free=free,
                     plain=_plain_pieces(env, ast, name))


_FORBIDDEN_NODES: tuple[tuple[type[nodes.Node], str], ...] = (
    (nodes.Include, "include"),
    (nodes.Extends, "extends"),
    (nodes.Import, "import"),
    (nodes.FromImport, "from ... import"),
)


def _forbidden_tags(ast: nodes.Template, part: _Part) -> Iterator[Diagnostic]:
    """Templates stand alone: include, extends and import are not available."""
    for node_type, tag in _FORBIDDEN_NODES:
        for node in ast.find_all(node_type):
            message = f"'{{% {tag} %}}' is not available in templates: each one stands alone"
            yield error(message, part.span(node.lineno, tag.split()[0]), "template-tag")


def _first_use(ast: nodes.Template, name: str) -> int:
    """The line where a free variable is first read."""
    lines = [n.lineno for n in ast.find_all(nodes.Name) if n.name == name and n.ctx == "load"]
    return min(lines, default=1)


def _path(node: nodes.Node) -> tuple[str, ...] | None:
    """`account.csm.name` as ("account", "csm", "name"); None for anything else."""
    if isinstance(node, nodes.Name):
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        head = _path(node.node)
        return (*head, node.attr) if head else None
    if isinstance(node, nodes.Getitem):
        key = node.arg.value if isinstance(node.arg, nodes.Const) else None
        head = _path(node.node)
        return (*head, key) if head and isinstance(key, str) else None
    return None


def _private_attributes(ast: nodes.Template, part: _Part) -> Iterator[Diagnostic]:
    """`x.__class__` and friends: refused at check time as they are at run time."""
    for node in ast.find_all(nodes.Getattr):
        if node.attr.startswith("_"):
            message = f"'{node.attr}' is not allowed in templates"
            yield error(message, part.span(node.lineno, node.attr), "template-private")


@dataclass(frozen=True, slots=True)
class _Scope:
    """What one template may name, given the schema and where it is used."""

    known: KnownNames
    inline: bool

    def allowed(self, env: _Environment) -> set[str] | None:
        """The free variables allowed, or None when they cannot be checked."""
        names = set(CONTEXT_NAMES) | set(env.globals)
        if not self.inline:
            return names
        if self.known.account_fields is None:
            return None
        return (
            names | set(ACCOUNT_BUILTINS) | self.known.account_fields
            | (self.known.event_fields or set()) | self.known.extra_names
        )

    def suggestions(self) -> list[str]:
        """The names offered as "did you mean" for an unknown variable."""
        names = list(CONTEXT_NAMES)
        if self.inline and self.known.account_fields is not None:
            names += [*ACCOUNT_BUILTINS, *self.known.account_fields]
            names += [*(self.known.event_fields or ()), *self.known.extra_names]
        return names

    def bare_user(self, name: str, free: set[str]) -> bool:
        """Whether a bare name in an inline template is a user field (`csm.name`)."""
        return self.inline and name in free and name in self.known.user_fields


def _unknown_variables(
    env: _Environment, ast: nodes.Template, part: _Part, scope: _Scope, free: set[str]
) -> Iterator[Diagnostic]:
    """Free variables that the template does not get: usually a typo."""
    allowed = scope.allowed(env)
    if allowed is None:
        return
    for name in sorted(free - allowed, key=lambda n: (_first_use(ast, n), n)):
        hint = did_you_mean(name, scope.suggestions())
        message = f"unknown variable '{name}' in template{hint}"
        yield error(message, part.span(_first_use(ast, name), name), "template-unknown-variable")


def _attribute_problem(path: tuple[str, ...], scope: _Scope, free: set[str]) -> str | None:
    """What is wrong with the last step of `path`, or None."""
    known, head, attr = scope.known, path[0], path[-1]
    if head not in free or attr.startswith("_"):
        return None  # a template variable of its own, or reported as private
    if head == "account" and len(path) == 2 and known.account_fields is not None:
        return _not_in(attr, [*ACCOUNT_BUILTINS, *known.account_fields], "account field '{}'")
    if head == "account" and len(path) == 3 and path[1] in known.user_fields:
        return _not_in(attr, USER_ATTRIBUTES, f"attribute '{{}}' of user '{path[1]}'")
    if scope.bare_user(head, free) and len(path) == 2:
        return _not_in(attr, USER_ATTRIBUTES, f"attribute '{{}}' of user '{head}'")
    if head == "contact" and len(path) == 2:
        return _not_in(attr, CONTACT_ATTRIBUTES, "contact attribute '{}'")
    if head == "event" and len(path) == 2 and known.event_fields is not None:
        return _not_in(attr, [*EVENT_BUILTINS, *known.event_fields], "event field '{}'")
    return None


def _not_in(attr: str, candidates: Sequence[str], what: str) -> str | None:
    """`unknown <what> in template (did you mean 'y'?)` unless `attr` is a candidate."""
    if attr in candidates:
        return None
    return f"unknown {what.format(attr)} in template{did_you_mean(attr, candidates)}"


def _unknown_attributes(
    ast: nodes.Template, part: _Part, scope: _Scope, free: set[str]
) -> Iterator[Diagnostic]:
    """`account.teir`, `contact.mail`, `event.scor`: fields the schema does not have."""
    seen: set[tuple[str, ...]] = set()
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        path = _path(node)
        if path is None or len(path) < 2 or path in seen:
            continue
        seen.add(path)
        message = _attribute_problem(path, scope, free)
        if message:
            yield error(message, part.span(node.lineno, path[-1]), "template-unknown-field")


def _check(env: _Environment, part: _Part, scope: _Scope) -> list[Diagnostic]:
    """Every problem of one template source."""
    if part.compiled is None:
        part.compiled = _compile(env, part.source, part.name, part.file)
    compiled = part.compiled
    if compiled.problem is not None:
        line, message = compiled.problem
        return [error(message, part.span(line), "template-syntax")]
    assert compiled.ast is not None  # compiled without a problem
    ast = compiled.ast
    free = set(meta.find_undeclared_variables(ast))
    if any(n.name == "self" and n.ctx == "load" for n in ast.find_all(nodes.Name)):
        free.add("self")  # jinja's own reference to the template: not for authors
    found = [
        *_forbidden_tags(ast, part),
        *_private_attributes(ast, part),
        *_unknown_variables(env, ast, part, scope, free),
        *_unknown_attributes(ast, part, scope, free),
    ]
    return sorted(found, key=lambda d: (d.span.line, d.span.column))


# --------------------------------------------------------------------------- rendering


def _template_line(tb: TracebackType | None, filename: str) -> int:
    """The template line where rendering failed: jinja rewrites frames to point there."""
    line = 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _describe(exc: Exception) -> str:
    """A failure in words a template author can act on."""
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    text = str(exc)
    return text if text else type(exc).__name__


def _render(
    part: _Part, context: Mapping[str, object], what: Callable[[], str], inline: bool = False
) -> str:
    """Render one compiled part, turning any failure into a TemplateError (`what` names
    the part in its message: only called then).

    Only the names the template reads are looked up: in `context`, and for an `inline`
    message then as bare names (`_bare_name`).
    """
    compiled = part.compiled
    if compiled is None or compiled.template is None:
        raise TemplateError(f"{what()} does not compile: run `playbook check` to see why")
    found: dict[str, object] = {}
    for name in compiled.free:
        if name in context:
            found[name] = context[name]
        elif inline:
            present, value = _bare_name(context, name)
            if present:
                found[name] = value
    if compiled.plain is not None:
        text = _render_plain(compiled.template, compiled.plain, found)
        if text is not None:
            return text
    try:
        return compiled.template.render(found)
    except Exception as exc:
        # Anything a template does wrong (sandbox, arithmetic, types) is the template's
        # problem: report where it is, never leak a jinja2 or Python exception.
        line = _template_line(exc.__traceback__, part.file)
        diagnostic = error(
            f"cannot render {what()}: {_describe(exc)}", part.span(line), "template-render"
        )
        raise TemplateError(diagnostic.render(), [diagnostic]) from exc


_ABSENT = object()


def _render_plain(
    template: Template, pieces: tuple[str | _Lookup, ...], found: Mapping[str, object]
) -> str | None:
    """A plain template rendered as its compiled code would: each lookup is resolved in
    `found`, then the template's globals, else missing; its attributes read with the
    sandbox's getattr, its filters applied, and the value finalized to text.

    Jinja sets up a context for every render, which costs more than a short message's
    lookups. None when anything fails: jinja renders it again, to report where.
    """
    env = template.environment
    out: list[str] = []
    try:
        for piece in pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            value = found.get(piece.name, _ABSENT)
            if value is _ABSENT:
                value = template.globals.get(piece.name, _ABSENT)
            if value is _ABSENT:
                value = env.undefined(name=piece.name)
            for attr in piece.attrs:
                value = env.getattr(value, attr)
            for name, args in piece.filters:
                value = env.filters[name](value, *args)
            out.append(str(_finalize(value)))
    except Exception:
        return None
    return "".join(out)


def _shorten(text: str, width: int = 60) -> str:
    """A message string short enough to quote in an error."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _one_line(text: str) -> str:
    """A subject is one header line: line breaks become spaces."""
    if "\n" not in text and "\r" not in text:
        return text.strip()  # nothing for the pattern to replace
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()


def _bare_name(context: Mapping[str, object], name: str) -> tuple[bool, object]:
    """A bare name in an inline message, when the context has no such variable: an event
    field (not `type` or `at`: bare, those mean the account's), else an account field."""
    event = context.get("event")
    if isinstance(event, _View) and name not in EVENT_BUILTINS:
        present, value = event.find(name)
        if present:
            return present, value
    account = context.get("account")
    if isinstance(account, _View):
        return account.find(name)
    return False, None


# --------------------------------------------------------------------------- the store


class TemplateStore:
    """The email templates of a playbook directory, and the inline message templates."""

    def __init__(self) -> None:
        self._env = _make_environment()
        self._emails: dict[str, _Email] = {}
        self._load_diagnostics: list[Diagnostic] = []
        self._sources: dict[str, str] = {}
        self._inline: dict[str, _Compiled] = {}
        self._unplaced: dict[str, _Part] = {}  # `_inline_part` without a span

    # -- loading

    @classmethod
    def from_directory(cls, playbook_dir: str | Path) -> TemplateStore:
        """Load `templates/` of a playbook directory (no folder: no templates)."""
        root = Path(playbook_dir) / TEMPLATES_DIR
        store = cls()
        files: list[tuple[str, str]] = []
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            relative = path.relative_to(root).as_posix()
            if path.is_file() and not any(p.startswith(".") for p in relative.split("/")):
                text = store._read(path, f"{TEMPLATES_DIR}/{relative}")
                if text is not None:
                    files.append((f"{TEMPLATES_DIR}/{relative}", text))
        store._load(files)
        return store

    @classmethod
    def from_sources(cls, sources: Mapping[str, str]) -> TemplateStore:
        """Load templates given as text, keyed by path (`templates/onboarding/stalled.txt`)."""
        store = cls()
        store._load(sorted(sources.items()))
        return store

    def _read(self, path: Path, file: str) -> str | None:
        """A file's text, or None with a diagnostic when it is not UTF-8."""
        try:
            return path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            message = f"'{file}' is not UTF-8 text: save it as UTF-8"
            self._load_diagnostics.append(error(message, _file_span(file), "template-encoding"))
        except OSError as exc:
            message = f"cannot read '{file}': {exc.strerror or exc}"
            self._load_diagnostics.append(error(message, _file_span(file), "template-read"))
        return None

    def _load(self, files: Iterable[tuple[str, str]]) -> None:
        """Pair up each template's .txt and .html files and split their front matter."""
        groups: dict[str, dict[str, tuple[str, str]]] = {}
        for file, text in files:
            text = text.removeprefix("\ufeff")
            self._sources[file] = text
            relative = file.removeprefix(f"{TEMPLATES_DIR}/")
            problem = _name_problem(relative)
            if problem is not None:
                self._load_diagnostics.append(problem)
                continue
            stem, _, suffix = relative.rpartition(".")
            groups.setdefault(stem, {})[f".{suffix}"] = (file, text)
        for name, group in groups.items():
            self._add_email(name, group)

    def _add_email(self, name: str, group: dict[str, tuple[str, str]]) -> None:
        """Build one email template from its parts, or record why it cannot be built."""
        if ".txt" not in group:
            file = group[".html"][0]
            message = f"'{file}' has no plain-text part: add '{TEMPLATES_DIR}/{name}.txt'"
            self._load_diagnostics.append(error(message, _file_span(file), "template-no-text"))
            return
        text_file, text = group[".txt"]
        parsed = _split_front_matter(text_file, text, required=True)
        self._load_diagnostics += parsed.diagnostics
        # Registered even with a broken front matter, so that a playbook naming it does
        # not get a second, misleading "unknown template" error.
        subject = parsed.subject or ""
        lines = tuple(text.splitlines())
        email = _Email(
            name,
            subject=_Part(f"{name} (subject)", text_file, subject, lines,
                          fixed_line=parsed.subject_line or 1),
            text=_Part(f"{name}.txt", text_file, parsed.body, lines, parsed.body_line),
        )
        if ".html" in group:
            email.html = self._html_part(name, *group[".html"], subject)
        self._emails[name] = email

    def _html_part(self, name: str, file: str, text: str, subject: str) -> _Part:
        """The HTML part: its front matter is optional, and its subject must match."""
        parsed = _split_front_matter(file, text, required=False)
        self._load_diagnostics += parsed.diagnostics
        if parsed.subject is not None and subject and parsed.subject != subject:
            message = (
                f"the subject differs from the one in '{TEMPLATES_DIR}/{name}.txt': "
                "an email has one subject, so make them the same or leave it out here"
            )
            span = _file_span(file, parsed.subject_line)
            self._load_diagnostics.append(error(message, span, "template-subject-mismatch"))
        lines = tuple(text.splitlines())
        return _Part(f"{name}.html", file, parsed.body, lines, parsed.body_line)

    # -- names

    def names(self) -> list[str]:
        """Every loaded template name, sorted."""
        return sorted(self._emails)

    def exists(self, name: str) -> bool:
        """Whether an email template of that name was loaded."""
        return name in self._emails

    def check_reference(self, name: str, span: Span) -> list[Diagnostic]:
        """An unknown-template error at `span` when a playbook names a missing template."""
        if self.exists(name):
            return []
        message = f"unknown template '{name}'{did_you_mean(name, self.names())}"
        return [error(message, span, "unknown-template")]

    @property
    def sources(self) -> dict[str, str]:
        """Each template file's text by path, to show source lines under diagnostics."""
        return dict(self._sources)

    # -- checking

    def compile_all(self, known: KnownNames | None = None) -> list[Diagnostic]:
        """Every problem in the templates: files, front matter, syntax, names."""
        scope = _Scope(known or KnownNames(), inline=False)
        found = list(self._load_diagnostics)
        for name in self.names():
            for part in self._emails[name].parts():
                found += _check(self._env, part, scope)
        return found

    def compile_inline(
        self, text: str, span: Span, known: KnownNames | None = None
    ) -> list[Diagnostic]:
        """Every problem in one message string of a playbook, reported at its `span`."""
        part = self._inline_part(text, span)
        return _check(self._env, part, _Scope(known or KnownNames(), inline=True))

    def _inline_part(self, text: str, span: Span | None) -> _Part:
        """A part for an inline message, compiled once per distinct text; without a span
        (as the evaluator renders messages), the part itself is built once too."""
        if span is None:
            part = self._unplaced.get(text)
            if part is None:
                part = self._unplaced[text] = self._new_inline_part(text, None)
            return part
        return self._new_inline_part(text, span)

    def _new_inline_part(self, text: str, span: Span | None) -> _Part:
        compiled = self._inline.get(text)
        if compiled is None:
            compiled = _compile(self._env, text, "<inline>", "<inline>")
            self._inline[text] = compiled
        file = span.file if span else "<inline>"
        return _Part("<inline>", file, text, fixed_span=span, compiled=compiled)

    # -- rendering

    def render_email(self, name: str, context: Mapping[str, object]) -> RenderedEmail:
        """The subject, text and HTML of template `name` for one recipient."""
        email = self._emails.get(name)
        if email is None:
            hint = did_you_mean(name, self.names())
            raise TemplateError(f"unknown template '{name}'{hint}")
        for part in email.parts():
            if part.compiled is None:
                part.compiled = _compile(self._env, part.source, part.name, part.file)
        what = f"template '{name}'"
        return RenderedEmail(
            subject=_one_line(_render(email.subject, context, lambda: f"the subject of {what}")),
            text=_render(email.text, context, lambda: what),
            html=_render(email.html, context, lambda: what) if email.html else None,
        )

    def render_inline(
        self, text: str, context: Mapping[str, object], span: Span | None = None
    ) -> str:
        """One message string of a playbook, with bare names for account and event fields."""
        part = self._inline_part(text, span)
        return _render(part, context, lambda: f"the message {_shorten(text)!r}", inline=True)
