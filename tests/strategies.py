"""Hypothesis strategies for playbook source text over a small fixed schema.

Everything here produces *text* that parses, and that is meant to check clean against
`SCHEMA_TEXT` (the spec's schema, cut down): names, enum values, event fields, roles and
templates all come from the tables below, and values are typed (numbers are compared
with numbers, `tier` with its enum values, dates are used with `after`/`before`/`days
since`). Aggregates always take a window, as the language requires.

    conditions()          a yes/no condition (state rules; `account` fields)
    event_conditions(e)   a condition over event `e`'s fields and the account's
    number_values()       a numeric value: fields, literals, aggregates, arithmetic
    actions()             one action; `wait` included
    rules()               a rule: `when` or `on`, then/then-block/one-line form, modifiers
    playbooks()           a `playbook` block with header clauses and 1-3 rules
    files()               a whole file: optional schema, segments/metrics, playbooks
    messy(text)           the same file with comments, blank lines and odd indentation

The strategy factories are cached: building a strategy costs more than drawing from it.
Strategies take `indent` (spaces per level) so that layouts other than the canonical
one come up; the formatter tests rely on that.
"""

from __future__ import annotations

from functools import cache

from hypothesis import strategies as st

# --------------------------------------------------------------------------- the schema

ENUMS: dict[str, tuple[str, ...]] = {
    "tier": ("high-touch", "low-touch", "tech-touch"),
    "stage": ("onboarding", "adoption", "renewal", "churned"),
}
NUMBER_FIELDS = ("mrr", "seats", "health")
TEXT_FIELDS = ("plan",)
DATE_FIELDS = ("signed_at", "renewal_date")
USER_FIELDS = ("csm",)
ROLES = ("admin", "champion", "decision-maker", "billing")
EVENTS: dict[str, dict[str, str]] = {
    "login": {"user": "text"},
    "feature_used": {"feature": "text", "user": "text"},
    "nps_submitted": {"score": "number", "comment": "text"},
}
MILESTONES = ("onboarding",)
TEMPLATES = (
    "onboarding/welcome",
    "onboarding/stalled",
    "renewal/reminder",
    "adoption/we-miss-you",
    "advocacy/referral",
)
SEGMENTS = ("at-risk",)
METRICS = ("login-rate",)

SCHEMA_TEXT = """\
schema
  account
    tier: one of high-touch, low-touch, tech-touch
    stage: one of onboarding, adoption, renewal, churned
    plan: text
    mrr: number
    seats: number
    health: number
    signed_at: date
    renewal_date: date
    onboarding_completed_at: date
    csm: user
  contact roles: admin, champion, decision-maker, billing
  event login
    user: text
  event feature_used
    feature: text
    user: text
  event nps_submitted
    score: number
    comment: text
  milestone onboarding
    starts at signed_at
    done at onboarding_completed_at

segment at-risk: health < 50 or count login in last 30 days = 0
metric login-rate: distinct user of login in last 30 days / seats
"""

# --------------------------------------------------------------------------- literals

# Text content: ASCII, Japanese, the characters that need escapes, and `#` (which must
# not start a comment inside a string).
_TEXT_ALPHABET = st.sampled_from(
    [*list("abcXYZ 019-_/.:!?#{}"), "株", "式", "会", "社", "様", "\\", '"', "\t", "\n"]
)


def quote(value: str) -> str:
    """A string literal for `value`, with the language's escapes."""
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    )
    return f'"{escaped}"'


@cache
def texts(max_size: int = 12) -> st.SearchStrategy[str]:
    """A quoted string literal."""
    return st.text(_TEXT_ALPHABET, max_size=max_size).map(quote)


@cache
def numbers() -> st.SearchStrategy[str]:
    """A non-negative number as an author writes it: `7`, `0.5`, `1.50`, `30%`."""
    whole = st.integers(0, 100_000).map(str)
    decimal = st.builds(
        lambda a, b: f"{a}.{b}", st.integers(0, 999), st.sampled_from(["5", "25", "50", "0"])
    )
    percent = st.builds(lambda a: f"{a}%", st.sampled_from(["30", "90", "12.5", "100", "0"]))
    return st.one_of(whole, decimal, percent)


@cache
def durations(units: tuple[str, ...] = ("day", "week")) -> st.SearchStrategy[str]:
    """`14 days`, `1 day`, `2 weeks`."""

    def text(amount: int, unit: str) -> str:
        return f"{amount} {unit}{'' if amount == 1 else 's'}"

    return st.builds(text, st.integers(1, 120), st.sampled_from(units))


@cache
def business_durations() -> st.SearchStrategy[str]:
    return st.one_of(
        durations(("day",)),
        st.integers(1, 10).map(lambda k: f"{k} business day{'' if k == 1 else 's'}"),
    )


# --------------------------------------------------------------------------- values


def _event_with_number() -> tuple[str, str]:
    return ("nps_submitted", "score")


@cache
def aggregates(where: bool = True) -> st.SearchStrategy[str]:
    """`count login [where ...] in last 7 days`, `distinct user of login ...`, ..."""
    window = durations().map(lambda d: f" in last {d}")

    @st.composite
    def build(draw: st.DrawFn) -> str:
        event = draw(st.sampled_from(sorted(EVENTS)))
        kind = draw(st.sampled_from(["count", "distinct", "sum", "average", "min", "max"]))
        if kind in ("sum", "average", "min", "max"):
            event, field = _event_with_number()
            head = f"{kind} {field} of {event}"
        elif kind == "distinct":
            field = draw(st.sampled_from(sorted(EVENTS[event])))
            head = f"distinct {field} of {event}"
        else:
            head = f"count {event}"
        filt = ""
        if where and draw(st.booleans()):
            filt = " where " + draw(event_conditions(event, depth=1, account=False))
        return head + filt + draw(window)

    return build()


@cache
def number_values(depth: int = 2) -> st.SearchStrategy[str]:
    """A numeric value; arithmetic has spaces around its operators."""
    leaves = st.one_of(
        st.sampled_from(NUMBER_FIELDS),
        numbers(),
        aggregates(where=depth > 1),
        st.just("last score of nps_submitted"),
        st.sampled_from(sorted(EVENTS)).map(lambda e: f"days since last {e}"),
        st.sampled_from(DATE_FIELDS).map(lambda f: f"days since {f}"),
        st.sampled_from(DATE_FIELDS).map(lambda f: f"days until {f}"),
        st.sampled_from(METRICS),
    )
    if depth <= 0:
        return leaves
    inner = number_values(depth - 1)
    return st.one_of(
        leaves,
        leaves,
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from("+-*/"), leaves),
        inner.map(lambda v: f"({v})"),
        st.sampled_from(NUMBER_FIELDS).map(lambda f: f"-{f}"),
    )


# --------------------------------------------------------------------------- conditions


@cache
def _enum_condition() -> st.SearchStrategy[str]:
    @st.composite
    def build(draw: st.DrawFn) -> str:
        field = draw(st.sampled_from(sorted(ENUMS)))
        values = ENUMS[field]
        form = draw(st.integers(0, 5))
        if form <= 1:
            return f"{field} is {'not ' if form else ''}{draw(st.sampled_from(values))}"
        if form <= 3:
            chosen = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True))
            return f"{field} {'not in' if form == 3 else 'in'} [{', '.join(chosen)}]"
        if form == 4:
            return f"{field} changes to {draw(st.sampled_from(values))}"
        a, b = draw(st.lists(st.sampled_from(values), min_size=2, max_size=2, unique=True))
        return f"{field} changes from {a} to {b}"

    return build()


@cache
def _atomic_conditions() -> st.SearchStrategy[str]:
    cmp = st.sampled_from(["<", "<=", ">", ">=", "=", "!="])
    field = st.sampled_from(NUMBER_FIELDS + TEXT_FIELDS + DATE_FIELDS + tuple(ENUMS))
    return st.one_of(
        st.builds(lambda a, op, b: f"{a} {op} {b}", number_values(1), cmp, number_values(1)),
        _enum_condition(),
        st.builds(
            lambda f, w: f"{f} is {w}", field, st.sampled_from(["missing", "present"])
        ),
        st.builds(
            lambda f, op, t: f"{f} {op} {t}",
            st.sampled_from((*TEXT_FIELDS, "name")),
            st.sampled_from(["contains", "starts with", "ends with", "is"]),
            texts(),
        ),
        texts(8).map(lambda t: f"has tag {t}"),
        st.builds(
            lambda d, rel, f: f"{d} {rel} {f}",
            durations(),
            st.sampled_from(["after", "before"]),
            st.sampled_from(DATE_FIELDS),
        ),
        st.builds(
            lambda m, s: f"{m} {s}",
            st.sampled_from(MILESTONES),
            st.sampled_from(["complete", "incomplete"]),
        ),
        st.builds(lambda m, d: f"{m} incomplete after {d}", st.sampled_from(MILESTONES),
                  durations()),
        st.builds(
            lambda f, verb, v: f"{f} {verb} {v}",
            st.sampled_from(NUMBER_FIELDS),
            st.sampled_from(["drops below", "rises above"]),
            numbers(),
        ),
        st.sampled_from(NUMBER_FIELDS + tuple(ENUMS)).map(lambda f: f"{f} changes"),
        st.sampled_from(SEGMENTS),
        st.builds(
            lambda f, op, v, d: f"{f} {op} {v} for {d}",
            st.sampled_from(NUMBER_FIELDS + METRICS),
            cmp,
            numbers(),
            durations(),
        ),
    )


@cache
def _combine(atoms: st.SearchStrategy[str], depth: int) -> st.SearchStrategy[str]:
    """and/or/not over `atoms`, with parentheses where the author would write them."""
    if depth <= 0:
        return atoms
    inner = _combine(atoms, depth - 1)
    return st.one_of(
        atoms,
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(["and", "or"]), inner),
        inner.map(lambda c: f"({c})"),
        atoms.map(lambda c: f"not {c}"),
        inner.map(lambda c: f"not ({c})"),
    )


@cache
def conditions(depth: int = 2) -> st.SearchStrategy[str]:
    """A condition over the account (for `when`, `applies to`, `unless`, segments)."""
    return _combine(_atomic_conditions(), depth)


@cache
def event_conditions(event: str, depth: int = 2, account: bool = True) -> st.SearchStrategy[str]:
    """A condition over event `event`'s fields (bare, or as `event.x`), and the account's."""
    fields = EVENTS[event]
    atoms: list[st.SearchStrategy[str]] = []
    for name, kind in sorted(fields.items()):
        ref = st.sampled_from([name, f"event.{name}"])
        if kind == "number":
            atoms.append(st.builds(
                lambda r, op, v: f"{r} {op} {v}", ref,
                st.sampled_from(["<", "<=", ">", ">=", "=", "!="]), st.integers(0, 10).map(str),
            ))
        else:
            atoms.append(st.builds(
                lambda r, op, t: f"{r} {op} {t}", ref,
                st.sampled_from(["is", "is not", "contains", "starts with"]), texts(6),
            ))
    if account:
        atoms.append(_enum_condition().filter(lambda c: " changes" not in c))
    return _combine(st.one_of(atoms), depth)


# --------------------------------------------------------------------------- actions


@cache
def recipients() -> st.SearchStrategy[str]:
    one = st.one_of(st.sampled_from(ROLES + USER_FIELDS), st.just('"ops@example.com"'))
    return st.lists(one, min_size=1, max_size=3).map(", ".join)


@cache
def actions(wait: bool = True) -> st.SearchStrategy[str]:
    template = st.sampled_from(TEMPLATES).map(quote)
    cc = st.one_of(st.just(""), recipients().map(lambda r: f" cc {r}"))
    priority = st.sampled_from(["", " priority high", " priority normal", " priority low"])
    task = st.builds(
        lambda title, who, due, prio: f"create task {title}{who}{due}{prio}",
        st.one_of(texts(), st.just('"Call {{ account.name }} 様"')),
        st.one_of(st.just(""), st.just(" for csm")),
        st.one_of(st.just(""), business_durations().map(lambda d: f" due in {d}")),
        priority,
    )
    pair = st.one_of(
        st.builds(lambda k, v: f"{k}: {v}", st.sampled_from(["event", "mrr", "account", "when"]),
                  st.one_of(texts(6), st.sampled_from((*NUMBER_FIELDS, "id")))),
        st.builds(lambda v: f'"two words": {v}', texts(4)),
    )
    webhook = st.builds(
        lambda payload: 'post webhook "crm"' + payload,
        st.one_of(
            st.just(""),
            st.lists(pair, max_size=3).map(lambda ps: " with {" + ", ".join(ps) + "}"),
        ),
    )
    options = [
        st.builds(lambda t, r, c: f"send email {t} to {r}{c}", template, recipients(), cc),
        st.builds(lambda t, c: f"send template {t}{c}", template, cc),
        task,
        webhook,
        st.builds(lambda m: f'notify "cs-alerts" {m}', texts()),
        st.builds(lambda f, v: f"set {f} to {v}", st.just("stage"),
                  st.sampled_from(ENUMS["stage"])),
        st.builds(lambda f, v: f"set {f} to {v}", st.sampled_from(NUMBER_FIELDS),
                  number_values(1)),
        st.builds(lambda op, t: f"{op} tag {t}", st.sampled_from(["add", "remove"]), texts(8)),
    ]
    if wait:
        options.append(durations(("day",)).map(lambda d: f"wait {d}"))
    return st.one_of(options)


# --------------------------------------------------------------------------- rules


@cache
def modifiers() -> st.SearchStrategy[list[str]]:
    """Zero or more modifier lines, each kind at most once, in any order."""
    kinds = st.fixed_dictionaries(
        {},
        optional={
            "once": st.just("once per account"),
            "most": durations(("day",)).map(lambda d: f"at most once every {d}"),
            "repeat": durations(("day",)).map(lambda d: f"repeat every {d}"),
            "unless": conditions(1).map(lambda c: f"unless {c}"),
            "priority": st.sampled_from(["high", "normal", "low"]).map(lambda p: f"priority {p}"),
            "stop": conditions(1).map(lambda c: f"stop when {c}"),
        },
    )
    return kinds.map(lambda d: list(d.values())).flatmap(st.permutations)


def _split(condition: str, pad: str) -> st.SearchStrategy[str]:
    """Sometimes move a top-level ` and `/` or ` to a continuation line."""
    depth = 0
    cuts: list[int] = []
    for i, ch in enumerate(condition):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and condition.startswith((" and ", " or "), i) and not _in_string(
            condition, i
        ):
            cuts.append(i)
    if not cuts:
        return st.just(condition)

    def apply(chosen: list[int]) -> str:
        text = condition
        for i in sorted(chosen, reverse=True):
            text = text[:i] + "\n" + pad + text[i + 1 :]
        return text

    return st.lists(st.sampled_from(cuts), unique=True, max_size=len(cuts)).map(apply)


def _in_string(text: str, index: int) -> bool:
    inside = escaped = False
    for ch in text[:index]:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            inside = not inside
    return inside


@cache
def rules(indent: int = 2, level: int = 1) -> st.SearchStrategy[str]:
    """A `rule` block at nesting `level` (1 inside a playbook), `indent` spaces a level."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        pad = " " * indent * level
        body = pad + " " * indent
        inner = body + " " * indent
        name = draw(st.one_of(texts(10), st.just('"Welcome 様"')))
        if draw(st.booleans()):
            condition = draw(conditions())
            trigger = f"when {draw(_split(condition, body + ' ' * indent))}"
        else:
            event = draw(st.sampled_from(sorted(EVENTS)))
            trigger = f"on {event}"
            if draw(st.booleans()):
                where = draw(event_conditions(event))
                trigger += f" where {draw(_split(where, body + ' ' * indent))}"
        acts = draw(st.lists(actions(), min_size=1, max_size=3))
        form = draw(st.sampled_from(["line", "block", "inline"]))
        lines = [f"{pad}rule {name}"]
        if form == "inline":
            lines.append(f"{body}{trigger} {acts[0]}")
            rest = acts[1:]
        else:
            lines.append(f"{body}{trigger}")
            rest = acts
        if rest and form == "line" and len(rest) == 1:
            lines.append(f"{body}then {rest[0]}")
        elif rest:
            lines.append(f"{body}then")
            lines.extend(f"{inner}{a}" for a in rest)
        lines.extend(f"{body}{m}" for m in draw(modifiers()))
        return "\n".join(lines) + "\n"

    return build()


@cache
def playbooks(indent: int = 2) -> st.SearchStrategy[str]:
    """A `playbook` block: header clauses in any order, then one to three rules."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        pad = " " * indent
        header = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "description": texts().map(lambda t: f"description {t}"),
                    "owner": st.just('owner "cs-ops@example.com"'),
                    "status": st.sampled_from(["active", "draft", "paused"]).map(
                        lambda s: f"status {s}"
                    ),
                    "applies": conditions(1).map(lambda c: f"applies to {c}"),
                },
            ).map(lambda d: list(d.values())).flatmap(st.permutations)
        )
        body = [f"playbook {draw(texts(12))}\n"] + [f"{pad}{h}\n" for h in header]
        for rule in draw(st.lists(rules(indent), min_size=1, max_size=3)):
            body.append(("\n" if draw(st.booleans()) else "") + rule)
        return "".join(body)

    return build()


@cache
def files() -> st.SearchStrategy[str]:
    """A whole file: maybe the schema, some segments and metrics, some playbooks."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        indent = draw(st.sampled_from([2, 2, 4]))
        parts: list[str] = []
        if draw(st.booleans()):
            parts.append(SCHEMA_TEXT)
        for k in range(draw(st.integers(0, 2))):
            parts.append(f"segment seg-{k}: {draw(conditions(1))}\n")
        for k in range(draw(st.integers(0, 1))):
            parts.append(f"metric m{k}: {draw(number_values(1))}\n")
        for _ in range(draw(st.integers(1 if not parts else 0, 2))):
            parts.append(draw(playbooks(indent)))
        return "\n".join(parts)

    return build()


def messy(text: str) -> st.SearchStrategy[str]:
    """`text` with comments (own-line and trailing) and blank lines sprinkled in."""
    lines = text.split("\n")
    comment = st.text(st.sampled_from(list("abc xyz#\"'-株")), max_size=10).map(
        lambda t: "#" + t.rstrip()
    )

    @st.composite
    def build(draw: st.DrawFn) -> str:
        out: list[str] = []
        for line in lines:
            choice = draw(st.integers(0, 9))
            if choice == 0:
                out.append(" " * draw(st.integers(0, 8)) + draw(comment))
            elif choice == 1:
                out.append("")
            if choice == 2 and line.strip():
                line = f"{line}{' ' * draw(st.integers(1, 3))}{draw(comment)}"
            out.append(line)
        return "\n".join(out)

    return build()
