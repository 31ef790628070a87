"""Evaluation: facts and a clock in, decisions out. Pure and synchronous.

`Evaluator` holds rules compiled once for a program and decides, for one account at
one moment, which rules fire and what they do. It serves the dry-run, the simulation
and the live runtime alike: each gives it the account's facts, the moment, the
interval between evaluations and the firings it knows of; nothing here reads a clock,
a database or the network.

Firing semantics (LANGUAGE.md): a state rule fires when its condition is true, and is
re-armed only by a false evaluation after its last firing; `once per account`,
`at most once every`, `repeat every` and `unless` act on top. An event rule fires once
for each matching event since the previous evaluation, as of that event's moment.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from . import nodes as n
from .compile import Compiler, Fn, Frame, duration_delta, event_order
from .decisions import (
    Action,
    EmailAction,
    NotifyAction,
    RuleOutcome,
    SetAction,
    TagAction,
    TaskAction,
    WebhookAction,
    trusted,
)
from .errors import TemplateError
from .explain import Explainer
from .facts import Account, Contact, Event, Firing, User
from .program import Program
from .templates import Scope, TemplateStore
from .timeutil import due_date, format_date, format_moment, shift


@dataclass(frozen=True)
class EvalSettings:
    """What evaluation needs beyond the facts: local time, calendars, defaults."""

    tz: tzinfo
    interval: timedelta = timedelta(days=1)
    holidays: frozenset[date] = frozenset()
    default_role: str | None = None


@dataclass(frozen=True)
class _Step:
    offset: timedelta
    action: n.Action
    after_wait: bool


@dataclass
class CompiledRule:
    """One rule with every condition compiled; built once, used for every account."""

    playbook: n.Playbook
    rule: n.Rule
    scope: Fn | None
    when: Fn | None
    where: Fn | None
    unless: Fn | None
    stop_when: Fn | None
    steps: tuple[_Step, ...]
    values: dict[int, Fn] = field(default_factory=dict)
    # (playbook, rule) and the event type, read for every account: computed once.
    key: tuple[str, str] = field(init=False)
    event: str | None = field(init=False)

    def __post_init__(self) -> None:
        self.key = (self.playbook.name.value, self.rule.name.value)
        self.event = self.rule.event.text if self.rule.event else None


def compile_rules(program: Program, traced: bool = False) -> list[CompiledRule]:
    """Every rule of every playbook that is not paused, in the dry-run's stable order."""
    compiler = Compiler(program, traced=traced)
    compiled = []
    for playbook, rule in program.rules():
        if playbook.status_value == "paused":
            continue
        compiled.append(_compile_rule(compiler, playbook, rule))
    return compiled


def _compile_rule(c: Compiler, playbook: n.Playbook, rule: n.Rule) -> CompiledRule:
    ev = rule.event.text if rule.event else None
    steps: list[_Step] = []
    offset = timedelta(0)
    waited = False
    values: dict[int, Fn] = {}
    for action in rule.actions:
        if isinstance(action, n.Wait):
            offset += duration_delta(action.duration)
            waited = True
            continue
        steps.append(_Step(offset, action, waited))
        for expr in _action_exprs(action):
            values[id(expr)] = c.expr(expr, ev)
    return CompiledRule(
        playbook=playbook,
        rule=rule,
        # One playbook's rules share its scope: its value is kept per account and moment.
        scope=(c.memo(("scope", playbook.applies_to), c.condition(playbook.applies_to))
               if playbook.applies_to else None),
        when=c.condition(rule.when) if rule.when is not None else None,
        where=c.condition(rule.where, ev) if rule.where is not None else None,
        unless=c.condition(rule.unless, ev) if rule.unless is not None else None,
        stop_when=c.condition(rule.stop_when, ev) if rule.stop_when is not None else None,
        steps=tuple(steps),
        values=values,
    )


def _action_exprs(action: n.Action) -> Iterable[n.Expr]:
    if isinstance(action, n.PostWebhook) and action.payload:
        for _, expr in action.payload:
            yield expr
    if isinstance(action, n.SetField):
        yield action.value
    for recipient in _recipient_nodes(action):
        if isinstance(recipient, n.Name):
            yield recipient


def _recipient_nodes(action: n.Action) -> Iterable[n.Recipient]:
    if isinstance(action, n.SendEmail):
        yield from action.to
        yield from action.cc
    if isinstance(action, n.CreateTask) and action.assignee is not None:
        yield action.assignee


@dataclass
class _Call:
    """What the rules decided in one call (one account, one moment) share."""

    # The firings known so far: the account's, then each rule's as it fires.
    run: list[Firing]
    # Values of conditions and aggregates at moments, for frames without an event
    # (`Frame.cache`): the same account at the same moment gives the same value.
    cache: dict[Any, Any] = field(default_factory=dict)
    # Template variables by moment and event (`templates.Scope`).
    scopes: dict[tuple[Any, ...], Scope] = field(default_factory=dict)

    def fired(self, key: tuple[str, str], until: datetime) -> list[datetime]:
        """The moments the rule `key` (playbook, rule) fired at up to `until`, sorted."""
        playbook, rule = key
        # Two text comparisons per firing, not a tuple built for each: an account has
        # many firings, and the bulk path decides one or two rules for it.
        return sorted(
            f.at for f in self.run if f.rule == rule and f.playbook == playbook and f.at <= until
        )


class Evaluator:
    """Decides which rules fire for an account at a moment, and what they do."""

    def __init__(
        self,
        program: Program,
        templates: TemplateStore,
        settings: EvalSettings,
        sources: dict[str, str] | None = None,
    ) -> None:
        self.program = program
        self.templates = templates
        self.settings = settings
        self.rules = compile_rules(program)
        self._traced: list[CompiledRule] | None = None
        self.explainer = Explainer(program, sources or {})
        # Read for every action: the program does not change under an evaluator.
        self._fields = program.field_names
        self._field_set = frozenset(self._fields)
        self._roles = program.roles
        # Texts of moments and due dates already computed (`_local_text`, `_due`).
        self._texts: dict[tuple[Any, ...], str] = {}
        self._dues: dict[tuple[Any, ...], str] = {}

    def traced_rules(self) -> list[CompiledRule]:
        if self._traced is None:
            self._traced = compile_rules(self.program, traced=True)
        return self._traced

    # -- one account

    def evaluate(
        self,
        account: Account,
        at: datetime,
        *,
        explain: bool = False,
        only_rule: str | None = None,
    ) -> list[RuleOutcome]:
        """Every rule's outcome for this account at `at` (firings in `account.fired`)."""
        rules = self.traced_rules() if explain else self.rules
        chosen = [(compiled, None, False) for compiled in rules
                  if only_rule is None or compiled.rule.name.value == only_rule]
        return self._decide(account, at, chosen, explain)

    def evaluate_rules(
        self,
        account: Account,
        at: datetime,
        indices: Iterable[int],
        known: Mapping[int, bool] | None = None,
        rearmed: Container[int] = (),
    ) -> list[RuleOutcome]:
        """The outcomes of some rules only (indices into `self.rules`), in rule order.

        For the bulk path (`bulk.py`), which knows the other rules cannot fire for this
        account: a rule that does not fire adds no firing to the run, so leaving it out
        changes no other rule's outcome. `known` gives state rules' conditions at `at`
        that the caller has already established exactly (they are not evaluated again);
        `rearmed`, state rules the caller knows were re-armed since their last firing
        (their condition was false at an evaluation after it: the look-back is skipped).
        """
        given = known or {}
        chosen = [(self.rules[i], given.get(i), i in rearmed) for i in sorted(set(indices))]
        return self._decide(account, at, chosen, False)

    def _decide(
        self,
        account: Account,
        at: datetime,
        chosen: Sequence[tuple[CompiledRule, bool | None, bool]],
        explain: bool,
    ) -> list[RuleOutcome]:
        """The outcomes of the chosen rules, in order, each with its condition when known
        and whether it is known to be re-armed; a rule that fires adds its firing to the
        run the later ones see."""
        call = _Call(list(account.fired))
        outcomes: list[RuleOutcome] = []
        for compiled, known, rearmed in chosen:
            if compiled.event is None:
                outcomes.append(self._state_rule(compiled, account, at, call, explain, known,
                                                 rearmed))
            else:
                outcomes.extend(self._event_rule(compiled, account, at, call, explain))
        return outcomes

    # -- state rules

    def _state_rule(
        self,
        cr: CompiledRule,
        account: Account,
        at: datetime,
        call: _Call,
        explain: bool,
        known: bool | None = None,
        rearmed: bool = False,
    ) -> RuleOutcome:
        frame = Frame(
            account, at, self.settings.interval, None, [] if explain else None, call.cache
        )
        if known is not None:
            condition: Any = known
        else:
            condition = cr.when(frame) if cr.when is not None else None
        notes: list[str] = []
        reason = self._blocked(cr, frame, condition, call, notes, rearmed)
        return self._outcome(cr, frame, condition, reason, call, notes, None)

    def _blocked(
        self,
        cr: CompiledRule,
        frame: Frame,
        condition: Any,
        call: _Call,
        notes: list[str],
        rearmed: bool = False,
    ) -> str | None:
        """Why a rule does not fire now, or None when it fires (`rearmed`: known to be
        re-armed since its last firing, `_rearmed` need not look)."""
        at = frame.at
        # The scope first: outside it, the rule's own condition is beside the point.
        if cr.scope is not None:
            scope = cr.scope(frame)
            if scope is not True:
                word = "unknown" if scope is None else "false"
                return f"the account is out of the playbook's scope ('applies to' is {word})"
        if condition is None:
            return "the condition is unknown (some value it needs is missing)"
        if condition is False:
            return "the condition is false"
        earlier = call.fired(cr.key, at)
        rule = cr.rule
        if earlier and rule.once_per_account:
            return f"once per account: it already fired on {format_moment(earlier[-1])}"
        if earlier and cr.event is None:
            last = earlier[-1]
            if not (rearmed or self._rearmed(cr, frame, last)):
                repeat = duration_delta(rule.repeat_every) if rule.repeat_every else None
                if repeat is None or at - last < repeat:
                    return (
                        f"already fired on {format_moment(last)}, and the condition has not "
                        "been false at any evaluation since"
                        + (f"; it repeats once {_days(rule.repeat_every)} have passed"
                           if rule.repeat_every else "")
                    )
                notes.append(f"repeats: last fired {format_moment(last)}")
        if earlier and rule.at_most_every is not None:
            last = earlier[-1]
            if at - last < duration_delta(rule.at_most_every):
                return (
                    f"at most once every {_days(rule.at_most_every)}: it last fired on "
                    f"{format_moment(last)}"
                )
        if cr.unless is not None and cr.unless(frame) is True:
            return "its 'unless' condition is true"
        return None

    def _rearmed(self, cr: CompiledRule, frame: Frame, last: datetime) -> bool:
        """Was the rule's own condition false at an evaluation strictly after `last`?"""
        assert cr.when is not None
        back = -frame.interval  # one object: `shift` keeps its sums by delta
        moment = shift(frame.at, back)
        while moment > last:
            if cr.when(frame.shifted(moment)) is False:
                return True
            moment = shift(moment, back)
        return False

    # -- event rules

    def _event_rule(
        self, cr: CompiledRule, account: Account, at: datetime, call: _Call, explain: bool
    ) -> list[RuleOutcome]:
        since = shift(at, -self.settings.interval)
        wanted = cr.event
        events = [e for e in account.events if e.type == wanted and since < e.at <= at]
        events.sort(key=event_order)
        if not events:
            frame = Frame(account, at, self.settings.interval, None, None, call.cache)
            reason = f"no '{cr.event}' event since the previous evaluation"
            return [self._outcome(cr, frame, None, reason, call, [], None)]
        outcomes = []
        for event in events:
            frame = Frame(
                account, event.at, self.settings.interval, event, [] if explain else None,
                {}, call.cache,
            )
            condition: Any = cr.where(frame) if cr.where is not None else True
            notes: list[str] = []
            why = self._blocked(cr, frame, condition, call, notes)
            outcomes.append(self._outcome(cr, frame, condition, why, call, notes, event))
        return outcomes

    # -- outcome and actions

    def _outcome(
        self,
        cr: CompiledRule,
        frame: Frame,
        condition: Any,
        reason: str | None,
        call: _Call,
        notes: list[str],
        event: Event | None,
    ) -> RuleOutcome:
        actions: list[Action] = []
        recipients: list[str] = []
        errors: list[str] = []
        if reason is None:
            call.run.append(Firing(cr.key[0], cr.key[1], frame.at))
            actions, recipients, errors = self._actions(cr, frame, notes, call)
            reason = "fired" + (f" ({'; '.join(notes)})" if notes else "")
            if errors:
                reason += "; " + "; ".join(errors)
        explanation = (
            self.explainer.explain(cr, frame, condition, recipients)
            if frame.trace is not None
            else []
        )
        at = self._local_text(frame.at)
        values = dict(
            account=frame.account.id,
            playbook=cr.key[0],
            rule=cr.key[1],
            at=at,
            fired=reason.startswith("fired"),
            condition=condition,
            reason=reason,
            # An event is decided at its own moment (`_event_rule`): the same text.
            event_at=at if event is not None else None,
            actions=actions,
            recipients=recipients,
            explanation=explanation,
            errors=errors,
        )
        # Each value is of its field's type, as validating would leave it (texts, lists of
        # texts, actions validated when built), unless the condition is not a yes/no.
        if condition is None or type(condition) is bool:
            return trusted(RuleOutcome, **values)
        return RuleOutcome(**values)

    def _actions(
        self, cr: CompiledRule, frame: Frame, notes: list[str], call: _Call
    ) -> tuple[list[Action], list[str], list[str]]:
        stopped = cr.stop_when is not None and cr.stop_when(frame) is True
        actions: list[Action] = []
        recipients: list[str] = []
        errors: list[str] = []
        for step in cr.steps:
            if step.after_wait and stopped:
                break
            moment = shift(frame.at, step.offset)
            base = {
                "account": frame.account.id,
                "playbook": cr.key[0],
                "rule": cr.key[1],
                "scheduled_at": (
                    self._local_text(moment) if step.after_wait else None
                ),
            }
            try:
                built = self._action(cr, step.action, frame, moment, base, recipients, call)
            except TemplateError as exc:
                errors.append(str(exc))
                continue
            except _NoRecipient as exc:
                notes.append(str(exc))
                continue
            actions.extend(built)
        return actions, recipients, errors

    def _action(
        self,
        cr: CompiledRule,
        action: n.Action,
        frame: Frame,
        moment: datetime,
        base: dict[str, Any],
        recipients: list[str],
        call: _Call,
    ) -> list[Action]:
        if isinstance(action, n.SendEmail):
            return self._emails(cr, action, frame, base, recipients, call)
        if isinstance(action, n.CreateTask):
            assignee = None
            if action.assignee is not None:
                found = self._resolve(cr, action.assignee, frame)
                assignee = found[0][0] if found else None
            due = self._due(moment, action.due) if action.due is not None else None
            title = self._inline(cr, action.title.value, frame, call)
            priority = action.priority.text if action.priority else "normal"
            if assignee:
                recipients.append(assignee)
            return [TaskAction(**base, title=title, assignee=assignee, due=due, priority=priority)]
        if isinstance(action, n.PostWebhook):
            payload = {
                key: self._json_value(cr, expr, frame, call)
                for key, expr in (action.payload or ())
            }
            return [WebhookAction(**base, endpoint=action.endpoint.value, payload=payload)]
        if isinstance(action, n.Notify):
            message = self._inline(cr, action.message.value, frame, call)
            return [NotifyAction(**base, channel=action.channel.value, message=message)]
        if isinstance(action, n.SetField):
            name = action.field.parts[-1]
            value: Any
            if (
                isinstance(action.value, n.Name)
                and len(action.value.parts) == 1
                and self.program.field_kind(name) == "enum"
            ):
                value = action.value.text
            else:
                value = _json(cr.values[id(action.value)](frame))
            return [SetAction(**base, field=name, value=value)]
        if isinstance(action, n.TagChange):
            return [TagAction(**base, tag=action.tag.value, op=action.op)]
        return []

    def _emails(
        self,
        cr: CompiledRule,
        action: n.SendEmail,
        frame: Frame,
        base: dict[str, Any],
        recipients: list[str],
        call: _Call,
    ) -> list[Action]:
        to_nodes: Sequence[n.Recipient] = action.to
        if action.default_recipient:
            roles = self._roles
            role = self.settings.default_role or (roles[0] if roles else None)
            to_nodes = (n.Name((role,)),) if role else ()
        seen: dict[str, Contact] = {}
        for node in to_nodes:
            for address, contact in self._resolve(cr, node, frame):
                seen.setdefault(address.lower(), contact)
        cc: list[str] = []
        for node in action.cc:
            for address, _ in self._resolve(cr, node, frame):
                # Addresses compare without case, as for the recipients above.
                if address.lower() not in {c.lower() for c in cc}:
                    cc.append(address)
        emails: list[Action] = []
        name = action.template.value
        if not seen:
            wanted = ", ".join(_recipient_text(r) for r in to_nodes) or "nobody"
            raise _NoRecipient(f"email '{name}' has no recipient ({wanted}: none on this account)")
        for contact in seen.values():
            address = contact.email or ""
            context = self._context(cr, frame, contact, call)
            rendered = self.templates.render_email(name, context)
            recipients.append(address)
            emails.append(
                EmailAction(
                    **base,
                    template=name,
                    to=[address],
                    cc=[c for c in cc if c.lower() != address.lower()],
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                )
            )
        return emails

    def _local_text(self, moment: datetime) -> str:
        """`moment` in the evaluation's zone, as ISO-8601 text (`format_moment`)."""
        # Many accounts are decided at the same moments: each is formatted once. The key
        # holds the zone and fold, as the text depends on them.
        key = (moment, moment.tzinfo, moment.fold)
        text = self._texts.get(key)
        if text is None:
            if len(self._texts) >= _KEPT:
                self._texts.clear()
            text = self._texts[key] = format_moment(moment.astimezone(self.settings.tz))
        return text

    def _due(self, moment: datetime, due: n.Duration) -> str:
        """The date a task is due, `due` after `moment` (kept: many tasks share one)."""
        key = (moment, moment.tzinfo, moment.fold, due.amount, due.unit, due.business)
        text = self._dues.get(key)
        if text is None:
            if len(self._dues) >= _KEPT:
                self._dues.clear()
            text = self._dues[key] = format_date(
                due_date(
                    moment,
                    due.amount,
                    due.unit,
                    due.business,
                    self.settings.holidays,
                    self.settings.tz,
                )
            )
        return text

    def _resolve(
        self, cr: CompiledRule, node: n.Recipient, frame: Frame
    ) -> list[tuple[str, Contact]]:
        """Addresses a recipient stands for: a role's contacts, a user field, an address."""
        if isinstance(node, n.String):
            return [(node.value, Contact(None, node.value, None))]
        if len(node.parts) == 1 and node.parts[0] in self._roles:
            role = node.parts[0]
            return [
                (c.email, c)
                for c in frame.account.contacts
                if c.role == role and c.email
            ]
        fn = cr.values.get(id(node))
        value = fn(frame) if fn is not None else frame.account.value(node.text, frame.at)
        if isinstance(value, User) and value.email:
            return [(value.email, Contact(value.name, value.email, None))]
        if isinstance(value, str) and "@" in value:
            return [(value, Contact(None, value, None))]
        return []

    def _context(
        self, cr: CompiledRule, frame: Frame, contact: Contact | None, call: _Call
    ) -> dict[str, Any]:
        """The template variables: one `Scope` per moment and event, for every rule."""
        at, event = frame.at, frame.event
        # The time zone and fold too: `now` prints the date in the moment's own zone.
        key = (at, at.tzinfo, at.fold, id(event) if event is not None else None)
        scope = call.scopes.get(key)
        if scope is None:
            scope = Scope(frame.account, at, event, self._fields, self._field_set)
            call.scopes[key] = scope
        return scope.context(cr.key[0], cr.key[1], contact)

    def _inline(self, cr: CompiledRule, text: str, frame: Frame, call: _Call) -> str:
        if "{{" not in text and "{%" not in text:
            return text
        return self.templates.render_inline(text, self._context(cr, frame, None, call))

    def _json_value(self, cr: CompiledRule, expr: n.Expr, frame: Frame, call: _Call) -> Any:
        if isinstance(expr, n.String):
            return self._inline(cr, expr.value, frame, call)
        return _json(cr.values[id(expr)](frame))


# How many moment texts and due dates an evaluator keeps (then it starts again).
_KEPT = 4096


class _NoRecipient(Exception):
    """An email step found nobody to send to: the rule still fired, the step is skipped."""


def _recipient_text(node: n.Recipient) -> str:
    return f'"{node.value}"' if isinstance(node, n.String) else node.text


def _json(value: Any) -> Any:
    """A value as JSON shows it: whole numbers without a decimal point, dates as dates."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        # A date field holds local midnight: send the date people wrote, which a receiver
        # converting to UTC cannot shift to the day before.
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, User):
        return {"name": value.name, "email": value.email}
    return value


def _days(d: n.Duration | None) -> str:
    if d is None:
        return ""
    amount = d.amount.normalize()
    unit = d.unit + ("" if amount == 1 else "s")
    return f"{amount:f} {'business ' if d.business else ''}{unit}"
