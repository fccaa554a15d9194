"""A GitHub App as a forge's credentials (``forge: {auth: app}``): coord signs a JWT with
the App's private key (RS256; issued 60 s in the past against clock drift, expiring 10
minutes after that, GitHub's most), finds the App's installation on the repository
(``GET /repos/{owner}/{repo}/installation``) and mints an installation token (``POST
/app/installations/{id}/access_tokens``), which every other request carries.

The token lives in memory only (never a file, an output or Redis) and is minted again
before its ``expires_at``: five minutes before, or half-way through a lifetime shorter
than ten minutes. A token the forge refuses all the same (revoked, the clocks apart) is
dropped and minted once more by :class:`~coordination.forge.http.ForgeHTTP`.

The App's id and key are read from the environment variables the spec names
(``GITHUB_APP_ID``, ``GITHUB_APP_PRIVATE_KEY``: the PEM text itself; a key written with
``\\n`` escapes on one line is read as its lines). A missing variable or a key that is not
an RSA private key in PEM is a ``ForgeAuthError`` (exit 2) naming the variable and how
to fix it, raised before anything is sent."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from coordination.errors import ForgeAuthError, ForgeError
from coordination.forge.base import Clock, ForgeSpec

if TYPE_CHECKING:
    import httpx

#: A JWT's ``iat`` this far in the past (GitHub's advice against clock drift), and its
#: lifetime from then (GitHub refuses one longer than 10 minutes).
JWT_BACKDATE = 60
JWT_LIFETIME = 600
#: An installation token is minted again this long before it expires.
RENEW_BEFORE = 300.0

#: Sends one request to the forge's API signed with the given JWT (ForgeHTTP's request,
#: with its retries and rate limits; the JWT in the kind's auth header): (method, path,
#: jwt, json_body) -> response.
Sender = Callable[[str, str, str, Any], "httpx.Response"]


def expires_at(text: str) -> float:
    """GitHub's ``expires_at`` (``2016-07-11T22:14:10Z``) as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class AppAuth:
    """One GitHub App installation's tokens for one repository."""

    def __init__(self, spec: ForgeSpec, env: Mapping[str, str], clock: Clock) -> None:
        self.spec = spec
        self.clock = clock
        self._app_id = env.get(spec.app_id_env, "").strip()
        key = env.get(spec.app_key_env, "").strip()
        if key and "\\n" in key and "\n" not in key:
            key = key.replace("\\n", "\n")  # one line with escapes, as .env files hold it
        self._key_text = key
        self._key: Any = None
        self._installation: int | None = None
        self._token = ""
        self._renew_at = 0.0
        self.minted = 0  # how many installation tokens this client minted

    # the App's own credentials ----------------------------------------------------------

    def _refused(self, variable: str, why: str, fix: str) -> ForgeAuthError:
        return ForgeAuthError(
            f"GitHub App for {self.spec.project}: {variable} {why}", variable=variable,
            forge=self.spec.kind, project=self.spec.project, hint=fix)

    def check(self) -> None:
        """The App's id and key are set and the key is an RSA private key in PEM, or a
        ForgeAuthError naming the variable (nothing is sent before this passes)."""
        if self._key is not None:
            return
        if not self._app_id:
            raise self._refused(self.spec.app_id_env, "is not set",
                                f"export {self.spec.app_id_env}=<the App's id (its settings "
                                "page: App ID)> (or name another variable in the repo's "
                                "forge: app_id_env)")
        if not self._key_text:
            raise self._refused(self.spec.app_key_env, "is not set",
                                f"export {self.spec.app_key_env}=\"$(cat app.private-key.pem)\" "
                                "(the App's private key, the PEM text itself; or name another "
                                "variable in the repo's forge: app_key_env)")
        # lazy: only an App (auth: app) signs; cryptography would cost every forge client
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey  # lazy: as above
        from cryptography.hazmat.primitives.serialization import load_pem_private_key  # lazy: as above

        try:
            key = load_pem_private_key(self._key_text.encode(), password=None)
        except (ValueError, TypeError) as exc:
            reason = "is encrypted" if isinstance(exc, TypeError) else "is not a PEM private key"
            raise self._refused(
                self.spec.app_key_env, f"{reason} (-----BEGIN RSA PRIVATE KEY----- ...)",
                f"export {self.spec.app_key_env}=\"$(cat app.private-key.pem)\": the key "
                "GitHub generated for the App (its settings page: Private keys), "
                "unencrypted, as downloaded") from None
        if not isinstance(key, RSAPrivateKey):
            raise self._refused(self.spec.app_key_env, "is not an RSA key (GitHub Apps sign "
                                "with RSA)", "use the .pem GitHub generated for the App")
        self._key = key

    def jwt(self) -> str:
        """The App's JWT: RS256, issued a minute ago, expiring 10 minutes after that."""
        import jwt  # lazy: PyJWT, for an App only (auth: app)

        self.check()
        now = int(self.clock.time())
        return str(jwt.encode({"iat": now - JWT_BACKDATE,
                               "exp": now - JWT_BACKDATE + JWT_LIFETIME,
                               "iss": self._app_id}, self._key, algorithm="RS256"))

    # the installation token -------------------------------------------------------------

    def token(self, send: Sender) -> str:
        """The installation token now valid, minted when there is none or it is due."""
        if not self._token or self.clock.time() >= self._renew_at:
            self._mint(send)
        return self._token

    def drop(self) -> None:
        """Forget the token (the forge refused it): the next request mints another."""
        self._token, self._renew_at = "", 0.0

    def _mint(self, send: Sender) -> None:
        signed = self.jwt()
        if self._installation is None:
            owner, name = self.spec.project.split("/", 1)
            found = send("GET", f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"
                                "/installation", signed, None).json()
            self._installation = int(found["id"])
        answer = send("POST", f"/app/installations/{self._installation}/access_tokens",
                      signed, None).json()
        token = str(answer.get("token") or "")
        if not token:
            raise ForgeError(f"GitHub minted no installation token for {self.spec.project}",
                             forge=self.spec.kind, project=self.spec.project)
        now = self.clock.time()
        try:
            ends = expires_at(str(answer["expires_at"]))
        except (KeyError, ValueError):
            ends = now + 3600.0  # GitHub's documented lifetime
        self._token = token
        self._renew_at = ends - min(RENEW_BEFORE, max(0.0, ends - now) / 2)
        self.minted += 1
