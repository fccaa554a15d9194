"""docker-compose.yml matches the catalog and keeps Redis safe for a broker.

Parsed with yaml.safe_load (anchors and merge keys resolved), never run here.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def example() -> Any:
    from coordination.catalog.file.store import CatalogStore

    return CatalogStore(ROOT / "ecosystem.yaml").load()


def argv(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def env(service: dict[str, Any]) -> dict[str, str]:
    e = service.get("environment") or {}
    if isinstance(e, list):
        return dict(item.split("=", 1) for item in e)
    return {str(k): str(v) for k, v in e.items()}


def flag(args: list[str], name: str) -> str | None:
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def workers(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """repo -> service, for every service running `coord ... worker --repo NAME`."""
    out: dict[str, dict[str, Any]] = {}
    for name, svc in services.items():
        args = argv(svc)
        if "worker" in args:
            repo = flag(args, "--repo")
            assert repo, f"{name}: a worker without --repo"
            assert repo not in out, f"two workers for repo {repo}"
            out[repo] = svc
    return out


def test_one_worker_per_repo_of_the_catalog(services: dict[str, Any], example: Any) -> None:
    ws = workers(services)
    repos = {r.name for r in example.repos}
    assert set(ws) <= repos, f"workers for unknown repos: {sorted(set(ws) - repos)}"
    assert repos <= set(ws), f"repos without a worker: {sorted(repos - set(ws))}"


def test_workers_run_the_catalog_in_their_checkout(services: dict[str, Any], example: Any) -> None:
    for repo, svc in workers(services).items():
        args = argv(svc)
        assert args[0] == "coord" and flag(args, "--file") == "/app/ecosystem.yaml", args
        assert svc.get("init") is True, f"{repo}: init: true reaps orphaned todo processes"
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
        mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in svc.get("volumes", [])}
        # The worker's default checkout: the catalog's path, relative to --file.
        spec = example.repo(repo)
        checkout = f"/app/{spec.path or spec.name}"
        assert flag(args, "--path") in (None, checkout)
        assert checkout in mounts, f"{repo}: no volume at {checkout}: {mounts}"
        assert "/app/ecosystem.yaml" in mounts
        assert "build" in svc or "image" in svc


def test_one_redis_url_pointing_at_the_redis_service(services: dict[str, Any]) -> None:
    urls = {name: env(svc).get("COORD_REDIS_URL") for name, svc in services.items()
            if name != "redis"}
    assert all(urls.values()), f"services without COORD_REDIS_URL: {urls}"
    assert len(set(urls.values())) == 1, urls
    url = urlparse(next(iter(urls.values())))
    assert url.scheme == "redis" and url.hostname == "redis" and url.hostname in services
    assert (url.port or 6379) == 6379


def test_redis_is_append_only_without_eviction(services: dict[str, Any]) -> None:
    redis = services["redis"]
    assert str(redis["image"]).startswith("redis:7")
    args = argv(redis)
    assert flag(args, "--appendonly") == "yes"
    assert flag(args, "--maxmemory-policy") == "noeviction"
    assert any(str(v).endswith(":/data") for v in redis.get("volumes", [])), "data not on a volume"
    assert "redis-cli" in " ".join(map(str, redis["healthcheck"]["test"]))


def test_flower_has_auth(services: dict[str, Any]) -> None:
    flower = services["flower"]
    args = argv(flower)
    assert args[:2] == ["coord", "flower"] and flag(args, "--address") == "0.0.0.0"
    auth = env(flower).get("COORD_FLOWER_AUTH")
    assert auth and ":" in auth, "Flower off localhost needs COORD_FLOWER_AUTH=user:password"
    assert flower.get("build") in (".", {"context": "."}) or "image" in flower
    for port in flower.get("ports", []):
        assert str(port).startswith("127.0.0.1:"), "publish Flower on the host's loopback only"


def test_dockerfile_installs_coord_and_runs_flower() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "FROM python:3.11-slim" in text
    assert "pip install ." in text
    assert 'CMD ["coord", "flower", "--address", "0.0.0.0", "--port", "5555"]' in text
    assert "COORD_FLOWER_AUTH" in text  # documented
