"""Playbook engine: a rules engine for customer-success playbooks."""

__version__ = "0.1.0"

from .engine import Engine  # noqa: E402  (the version is set first: cli imports it)

__all__ = ["Engine", "__version__"]
