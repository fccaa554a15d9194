"""The shared HTTP client's rules on scripted answers (httpx.MockTransport): which waits,
which retries, which pages, which errors; the clock never really sleeps."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from coordination.errors import ForgeAuthError, ForgeNotFound, ForgeRateLimited
from coordination.forge.base import ForgeSpec, Options
from coordination.forge.http import ForgeHTTP, Token

pytestmark = pytest.mark.timeout(30)

TOKEN = "ghp_unit0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now, self.slept = 1_800_000_000.0, []  # type: ignore[var-annotated]

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def session(answer: Callable[[httpx.Request], httpx.Response], clock: Clock,
            kind: str = "github", **opts: object) -> tuple[ForgeHTTP, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    spec = ForgeSpec(kind, "acme/lib", "https://forge.example/api/v4", "FORGE_TOKEN")  # type: ignore[arg-type]
    http = ForgeHTTP(spec, {"FORGE_TOKEN": TOKEN},
                     Options(clock=clock, transport=httpx.MockTransport(handler), **opts),  # type: ignore[arg-type]
                     lambda t: {"Authorization": f"Bearer {t}"})
    return http, seen


def test_a_success_that_spends_the_limit_makes_the_next_request_wait() -> None:
    clock = Clock()
    answers = iter([httpx.Response(200, json={}, headers={
        "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(clock.now) + 20)}),
        httpx.Response(200, json={"ok": 1})])
    http, seen = session(lambda r: next(answers), clock)
    http.get("/a")
    assert clock.slept == []
    assert http.get("/b") == {"ok": 1}
    assert clock.slept and 20 <= clock.slept[0] <= 22


def test_retry_after_as_an_http_date() -> None:
    clock = Clock()
    when = httpx.Response(429, headers={"Retry-After": "Fri, 15 Jan 2027 08:00:07 GMT"})
    clock.now = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    answers = iter([when, httpx.Response(200, json=[])])
    http, _ = session(lambda r: next(answers), clock)
    http.get("/x")
    assert 7 <= clock.slept[0] <= 9


def test_a_403_that_is_not_a_rate_limit_is_a_permission_error_naming_the_variable() -> None:
    http, _ = session(lambda r: httpx.Response(403, json={"message": "Resource not accessible"}),
                      Clock())
    with pytest.raises(ForgeAuthError, match="FORGE_TOKEN") as caught:
        http.get("/x")
    assert "Resource not accessible" in str(caught.value)


def test_429_without_any_reset_waits_a_minute_within_the_deadline() -> None:
    clock = Clock()
    answers = iter([httpx.Response(429), httpx.Response(200, json={})])
    http, _ = session(lambda r: next(answers), clock, deadline=120)
    http.get("/x")
    assert clock.slept == [60.0]
    http2, _ = session(lambda r: httpx.Response(429), Clock(), deadline=30)
    with pytest.raises(ForgeRateLimited):
        http2.get("/x")


def test_gitlab_pages_by_x_next_page() -> None:
    def answer(r: httpx.Request) -> httpx.Response:
        page = int(r.url.params.get("page", "1"))
        return httpx.Response(200, json=[page], headers={"X-Next-Page": str(page + 1)}
                              if page < 3 else {})
    http, seen = session(answer, Clock(), kind="gitlab")
    assert list(http.pages("/projects/1/merge_requests", {"state": "opened"})) == [1, 2, 3]
    assert all(r.url.params["state"] == "opened" and r.url.params["per_page"] == "100"
               for r in seen)


def test_link_pages_keep_the_links_query() -> None:
    def answer(r: httpx.Request) -> httpx.Response:
        if "page" not in r.url.params:
            return httpx.Response(200, json=[1], headers={
                "Link": '<https://forge.example/api/v4/x?state=all&page=2>; rel="next", '
                        '<https://forge.example/api/v4/x?state=all&page=2>; rel="last"'})
        return httpx.Response(200, json=[2])
    http, seen = session(answer, Clock())
    assert list(http.pages("/x", {"state": "all"})) == [1, 2]
    assert str(seen[1].url) == "https://forge.example/api/v4/x?state=all&page=2"


def test_404_is_not_found_with_a_hint() -> None:
    http, _ = session(lambda r: httpx.Response(404, json={"message": "Not Found"}), Clock())
    with pytest.raises(ForgeNotFound) as caught:
        http.get("/repos/acme/lib/pulls/9")
    assert "forge: project" in str(caught.value)


def test_the_token_goes_in_a_header_only_and_never_shows() -> None:
    http, seen = session(lambda r: httpx.Response(200, json={}), Clock())
    http.get("/x", {"q": "1"})
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(seen[0].url)
    token = Token("FORGE_TOKEN", TOKEN)
    assert TOKEN not in repr(token) + str(token) and "FORGE_TOKEN" in repr(token)
    assert token.scrub(f"bad {TOKEN}!") == "bad ***!"
