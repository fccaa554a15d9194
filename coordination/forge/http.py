"""The HTTP client every forge kind shares (httpx): the token, rate limits waited out
with a deadline, 5xx retried with backoff, pages followed, and the forge's refusals
turned into :mod:`coordination.errors`' ``ForgeError`` family.

The token is read once from its environment variable into a :class:`Token`, whose
``repr``/``str`` name the variable, never the value; it travels only in a request
header (never a URL), is sent only to the API's own scheme, host and port (a next-page
link elsewhere is refused; redirects are not followed), and is scrubbed from any text
of the forge's quoted in an error. Nothing here logs headers.

With ``auth: app`` (GitHub Apps) the token is an installation token
:mod:`coordination.forge.app_auth` mints (and mints again before it expires, or once
when the forge refuses it), in memory only. ``ca_file``: the TLS certificate of the
forge is verified with that CA bundle instead of the system's.
"""

from __future__ import annotations

import email.utils
import logging
import re
import ssl
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from coordination.catalog.rules.forge_rules import is_loopback
from coordination.errors import (
    AppRefused,
    ForgeAuthError,
    ForgeConfigError,
    ForgeError,
    ForgeNotFound,
    ForgeRateLimited,
    ForgeUnavailable,
)
from coordination.forge.base import ForgeSpec, Options
from coordination.retry import BACKOFF_MAX, backoff_delay
from coordination.trust.secrets import value_forms

if TYPE_CHECKING:
    import httpx

    from coordination.forge.app_auth import AppAuth

log = logging.getLogger("coordination.forge")

JSON = Any
#: The most pages one list follows (100 a page: 10,000 items), a guard against a forge
#: whose next link never ends.
MAX_PAGES = 100
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
NAMES = {"github": "GitHub", "gitlab": "GitLab", "gitea": "Gitea", "stub": "the stub forge"}


class Token:
    """A token's value, kept out of every text: ``repr`` and ``str`` name its variable."""

    __slots__ = ("_value", "variable")

    def __init__(self, variable: str, value: str) -> None:
        self.variable = variable
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Token(from ${self.variable})"

    __str__ = __repr__

    def scrub(self, text: str) -> str:
        """``text`` with the value replaced by ``***``, in every form it may be echoed in
        (cased, base64: a Basic header's; :func:`~coordination.trust.secrets.value_forms`).
        A value too short to be a real token is left: scrubbing "t" would garble every
        message."""
        if len(self._value) < 8:
            return text
        for form in value_forms(self._value):
            text = text.replace(form, "***")
        return text


class ForgeHTTP:
    """One forge API's HTTP session: ``auth`` turns the token into its header
    (``Authorization: Bearer``, ``PRIVATE-TOKEN``, ``Authorization: token``)."""

    def __init__(self, spec: ForgeSpec, env: Mapping[str, str], options: Options | None,
                 auth: Callable[[str], dict[str, str]]) -> None:
        parts = urlsplit(spec.api)
        if parts.scheme != "https" and not (parts.scheme == "http"
                                            and is_loopback(parts.hostname)):
            raise ForgeConfigError(
                f"forge api {spec.api!r}: coord sends a token only over https:// (http:// "
                "only to localhost)", hint="write the forge's https:// API URL in forge: api")
        self.spec = spec
        self.options = options or Options()
        self.token = Token(spec.token_env, env.get(spec.token_env, "").strip())
        self.app: AppAuth | None = None
        if spec.auth == "app":
            from coordination.forge.app_auth import AppAuth  # lazy: PyJWT, cryptography

            self.app = AppAuth(spec, env, self.options.clock)
            self.token = Token(spec.app_key_env, "")  # the installation token, once minted
        self._auth = auth
        self._origin = (parts.scheme, parts.hostname, parts.port)
        self._client: httpx.Client | None = None
        self._blocked_until = 0.0  # monotonic: a response said the limit is spent
        self.name = NAMES.get(spec.kind, spec.kind)

    # plumbing ---------------------------------------------------------------------------

    def client(self) -> httpx.Client:
        if self._client is None:
            import httpx  # lazy: httpx (and its ssl) loads only when a forge is asked

            transport = self.options.transport
            verify: ssl.SSLContext | bool = True
            if self.spec.ca_file:
                verify = self.ssl_context()
            self._client = httpx.Client(
                timeout=self.options.timeout, follow_redirects=False,
                transport=transport,  # type: ignore[arg-type]
                verify=verify,
                headers={"User-Agent": self.options.user_agent, "Accept": "application/json"})
        return self._client

    def ssl_context(self) -> ssl.SSLContext:
        """An SSL context that trusts the CA bundle in ``ca_file`` (only it), or a
        ForgeConfigError naming the file when it cannot be read as one."""
        path = self.spec.ca_file or ""
        try:
            return ssl.create_default_context(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            why = (exc.strerror or str(exc)) if isinstance(exc, OSError) and not isinstance(
                exc, ssl.SSLError) else f"not a PEM CA bundle ({exc})"
            raise ForgeConfigError(
                f"{self.name} {self.spec.project}: forge: ca_file {path!r}: {why}",
                hint="name a readable PEM file of the CA that signed the forge's certificate "
                     "in the repo's forge: ca_file (or remove ca_file to use the system's "
                     "trust store)") from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def url(self, path: str) -> str:
        return path if "://" in path else self.spec.api + path

    def _same_origin(self, url: str) -> bool:
        p = urlsplit(url)
        return (p.scheme, p.hostname, p.port) == self._origin

    def error(self, cls: type[ForgeError], message: str, status: int | None = None,
              hint: str | None = None) -> ForgeError:
        return cls(self.token.scrub(message), forge=self.spec.kind, project=self.spec.project,
                   status=status, hint=hint)

    def forge_words(self, response: httpx.Response) -> str:
        """What the forge said about a refusal (its JSON ``message``/``error``), cut
        short and scrubbed of the token."""
        try:
            data = response.json()
        except ValueError:
            # Gitea's refusals may carry their words in a `message` header, no body.
            text = response.text[:200].strip() or response.headers.get("message", "")
            return self.token.scrub(text)
        words: list[str] = []
        if isinstance(data, dict):
            for key in ("message", "error", "error_description"):
                if isinstance(data.get(key), (str, list, dict)):
                    words.append(str(data[key]))
            for err in data.get("errors") or ():
                words.append(str(err.get("message") if isinstance(err, dict) and
                                 err.get("message") else err))
        return self.token.scrub("; ".join(words)[:300])

    # rate limits ------------------------------------------------------------------------

    def _reset_in(self, response: httpx.Response) -> float | None:
        """Seconds until the limit this response hit resets, if it said; None if it
        is not a rate limit at all."""
        h = response.headers
        clock = self.options.clock
        retry_after = h.get("retry-after")
        if retry_after:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                when = email.utils.parsedate_to_datetime(retry_after)
                return max(0.0, when.timestamp() - clock.time())
        remaining = h.get("x-ratelimit-remaining") or h.get("ratelimit-remaining")
        reset = h.get("x-ratelimit-reset") or h.get("ratelimit-reset")
        if remaining is not None and remaining.strip() == "0" and reset:
            return max(0.0, float(reset) - clock.time())
        if response.status_code == 429:
            return None if not reset else max(0.0, float(reset) - clock.time())
        return -1.0  # not a rate limit

    def _is_rate_limited(self, response: httpx.Response) -> bool:
        if response.status_code == 429:
            return True
        if response.status_code == 403:
            h = response.headers
            if h.get("retry-after") or (h.get("x-ratelimit-remaining") or "").strip() == "0":
                return True
            return "rate limit" in response.text[:500].lower()
        return False

    def _wait_limit(self, response: httpx.Response, started: float, what: str) -> None:
        """Wait out the limit ``response`` hit, or raise ForgeRateLimited when its reset
        is past the deadline (counted from the request's first try)."""
        clock = self.options.clock
        reset = self._reset_in(response)
        wait = 60.0 if reset is None or reset < 0 else reset + 1.0
        left = self.options.deadline - (clock.monotonic() - started)
        if wait > left:
            raise ForgeRateLimited(
                f"{self.name} rate limit on {what}: it resets in {wait:.0f}s, past coord's "
                f"deadline ({self.options.deadline:.0f}s)", reset_in=reset,
                forge=self.spec.kind, project=self.spec.project,
                status=response.status_code,
                hint="try again after the reset, or use a token with a higher limit")
        log.info("%s rate limit on %s: waiting %.0fs", self.name, what, wait)
        clock.sleep(wait)

    # requests ---------------------------------------------------------------------------

    def send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             json_body: JSON = None, allow: tuple[int, ...] = ()) -> httpx.Response:
        """The response to one request: 2xx, or a status in ``allow`` (the caller reads
        it); any other becomes a ForgeError. Rate limits are waited out, 5xx and
        dropped connections retried."""
        if self.app is not None:
            self.app.check()  # the App's id and key, before anything is sent
            try:
                return self._request(method, path, params, json_body, allow, self._app_headers)
            except ForgeAuthError as exc:
                if exc.status != 401 or isinstance(exc, AppRefused):
                    raise
                # refused all the same (revoked, the clocks apart): minted once more
                log.info("%s refused the installation token: minting another", self.name)
                self.app.drop()
                return self._request(method, path, params, json_body, allow, self._app_headers)
        if not self.token:
            raise ForgeAuthError(
                f"{self.name}: no token: {self.spec.token_env} is not set",
                variable=self.spec.token_env, forge=self.spec.kind, project=self.spec.project,
                hint=f"export {self.spec.token_env}=<a token that may read and merge pull "
                     f"requests of {self.spec.project}> (or name another variable in the "
                     "repo's forge: token_env)")
        return self._request(method, path, params, json_body, allow,
                             lambda: self._auth(self.token.reveal()))

    def _app_headers(self) -> dict[str, str]:
        """The headers of a request as the App's installation (minted when due)."""
        assert self.app is not None
        value = self.app.token(self._as_app)
        if value != self.token.reveal():
            self.token = Token(self.spec.app_key_env, value)
        return self._auth(value)

    def _as_app(self, method: str, path: str, jwt: str, body: JSON) -> httpx.Response:
        """One request signed as the App itself (its JWT, in the kind's auth header):
        finding the installation, minting its token."""
        return self._request(method, path, None, body, (), lambda: self._auth(jwt),
                             as_app=True)

    def _request(self, method: str, path: str, params: Mapping[str, Any] | None,
                 json_body: JSON, allow: tuple[int, ...],
                 headers_of: Callable[[], dict[str, str]], *,
                 as_app: bool = False) -> httpx.Response:
        import httpx  # lazy: httpx (and its ssl) loads only when a forge is asked

        url = self.url(path)
        if not self._same_origin(url):
            raise self.error(ForgeError, f"{self.name} pointed coord at {urlsplit(url).netloc}, "
                             "which is not its API's host; the token is not sent there")
        what = f"{method} {urlsplit(url).path}"
        clock, attempt = self.options.clock, 0
        started = clock.monotonic()
        while True:
            if self._blocked_until > clock.monotonic():
                if self._blocked_until - started > self.options.deadline:
                    raise ForgeRateLimited(
                        f"{self.name} rate limit spent: it resets past coord's deadline",
                        forge=self.spec.kind, project=self.spec.project)
                clock.sleep(self._blocked_until - clock.monotonic())
            headers = headers_of()
            try:
                response = self.client().request(method, url, params=params, json=json_body,
                                                 headers=headers)
            except httpx.TransportError as exc:
                attempt += 1
                if attempt > self.options.retries:
                    raise self.error(ForgeUnavailable, f"{self.name} did not answer {what}: "
                                     f"{type(exc).__name__}: {exc}") from None
                self._backoff(attempt, what, type(exc).__name__)
                continue
            log.debug("%s %s -> %s", method, urlsplit(url).path, response.status_code)
            self._note_remaining(response)
            status = response.status_code
            if self._is_rate_limited(response) and status not in allow:
                self._wait_limit(response, started, what)
                continue
            if status >= 500 and status not in allow:
                attempt += 1
                if attempt > self.options.retries:
                    raise self.error(ForgeUnavailable, f"{self.name} answered {status} to "
                                     f"{what} {attempt} times: {self.forge_words(response)}",
                                     status)
                self._backoff(attempt, what, str(status))
                continue
            if 200 <= status < 300 or status in allow:
                return response
            raise self.refusal(response, what, as_app=as_app)

    def _note_remaining(self, response: httpx.Response) -> None:
        """A success that spent the last of the limit: the next request waits for its
        reset (within the deadline) instead of being refused."""
        h = response.headers
        if (h.get("x-ratelimit-remaining") or "").strip() == "0" and response.is_success:
            reset = self._reset_in(response)
            if reset is not None and reset > 0:
                self._blocked_until = self.options.clock.monotonic() + reset + 1.0

    def _backoff(self, attempt: int, what: str, why: str) -> None:
        delay = min(BACKOFF_MAX, backoff_delay(attempt, self.options.backoff_base))
        log.info("%s %s: %s, retry %d in %.1fs", self.name, what, why, attempt, delay)
        self.options.clock.sleep(delay)

    def refusal(self, response: httpx.Response, what: str, *,
                as_app: bool = False) -> ForgeError:
        """The ForgeError for a 4xx the caller did not allow: a 401 or 403 is a
        ``ForgeAuthError`` naming the credential's variable (:meth:`_denied`), a 404 says
        what may be missing (:meth:`_missing`), any other status quotes the forge.
        ``as_app``: the request was signed as the GitHub App itself (its JWT)."""
        status, words = response.status_code, self.forge_words(response)
        said = f"{status}: {words}" if words else str(status)
        if status in (401, 403):
            message, variable, hint = self._denied(status, what, said, as_app)
            refused = AppRefused if as_app else ForgeAuthError
            return refused(message, variable=variable, forge=self.spec.kind,
                           project=self.spec.project, status=status, hint=hint)
        if status == 404:
            message, hint = self._missing(what, said, as_app)
            return self.error(ForgeNotFound, message, status, hint=hint)
        to = " to the GitHub App" if as_app else ""
        return self.error(ForgeError, f"{self.name} refused {what}{to} ({said})", status)

    def _denied(self, status: int, what: str, said: str,
                as_app: bool) -> tuple[str, str, str]:
        """A 401 or 403's message, the variable it names and the hint: the token's, the
        App's installation token's, or the App's own (its id and key)."""
        name, project = self.name, self.spec.project
        ids, key = self.spec.app_id_env, self.spec.app_key_env
        if as_app:
            return (f"{name} refused the GitHub App of {ids} signed with the key in {key} "
                    f"({what}: {said})", key,
                    f"check {ids} is the App's id and {key} a current private key of it "
                    "(and this machine's clock)")
        if self.app is not None:
            app = f"the GitHub App of {ids}"
            refused = (f"refused {app}'s installation token" if status == 401 else
                       f"forbids {what} to {app}")
            return (f"{name} {refused} ({said})", ids,
                    f"check the App is installed on {project} with read and write access "
                    "to contents, pull requests, commit statuses and checks (docs: "
                    "how-to/forge-credentials)")
        variable = self.spec.token_env
        if status == 401:
            return (f"{name} refused the token in {variable} ({said}): it is expired, "
                    "revoked or not a token of this forge", variable,
                    f"renew the token and export {variable} again")
        return (f"{name} forbids {what} to the token in {variable} ({said})", variable,
                f"give the token in {variable} access to {project} (read and write pull "
                "requests, statuses)")

    def _missing(self, what: str, said: str, as_app: bool) -> tuple[str, str]:
        """A 404's message and hint (forges answer 404 to what the credential may not
        see as to what is not there)."""
        project, ids = self.spec.project, self.spec.app_id_env
        if as_app:
            return (f"{self.name}: the GitHub App of {ids} is not installed on {project} "
                    f"({what}: {said})",
                    f"install the App on {project} (its settings page: Install App)")
        who = (f"the GitHub App of {ids} is installed on it" if self.app is not None else
               f"the token in {self.spec.token_env} may see the project")
        return (f"{self.name}: {what} found nothing in {project} ({said})",
                f"check forge: project, and that {who} (forges answer 404 to both)")

    # conveniences -----------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> JSON:
        return self.send("GET", path, params=params).json()

    def write(self, method: str, path: str, body: JSON = None) -> JSON:
        response = self.send(method, path, json_body=body)
        return response.json() if response.content else None

    def pages(self, path: str, params: Mapping[str, Any] | None = None,
              per_page: int = 100, size_param: str = "per_page",
              key: str | None = None) -> Iterator[JSON]:
        """Every item of a list, page after page: the ``Link: rel="next"`` header
        (GitHub, Gitea, GitLab), else GitLab's ``X-Next-Page``. ``key``: the list is
        that field of each page's object (GitHub's ``check_runs``)."""
        query: dict[str, Any] = {**(params or {}), size_param: per_page}
        url: str | None = self.url(path)
        for _ in range(MAX_PAGES):
            assert url is not None
            response = self.send("GET", url, params=query or None)
            data = response.json()
            if key is not None and isinstance(data, dict):
                data = data.get(key)
            yield from data if isinstance(data, list) else ()
            url, query = self._next(response, url, query)
            if url is None:
                return
        raise self.error(ForgeError, f"{self.name}: {path} has more than {MAX_PAGES} pages")

    def _next(self, response: httpx.Response, url: str,
              query: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        link = _LINK_NEXT.search(response.headers.get("link", ""))
        if link:
            return urljoin(url, link.group(1)), {}  # the link carries the whole query
        nxt = (response.headers.get("x-next-page") or "").strip()
        if nxt:
            return url, {**query, "page": int(nxt)}
        return None, query

