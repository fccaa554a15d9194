"""Inter-repo dependencies: which repo consumes which, how that is checked, and which
dependency types order work (``order:``)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from coordination.catalog.enums import DependencyStatus, DependencyType
from coordination.catalog.models.base import CatalogModel, DepId, RepoName


class Validation(CatalogModel):
    command: str = Field(min_length=1)
    """Shell command run in the consumer's checkout; exit 0 passes."""
    expected_pattern: str | None = None
    """A regular expression its output must match to pass."""
    timeout: float = Field(60, gt=0, le=3600)
    """Seconds the command may take (at most 3,600)."""

    @field_validator("expected_pattern")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return v


class DependencySource(CatalogModel):
    """Where an inferred dependency was read (``coord init``): the consumer's manifest,
    relative to its checkout, and the 1-based line naming the provider; ``type`` once
    the dependency's type was set by hand."""

    file: str = Field(min_length=1, description="The manifest, relative to the consumer's "
                      "checkout (pyproject.toml, package.json, go.mod...).")
    line: int = Field(ge=1, description="The 1-based line of the manifest naming the provider.")
    type: DependencyType | None = Field(
        None, description="The type the manifest gives, kept here when the dependency's own "
        "type was set by hand (`coord dep update --type`): that type is then the user's, "
        "and `coord init --check --apply` keeps it (hand-edited).")


class Dependency(CatalogModel):
    id: DepId
    """Unique id, DEP-<n>."""
    consumer: RepoName
    """The repo that depends on the provider."""
    provider: RepoName
    """The repo depended on; it comes first in landing and `deps: follow` orders."""
    type: DependencyType = DependencyType.runtime
    """What kind of dependency it is: runtime, build, dev, peer or optional (from the manifest's
    own sections); test and api are kept from 0.4 catalogs. Which types order work: `order.by`."""
    indirect: bool = False
    """A Go `// indirect` require (or another ecosystem's transitive pin): kept, never ordering."""
    version_constraint: str | None = None
    """The provider's versions the consumer accepts (free text, e.g. >=2.0)."""
    status: DependencyStatus = DependencyStatus.unknown
    """The last `coord dep check`'s verdict."""
    notes: str = ""
    """Free text about the dependency."""
    validation: Validation | None = None
    """A command that checks the dependency (`coord dep check`)."""
    #: Set by ``coord init`` on what it inferred from a manifest; ``coord init --check``
    #: drops such an entry when the manifest stops naming the provider.
    source: DependencySource | None = None
    """Where `coord init` read it (manifest and line); `coord init --check` drops it when the
    manifest stops naming the provider."""


class Order(CatalogModel):
    """How dependency-ordered work is ordered (``order:``): which dependency types order it,
    and what a cycle among them does."""

    by: list[DependencyType] = Field(
        default_factory=lambda: [DependencyType.runtime, DependencyType.build, DependencyType.peer])
    """The dependency types that order work (default runtime, build, peer: dev, optional and
    indirect edges do not)."""
    cycles: Literal["group", "error"] = "group"
    """A cycle among ordering edges: `group` runs its repos as one group, one at a time in name
    order, with a warning; `error` refuses (exit 2)."""
