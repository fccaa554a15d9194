"""Redis URLs and neighbours without a server (#23, item 7): what kombu reads of a
``unix://`` URL, the ACL lists the README shows, how a refused command is named, and
a namespace claimed by another catalog. Against real servers (a unix socket, ACL
users, two catalogs): tests/integration/test_redis_neighbours.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from kombu.utils.url import url_to_parts
from redis.exceptions import NoPermissionError

from coordination.connection.claim import CatalogIdentity, check_claim
from coordination.connection.client import stand_in
from coordination.connection.preflight import ACL_COMMANDS, acl_setuser, unreachable
from coordination.errors import SettingsError
from coordination.keys import Keys
from coordination.redis_url import celery_url, url_problem
from coordination.runtime.scripts import lua

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[3]


# -- unix:// as kombu and Celery read it ------------------------------------------------------
@pytest.mark.parametrize(("url", "path", "user", "password", "db"), [
    ("unix:///run/redis.sock", "/run/redis.sock", None, None, None),
    ("unix://:p%40ss%2Fw%3Ard@/run/redis.sock?db=2", "/run/redis.sock", None, "p@ss/w:rd", "2"),
    ("unix://ana:pw@/run/a%2520b%3F/redis.sock", "/run/a%20b?/redis.sock", "ana", "pw", None),
])
def test_kombu_reads_a_unix_url_as_redis_py_does(url: str, path: str, user: str | None,
                                                 password: str | None, db: str | None) -> None:
    """Credentials kept (the broker logged in as the default user without them) and the
    path decoded once, as redis-py decodes it, whatever it holds."""
    scheme, _, rest = celery_url(url).partition("+")
    assert scheme == "redis"
    parts = url_to_parts(rest)  # what kombu's socket transport and Celery's backend parse
    assert parts.scheme == "socket"
    assert "/" + str(parts.path) == path
    assert (parts.username, parts.password) == (user, password)
    assert parts.query.get("virtual_host") == db


def test_a_unix_url_with_a_host_is_refused() -> None:
    """``unix://run/redis.sock`` (two slashes) means /redis.sock to redis-py: refused."""
    problem = url_problem("unix://run/redis.sock")
    assert problem and "takes no host" in problem and "unix:///run/redis.sock" in problem
    assert url_problem("unix://:pw@/run/redis.sock?db=1") is None
    assert url_problem("unix://ana:pw@/run/redis.sock") is None


# -- the ACL each part needs ------------------------------------------------------------------
def test_the_docs_list_the_acl_each_part_of_coord_needs() -> None:
    readme = (ROOT / "docs" / "how-to" / "acl.md").read_text(encoding="utf-8")
    for role in ACL_COMMANDS:
        block = "\n".join("    " + line for line in acl_setuser(role, f"coord-{role}").splitlines())
        assert block in readme, f"docs/how-to/acl.md should show, for {role}:\n{block}"
    assert set(ACL_COMMANDS["ui"]) < set(ACL_COMMANDS["cli"]) < set(ACL_COMMANDS["worker"])


def test_every_command_of_coords_scripts_is_granted_to_a_cli() -> None:
    for script in sorted(p.stem for p in (ROOT / "coordination/runtime/lua").glob("*.lua")):
        if script.startswith("_"):
            continue
        assert set(lua(script).commands) <= set(ACL_COMMANDS["cli"]), script
    assert {"xadd", "publish"} <= set(lua("event_emit").commands)


def test_a_refused_command_is_named_in_one_line() -> None:
    url = "redis://coord-cli:s3cret@127.0.0.1:6379/0"
    err = unreachable(NoPermissionError(
        "this user has no permissions to run the 'xadd' command (in coord's event_emit script)"),
        url)
    first = str(err).splitlines()[0]
    assert first.startswith("Redis at redis://coord-cli:***@127.0.0.1:6379/0 refused a command")
    assert "user 'coord-cli' may not run XADD" in first
    assert "ACL SETUSER coord-cli +xadd" in str(err) and "s3cret" not in str(err)
    keys = unreachable(NoPermissionError(
        "this user has no permissions to access one of the keys used as arguments"), url)
    assert "may not use the keys coord:*" in str(keys) and "'~coord:*'" in str(keys)


# -- a namespace claimed by another catalog ---------------------------------------------------
def test_a_namespace_is_claimed_by_the_first_catalog(tmp_path: Path) -> None:
    r, keys = stand_in(), Keys("claims")
    a, b = tmp_path / "a" / "ecosystem.yaml", tmp_path / "b" / "ecosystem.yaml"
    check_claim(r, keys, a, url="redis://h:6379/0")  # first use: claimed
    check_claim(r, keys, a)  # the same catalog again (any process on this host)
    with pytest.raises(SettingsError) as info:
        check_claim(r, keys, b, url="redis://h:6379/0")
    text = str(info.value)
    assert "namespace 'claims' on h:6379 belongs to another catalog" in text
    assert str(CatalogIdentity.of(a)) in text and str(CatalogIdentity.of(b)) in text
    assert "COORD_NAMESPACE" in text and "COORD_SHARE_NAMESPACE=1" in text
    assert info.value.exit_code == 2
    check_claim(r, keys, b, share=True)  # told to share: neither checks nor claims
    check_claim(r, Keys("other"), b)  # a namespace of its own
    r.set(keys.catalog_claim, "not json")
    with pytest.raises(SettingsError, match="another catalog: not json"):
        check_claim(r, keys, a)
