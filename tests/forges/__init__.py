"""Fake forges for the tests: GitHub, GitLab and Gitea over HTTP on loopback, stateful,
with real bare git repositories behind them, validating every request and response
against each forge's published description (``openapi/``). The ``fake_forge`` fixture
(tests/conftest.py) starts one per kind and fails the test if anything did not match.

    fake = FakeGitHub(tmp_path).start(); fake.add_project("acme/lib")
    forge = client(fake, "acme/lib")          # coord's own client, pointed at it
"""

from __future__ import annotations

from coordination.forge import open_forge
from coordination.forge.base import Forge, ForgeSpec, Options
from tests.forges.gitea import FakeGitea
from tests.forges.github import FakeGitHub
from tests.forges.gitlab import FakeGitLab
from tests.forges.server import FakeForge

FAKES: dict[str, type[FakeForge]] = {"github": FakeGitHub, "gitlab": FakeGitLab,
                                     "gitea": FakeGitea}
#: The variable the tests' clients read the fake's token from.
TOKEN_ENV = "FORGE_TEST_TOKEN"


class FakeClock:
    """A clock whose sleep only moves it on (and records how long was asked)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def spec(fake: FakeForge, project: str) -> ForgeSpec:
    return ForgeSpec(fake.kind, project, fake.api, TOKEN_ENV)  # type: ignore[arg-type]


def client(fake: FakeForge, project: str, options: Options | None = None,
           token: str | None = None) -> Forge:
    """coord's client of ``fake``'s ``project`` (with the fake's token unless given)."""
    return open_forge(spec(fake, project), {TOKEN_ENV: fake.token if token is None else token},
                      options)


__all__ = ["FAKES", "FakeClock", "TOKEN_ENV", "FakeForge", "FakeGitHub", "FakeGitLab", "FakeGitea",
           "client", "spec"]
