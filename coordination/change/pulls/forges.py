"""The forge of each repo of a change: one client per repo, made once per command.

``coord change publish``, ``status``, ``land`` (``land: pr``) and ``revert`` ask a
repo's forge through :class:`ChangeForges`, which takes the factory that makes a
client (:func:`coordination.forge.forge_for`; a test gives a stub's). A repo without
``forge:`` is refused before anything is asked or changed (exit 2, naming it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from coordination.change.model import ChangePlan
from coordination.errors import ForgeConfigError
from coordination.forge.base import Forge, ForgeFactory, ForgeSpec
from coordination.names import some

#: The label every pull request of a change carries (``coord:PLAN``).
LABEL = "coord:{plan}"


def label(plan: str) -> str:
    return LABEL.format(plan=plan)


class ChangeForges:
    """The forges of ``cp``'s repos (``factory`` makes each client once; ``env``: where
    tokens are read, default the process's environment)."""

    def __init__(self, cp: ChangePlan, factory: ForgeFactory | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.cp = cp
        if factory is None:
            from coordination.forge import forge_for  # lazy: a kind loads httpx on first use

            factory = forge_for
        self.factory = factory
        self.env = env
        self._made: dict[str, Forge] = {}

    def has(self, repo: str) -> bool:
        t = self.cp.targets.get(repo)
        return t is not None and t.forge is not None

    def of(self, repo: str) -> Forge:
        """``repo``'s forge (a ForgeConfigError when it names none)."""
        got = self._made.get(repo)
        if got is None:
            t = self.cp.targets[repo]
            got = self._made[repo] = self.factory(t, self.env)
        return got

    def spec(self, repo: str) -> ForgeSpec:
        return self.of(repo).spec

    def require(self, repos: Iterable[str] | None = None) -> None:
        """Every one of ``repos`` (default: the change's) names a forge; else a
        ForgeConfigError naming those that do not (nothing asked, nothing changed)."""
        names = list(self.cp.targets) if repos is None else list(repos)
        lacking = [r for r in names if not self.has(r)]
        if not lacking:
            return
        if len(lacking) == len(self.cp.targets):
            raise ForgeConfigError(
                f"{self.cp.plan}: none of its repos names a forge, so it has no pull "
                f"requests ({some(lacking)})",
                hint="add forge: {kind: github|gitlab|gitea, project: owner/name} to each "
                     "repo in the catalog")
        raise ForgeConfigError(
            f"{self.cp.plan}: repo{'s' if len(lacking) > 1 else ''} {some(lacking)} "
            f"name{'' if len(lacking) > 1 else 's'} no forge",
            hint="add forge: {kind: github|gitlab|gitea, project: owner/name} to "
                 + ("each" if len(lacking) > 1 else "it") + " in the catalog")
