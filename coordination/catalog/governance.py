"""The catalog's governance models: a todo's approval ``gate:`` and a plan's ``waves:``.

Kept beside :mod:`coordination.catalog.models` (which names them in one field each)
so that what decides who may let a change through reads in one place.

    gate:  {approvals: 2, from: [ana, bo, cy], starter_may_approve: false,
            expires: 24h, on_expiry: cancel}
    waves: - {name: canary, repos: [api], max_parallel: 1, soak: 10m,
              require: {success_rate: 1.0}}
           - {name: rest, tags: [service], max_parallel: 4}

Durations are seconds (a number) or a number with a unit: ``s``, ``m``, ``h``, ``d``
(``90s``, ``10m``, ``24h``, ``1.5d``).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from typing import Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    WithJsonSchema,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic.config import JsonDict

from coordination.catalog.model_methods import WaveMethods
from coordination.catalog.rules.patterns import END, at_most

#: The longest a gate may wait or a wave soak: a sweep's deadline bounds it anyway.
MAX_DURATION = 30 * 24 * 3600.0
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(value: object) -> float:
    """Seconds of ``90``, ``"90s"``, ``"10m"``, ``"24h"``, ``"1.5d"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError(f"not a duration: {value!r} (write e.g. 90s, 10m, 24h, 2d)")
        seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_DURATION:
        raise ValueError(f"duration {value!r} out of range (0 to 30d)")
    return seconds




def _duration_pattern() -> str:
    """:func:`parse_duration`'s text as one pattern, for `coord schema`: a number and a
    unit of ``_UNITS`` (none: seconds) that make at most :data:`MAX_DURATION`."""
    forms = [rf"{at_most(int(MAX_DURATION // secs))}\s*{unit}" + ("?" if unit == "s" else "")
             for unit, secs in _UNITS.items()]
    return rf"^\s*(?:{'|'.join(forms)})\s*{END}"


#: A duration in `coord schema`: seconds, or the text :func:`parse_duration` reads.
DURATION_SCHEMA: JsonDict = {"anyOf": [
    {"type": "number", "minimum": 0, "maximum": MAX_DURATION},
    {"type": "string", "pattern": _duration_pattern()},
]}
Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(DURATION_SCHEMA)]


class GovernanceModel(BaseModel):
    # A field's docstring is its description (the generated reference, `coord schema`),
    # read only when one is wanted (coordination.catalog.rules.schema.describe_fields).
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class Gate(GovernanceModel):
    """A todo with ``gate:`` (and no ``run:``) waits for ``approvals`` distinct people
    (of ``from``, when given) before what follows it may start."""

    approvals: int = Field(1, ge=1, le=100)
    """Distinct people who must approve (1 to 100)."""
    from_: list[str] = Field(default_factory=list, alias="from")
    """Who may approve (principals); empty: anyone."""
    starter_may_approve: bool = True
    """Whether the person who started the sweep may approve its gate."""
    expires: Duration | None = None
    """How long the gate waits for a decision (seconds, or 30m, 2h...); unset: no limit."""
    on_expiry: Literal["cancel", "rollback"] = "cancel"
    """What an expired gate does to its sweep: cancel it, or roll it back."""
    forge_reviews: bool = False
    """In a change (land: pr): the approving reviews of the pull request of the gate's repo,
    given on the head coord verified, count as its approvals (each a vote of the reviewer,
    sealed as any vote; from: names forge logins)."""

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> Any:
        # `from` is a Python keyword: the field is from_, every document says from.
        data = handler(self)
        if isinstance(data, dict) and "from_" in data:
            data["from"] = data.pop("from_")
        return data

    @model_validator(mode="after")
    def _enough_approvers(self) -> Gate:
        if self.from_ and len(set(self.from_)) < self.approvals:
            raise ValueError(f"approvals: {self.approvals} but only {len(set(self.from_))} "
                             "distinct people in from:")
        return self


class WaveRequire(GovernanceModel):
    success_rate: float = Field(1.0, ge=0.0, le=1.0)
    """Share of the wave's todos that must succeed (0 to 1; default all)."""


class Wave(WaveMethods, GovernanceModel):
    """A part of a plan's todos (by repo name or repo tag), started only after the wave
    before it ended, soaked and met its criteria."""

    # `_selects` in the schema (`coord schema`): one of repos and tags, not empty.
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["repos"], "properties": {"repos": {"minItems": 1}}},
        {"required": ["tags"], "properties": {"tags": {"minItems": 1}}},
    ]})

    name: str = ""
    """The wave's name, shown in events and `sweep status`."""
    repos: list[str] = Field(default_factory=list)
    """Repos whose todos are in this wave."""
    tags: list[str] = Field(default_factory=list)
    """Repo tags whose repos' todos are in this wave."""
    max_parallel: int = Field(0, ge=0, le=100_000)  # 0: no cap
    """Todos of the wave running at once; 0: no cap."""
    soak: Duration = 0.0
    """How long to wait after the wave's todos ended before the next wave starts (seconds, or 30m,
    2h...)."""
    require: WaveRequire = Field(default_factory=WaveRequire)
    """What the wave must meet before the next one starts."""

    @model_validator(mode="after")
    def _selects(self) -> Wave:
        if not self.repos and not self.tags:
            raise ValueError("a wave names repos: or tags:")
        return self
