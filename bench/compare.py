"""Our engine against other rules engines on the same accounts and the same rules (issue 4).

    .venv/bin/python bench/compare.py [--accounts 1000000] [--rules 20] [--cap 20000]
        [--engines fastpath,bulk,python,zen,zen-table,cel,rule-engine,closures]
        [--json FILE]

Every engine evaluates the same flat-attribute rules (`bench/flat.py`, e.g.
`tier is high-touch and mrr >= 100000`) on the same rows, in this process, and must find
the same set of (account, rule) pairs true; the run stops with an error otherwise.

Engines
    fastpath     playbook_engine.fastpath: the rules compiled into one Python function
    bulk         the columnar path (bulk_plan.Planner): every rule a polars expression
                 over one table of all accounts (Float64 numbers, with error bounds
                 where a comparison is not exact in floats), all in one lazy select; a
                 cell the plan leaves undecided is decided exactly per account (here
                 by the fastpath; bulk.py's own pass uses the Evaluator). Timed: the
                 plan (with its looks at the data), the select and the deciding
    closures     compile.py's closures, one `Account` per row (the per-account engine)
    python       plain Python: one lambda per rule, written as a developer would
    zen          GoRules ZEN (zen-engine): one compiled expression giving the 20 truths
    zen-table    GoRules ZEN decision table (hit policy "collect", one row per rule),
                 through ZenEngine.evaluate, its fast entry point
    cel          Common Expression Language (common-expression-language): one program
                 giving the list of truths
    rule-engine  rule_engine: one Rule giving the array of truths

Missing values. Our rules are three-valued: `nps <= 6` is unknown when nps is missing,
and a rule holds only when its condition is true. The other engines are two-valued (and
ZEN, CEL and rule_engine raise on `null <= 6`), so each rule is translated into the
expression that is true exactly where ours is true: T(a and b) = T(a) and T(b),
T(a or b) = T(a) or T(b), T(not a) = F(a), and a comparison is true (or false) only
when every field it reads is present (`nps != null and nps <= 6`). Every engine gets
the same rows, with every field as a key and a missing one as null (None), so the
comparison covers missing values too. Numbers are whole numbers (ints) in the rows, so
float, int and decimal engines agree on them; `--probe` shows where they do not
(`30% * 3 = 0.9` is true for us, false in binary floating point).

Slow engines run on the first `--cap` accounts (closures, zen-table, rule-engine);
figures are per second either way, and their results are checked on those accounts.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import flat

from playbook_engine import nodes as n
from playbook_engine.engine import Engine
from playbook_engine.fastpath import compile_fast

AT = datetime(2026, 3, 16, tzinfo=UTC)
CHUNK = 20_000
ALL_ENGINES = ("fastpath", "bulk", "closures", "python", "zen", "zen-table", "cel",
               "rule-engine")
CAPPED = ("closures", "zen-table", "rule-engine")


@dataclass
class Result:
    engine: str
    accounts: int
    seconds: float
    prepare_seconds: float = 0.0
    note: str = ""
    truth: bytearray = field(default_factory=bytearray, repr=False)

    def per_second(self, rules: int) -> tuple[float, float]:
        return self.accounts / self.seconds, self.accounts * rules / self.seconds


# ------------------------------------------------------------------ translation


class Dialect:
    """How one engine writes and, or, not, null tests, literals and field names."""

    AND, OR, NOT = " and ", " or ", "not "
    NULL = "null"
    EQ = "=="

    def field(self, name: str) -> str:
        return name

    def text(self, value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def number(self, value: Decimal) -> str:
        return str(value.normalize()) if value != value.to_integral_value() else str(int(value))

    def present(self, name: str) -> str:
        return f"{self.field(name)} != {self.NULL}"

    def missing(self, name: str) -> str:
        return f"{self.field(name)} == {self.NULL}"

    def listing(self, items: Sequence[str]) -> str:
        return "[" + ", ".join(items) + "]"

    def member(self, value: str, items: Sequence[str], negated: bool) -> str:
        test = f"{value} in {self.listing(items)}"
        return f"({self.NOT}({test}))" if negated else test


class Python(Dialect):
    NULL = "None"

    def field(self, name: str) -> str:
        return f"r[{name!r}]"

    def text(self, value: str) -> str:
        return repr(value)

    def present(self, name: str) -> str:
        return f"{self.field(name)} is not None"

    def missing(self, name: str) -> str:
        return f"{self.field(name)} is None"

    def listing(self, items: Sequence[str]) -> str:
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


class Cel(Dialect):
    AND, OR, NOT = " && ", " || ", "!"


class Translator:
    """A flat condition as the two-valued expression true exactly where ours is true."""

    def __init__(self, dialect: Dialect) -> None:
        self.d = dialect

    def true(self, e: n.Expr) -> str:
        return self._cond(e, True)

    def _cond(self, e: n.Expr, want: bool) -> str:
        d = self.d
        while isinstance(e, n.Paren):
            e = e.inner
        if isinstance(e, (n.And, n.Or)):
            # De Morgan for the false side: F(a and b) = F(a) or F(b).
            joint = d.AND if isinstance(e, n.And) == want else d.OR
            return f"({self._cond(e.left, want)}{joint}{self._cond(e.right, want)})"
        if isinstance(e, n.Not):
            return self._cond(e.operand, not want)
        if isinstance(e, n.Missing):
            name = _field_of(e.operand)
            missing = not e.negated
            return d.missing(name) if missing == want else d.present(name)
        if isinstance(e, n.Compare):
            op = "==" if e.op == "=" else e.op
            if not want:
                op = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}[op]
            return self._guarded(f"{self._value(e.left)} {op} {self._value(e.right)}",
                                 e.left, e.right)
        if isinstance(e, n.Is):
            op = "!=" if e.negated == want else "=="
            return self._guarded(f"{self._value(e.left)} {op} {self._rhs(e.right)}", e.left)
        if isinstance(e, n.In):
            items = [self._item(i) for i in e.items.items]
            test = d.member(self._value(e.left), items, e.negated != (not want))
            return self._guarded(test, e.left)
        raise ValueError(f"not a flat condition: {type(e).__name__}")

    def _guarded(self, test: str, *operands: n.Expr) -> str:
        names = sorted({name for o in operands for name in _fields_in(o)})
        guards = [self.d.present(name) for name in names]
        return "(" + self.d.AND.join([*guards, test]) + ")"

    def _value(self, e: n.Expr) -> str:
        while isinstance(e, n.Paren):
            e = e.inner
        if isinstance(e, n.Name):
            return self.d.field(e.parts[-1])
        if isinstance(e, n.Number):
            return self.d.number(e.value)
        if isinstance(e, n.String):
            return self.d.text(e.value)
        if isinstance(e, n.Arith):
            return f"({self._value(e.left)} {e.op} {self._value(e.right)})"
        raise ValueError(f"not a flat value: {type(e).__name__}")

    def _rhs(self, e: n.Expr) -> str:
        if isinstance(e, n.Name) and len(e.parts) == 1 and e.parts[0] not in flat.FIELDS:
            return self.d.text(e.parts[0])  # an enum value
        return self._value(e)

    def _item(self, item: n.Name | n.String | n.Number) -> str:
        if isinstance(item, n.Name):
            return self.d.text(item.text)
        if isinstance(item, n.String):
            return self.d.text(item.value)
        return self.d.number(item.value)


def _field_of(e: n.Expr) -> str:
    while isinstance(e, n.Paren):
        e = e.inner
    assert isinstance(e, n.Name)
    return e.parts[-1]


def _fields_in(e: n.Expr) -> list[str]:
    while isinstance(e, n.Paren):
        e = e.inner
    if isinstance(e, n.Name):
        return [e.parts[-1]] if e.parts[-1] in flat.FIELDS else []
    if isinstance(e, n.Arith):
        return _fields_in(e.left) + _fields_in(e.right)
    return []


# ------------------------------------------------------------------ running engines


def _encode(results: Sequence[Sequence[Any]]) -> bytes:
    return bytes(1 if v is True else 0 for row in results for v in row)


def run_rows(
    name: str, evaluate: Callable[[dict[str, Any]], Sequence[Any]], rows: Sequence[dict[str, Any]],
    encode: Callable[[Sequence[Any]], bytes] = _encode,
) -> Result:
    """Time `evaluate` over the rows, chunk by chunk; encoding the truths is not timed."""
    result = Result(name, len(rows), 0.0)
    gc.collect()
    gc.disable()
    try:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            begin = time.perf_counter()
            out = list(map(evaluate, chunk))
            result.seconds += time.perf_counter() - begin
            result.truth += encode(out)
    finally:
        gc.enable()
    return result


def engine_fastpath(program: Any, conditions: list[n.Expr], rows: list[dict[str, Any]]) -> Result:
    begin = time.perf_counter()
    fast = compile_fast(program, conditions)
    prepared = time.perf_counter() - begin
    result = run_rows("fastpath", fast.evaluate, rows)
    result.prepare_seconds = prepared
    result.note = f"fallbacks: {fast.fallbacks}"
    return result


def engine_closures(program: Any, conditions: list[n.Expr], rows: list[dict[str, Any]]) -> Result:
    fast = compile_fast(program, conditions[:1])  # only for its row -> Account adapter
    from playbook_engine.compile import Compiler, Frame
    from playbook_engine.fastpath import row_account

    compiler = Compiler(program)
    closures = [compiler.condition(c) for c in conditions]
    del fast

    def evaluate(row: dict[str, Any]) -> list[Any]:
        frame = Frame(row_account(row, AT), AT)
        return [c(frame) for c in closures]

    result = run_rows("closures", evaluate, rows)
    result.note = "compile.py closures, an Account built per row"
    return result


def engine_python(conditions: list[n.Expr], rows: list[dict[str, Any]]) -> Result:
    t = Translator(Python())
    source = [f"lambda r: {t.true(c)}" for c in conditions]
    funcs = [eval(s, {"__builtins__": {}}) for s in source]

    def evaluate(row: dict[str, Any]) -> list[Any]:
        return [f(row) for f in funcs]

    result = run_rows("python", evaluate, rows)
    result.note = "one lambda per rule, e.g. " + source[0].replace("lambda r: ", "")
    return result


def engine_zen(conditions: list[n.Expr], rows: list[dict[str, Any]]) -> Result:
    import zen

    t = Translator(Dialect())
    expression = zen.compile_expression("[" + ", ".join(t.true(c) for c in conditions) + "]")
    result = run_rows("zen", expression.evaluate, rows)
    result.note = f"zen-engine {_version('zen-engine')}: one compiled expression, a list out"
    return result


def engine_zen_table(conditions: list[n.Expr], rows: list[dict[str, Any]]) -> Result:
    import zen

    t = Translator(Dialect())
    table = {
        "nodes": [
            {"id": "in", "type": "inputNode", "name": "Request", "position": {"x": 0, "y": 0}},
            {"id": "rules", "type": "decisionTableNode", "name": "Rules",
             "position": {"x": 300, "y": 0},
             "content": {
                 "hitPolicy": "collect",
                 "inputs": [{"id": "c", "name": "Condition", "field": ""}],
                 "outputs": [{"id": "o", "name": "Rule", "field": "rule"}],
                 "rules": [{"_id": f"r{i}", "c": t.true(c), "o": str(i)}
                           for i, c in enumerate(conditions)],
             }},
            {"id": "out", "type": "outputNode", "name": "Response", "position": {"x": 600, "y": 0}},
        ],
        "edges": [
            {"id": "e1", "sourceId": "in", "targetId": "rules", "type": "edge"},
            {"id": "e2", "sourceId": "rules", "targetId": "out", "type": "edge"},
        ],
    }
    engine = zen.ZenEngine({"loader": {"type": "static", "content": {"rules": table}}})
    count = len(conditions)

    def evaluate(row: dict[str, Any]) -> Any:
        return engine.evaluate("rules", row)["result"]

    def encode(results: Sequence[Any]) -> bytes:
        out = bytearray(len(results) * count)
        for k, hits in enumerate(results):
            for hit in hits:
                out[k * count + int(hit["rule"])] = 1
        return bytes(out)

    result = run_rows("zen-table", evaluate, rows, encode)
    result.note = "decision table, hit policy collect, ZenEngine.evaluate"
    return result


def engine_cel(conditions: list[n.Expr], rows: list[dict[str, Any]]) -> Result:
    import cel

    t = Translator(Cel())
    program = cel.compile("[" + ", ".join(t.true(c) for c in conditions) + "]")
    result = run_rows("cel", program.execute, rows)
    result.note = (f"common-expression-language {_version('common-expression-language')}: "
                   "one program, a list out")
    return result


def engine_rule_engine(conditions: list[n.Expr], rows: list[dict[str, Any]]) -> Result:
    import rule_engine

    t = Translator(Dialect())
    context = rule_engine.Context(default_value=None)
    rule = rule_engine.Rule("[" + ", ".join(t.true(c) for c in conditions) + "]", context=context)
    result = run_rows("rule-engine", rule.evaluate, rows)
    result.note = f"rule-engine {_version('rule-engine')}: one Rule, an array out"
    return result


def engine_bulk(program: Any, conditions: list[n.Expr], rows: list[dict[str, Any]]) -> Result:
    """Every rule a polars expression over one table; undecided cells decided exactly."""
    import polars as pl

    from playbook_engine.bulk_frames import IDX, TAGS, Frames, ListSource
    from playbook_engine.bulk_plan import Ctx, Planner

    begin = time.perf_counter()
    count = len(rows)
    kinds = {f: program.field_kind(f) for f in flat.FIELDS}
    columns: dict[str, pl.Series] = {
        IDX: pl.Series(IDX, range(count), dtype=pl.UInt32),
        "id": pl.Series("id", [str(i) for i in range(count)], dtype=pl.String),
        "name": pl.Series("name", [None] * count, dtype=pl.String),
        TAGS: pl.Series(TAGS, [[]] * count, dtype=pl.List(pl.String)),
    }
    table_kinds = {"id": "text", "name": "text"}
    for f in flat.FIELDS:
        values = [r[f] for r in rows]
        if kinds[f] == "number":
            columns[f] = pl.Series(f, values, dtype=pl.Float64)
            table_kinds[f] = "number"
        else:
            columns[f] = pl.Series(f, values, dtype=pl.String)
            table_kinds[f] = "text"
    table = pl.DataFrame(list(columns.values()))
    frames = Frames(
        path=None, now=AT, timezone=UTC, as_of=AT, accounts=table,
        events=pl.DataFrame({IDX: pl.Series([], dtype=pl.UInt32)}), history={},
        fired=pl.DataFrame({IDX: pl.Series([], dtype=pl.UInt32)}), fields=table_kinds,
        event_fields={}, source=ListSource([]),
    )
    prepared = time.perf_counter() - begin

    gc.collect()
    begin = time.perf_counter()
    planner = Planner(program, frames, AT, timedelta(days=1), True)
    exprs = []
    for i, condition in enumerate(conditions):
        val = planner.condition(condition, Ctx(AT))
        exprs.append(val.v.fill_null(False).alias(f"t{i}"))
        if val.x is not None:
            exprs.append((val.v.is_null() & val.x.fill_null(False)).alias(f"u{i}"))
    # The planner's intermediate columns (`Planner.stages`) and the masks, in one lazy
    # query (`Planner.select`).
    out = planner.select(table, exprs)
    undecided: dict[int, list[int]] = {}
    for name in out.columns:
        if name.startswith("u"):
            rows_u = out.select(pl.arg_where(pl.col(name))).to_series().to_list()
            if rows_u:
                undecided[int(name[1:])] = rows_u
    if undecided:  # decided exactly per account, as the bulk path's last pass does
        fast = compile_fast(program, conditions)  # (exact, and faster than the closures)
        for i, where in undecided.items():
            fixes = [fast.evaluate(rows[k])[i] is True for k in where]
            column = out.get_column(f"t{i}").scatter(where, fixes)
            out = out.with_columns(column)
    seconds = time.perf_counter() - begin

    truth = bytearray(count * len(conditions))
    for i in range(len(conditions)):
        hits = out.select(pl.arg_where(pl.col(f"t{i}"))).to_series().to_list()
        for k in hits:
            truth[k * len(conditions) + i] = 1
    result = Result("bulk", count, seconds, prepare_seconds=prepared, truth=truth)
    decided = sum(map(len, undecided.values()))
    result.note = f"polars {pl.__version__}: plan + one select of {len(conditions)} masks"
    if decided:
        result.note += f"; {decided} cells decided exactly"
    return result


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


PROBES = (("30% * 3 = 0.9", "0.3 * 3 == 0.9", "0.3 * 3.0 == 0.9"),
          ("0.1 + 0.2 = 0.3", "0.1 + 0.2 == 0.3", "0.1 + 0.2 == 0.3"),
          ("90% * 70 = 63", "0.9 * 70 == 63", "0.9 * 70.0 == 63.0"))


def probe() -> list[str]:
    """Decimals as people write them, or binary floats: the same sums in each engine."""
    lines = []
    for ours, generic, cel_text in PROBES:
        checks: list[tuple[str, Callable[[], Any]]] = [
            ("python float", lambda g=generic: eval(g, {"__builtins__": {}})),
        ]
        try:
            import zen

            checks.append(("zen", lambda g=generic: zen.evaluate_expression(g)))
        except ImportError:
            pass
        try:
            import cel

            checks.append(("cel", lambda c=cel_text: cel.evaluate(c)))
        except ImportError:
            pass
        try:
            import rule_engine

            checks.append(("rule-engine", lambda g=generic: rule_engine.Rule(g).evaluate({})))
        except ImportError:
            pass
        engine = Engine.from_sources(flat.program_sources([ours]))
        when = engine.program.playbooks[0].rules[0].when
        assert when is not None
        fast = compile_fast(engine.program, [when])
        checks.insert(0, ("playbook-engine", lambda f=fast: f.evaluate({})[0]))
        cells = []
        for name, check in checks:
            try:
                cells.append(f"{name} {check()}")
            except Exception as exc:  # an engine that cannot say is reported, not fatal
                cells.append(f"{name} error ({exc})")
        lines.append(f"  {ours:<16} " + ", ".join(cells))
    return lines


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--rules", type=int, default=20)
    parser.add_argument("--cap", type=int, default=20_000,
                        help=f"accounts for the slow engines ({', '.join(CAPPED)})")
    parser.add_argument("--engines", default=",".join(ALL_ENGINES))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--probe", action="store_true", help="decimal sums in each engine")
    args = parser.parse_args(argv)
    wanted = [e.strip() for e in args.engines.split(",") if e.strip()]

    texts = flat.rules(args.rules)
    engine = Engine.from_sources(flat.program_sources(texts))
    if not engine.ok:
        for d in engine.errors:
            print(engine.render(d), file=sys.stderr)
        return 2
    program = engine.program
    conditions = [r.when for r in program.playbooks[0].rules if r.when is not None]
    rule_count = len(conditions)

    begin = time.perf_counter()
    rows, origin = flat.rows(args.accounts, args.seed)
    print(f"compare: {len(rows):,} accounts ({origin}, {time.perf_counter() - begin:.1f}s), "
          f"{rule_count} rules; {CHUNK:,} accounts per timed chunk", flush=True)

    results: dict[str, Result] = {}
    runners: dict[str, Callable[[], Result]] = {
        "fastpath": lambda: engine_fastpath(program, conditions, rows),
        "bulk": lambda: engine_bulk(program, conditions, rows),
        "closures": lambda: engine_closures(program, conditions, rows[:args.cap]),
        "python": lambda: engine_python(conditions, rows),
        "zen": lambda: engine_zen(conditions, rows),
        "zen-table": lambda: engine_zen_table(conditions, rows[:args.cap]),
        "cel": lambda: engine_cel(conditions, rows),
        "rule-engine": lambda: engine_rule_engine(conditions, rows[:args.cap]),
    }
    if "fastpath" not in wanted:
        wanted.insert(0, "fastpath")  # the reference every other result is checked against
    for name in wanted:
        try:
            result = runners[name]()
        except ImportError as exc:
            print(f"  {name:<12} skipped: {exc}", flush=True)
            continue
        except Exception as exc:  # the bulk API is young: report, and go on with the rest
            if name != "bulk":
                raise
            print(f"  {name:<12} failed: {type(exc).__name__}: {exc}", flush=True)
            continue
        results[name] = result
        rate, checks = result.per_second(rule_count)
        print(f"  {name:<12} {result.accounts:>9,} accounts {result.seconds:8.2f}s "
              f"{rate:>12,.0f} accounts/s {checks:>14,.0f} rule checks/s  {result.note}",
              flush=True)
        if name == "bulk":
            total = result.seconds + result.prepare_seconds
            print(f"  {'':<12} {'':>9} with the table built from the rows: {total:.2f}s, "
                  f"{result.accounts / total:,.0f} accounts/s", flush=True)

    # The same (account, rule) pairs true everywhere.
    reference = results["fastpath"].truth
    true_pairs = sum(reference)
    problems = []
    for name, result in results.items():
        size = result.accounts * rule_count
        if result.truth != reference[:size]:
            wrong = sum(1 for a, b in zip(result.truth, reference[:size], strict=True) if a != b)
            problems.append(f"{name}: {wrong} (account, rule) pairs differ from fastpath")
    print(f"verified: {true_pairs:,} true (account, rule) pairs of "
          f"{len(rows) * rule_count:,}; "
          + ("every engine agrees" if not problems else "DIFFERENCES: " + "; ".join(problems)))

    fast_rate = results["fastpath"].per_second(rule_count)[0]
    bulk_rate = results["bulk"].per_second(rule_count)[0] if "bulk" in results else None
    print("ratios (our accounts/s over theirs):")
    for name, result in results.items():
        if name in ("fastpath", "bulk"):
            continue
        rate = result.per_second(rule_count)[0]
        line = f"  {name:<12} fastpath {fast_rate / rate:6.2f}x"
        if bulk_rate is not None:
            line += f"   bulk {bulk_rate / rate:7.2f}x"
        print(line)
    if args.probe:
        print("decimal semantics:")
        print("\n".join(probe()))
    if args.json:
        figures = {
            "accounts": len(rows), "rules": rule_count, "origin": origin,
            "true_pairs": true_pairs, "agree": not problems, "problems": problems,
            "engines": {
                name: {**{k: v for k, v in asdict(r).items() if k != "truth"},
                       "accounts_per_s": r.per_second(rule_count)[0],
                       "rule_checks_per_s": r.per_second(rule_count)[1]}
                for name, r in results.items()
            },
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
