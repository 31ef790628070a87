"""What a dry-run did and how long each phase took: `playbook dry-run --stats`.

Kept apart from `bulk.py` (and polars) so that the CLI can count without importing them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["BulkStats"]


@dataclass
class BulkStats:
    """What a bulk evaluation did and how long each phase took (seconds)."""

    accounts: int = 0
    rules: int = 0
    rule_checks: int = 0
    candidates: int = 0
    per_account: int = 0
    fired: int = 0
    actions: int = 0
    fallback: dict[str, str] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - start

    def lines(self) -> list[str]:
        """The report `playbook dry-run --stats` prints."""
        total = sum(self.phases.values()) or 1e-9
        decide = sum(self.phases.get(p, 0.0) for p in ("plan", "scan", "per-account")) or 1e-9
        out = [
            f"{self.accounts:,} accounts, {self.rules} rules: {self.rule_checks:,} rule checks",
            f"{self.candidates:,} candidate (account, rule) pairs on {self.per_account:,} "
            f"accounts decided one by one; {self.fired:,} firings, {self.actions:,} actions",
            f"throughput: {self.accounts / total:,.0f} accounts/s, "
            f"{self.rule_checks / total:,.0f} rule checks/s end to end "
            f"({self.accounts / decide:,.0f} accounts/s deciding)",
            "time: " + ", ".join(f"{k} {v:.2f}s" for k, v in self.phases.items())
            + f"; total {total:.2f}s",
        ]
        for rule, reason in self.fallback.items():
            out.append(f"per-account only: {rule}: {reason}")
        return out
