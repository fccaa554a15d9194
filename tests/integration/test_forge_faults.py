"""What goes wrong between coord and a forge, against the fake forges: rate limits waited
out within a deadline (GitHub's X-RateLimit-* / Retry-After, GitLab's and Gitea's 429),
5xx retried with backoff, a forge that does not answer, a missing or expired token (a
clear error naming the variable), the token in no output, http:// refused but for
loopback, and a next-page link to another host never followed with the token.

The clock is the tests' (tests.forges.FakeClock): waits are recorded, never slept."""

from __future__ import annotations

import logging
import socket

import pytest

from coordination.errors import (
    ForgeAuthError,
    ForgeConfigError,
    ForgeError,
    ForgeRateLimited,
    ForgeUnavailable,
)
from coordination.forge import open_forge, spec_of
from coordination.forge.base import ForgeSpec, NewPullRequest, Options
from tests.forges import TOKEN_ENV, FakeClock, FakeForge, client
from tests.forges.gitrepo import git

pytestmark = pytest.mark.timeout(120)

PROJECT = "acme/lib"


@pytest.fixture
def opened(fake_forge: FakeForge, tmp_path: object) -> tuple[FakeForge, int]:
    """The fake with one project and one open pull request (its number)."""
    p = fake_forge.add_project(PROJECT)
    work = fake_forge.root / "work"
    git(fake_forge.root, "clone", "--quiet", str(p.repo.path), str(work))
    git(work, "checkout", "--quiet", "-b", "bump")
    (work / "x.txt").write_text("x\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "x")
    git(work, "push", "--quiet", "origin", "bump")
    pr = client(fake_forge, PROJECT).open_pr(NewPullRequest("bump", "main", "Bump"))
    return fake_forge, pr.number


def _limit(fake: FakeForge, clock: FakeClock, reset_in: int, path: str) -> None:
    """The fake answers the next request on ``path`` as the kind's rate limit does."""
    if fake.kind == "github":
        fake.fail("GET", path, 403, body={"message": "API rate limit exceeded for user",
                                         "documentation_url": "https://docs.github.com/rest"},
                  headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "5000",
                           "X-RateLimit-Reset": str(int(clock.time()) + reset_in)})
    else:  # GitLab and Gitea: 429 and Retry-After (GitLab adds RateLimit-Reset)
        fake.fail("GET", path, 429, body={"message": "Retry later"},
                  headers={"Retry-After": str(reset_in),
                           "RateLimit-Reset": str(int(clock.time()) + reset_in)})


def test_a_rate_limit_is_waited_out(opened: tuple[FakeForge, int]) -> None:
    fake, number = opened
    clock = FakeClock()
    forge = client(fake, PROJECT, Options(clock=clock, deadline=120))
    _limit(fake, clock, 30, rf"/pulls/{number}$|/merge_requests/{number}$")
    assert forge.get_pr(number).number == number
    assert len(clock.slept) == 1 and 30 <= clock.slept[0] <= 32, clock.slept


def test_a_rate_limit_past_the_deadline_is_an_error_saying_when(
        opened: tuple[FakeForge, int]) -> None:
    fake, number = opened
    clock = FakeClock()
    forge = client(fake, PROJECT, Options(clock=clock, deadline=10))
    _limit(fake, clock, 600, rf"/pulls/{number}$|/merge_requests/{number}$")
    with pytest.raises(ForgeRateLimited) as caught:
        forge.get_pr(number)
    assert caught.value.reset_in is not None and caught.value.reset_in >= 599
    assert "resets in" in str(caught.value) and "deadline" in str(caught.value)
    assert clock.slept == []  # no point waiting for what comes too late


def test_5xx_is_retried_with_backoff_then_given_up(opened: tuple[FakeForge, int]) -> None:
    fake, number = opened
    clock = FakeClock()
    forge = client(fake, PROJECT, Options(clock=clock, retries=3))
    fake.fail("GET", rf"/{number}$", 502, times=2)
    assert forge.get_pr(number).number == number
    assert len(clock.slept) == 2
    fake.fail("GET", rf"/{number}$", 503, times=10)
    with pytest.raises(ForgeUnavailable, match="answered 503 to .* 4 times"):
        forge.get_pr(number)


def test_a_forge_that_does_not_answer(fake_forge: FakeForge) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens
    clock = FakeClock()
    spec = ForgeSpec(fake_forge.kind, PROJECT, f"http://127.0.0.1:{port}{fake_forge.prefix}",  # type: ignore[arg-type]
                     TOKEN_ENV)
    forge = open_forge(spec, {TOKEN_ENV: "a-token-nobody-reads"},
                       Options(clock=clock, retries=2))
    with pytest.raises(ForgeUnavailable, match="did not answer"):
        forge.user()
    assert len(clock.slept) == 2


def test_a_missing_token_names_its_variable_and_sends_nothing(fake_forge: FakeForge) -> None:
    fake_forge.add_project(PROJECT)
    forge = client(fake_forge, PROJECT, token="")
    with pytest.raises(ForgeAuthError) as caught:
        forge.get_pr(1)
    assert caught.value.variable == TOKEN_ENV and TOKEN_ENV in str(caught.value)
    assert caught.value.exit_code == 2
    assert fake_forge.seen == []


def test_an_expired_token_names_its_variable(opened: tuple[FakeForge, int]) -> None:
    fake, number = opened
    forge = client(fake, PROJECT, token="expired-0000-token")
    with pytest.raises(ForgeAuthError) as caught:
        forge.get_pr(number)
    text = str(caught.value)
    assert TOKEN_ENV in text and "expired" in text and "expired-0000-token" not in text


def test_the_token_is_in_no_output(opened: tuple[FakeForge, int], caplog: pytest.LogCaptureFixture,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    fake, number = opened
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    forge = client(fake, PROJECT, Options(clock=clock, retries=1))
    said: list[str] = [repr(forge), str(forge), repr(getattr(forge, "http").token)]
    fake.fail("GET", rf"/{number}$", 500, times=2,
              body={"message": f"echoing your token {fake.token} back"})
    _limit(fake, clock, 5, r"/user$")
    forge.user()
    for call in (lambda: forge.get_pr(number), lambda: forge.get_pr(999)):
        with pytest.raises(ForgeError) as caught:
            call()
        said += [str(caught.value), repr(caught.value), str(caught.value.args)]
    forge.mergeability(number)
    out = capsys.readouterr()
    blob = "\n".join([*said, caplog.text, out.out, out.err])
    assert fake.token not in blob
    assert "***" in blob  # the forge's echo of it was scrubbed, not dropped silently
    assert any(h.get("authorization", h.get("private-token", "")).endswith(fake.token)
               for _m, _p, _q, h, _b in fake.seen), "the token was never sent at all"


def test_http_is_refused_except_to_loopback(fake_forge: FakeForge) -> None:
    for api in ("http://forge.example.com/api/v4", "http://10.0.0.1/api/v1"):
        with pytest.raises(ForgeConfigError, match="https://"):
            open_forge(ForgeSpec(fake_forge.kind, PROJECT, api, TOKEN_ENV),  # type: ignore[arg-type]
                       {TOKEN_ENV: "t"})

    class Fields:
        kind, project, token_env, webhook_secret_env = fake_forge.kind, PROJECT, None, None
        api = "http://forge.example.com"

    with pytest.raises(ForgeConfigError, match="clear text"):
        spec_of(Fields(), repo="lib")  # type: ignore[arg-type]
    Fields.api = fake_forge.api
    assert spec_of(Fields(), repo="lib").api == fake_forge.api  # type: ignore[arg-type]


def test_a_next_page_on_another_host_is_not_followed(opened: tuple[FakeForge, int]) -> None:
    fake, _number = opened
    forge = client(fake, PROJECT)
    fake.fail("GET", r"/pulls$|/merge_requests$", 200, body=[],
              headers={"Link": '<https://evil.invalid/steal?page=2>; rel="next"'})
    with pytest.raises(ForgeError, match="evil.invalid"):
        forge.list_prs()


def test_the_fakes_refuse_what_the_description_does_not_allow(
        opened: tuple[FakeForge, int]) -> None:
    """The fakes' check is not vacuous: a request outside the forge's description, and a
    response of the fake's that is not the described one, are both answered 500 and
    recorded (the fixture fails the test on any; cleared here once seen)."""
    import httpx

    fake, number = opened
    auth = {"github": {"Authorization": f"Bearer {fake.token}"},
            "gitlab": {"Authorization": f"Bearer {fake.token}"},
            "gitea": {"Authorization": f"token {fake.token}"}}[fake.kind]
    merge = {"github": ("PUT", f"/repos/{PROJECT}/pulls/{number}/merge"),
             "gitlab": ("PUT", f"/projects/acme%2Flib/merge_requests/{number}/merge"),
             "gitea": ("POST", f"/repos/{PROJECT}/pulls/{number}/merge")}[fake.kind]
    bad = {"github": {"merge_method": "octopus"}, "gitlab": {"squash": "yes please"},
           "gitea": {"Do": "octopus"}}[fake.kind]
    r = httpx.request(merge[0], fake.api + merge[1], json=bad, headers=auth)
    assert r.status_code == 500 and len(fake.errors) == 1 and "request" in fake.errors[0]
    assert fake.projects[PROJECT].prs[number].state == "open"
    fake.errors.clear()

    get_pr = {"github": f"/repos/{PROJECT}/pulls/{number}",
              "gitlab": f"/projects/acme%2Flib/merge_requests/{number}",
              "gitea": f"/repos/{PROJECT}/pulls/{number}"}[fake.kind]
    real = fake.projects[PROJECT].prs[number].title
    fake.projects[PROJECT].prs[number].title = 12345  # type: ignore[assignment]
    r = httpx.get(fake.api + get_pr, headers=auth)
    fake.projects[PROJECT].prs[number].title = real
    assert r.status_code == 500 and len(fake.errors) == 1 and "response" in fake.errors[0]
    fake.errors.clear()


def test_a_shared_answer_the_description_does_not_allow_is_caught(
        opened: tuple[FakeForge, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """The answers the fakes share (the comment GitHub's and Gitea's give from one base)
    are checked like each kind's own: one whose author is not the described user object
    is answered 500 and recorded, and coord's client says the forge failed."""
    fake, number = opened
    monkeypatch.setattr(fake, "user_json", lambda login="coord-bot": 12345)
    forge = client(fake, PROJECT, Options(retries=0, clock=FakeClock()))
    with pytest.raises(ForgeUnavailable, match="500"):
        forge.comment(number, "coord: verified")
    assert len(fake.errors) == 1 and "response" in fake.errors[0], fake.errors
    fake.errors.clear()
