"""A small kit for evaluation tests: inline playbooks and accounts, one moment, results.

    engine = build('''
        playbook "P"
          rule "R"
            when health < 50
            then notify "c" "low"
    ''')
    result = run(engine, '''
        - id: a
          health: 40
    ''', at="2026-03-16T09:00:00+09:00")
    assert result.fired("R")
    assert result.actions == [{"account": "a", ..., "kind": "notify", ...}]

`build` adds a compact schema (`SCHEMA`) and a few templates unless told otherwise, and
fails the test when the playbooks do not check clean: every test runs a valid program.
Accounts are YAML, either a whole fixture (with `accounts:`) or just the list of
accounts; `now` defaults to `at`. `truth` and `value` evaluate one condition or value
on its own, through the same compiled closures the evaluator uses.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import yaml

from playbook_engine.compile import Compiler, Frame
from playbook_engine.decisions import Evaluation, RuleOutcome
from playbook_engine.engine import Engine
from playbook_engine.facts import Account
from playbook_engine.fixtures import Fixture, parse_fixture_text
from playbook_engine.parse import parse_expression
from playbook_engine.settings import Settings

DAY = timedelta(days=1)
# A Monday, 09:00 in Tokyo (00:00 UTC): the moment most tests evaluate at.
AT = "2026-03-16T09:00:00+09:00"

SCHEMA = """\
schema
  account
    tier: one of high-touch, low-touch, tech-touch
    stage: one of onboarding, adoption, renewal, churned
    plan: text
    mrr: number
    seats: number
    active: number
    health: number
    nps: number
    vip: yes/no
    signed_at: date
    renewal_date: date
    onboarding_completed_at: date
    csm: user
    backup: user
  contact roles: admin, champion, billing
  event login
    user: text
    minutes: number
  event nps_submitted
    score: number
    tier: text
  milestone onboarding
    starts at signed_at
    done at onboarding_completed_at

segment low-health: health < 50
metric usage: active / seats
"""

TEMPLATES = {
    "templates/hello.txt": '---\nsubject: "Hello {{ contact.name }} of {{ account.name }}"\n---\n'
    "Dear {{ contact.name }},\nhealth is {{ account.health }}.\n",
    "templates/other.txt": '---\nsubject: "Other"\n---\nbody\n',
}


def moment(text: str | datetime) -> datetime:
    """An aware datetime from ISO text (a datetime is returned as is)."""
    if isinstance(text, datetime):
        return text
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, f"give {text!r} a time zone"
    return value


def build(
    *playbooks: str,
    schema: str = SCHEMA,
    templates: dict[str, str] | None = None,
    settings: Settings | None = None,
    files: dict[str, str] | None = None,
    base_templates: bool = True,
) -> Engine:
    """An engine from playbook texts (dedented; one file each, `p0.playbook`, ...).

    `TEMPLATES` are added unless `base_templates` is False (they use `SCHEMA`'s fields).
    """
    sources = {"schema.playbook": schema} if schema else {}
    for i, text in enumerate(playbooks):
        sources[f"p{i}.playbook"] = textwrap.dedent(text).strip("\n") + "\n"
    sources.update(files or {})
    base = TEMPLATES if base_templates else {}
    engine = Engine.from_sources(sources, {**base, **(templates or {})}, settings)
    errors = [engine.render(d) for d in engine.errors]
    assert not errors, "\n".join(errors)
    return engine


def rules(body: str, *, header: str = "", name: str = "P") -> str:
    """A playbook block around rule text (written at column 0)."""
    lines = [f'playbook "{name}"']
    lines += ["  " + line for line in textwrap.dedent(header).strip("\n").splitlines()]
    lines += ["  " + line if line.strip() else "" for line in
              textwrap.dedent(body).strip("\n").splitlines()]
    return "\n".join(lines) + "\n"


def fixture(
    engine: Engine, accounts: str | list[dict[str, Any]] | dict[str, Any], at: str | None = None
) -> Fixture:
    """A fixture from YAML text or data: a whole fixture, or only its list of accounts."""
    if isinstance(accounts, str):
        data: Any = yaml.safe_load(textwrap.dedent(accounts))
    else:
        data = accounts
    if isinstance(data, list):
        data = {"accounts": data}
    if at is not None and "now" not in data:
        data = {"now": at, **data}
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    return parse_fixture_text(text, "inline.yaml", engine.program.schema,
                              engine.settings.timezone)


def account(engine: Engine, data: str | dict[str, Any], at: str = AT) -> Account:
    """One account (YAML text of a mapping, or a dict); `now` is `at` unless given."""
    if isinstance(data, str):
        data = yaml.safe_load(textwrap.dedent(data))
    assert isinstance(data, dict)
    return fixture(engine, [{"id": "a", **data}], at).accounts[0]


@dataclass
class Result:
    evaluation: Evaluation

    @property
    def outcomes(self) -> list[RuleOutcome]:
        return self.evaluation.outcomes

    @property
    def actions(self) -> list[dict[str, Any]]:
        """The dry-run contract's objects (`--format json`), in output order."""
        actions: list[dict[str, Any]] = self.evaluation.as_json()["actions"]
        return actions

    def of(self, rule: str, account: str | None = None) -> list[RuleOutcome]:
        found = [o for o in self.outcomes if o.rule == rule
                 and (account is None or o.account == account)]
        assert found, f"no outcome for rule {rule!r}"
        return found

    def outcome(self, rule: str, account: str | None = None) -> RuleOutcome:
        found = self.of(rule, account)
        assert len(found) == 1, found
        return found[0]

    def fired(self, rule: str, account: str | None = None) -> bool:
        return any(o.fired for o in self.of(rule, account))

    def firings(self, rule: str, account: str | None = None) -> int:
        return sum(o.fired for o in self.of(rule, account))

    def actions_of(self, rule: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.actions if a["rule"] == rule and kind in (None, a["kind"])]

    def reason(self, rule: str, account: str | None = None) -> str:
        return self.outcome(rule, account).reason

    def explanation(self, rule: str, account: str | None = None) -> str:
        return "\n".join(self.outcome(rule, account).explanation)


def run(
    engine: Engine,
    accounts: str | list[dict[str, Any]] | dict[str, Any] | Fixture,
    at: str | datetime | None = AT,
    *,
    interval: timedelta = DAY,
    explain: bool = False,
) -> Result:
    """Dry-run the accounts at `at` (None: the fixture's `now`)."""
    text_at = at.isoformat() if isinstance(at, datetime) else at
    fx = accounts if isinstance(accounts, Fixture) else fixture(engine, accounts, text_at)
    evaluation = engine.dry_run(
        fx, moment(at) if at is not None else None, interval=interval, explain=explain
    )
    return Result(evaluation)


def one(engine: Engine, data: str | dict[str, Any], at: str = AT, **kw: Any) -> Result:
    """Dry-run a single account (id `a`)."""
    if isinstance(data, str):
        data = yaml.safe_load(textwrap.dedent(data)) or {}
    assert isinstance(data, dict)
    return run(engine, [{"id": "a", **data}], at, **kw)


def multiset(actions: list[dict[str, Any]]) -> Counter[str]:
    """Actions as a multiset (order ignored), for comparing runs."""
    import json

    return Counter(json.dumps(a, sort_keys=True, ensure_ascii=False) for a in actions)


# ---------------------------------------------------------------- one expression

_ENGINE: Engine | None = None


def schema_engine() -> Engine:
    """An engine with only `SCHEMA` (its segment and metric), built once."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = build()
    return _ENGINE


def _frame(acc: Account, at: str | datetime, interval: timedelta) -> Frame:
    return Frame(acc, moment(at), interval)


def truth(
    condition: str,
    data: str | dict[str, Any] | Account,
    at: str | datetime = AT,
    *,
    interval: timedelta = DAY,
    engine: Engine | None = None,
) -> bool | None:
    """A condition's three-valued result for one account at one moment.

    The account's facts are as of `AT` (its top-level values hold from then on, earlier
    ones come from its `history`), whatever moment it is evaluated at.
    """
    engine = engine or schema_engine()
    acc = data if isinstance(data, Account) else account(engine, data)
    fn = Compiler(engine.program).condition(parse_expression(condition))
    result = fn(_frame(acc, at, interval))
    assert result in (True, False, None), f"{condition!r} gave {result!r}, not a truth value"
    return result  # type: ignore[no-any-return]


def value(
    expression: str,
    data: str | dict[str, Any] | Account,
    at: str | datetime = AT,
    *,
    interval: timedelta = DAY,
    engine: Engine | None = None,
) -> Any:
    """A value (Decimal, str, datetime, ...; None when missing) for one account."""
    engine = engine or schema_engine()
    acc = data if isinstance(data, Account) else account(engine, data)
    fn = Compiler(engine.program).expr(parse_expression(expression))
    return fn(_frame(acc, at, interval))
