"""The central object: a playbook directory loaded, checked and ready to use.

`Engine` holds what every command needs, as Jinja2's `Environment` does: the settings,
the parsed program, the templates, the source of every file (to show carets under
diagnostics) and the diagnostics themselves. The CLI, the daemon and the tests all go
through it:

    engine = Engine.load("playbooks/")
    for diagnostic in engine.diagnostics:
        print(diagnostic.render(engine.sources.get(diagnostic.span.file)))
    engine.raise_for_errors()          # LoadError carrying the diagnostics, if any

A directory is its top-level `*.playbook` files (sub-folders are not read, so that
`fixtures/` and drafts kept aside stay out) and its `templates/` folder. File names in
diagnostics are relative to the directory: `onboarding.playbook:12:10`.

Loading never raises for what is *in* the files: unreadable files, text that is not
UTF-8, syntax errors and check failures are all diagnostics. It raises `LoadError`
only when there is nothing to check: no such directory, or no `.playbook` file in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from . import nodes as n
from .checks import check
from .decisions import Evaluation, RuleOutcome
from .dryrun import dry_run
from .errors import Diagnostic, FixtureError, LoadError, error, sort_diagnostics
from .evaluate import EvalSettings, Evaluator
from .facts import Account
from .fixtures import Fixture, load_fixture
from .parse import parse
from .program import Program
from .settings import Settings
from .templates import TemplateStore

if TYPE_CHECKING:
    from .bulk_frames import Frames
    from .bulk_stats import BulkStats

__all__ = ["PLAYBOOK_SUFFIX", "Engine"]

PLAYBOOK_SUFFIX = ".playbook"
# One evaluation a day, unless a dry-run or the runtime says otherwise.
DEFAULT_INTERVAL = timedelta(days=1)
# From this many accounts on, a dry-run (not explaining) takes the bulk path.
BULK_THRESHOLD = 500


class Engine:
    """A playbook directory with its settings, templates and diagnostics."""

    def __init__(
        self,
        program: Program,
        templates: TemplateStore,
        *,
        settings: Settings | None = None,
        sources: Mapping[str, str] | None = None,
        diagnostics: list[Diagnostic] | None = None,
        directory: Path | None = None,
    ) -> None:
        self.program = program
        self.templates = templates
        self.settings = settings or Settings()
        # File name (relative to the directory) -> text, for carets under diagnostics.
        self.sources: dict[str, str] = dict(sources or {})
        self.diagnostics: list[Diagnostic] = sort_diagnostics(diagnostics or [])
        self.directory = directory
        self._evaluators: dict[tuple[str, timedelta], Evaluator] = {}

    # -- building

    @classmethod
    def load(cls, directory: str | Path, settings: Settings | None = None) -> Engine:
        """Read, parse and check every `*.playbook` file of `directory` and its templates."""
        root = Path(directory)
        files = _playbook_files(root)
        texts: dict[str, str] = {}
        problems: list[Diagnostic] = []
        for path in files:
            name = path.name
            text = _read(path, name, problems)
            if text is not None:
                texts[name] = text
        templates = TemplateStore.from_directory(root)
        return cls._build(texts, templates, settings, problems, root)

    @classmethod
    def from_sources(
        cls,
        playbooks: Mapping[str, str],
        templates: Mapping[str, str] | None = None,
        settings: Settings | None = None,
    ) -> Engine:
        """An engine from text: playbook files by name, templates by path (`templates/x.txt`)."""
        store = TemplateStore.from_sources(templates or {})
        return cls._build(dict(playbooks), store, settings, [], None)

    @classmethod
    def _build(
        cls,
        texts: dict[str, str],
        templates: TemplateStore,
        settings: Settings | None,
        problems: list[Diagnostic],
        directory: Path | None,
    ) -> Engine:
        settings = settings or Settings()
        parsed: list[n.File] = []
        sources: dict[str, str] = {}
        syntax: list[Diagnostic] = []
        for name in sorted(texts):
            # The parser reads the text with CRLF and a BOM taken out; so do the carets.
            text = texts[name].replace("\r\n", "\n").removeprefix("\ufeff")
            sources[name] = text
            file, found = parse(text, name)
            parsed.append(file)
            syntax += found
        program = Program.from_files(parsed)
        sources.update(templates.sources)
        checked = check(
            program, templates, settings, sources, incomplete=bool(syntax or problems)
        )
        return cls(
            program,
            templates,
            settings=settings,
            sources=sources,
            diagnostics=[*problems, *syntax, *checked],
            directory=directory,
        )

    # -- what was found

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not any(d.is_error for d in self.diagnostics)

    @property
    def files(self) -> list[str]:
        """The playbook files read, by name."""
        return [f.path for f in self.program.files]

    @property
    def rule_count(self) -> int:
        return sum(len(p.rules) for p in self.program.playbooks)

    # -- evaluation

    def evaluator(
        self, tz: tzinfo | None = None, interval: timedelta = DEFAULT_INTERVAL
    ) -> Evaluator:
        """Rules compiled once for this program, for a time zone and evaluation interval."""
        zone = tz or self.settings.tz
        key = (str(zone), interval)
        if key not in self._evaluators:
            settings = EvalSettings(
                tz=zone,
                interval=interval,
                holidays=frozenset(self.settings.holidays),
                default_role=self.settings.default_recipient_role,
            )
            self._evaluators[key] = Evaluator(self.program, self.templates, settings, self.sources)
        return self._evaluators[key]

    def load_fixture(self, path: str | Path) -> Fixture:
        """A fixture file typed against this program's schema (FixtureError if malformed)."""
        return load_fixture(Path(path), self.program.schema, self.settings.timezone)

    def evaluate(
        self,
        account: Account,
        at: datetime,
        *,
        interval: timedelta = DEFAULT_INTERVAL,
        tz: tzinfo | None = None,
        explain: bool = False,
        rule: str | None = None,
    ) -> list[RuleOutcome]:
        """Every rule's outcome for one account at `at`, with its explanation if asked."""
        return self.evaluator(tz, interval).evaluate(account, at, explain=explain, only_rule=rule)

    def load_frames(self, path: str | Path) -> Frames:
        """A fixture file as tables, for the bulk path (FixtureError if malformed).

        JSON and JSON Lines are read column-wise, with no object per account; see
        `bulk_load`.
        """
        from .bulk_load import load_frames

        return load_frames(path, self)

    def dry_run(
        self,
        fixture: Fixture | Frames,
        at: datetime | None = None,
        *,
        interval: timedelta = DEFAULT_INTERVAL,
        accounts: Iterable[str] | None = None,
        rule: str | None = None,
        explain: bool = False,
        bulk: bool | None = None,
        stats: BulkStats | None = None,
        workers: int | None = None,
    ) -> Evaluation:
        """Every account of a fixture at `at` (default: the fixture's `now`).

        `fixture` is a loaded `Fixture` or its tables (`load_frames`). Without `explain`,
        a fixture of `BULK_THRESHOLD` accounts or more goes through the bulk path
        (`bulk.evaluate_bulk`: the same actions; outcomes only for the rules that could
        fire); `bulk` forces the choice. `stats`, when given, is filled in. The bulk
        path decides its candidate accounts on `workers` processes (default:
        `workers.available_workers()`).
        """
        from .bulk_frames import Frames
        from .bulk_stats import BulkStats

        moment = at or fixture.as_of
        if moment is None:
            raise FixtureError(
                f"{fixture.path}: the fixture has no 'now' and no accounts; give --at"
            )
        count = len(fixture) if isinstance(fixture, Frames) else len(fixture.accounts)
        use_bulk = not explain and (count >= BULK_THRESHOLD if bulk is None else bulk)
        if use_bulk:
            from .bulk import evaluate_bulk, frames_from_fixture

            frames = fixture if isinstance(fixture, Frames) else frames_from_fixture(
                fixture, self)
            return evaluate_bulk(self, frames, moment, interval, accounts=accounts, rule=rule,
                                 stats=stats, workers=workers)
        evaluator = self.evaluator(fixture.timezone, interval)
        stats = stats if stats is not None else BulkStats()
        with stats.phase("per-account"):
            items = (fixture.source.accounts(range(count)) if isinstance(fixture, Frames)
                     else fixture.accounts)
            result = dry_run(
                evaluator, items, moment, explain=explain, account_ids=accounts, rule=rule
            )
        stats.accounts = count if accounts is None else len(set(accounts))
        stats.rules = sum(1 for cr in evaluator.rules if rule is None or cr.rule.name.value == rule)
        stats.rule_checks = stats.accounts * stats.rules
        stats.per_account = stats.accounts
        stats.fired = sum(1 for o in result.outcomes if o.fired)
        stats.actions = len(result.actions)
        return result

    def render(self, diagnostic: Diagnostic) -> str:
        """A diagnostic as `file:line:col: error: message` with its source line and caret."""
        return diagnostic.render(self.sources.get(diagnostic.span.file))

    def raise_for_errors(self) -> None:
        """Raise `LoadError` carrying every diagnostic when there is any error."""
        if not self.ok:
            errors = self.errors
            count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
            first = self.render(errors[0])
            raise LoadError(f"the playbooks have {count}; the first:\n{first}", self.diagnostics)


def _playbook_files(root: Path) -> list[Path]:
    """The top-level `*.playbook` files of `root`, or LoadError when there is none."""
    if not root.exists():
        raise LoadError(f"no such directory: {root}")
    if not root.is_dir():
        raise LoadError(f"{root} is a file; give the directory that holds the .playbook files")
    try:
        found = sorted(
            p for p in root.iterdir() if p.suffix == PLAYBOOK_SUFFIX and not p.is_dir()
        )
    except OSError as exc:
        raise LoadError(f"cannot read the directory {root}: {exc.strerror or exc}") from exc
    if not found:
        nested = next(root.glob(f"*/*{PLAYBOOK_SUFFIX}"), None)
        hint = (
            f"; {nested.relative_to(root).as_posix()} is in a sub-folder, and only the "
            "directory's own files are read"
            if nested is not None
            else ""
        )
        raise LoadError(f"no {PLAYBOOK_SUFFIX} files in {root}{hint}")
    return found


def _read(path: Path, name: str, problems: list[Diagnostic]) -> str | None:
    """A file's text, or None with a diagnostic when it cannot be read as UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        message = f"cannot read '{name}': {exc.strerror or exc}"
        problems.append(error(message, n.Span(name, 1, 1, 1, 1), "unreadable"))
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        message = (
            f"'{name}' is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}): "
            "save it as UTF-8"
        )
        problems.append(error(message, n.Span(name, line, column, line, column), "encoding"))
        return None
