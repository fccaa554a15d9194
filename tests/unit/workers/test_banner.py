"""The worker's banner and "Connected to" line show the broker URL with a password mask
only when there is a password (issue #29, item 10c): kombu masked every URL (`://:**@`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from coordination.settings import Settings
from tests.unit.support.sweeps import write_catalog
from workers.app import create_app

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("url,shown", [
    ("redis://localhost:6399/0", "://localhost:6399/0"),
    ("redis://bob@localhost:6399/2", "://bob@localhost:6399/2"),
    ("redis://:s3cret@localhost:6399/0", "://:**@localhost:6399/0"),
    ("redis://bob:s3cret@redis.internal:6380/1", "://bob:**@redis.internal:6380/1"),
])
def test_the_broker_url_is_masked_only_over_a_password(url: str, shown: str) -> None:
    uri = create_app(Settings(redis_url=url)).connection().as_uri()
    assert uri.endswith(shown), uri
    assert "s3cret" not in uri
    assert create_app(Settings(redis_url=url)).connection().as_uri(include_password=True) \
        .endswith(url.partition("://")[2])  # asked for in full, it is given in full


BANNER = """
import sys
from pathlib import Path
from workers.worker import build_worker
w = build_worker(Path(sys.argv[1]), "api", preflight=False)
print(w.startup_info(artlines=False))
"""


def _banner(eco: Path, url: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env["COORD_REDIS_URL"] = url
    r = subprocess.run([sys.executable, "-c", BANNER, str(eco)], capture_output=True,
                       text=True, env=env, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_the_worker_banner_shows_no_mask_without_a_password(tmp_path: Path) -> None:
    eco = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    plain = _banner(eco, "redis://127.0.0.1:1/0")  # nothing is connected to
    line = next(x for x in plain.splitlines() if ".> transport:" in x)
    assert line.rstrip().endswith("://127.0.0.1:1/0") and "**" not in line, plain
    secret = _banner(eco, "redis://:s3cret@127.0.0.1:1/0")
    line = next(x for x in secret.splitlines() if ".> transport:" in x)
    assert ":**@127.0.0.1:1/0" in line and "s3cret" not in secret, secret
