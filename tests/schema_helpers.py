"""Schemas built by hand, for tests that must not depend on the parser."""

from __future__ import annotations

from playbook_engine import nodes


def name(text: str) -> nodes.Name:
    return nodes.Name(tuple(text.split(".")))


def field(field_name: str, kind: str, *values: str) -> nodes.FieldDecl:
    """`field("tier", "enum", "high-touch", ...)`, `field("seats", "number")`."""
    field_type = nodes.FieldType(kind, tuple(name(v) for v in values))  # type: ignore[arg-type]
    return nodes.FieldDecl(name(field_name), field_type)


def event(event_name: str, *fields: nodes.FieldDecl) -> nodes.EventDecl:
    return nodes.EventDecl(name(event_name), fields)


def schema(
    fields: tuple[nodes.FieldDecl, ...] = (),
    roles: tuple[str, ...] = (),
    events: tuple[nodes.EventDecl, ...] = (),
    milestones: tuple[nodes.MilestoneDecl, ...] = (),
) -> nodes.Schema:
    return nodes.Schema(fields, tuple(name(r) for r in roles), events, milestones)


def spec_schema() -> nodes.Schema:
    """The schema of shared/spec/schema.playbook, as the parser should build it."""
    return schema(
        fields=(
            field("tier", "enum", "high-touch", "low-touch", "tech-touch"),
            field("stage", "enum", "onboarding", "adoption", "renewal", "churned"),
            field("plan", "text"),
            field("mrr", "number"),
            field("seats", "number"),
            field("health", "number"),
            field("signed_at", "date"),
            field("renewal_date", "date"),
            field("renewal_signed_at", "date"),
            field("onboarding_completed_at", "date"),
            field("csm", "user"),
        ),
        roles=("admin", "champion", "decision-maker", "billing"),
        events=(
            event("login", field("user", "text")),
            event("feature_used", field("feature", "text"), field("user", "text")),
            event("nps_submitted", field("score", "number"), field("comment", "text")),
            event("executive_meeting", field("topic", "text")),
        ),
        milestones=(
            nodes.MilestoneDecl(name("onboarding"), name("signed_at"),
                                name("onboarding_completed_at")),
        ),
    )
