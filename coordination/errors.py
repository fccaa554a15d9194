"""Errors raised by coord, one rooted hierarchy.

The CLI maps the two branches under :class:`CoordError` to exit codes: a
:class:`UsageError` (bad input: the user must change something) exits 2, an
:class:`OperationFailed` (the operation ran and did not succeed) exits 1.
Everything else escaping the CLI is a bug and is shown with a traceback.

    CoordError
     ├── UsageError                      exit 2, nothing changed
     │    ├── CatalogError               ecosystem.yaml cannot be read or is invalid
     │    │    ├── CatalogSyntaxError    not YAML / not UTF-8 / forbidden tag / duplicate key
     │    │    └── CatalogSchemaError    YAML, but not a valid version-1 catalog
     │    ├── NotFoundError              an id, repo or sweep that does not exist
     │    ├── ConflictError              a concurrent writer changed the catalog (after retries)
     │    ├── PlanError                  a plan that cannot be compiled (cycle, blocked)
     │    ├── SettingsError              a bad COORD_* environment variable
     │    └── ForgeConfigError           a repo's forge: coord cannot use (none, kind, http://)
     └── OperationFailed                 exit 1
          ├── ValidationFailed           validation ran and found problems
          ├── DependencyCheckFailed      a dependency check found an unsatisfied dependency
          ├── SweepFailed                a sweep ended failed or cancelled
          ├── ChangeNotReady             a change to land is unverified, moved or in conflict
          ├── LandingFailed              a landing stopped and was reverted (or not)
          ├── ForgeError                 a forge's API did not do what coord asked
          │    ├── ForgeAuthError        token missing, expired or refused (exit 2: names the
          │    │    │                    variable to set)
          │    │    └── AppRefused       the GitHub App itself (its id and key) was refused
          │    ├── ForgeNotFound         a project, pull request or ref the forge does not show
          │    ├── ForgeRateLimited      its rate limit would outlast coord's deadline
          │    ├── ForgeUnavailable      5xx or no answer, after the retries
          │    ├── HeadMoved             a pull request's head is not the commit coord verified
          │    └── MergeRefused          the forge refused a merge (its reason)
          ├── FleetFrozen                `coord freeze` holds: nothing new starts or lands
          └── RuntimeFault               the runtime could not do its work
               ├── RedisUnreachable      COORD_REDIS_URL names no Redis coord can use (at start)
               ├── LeaseLost             a lease expired or was taken over
               └── StaleFence            a write carried a fence older than the newest
"""

from __future__ import annotations

from dataclasses import dataclass


class CoordError(Exception):
    """Root of every error coord raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(CoordError):
    """Bad input or usage; exit code 2 and nothing changed."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One located problem in a catalog file.

    ``field`` is a dotted path such as ``todos[3].repo``; ``line`` is 1-based
    when known.
    """

    message: str
    file: str | None = None
    line: int | None = None
    field: str | None = None
    # Location in the document as keys/indexes, e.g. ("coordination", "todos", 3, "repo");
    # the loader turns it into `line` and `field`.
    loc: tuple[str | int, ...] = ()

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line:
                where += f":{self.line}"
            where += ": "
        if self.field:
            where += f"{self.field}: "
        return where + self.message


class CatalogError(UsageError):
    """The catalog cannot be used; carries every problem found, located."""

    def __init__(self, problems: list[Problem] | Problem | str, *, hint: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems), hint=hint)


class CatalogSyntaxError(CatalogError):
    """The file is not loadable YAML (syntax, encoding, tags, duplicate keys, aliases)."""


class CatalogSchemaError(CatalogError):
    """The YAML loaded but is not a valid version-1 catalog."""


class NotFoundError(UsageError):
    """A referenced id, repo or sweep does not exist."""


class ConflictError(UsageError):
    """The catalog kept changing underneath an edit."""


class PlanError(UsageError):
    """A plan cannot be compiled into a sweep (cycle, unresolved blockers, ...)."""


class SettingsError(UsageError):
    """A COORD_* environment variable has a bad value."""


class OperationFailed(CoordError):
    """The operation ran and failed; exit code 1."""

    exit_code = 1


class ValidationFailed(OperationFailed):
    """Validation ran and found errors."""


class DependencyCheckFailed(OperationFailed):
    """A dependency check found unsatisfied dependencies."""


class SweepFailed(OperationFailed):
    """A sweep ended failed or cancelled."""


class ChangeNotReady(OperationFailed):
    """A change's landing did not start: a repo unverified, its base moved (merged
    into the branch, to verify again) or in conflict."""


class LandingFailed(OperationFailed):
    """A landing stopped (a push refused, a land command failed): the change ended
    ``reverted`` or ``revert_failed``."""


class FleetFrozen(OperationFailed):
    """A start or a landing refused while the fleet is frozen (`coord freeze`): the
    input is right, the fleet's state refuses it (as a change not ready to land), so
    exit 1; nothing changed. Its message says who froze it, when, why and how to
    unfreeze."""


class RuntimeFault(OperationFailed):
    """The runtime could not do its work (broker unreachable, deadline passed...)."""


class RedisUnreachable(RuntimeFault):
    """Redis cannot be used at start: nothing listening, refused credentials, TLS mismatch..."""


class LeaseLost(RuntimeFault):
    """A lease expired or was taken by another owner."""


class StaleFence(RuntimeFault):
    """A write carried a fencing number older than one already seen."""


class ForgeConfigError(UsageError):
    """A repo's ``forge:`` coord cannot use: none set, an unknown kind, a malformed
    project, an ``http://`` API that is not loopback."""


class ForgeError(OperationFailed):
    """A forge's API did not do what coord asked. ``forge`` is the kind (github,
    gitlab, gitea, stub), ``project`` its owner/name; ``status`` the HTTP status when
    there was one. Messages never hold a token (the client never has it in a URL, and
    quotes the forge's own words only from its JSON ``message``)."""

    def __init__(self, message: str, *, forge: str = "", project: str = "",
                 status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.forge = forge
        self.project = project
        self.status = status


class ForgeAuthError(ForgeError):
    """The token is missing, expired, revoked or lacks a permission: the message names
    the environment variable it is read from (never its value). Exit 2: the user must
    set or renew it, and nothing was changed."""

    exit_code = 2

    def __init__(self, message: str, *, variable: str, forge: str = "", project: str = "",
                 status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, forge=forge, project=project, status=status, hint=hint)
        self.variable = variable


class AppRefused(ForgeAuthError):
    """The forge refused the GitHub App itself (``auth: app``: the JWT signed with the
    App's key), not an installation token: minting another token cannot help, so the
    client does not retry; ``variable`` names the key's."""


class ForgeNotFound(ForgeError):
    """The forge shows no such project, pull request, branch or commit (or the token
    may not see it: forges answer 404 for both)."""


class ForgeRateLimited(ForgeError):
    """The forge's rate limit resets later than coord's deadline allows waiting.
    ``reset_in`` is the seconds the forge asked for (None when it did not say)."""

    def __init__(self, message: str, *, reset_in: float | None = None, forge: str = "",
                 project: str = "", status: int | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, forge=forge, project=project, status=status, hint=hint)
        self.reset_in = reset_in


class ForgeUnavailable(ForgeError):
    """The forge answered 5xx, or did not answer, after every retry."""


class HeadMoved(ForgeError):
    """A pull request's head is not the commit coord pinned (verified): nothing was
    merged. ``expected`` is the pinned commit, ``actual`` the head the forge shows
    (None when the forge refused without saying)."""

    def __init__(self, message: str, *, number: int, expected: str, actual: str | None,
                 forge: str = "", project: str = "", status: int | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, forge=forge, project=project, status=status, hint=hint)
        self.number = number
        self.expected = expected
        self.actual = actual


class MergeRefused(ForgeError):
    """The forge refused to merge a pull request; ``reason`` is the forge's own words
    (a missing review, a failing required check, a conflict, a protection rule)."""

    def __init__(self, message: str, *, number: int, reason: str, forge: str = "",
                 project: str = "", status: int | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, forge=forge, project=project, status=status, hint=hint)
        self.number = number
        self.reason = reason
