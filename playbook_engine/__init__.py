"""Playbook engine: a rules engine for customer-success playbooks."""

__version__ = "0.1.0"

from .engine import Engine

__all__ = ["Engine", "__version__"]
