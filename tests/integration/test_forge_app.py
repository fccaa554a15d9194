"""``forge: {auth: app}``: coord as a GitHub App against the fake GitHub (which checks the
two App endpoints against GitHub's description like every other): the JWT the fake
verifies with the App's public key, the installation token minted, used, minted again
before it expires (a landing waiting out a rate limit outlives it) and once more when the
forge refuses it; an App key that is not a PEM, a missing variable, ``auth: app`` on
another kind, an unknown ``auth:``: exit 2 and a message, nothing sent or changed.
``ca_file``: the client trusts that CA bundle; a missing one is named. GitHub Enterprise
Cloud's ``api.SUB.ghe.com`` is used as given."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from coordination.errors import AppRefused, ForgeAuthError, ForgeConfigError
from coordination.forge import open_forge, spec_of
from coordination.forge.base import ForgeSpec, Options
from tests.forges import FakeClock, FakeGitHub
from tests.forges.gitrepo import git

pytestmark = pytest.mark.timeout(240)

PROJECT = "acme/lib"
APP_ID = "123456"
github = pytest.mark.parametrize("fake_forge", ["github"], indirect=True)


@pytest.fixture(scope="module")
def app_key() -> tuple[str, Any]:
    """An RSA key made for the test: its PEM (what GITHUB_APP_PRIVATE_KEY holds) and its
    public half (what the fake verifies JWTs with)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return pem, key.public_key()


def app_spec(fake: FakeGitHub, **kw: Any) -> ForgeSpec:
    return ForgeSpec("github", PROJECT, fake.api, "UNUSED_TOKEN", auth="app", **kw)


def app_env(pem: str) -> dict[str, str]:
    return {"GITHUB_APP_ID": APP_ID, "GITHUB_APP_PRIVATE_KEY": pem}


def installation_tokens_sent(fake: FakeGitHub) -> list[str]:
    return [h.get("authorization", "")[7:] for _m, path, _q, h, _b in fake.seen
            if "/app/" not in path and not path.endswith("/installation")]


@github
def test_the_app_signs_a_jwt_mints_an_installation_token_and_renews_it_before_expiry(
        fake_forge: FakeGitHub, app_key: tuple[str, Any]) -> None:
    pem, public = app_key
    clock = FakeClock(time.time())
    fake = fake_forge
    fake.add_project(PROJECT)
    fake.add_app(APP_ID, public, token_ttl=3600, clock=clock.time)
    forge = open_forge(app_spec(fake), app_env(pem), Options(clock=clock))
    assert forge.user() == "coord-bot"
    # one JWT, for the installation and its token, verified with the App's public key
    assert len(fake.jwts) == 2 and fake.jwts[0] == fake.jwts[1]
    claims = fake.jwts[0]
    assert claims["iss"] == APP_ID and claims["exp"] - claims["iat"] <= 600
    assert claims["iat"] <= clock.time() - 59  # issued a minute back (clock drift)
    [first] = fake.installation_tokens
    assert installation_tokens_sent(fake) == [first]
    assert fake.seen[0].path == "/api/v3/repos/acme/lib/installation"
    assert fake.seen[1].path.endswith("/access_tokens")

    clock.now += 3600 - 299  # inside the last five minutes: minted again before use
    forge.user()
    assert len(fake.installation_tokens) == 2 and fake.expired == []
    second = installation_tokens_sent(fake)[-1]
    assert second != first
    clock.now += 60  # the new one is good for most of an hour: no more minting
    forge.user()
    assert len(fake.installation_tokens) == 2
    # only one installation look-up: the installation id is kept
    assert sum(s.path.endswith("/installation") for s in fake.seen) == 1
    assert fake.token not in repr(forge) and second not in repr(forge)


@github
def test_a_token_the_forge_refuses_is_minted_once_more(
        fake_forge: FakeGitHub, app_key: tuple[str, Any]) -> None:
    pem, public = app_key
    clock = FakeClock(time.time())
    fake = fake_forge
    fake.add_project(PROJECT)
    fake.add_app(APP_ID, public, clock=clock.time)
    forge = open_forge(app_spec(fake), app_env(pem), Options(clock=clock))
    forge.user()
    fake.installation_tokens.clear()  # revoked on the forge's side
    assert forge.user() == "coord-bot"
    assert len(fake.installation_tokens) == 1  # a new one, used
    fake.app_public_key = rsa.generate_private_key(public_exponent=65537,
                                                   key_size=2048).public_key()
    fake.installation_tokens.clear()  # revoked, and the App's key replaced: an error
    with pytest.raises(ForgeAuthError) as err:
        forge.user()
    assert err.value.exit_code == 2 and "GITHUB_APP_ID" in str(err.value)
    assert isinstance(err.value, AppRefused)  # the App itself: not minted again
    assert "ghs_" not in str(err.value) and "PRIVATE KEY" not in str(err.value)


@github
def test_an_app_the_forge_does_not_know_is_an_auth_error_naming_the_variables(
        fake_forge: FakeGitHub, app_key: tuple[str, Any]) -> None:
    pem, _public = app_key
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    fake = fake_forge
    fake.add_project(PROJECT)
    fake.add_app(APP_ID, other)  # the key coord holds is not this App's
    forge = open_forge(app_spec(fake), app_env(pem))
    with pytest.raises(ForgeAuthError) as err:
        forge.user()
    assert "GITHUB_APP_ID" in str(err.value) and "GITHUB_APP_PRIVATE_KEY" in str(err.value)
    assert isinstance(err.value, AppRefused) and err.value.variable == "GITHUB_APP_PRIVATE_KEY"
    assert fake.jwts == [] and fake.installation_tokens == {}


@pytest.mark.parametrize(("env", "variable", "words"), [
    ({"GITHUB_APP_PRIVATE_KEY": "PEM"}, "GITHUB_APP_ID", "is not set"),
    ({"GITHUB_APP_ID": "1"}, "GITHUB_APP_PRIVATE_KEY", "is not set"),
    ({"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": "ghp_not_a_key"},
     "GITHUB_APP_PRIVATE_KEY", "is not a PEM private key"),
])
def test_missing_or_malformed_app_credentials_are_refused_before_anything_is_sent(
        env: dict[str, str], variable: str, words: str) -> None:
    import httpx

    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    spec = ForgeSpec("github", PROJECT, "https://api.github.com", "GITHUB_TOKEN", auth="app")
    forge = open_forge(spec, env, Options(transport=httpx.MockTransport(record)))
    with pytest.raises(ForgeAuthError) as err:
        forge.user()
    assert err.value.exit_code == 2 and err.value.variable == variable
    assert words in str(err.value) and variable in (err.value.hint or "")
    assert sent == []


def test_ghe_com_api_roots_are_used_as_given() -> None:
    class Fields:
        kind, project, token_env, webhook_secret_env = "github", PROJECT, None, None
        api = "https://api.octocorp.ghe.com"

    spec = spec_of(Fields())  # type: ignore[arg-type]
    assert spec.api == "https://api.octocorp.ghe.com"
    from coordination.forge.github import graphql_url

    assert graphql_url(spec.api) == "https://api.octocorp.ghe.com/graphql"
    Fields.api = "https://ghe.example.com"  # Enterprise Server: still /api/v3
    assert spec_of(Fields()).api == "https://ghe.example.com/api/v3"  # type: ignore[arg-type]


def _ca_pem(name: str) -> bytes:
    """A self-signed CA certificate named ``name`` (a private CA's root)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_ca_file_is_the_bundle_the_client_trusts(tmp_path: Path) -> None:
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_bytes(_ca_pem("Corp Root CA"))
    spec = ForgeSpec("github", PROJECT, "https://api.github.com", "T", ca_file=str(bundle))
    forge = open_forge(spec, {"T": "x" * 20})
    client = forge.http.client()  # type: ignore[attr-defined]
    ctx = client._transport._pool._ssl_context
    names = [dict(x[0] for x in c["subject"]).get("commonName") for c in ctx.get_ca_certs()]
    assert names == ["Corp Root CA"]  # that CA, and only it
    forge.http.close()  # type: ignore[attr-defined]

    missing = ForgeSpec("github", PROJECT, "https://api.github.com", "T",
                        ca_file=str(tmp_path / "nope.pem"))
    with pytest.raises(ForgeConfigError) as err:
        open_forge(missing, {"T": "x" * 20}).user()
    assert "nope.pem" in str(err.value) and "ca_file" in str(err.value)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    junk = ForgeSpec("github", PROJECT, "https://api.github.com", "T",
                     ca_file=str(tmp_path / "junk.pem"))
    with pytest.raises(ForgeConfigError, match="junk.pem"):
        open_forge(junk, {"T": "x" * 20}).user()


# the catalog -----------------------------------------------------------------------------

CATALOG = """version: 1
repos:
  - {{name: lib, path: lib, forge: {{kind: {kind}, project: acme/lib{extra}}}}}
"""


@pytest.mark.parametrize(("kind", "extra", "words"), [
    ("github", ", auth: oauth", "'token' or 'app'"),
    ("gitlab", ", auth: app", "auth: app is for GitHub Apps"),
    ("github", ", app_key_env: MY_KEY", "auth: app"),
    ("github", ", auth: app, app_key_env: 'not a name'", "app_key_env"),
])
def test_bad_auth_in_the_catalog_is_exit_2(tmp_path: Path, kind: str, extra: str,
                                          words: str) -> None:
    import subprocess
    import sys

    catalog = tmp_path / "ecosystem.yaml"
    text = CATALOG.format(kind=kind, extra=extra)
    catalog.write_text(text)
    res = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(catalog),
                          "repo", "list"], capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert words in res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert catalog.read_text() == text


def test_coord_schema_shows_the_app_fields() -> None:
    from coordination.cli.schema import catalog_schema

    forge = catalog_schema()["$defs"]["RepoForge"]  # type: ignore[index]
    props = forge["properties"]
    assert props["auth"]["enum"] == ["token", "app"] and props["auth"]["default"] == "token"
    for name in ("auth", "app_id_env", "app_key_env", "ca_file"):
        assert props[name].get("description"), name
    assert {"if": {"properties": {"kind": {"enum": ["gitlab", "gitea"]}}},
            "then": {"properties": {"auth": {"const": "token"}}}} in forge["allOf"]


# a landing as a GitHub App ---------------------------------------------------------------

@github
def test_a_landing_outlives_its_installation_token(
        fake_forge: FakeGitHub, app_key: tuple[str, Any], tmp_path: Path,
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.settings import get_settings
    from tests.integration.forge_change import NAMES, PLAN, ForgeChange

    monkeypatch.setenv("COORD_LEASE_TTL", "2")
    get_settings.cache_clear()
    pem, public = app_key
    fake = fake_forge
    fake.add_app(APP_ID, public, token_ttl=4.0)  # short-lived: a landing outlives it
    fc = ForgeChange(fake, tmp_path / "w")
    fc.catalog.write_text(fc.catalog.read_text().replace(
        "token_env: FORGE_TEST_TOKEN", "auth: app"))
    fc.env = app_env(pem)  # no personal token at all
    cands = fc.draft()
    fc.verify()
    published = fc.coord("change", "publish", PLAN, "--json")
    assert published.returncode == 0, published.stderr
    # the merge waits out a rate limit (4 s) longer than half the token's life
    fake.fail("PUT", r"/pulls/\d+/merge$", 403, body={"message": "API rate limit exceeded"},
              headers={"Retry-After": "3"})
    minted = len(fake.installation_tokens)
    landed = fc.coord("change", "land", PLAN, "--json")
    assert landed.returncode == 0, (landed.stdout, landed.stderr)
    assert json.loads(landed.stdout)["state"] == "landed"
    assert len(fake.installation_tokens) >= minted + 2  # minted again during the landing
    assert fake.expired == []  # and never sent past its expiry
    for r in NAMES:
        assert fc.pr(r).state == "merged"
        assert git(fc.bare(r), "merge-base", "--is-ancestor", cands[r], "main") == ""
    sent = set(installation_tokens_sent(fake))
    assert sent <= set(fake.installation_tokens)  # every request as the App
    for out in (published.stdout, published.stderr, landed.stdout, landed.stderr):
        assert all(t not in out for t in fake.installation_tokens)
        assert "PRIVATE KEY" not in out


@github
def test_publish_with_an_app_key_that_is_not_a_pem_is_exit_2_and_changes_nothing(
        fake_forge: FakeGitHub, app_key: tuple[str, Any], tmp_path: Path,
        redis_url: str) -> None:
    from tests.integration.forge_change import NAMES, PLAN, ForgeChange

    _pem, public = app_key
    fake = fake_forge
    fake.add_app(APP_ID, public)
    fc = ForgeChange(fake, tmp_path / "w")
    fc.catalog.write_text(fc.catalog.read_text().replace(
        "token_env: FORGE_TEST_TOKEN", "auth: app"))
    fc.env = {"GITHUB_APP_ID": APP_ID, "GITHUB_APP_PRIVATE_KEY": "ghp_0123456789abcdef"}
    fc.draft()
    fc.verify()
    before = fc.rt.changes.dump(PLAN)
    res = fc.coord("change", "publish", PLAN)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "GITHUB_APP_PRIVATE_KEY" in res.stderr and "PEM" in res.stderr
    assert "Traceback" not in res.stderr and "ghp_0123456789abcdef" not in res.stderr
    assert fake.seen == []  # nothing asked of the forge
    for r in NAMES:
        assert fc.head(r, "chg") is None  # nothing pushed
    assert fc.rt.changes.dump(PLAN) == before
