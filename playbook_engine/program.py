"""A playbook directory's files joined into one program: the schema and the names it defines.

Segments, metrics and the schema are visible from every file, so names are resolved
across the whole directory, not file by file. Playbooks keep a stable order: by file
name, then in file order (the order the dry-run reports actions in).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from . import nodes as n

# Every account has these, declared or not.
BUILTIN_FIELDS: dict[str, str] = {"id": "text", "name": "text"}


@dataclass(frozen=True)
class Program:
    files: tuple[n.File, ...]
    schema: n.Schema | None
    segments: dict[str, n.Segment] = field(default_factory=dict)
    metrics: dict[str, n.Metric] = field(default_factory=dict)
    playbooks: tuple[n.Playbook, ...] = ()

    @classmethod
    def from_files(cls, files: Iterable[n.File]) -> Program:
        """Join parsed files; the first schema, segment or metric of a name wins."""
        ordered = tuple(sorted(files, key=lambda f: f.path))
        schema: n.Schema | None = None
        segments: dict[str, n.Segment] = {}
        metrics: dict[str, n.Metric] = {}
        playbooks: list[n.Playbook] = []
        for file in ordered:
            for item in file.items:
                if isinstance(item, n.Schema):
                    schema = schema or item
                elif isinstance(item, n.Segment):
                    segments.setdefault(item.name.text, item)
                elif isinstance(item, n.Metric):
                    metrics.setdefault(item.name.text, item)
                elif isinstance(item, n.Playbook):
                    playbooks.append(item)
        return cls(ordered, schema, segments, metrics, tuple(playbooks))

    # -- schema look-ups; each returns None when the name is not declared

    def field_decl(self, name: str) -> n.FieldDecl | None:
        if self.schema is None:
            return None
        for decl in self.schema.fields:
            if decl.name.text == name:
                return decl
        return None

    def field_kind(self, name: str) -> str | None:
        """The type of an account field ("number", "enum", ...) or None if unknown."""
        if name in BUILTIN_FIELDS:
            return BUILTIN_FIELDS[name]
        decl = self.field_decl(name)
        return decl.type.kind if decl else None

    def event_decl(self, name: str) -> n.EventDecl | None:
        if self.schema is None:
            return None
        for decl in self.schema.events:
            if decl.name.text == name:
                return decl
        return None

    def event_field_kind(self, event: str, name: str) -> str | None:
        decl = self.event_decl(event)
        if decl is None:
            return None
        for f in decl.fields:
            if f.name.text == name:
                return f.type.kind
        return None

    def milestone(self, name: str) -> n.MilestoneDecl | None:
        if self.schema is None:
            return None
        for decl in self.schema.milestones:
            if decl.name.text == name:
                return decl
        return None

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(r.text for r in self.schema.roles) if self.schema else ()

    @property
    def field_names(self) -> tuple[str, ...]:
        declared = tuple(d.name.text for d in self.schema.fields) if self.schema else ()
        return (*BUILTIN_FIELDS, *declared)

    @property
    def event_names(self) -> tuple[str, ...]:
        return tuple(e.name.text for e in self.schema.events) if self.schema else ()

    @property
    def milestone_names(self) -> tuple[str, ...]:
        return tuple(m.name.text for m in self.schema.milestones) if self.schema else ()

    def rules(self) -> Iterable[tuple[n.Playbook, n.Rule]]:
        for playbook in self.playbooks:
            for rule in playbook.rules:
                yield playbook, rule
