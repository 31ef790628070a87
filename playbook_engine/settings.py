"""Engine settings: the configuration an `Engine` is built with, validated by pydantic.

Settings are the operator's side of the contract (time zone, holidays, defaults); the
playbook directory is the CS-ops author's side. Invalid values raise `ConfigError`
with every problem listed, never a pydantic traceback.
"""

from __future__ import annotations

from datetime import date, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .errors import ConfigError


class Settings(BaseModel):
    """How an engine runs: its time zone, business calendar and default recipients."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The time zone dates without a time are read in, and reports are shown in.
    timezone: str = "UTC"
    # The contact role `send template "x"` goes to; None: the schema's first contact role.
    default_recipient_role: str | None = None
    # Days that are not business days, on top of Saturdays and Sundays.
    holidays: tuple[date, ...] = ()
    # Report segments and metrics that no playbook uses (off: they are also a library
    # for explain and reports, and the contract's examples define one for that).
    warn_unused_definitions: bool = False

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}; use a name such as 'UTC' or 'Asia/Tokyo'"
            ) from exc
        return value

    @property
    def tz(self) -> tzinfo:
        """The time zone as an object."""
        return ZoneInfo(self.timezone)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Settings:
        """Settings from plain data (a config file), with problems as a `ConfigError`."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigError(f"invalid settings: {problems}") from exc


__all__ = ["Settings"]
