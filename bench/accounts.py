"""Seeded accounts for the per-account benchmark, driven by a program's schema.

The fallback for `evaluate_bench.py` while `bench/generate.py` does not provide
accounts: every declared field gets a value of its type (some missing), every event
type some events in the last months, `health` (and other numbers, now and then) a short
history, contacts for the schema's roles, a few tags. Plausible values for the example
playbooks' names (tier, stage, mrr, health, nps, ...); anything else generic.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from playbook_engine import facts
from playbook_engine.program import Program

_DAY = timedelta(days=1)
_WEIGHTS = {
    "tier": {"high-touch": 15, "low-touch": 35, "tech-touch": 50},
    "stage": {"onboarding": 15, "adoption": 55, "renewal": 20, "churned": 10},
    "plan": {"starter": 50, "business": 35, "enterprise": 15},
    "locale": {"ja": 60, "en": 40},
}
_TEXT = {
    "industry": ("finance", "retail", "manufacturing", "software", "healthcare", "media"),
    "feature": ("dashboards", "reports", "alerts", "integrations", "api"),
    "topic": ("qbr", "roadmap", "renewal", "escalation"),
    "subject": ("login fails", "slow dashboard", "billing question", "export broken"),
}
_USERS = [f"user{k}" for k in range(40)]
_EVENTS_PER_ACCOUNT = {
    "login": (0, 40), "feature_used": (0, 15), "nps_submitted": (0, 2),
    "csat_submitted": (0, 2), "support_ticket": (0, 3), "executive_meeting": (0, 1),
}


class AccountMaker:
    """Accounts for `program`'s schema, as of `at` (deterministic for a seed)."""

    def __init__(self, program: Program, at: datetime, seed: int = 42) -> None:
        self.program = program
        self.at = at
        self.rng = random.Random(seed)
        schema = program.schema
        self.fields = [(d.name.text, d.type) for d in schema.fields] if schema else []
        self.events = (
            [(e.name.text, [(f.name.text, f.type) for f in e.fields]) for e in schema.events]
            if schema else []
        )
        self.roles = list(program.roles)

    def make(self, count: int) -> list[facts.Account]:
        return [self.account(k) for k in range(count)]

    def account(self, k: int) -> facts.Account:
        rng = self.rng
        values: dict[str, facts.Value] = {}
        signed = self.at - _DAY * rng.randint(1, 1200)
        for name, ftype in self.fields:
            if rng.random() < (0.25 if name == "nps" else 0.05):
                continue  # missing
            values[name] = self._value(name, ftype, signed)
        history: dict[str, facts.History] = {}
        health = values.get("health")
        if isinstance(health, Decimal) and rng.random() < 0.6:
            days = rng.randint(2, 20)
            times, past = [], []
            value = health
            for back in range(days, 0, -1):
                value = max(Decimal(0), min(Decimal(100), value + rng.randint(-6, 6)))
                times.append(self.at - _DAY * back)
                past.append(value)
            history["health"] = facts.History(tuple(times), tuple(past))
        events = sorted(self._events(), key=lambda e: e.at)
        contacts = tuple(
            facts.Contact(f"Contact {k}-{i}", f"c{i}@acct{k}.example", rng.choice(self.roles))
            for i in range(rng.randint(0, 4))
        ) if self.roles else ()
        tags = frozenset(t for t in ("vip", "do-not-contact", "beta") if rng.random() < 0.08)
        return facts.Account(
            id=f"acct-{k:06d}",
            name=f"Account {k}",
            fields=values,
            as_of=self.at,
            tags=tags,
            contacts=contacts,
            events=tuple(events),
            history=history,
        )

    def _value(self, name: str, ftype: Any, signed: datetime) -> facts.Value:
        rng = self.rng
        kind = ftype.kind
        if kind == "enum":
            options = [v.text for v in ftype.values]
            weights = _WEIGHTS.get(name, {})
            return rng.choices(options, [weights.get(o, 10) for o in options])[0]
        if kind == "number":
            if name == "mrr":
                return Decimal(rng.randint(5, 3000) * 100)
            if name == "seats":
                return Decimal(max(1, int(rng.lognormvariate(3.5, 1.2))))
            if name == "health":
                return Decimal(rng.randint(0, 100))
            if name == "nps":
                return Decimal(rng.randint(0, 10))
            return Decimal(rng.randint(0, 1000))
        if kind == "text":
            return rng.choice(_TEXT.get(name, ("alpha", "beta", "gamma")))
        if kind == "yes/no":
            return rng.random() < 0.3
        if kind == "user":
            who = rng.randint(1, 30)
            return facts.User(f"Staff {who}", f"staff{who}@example.com")
        if kind == "date":
            if name == "signed_at":
                return signed
            if name == "renewal_date":
                return signed + _DAY * 365 * ((self.at - signed).days // 365 + 1)
            if rng.random() < 0.5:
                return None
            return signed + _DAY * rng.randint(1, max(1, (self.at - signed).days))
        return None

    def _events(self) -> list[facts.Event]:
        rng = self.rng
        out = []
        for event, fields in self.events:
            low, high = _EVENTS_PER_ACCOUNT.get(event, (0, 1) if rng.random() < 0.05 else (0, 0))
            for _ in range(rng.randint(low, high)):
                at = self.at - timedelta(minutes=rng.randint(1, 60 * 24 * 120))
                values: dict[str, facts.Value] = {}
                for name, ftype in fields:
                    if name == "user":
                        values[name] = rng.choice(_USERS)
                    elif name == "score":
                        values[name] = Decimal(rng.randint(0, 10))
                    else:
                        values[name] = self._value(name, ftype, at)
                out.append(facts.Event(event, at, values))
        return out
