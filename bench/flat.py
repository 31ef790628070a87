"""Flat-attribute rules and rows shared by the benchmarks (compare.py, evaluate_bench.py).

The schema is the example playbooks' (`playbooks/examples/schema.playbook`); the rules
read only the account's own attributes (tier, stage, plan, locale, industry, mrr, seats,
health, nps), which is what every engine in `compare.py` can express.

Rows come from `bench/generate.py` (its accounts, without events), else from the seeded
generator here: plain dicts, whole numbers as `int` and others as `float` (as JSON has
them), a missing value as None (the key is always there, so that CEL, which has no
"absent" for a variable, sees null).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "playbooks" / "examples"
SPEC = Path("/work/shared/spec")

FIELDS = ("tier", "stage", "plan", "locale", "industry", "mrr", "seats", "health", "nps")

# Twenty rules as a CS-ops lead writes them: comparisons, enum tests, lists, missing
# values, and one bit of arithmetic.
RULES_20 = (
    "tier is high-touch and mrr >= 100000",
    "health < 50",
    'seats > 100 and plan is "enterprise"',
    "nps <= 6",
    "nps >= 9 and tier in [high-touch, low-touch]",
    "stage is renewal and health < 60",
    "mrr >= 500000 or seats >= 500",
    "tier is tech-touch and seats < 10",
    "plan is starter and seats > 20",
    "health >= 80 and nps >= 8",
    "stage is not churned and mrr < 20000",
    "locale is ja and tier is high-touch",
    'industry is "finance" and mrr > 200000',
    "health < 30 or nps <= 3",
    "plan in [business, enterprise] and health < 40",
    "mrr * 12 >= 1000000 and stage is adoption",
    "seats >= 50 and health >= 40 and health < 70",
    "stage is not churned and nps is missing",
    "tier is low-touch and mrr >= 50000 and health >= 70",
    "nps < 7 and health < 50 and stage in [adoption, renewal]",
)

# Templates for bigger flat rule sets (100 rules for the latency figure): the same shapes
# with other constants.
_TEMPLATES = (
    "tier is high-touch and mrr >= {mrr}",
    "health < {health}",
    'seats > {seats} and plan is "enterprise"',
    "nps <= {nps}",
    "nps >= {nps} and tier in [high-touch, low-touch]",
    "stage is renewal and health < {health}",
    "mrr >= {mrr} or seats >= {seats}",
    "tier is tech-touch and seats < {seats}",
    "plan is starter and seats > {seats}",
    "health >= {health} and nps >= {nps}",
    "stage is not churned and mrr < {mrr}",
    "locale is ja and tier is high-touch",
    'industry is "finance" and mrr > {mrr}',
    "health < {health} or nps <= {nps}",
    "plan in [business, enterprise] and health < {health}",
    "mrr * 12 >= {arr} and stage is adoption",
    "seats >= {seats} and health >= {health} and health < {health2}",
    "stage is not churned and nps is missing",
    "tier is low-touch and mrr >= {mrr} and health >= {health}",
    "nps < {nps} and health < {health} and stage in [adoption, renewal]",
)

# With Decimal arithmetic that integers cannot stand for (a percentage of a field, a
# division): slower in every Python engine, shown separately.
ARITHMETIC_RULES = (
    "health >= 90% * nps * 10",
    "mrr / seats > 2000",
    "mrr - seats * 1500 > 10000",
)


def rules(count: int, seed: int = 11) -> list[str]:
    """`count` flat rules: the twenty above first, then the same shapes varied."""
    if count <= len(RULES_20):
        return list(RULES_20[:count])
    rng = random.Random(seed)
    out = list(RULES_20)
    while len(out) < count:
        template = _TEMPLATES[len(out) % len(_TEMPLATES)]
        low = rng.randint(20, 60)
        out.append(template.format(
            mrr=rng.randint(1, 50) * 10_000, health=low, health2=low + rng.randint(10, 30),
            seats=rng.randint(5, 600), nps=rng.randint(2, 9), arr=rng.randint(1, 30) * 100_000,
        ))
    return out


def program_sources(texts: list[str]) -> dict[str, str]:
    """A playbook directory's files: the example schema and one playbook of `texts`."""
    schema_dir = EXAMPLES if (EXAMPLES / "schema.playbook").is_file() else SPEC
    schema = (schema_dir / "schema.playbook").read_text(encoding="utf-8")
    lines = ['playbook "Flat"']
    for i, text in enumerate(texts):
        lines += [f'  rule "r{i:03d}"', f"    when {text}", '    then add tag "hit"']
    return {"schema.playbook": schema, "flat.playbook": "\n".join(lines) + "\n"}


# ------------------------------------------------------------------ rows

_TIERS = (("high-touch", 15), ("low-touch", 35), ("tech-touch", 50))
_STAGES = (("onboarding", 15), ("adoption", 55), ("renewal", 20), ("churned", 10))
_PLANS = (("starter", 50), ("business", 35), ("enterprise", 15))
_LOCALES = (("ja", 60), ("en", 35), (None, 5))
_INDUSTRIES = ("finance", "retail", "manufacturing", "software", "healthcare", "media",
               "logistics", "education")


def _pick(rng: random.Random, table: tuple[tuple[Any, int], ...]) -> Any:
    values, weights = zip(*table, strict=True)
    return rng.choices(values, weights)[0]


def generated_rows(count: int, seed: int = 42) -> Iterator[dict[str, Any]]:
    """Seeded flat rows: about 5% of health and 30% of nps missing, skewed revenue."""
    rng = random.Random(seed)
    for _ in range(count):
        seats = max(1, int(rng.lognormvariate(3.5, 1.2)))
        mrr = int(seats * rng.uniform(300, 3000)) // 100 * 100
        yield {
            "tier": _pick(rng, _TIERS),
            "stage": _pick(rng, _STAGES),
            "plan": _pick(rng, _PLANS),
            "locale": _pick(rng, _LOCALES),
            "industry": rng.choice(_INDUSTRIES) if rng.random() > 0.02 else None,
            "mrr": mrr if rng.random() > 0.01 else None,
            "seats": seats,
            "health": rng.randint(0, 100) if rng.random() > 0.05 else None,
            "nps": rng.randint(0, 10) if rng.random() > 0.30 else None,
        }


def rows(count: int, seed: int = 42) -> tuple[list[dict[str, Any]], str]:
    """`count` flat rows and where they came from: bench/generate.py's accounts (without
    events) for the example schema when it is there, else `generated_rows`."""
    try:
        import orjson
        from generate import generate_batches
    except ImportError:
        return list(generated_rows(count, seed)), "bench/flat.py generated_rows"
    from playbook_engine.engine import Engine

    schema_dir = EXAMPLES if (EXAMPLES / "schema.playbook").is_file() else SPEC
    schema = (schema_dir / "schema.playbook").read_text(encoding="utf-8")
    engine = Engine.from_sources({"schema.playbook": schema})
    out: list[dict[str, Any]] = []
    for batch in generate_batches(engine, count, 0, seed):
        for text in batch:
            account = orjson.loads(text)
            out.append(_plain({k: account.get(k) for k in FIELDS}))
    return out, f"bench/generate.py (seed {seed}, {schema_dir.name} schema)"


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Numbers as int where whole (every engine reads ints), else float."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value is not None and key in ("mrr", "seats", "health", "nps"):
            number = float(value)
            value = int(number) if number.is_integer() else number
        out[key] = value
    return out
