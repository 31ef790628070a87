"""The dry-run: every account of a fixture evaluated at one moment, nothing delivered.

Prints the decisions as the JSON contract of LANGUAGE.md, or as a table grouped by
account for a reviewer. Accounts come in fixture order; within an account, playbooks
by file name, then rules and steps in file order (the evaluator's order).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from rich.console import Console
from rich.text import Text

from .decisions import (
    Action,
    EmailAction,
    Evaluation,
    NotifyAction,
    RuleOutcome,
    SetAction,
    TagAction,
    TaskAction,
    WebhookAction,
)
from .evaluate import Evaluator
from .facts import Account
from .timeutil import format_moment


def dry_run(
    evaluator: Evaluator,
    accounts: Sequence[Account],
    at: datetime,
    *,
    explain: bool = False,
    account_ids: Iterable[str] | None = None,
    rule: str | None = None,
) -> Evaluation:
    """Evaluate every (or the chosen) account at `at`; outcomes in the stable order."""
    wanted = set(account_ids) if account_ids else None
    outcomes: list[RuleOutcome] = []
    for account in accounts:
        if wanted is not None and account.id not in wanted:
            continue
        outcomes.extend(evaluator.evaluate(account, at, explain=explain, only_rule=rule))
    return Evaluation(at=format_moment(at.astimezone(evaluator.settings.tz)), outcomes=outcomes)


def to_json(evaluation: Evaluation, explain: bool = False) -> str:
    doc = evaluation.as_json()
    if explain:
        doc["explain"] = [
            {
                "account": o.account,
                "playbook": o.playbook,
                "rule": o.rule,
                "fired": o.fired,
                "reason": o.reason,
                "lines": o.explanation,
            }
            for o in evaluation.outcomes
        ]
    return json.dumps(doc, ensure_ascii=False, indent=2)


def describe(action: Action) -> str:
    """One line per action, for people."""
    when = f"  [scheduled {action.scheduled_at}]" if action.scheduled_at else ""
    if isinstance(action, EmailAction):
        cc = f" cc {', '.join(action.cc)}" if action.cc else ""
        return f'email "{action.template}" to {action.to[0]}{cc}: "{action.subject}"{when}'
    if isinstance(action, TaskAction):
        who = action.assignee or "nobody (no assignee)"
        due = f", due {action.due}" if action.due else ""
        return f'task "{action.title}" for {who}{due}, {action.priority} priority{when}'
    if isinstance(action, WebhookAction):
        return f"webhook {action.endpoint} {json.dumps(action.payload, ensure_ascii=False)}{when}"
    if isinstance(action, NotifyAction):
        return f'notify {action.channel}: "{action.message}"{when}'
    if isinstance(action, SetAction):
        return f"set {action.field} to {action.value}{when}"
    assert isinstance(action, TagAction)
    return f'{action.op} tag "{action.tag}"{when}'


def print_table(evaluation: Evaluation, console: Console, explain: bool = False) -> None:
    """The reviewer's view: one block per account, each action under the rule that fired."""
    console.print(Text(f"Dry-run at {evaluation.at}", style="bold"))
    # A bulk evaluation has outcomes only for rules that could fire: it lists every account.
    by_account: dict[str, list[RuleOutcome]] = {
        a: [] for a in getattr(evaluation, "account_ids", ())}
    for outcome in evaluation.outcomes:
        by_account.setdefault(outcome.account, []).append(outcome)
    total = 0
    quiet: list[str] = []
    for account, outcomes in by_account.items():
        fired = [o for o in outcomes if o.fired]
        if not fired and not explain:
            quiet.append(account)
            continue
        console.print(Text(f"\n{account}", style="bold cyan"))
        for outcome in outcomes if explain else fired:
            mark = "✓" if outcome.fired else "·"
            line = Text(f"  {mark} {outcome.playbook} / {outcome.rule}", style="bold")
            if outcome.event_at:
                line.append(f"  (event at {outcome.event_at})", style="dim")
            console.print(line)
            if not outcome.fired:
                console.print(Text(f"      no: {outcome.reason}", style="dim"))
            elif outcome.reason != "fired":
                console.print(Text(f"      {outcome.reason}", style="yellow"))
            for action in outcome.actions:
                console.print(Text(f"      → {describe(action)}", style="green"))
                total += 1
            for text in outcome.explanation if explain else ():
                console.print(Text(f"        {text}", style="dim"))
    if quiet:
        console.print(Text("\nnothing fires for: " + ", ".join(quiet), style="dim"))
    accounts = len(by_account)
    console.print(
        Text(f"\n{total} action{'s' if total != 1 else ''} for "
             f"{accounts} account{'s' if accounts != 1 else ''}", style="bold")
    )


def print_explanation(evaluation: Evaluation, console: Console) -> None:
    """Rule by rule: fired or not, the reason, and every part of its condition."""
    console.print(Text(f"Explain at {evaluation.at}", style="bold"))
    for outcome in evaluation.outcomes:
        verdict = Text("FIRES" if outcome.fired else "does not fire",
                       style="bold green" if outcome.fired else "bold")
        head = Text(f"\n{outcome.account} · {outcome.playbook} / {outcome.rule}: ")
        head.append(verdict)
        if outcome.event_at:
            head.append(f"  (event at {outcome.event_at})", style="dim")
        console.print(head)
        if not outcome.fired:
            console.print(Text(f"  why not: {outcome.reason}", style="yellow"))
        elif outcome.reason != "fired":
            console.print(Text(f"  {outcome.reason}", style="yellow"))
        for line in outcome.explanation:
            console.print(Text(f"  {line}"))
        for action in outcome.actions:
            console.print(Text(f"  → {describe(action)}", style="green"))
