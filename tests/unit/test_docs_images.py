"""The docs' images: every image a page shows exists, and every file of docs/images/ is
shown somewhere (issue #42). The web view's screenshots are taken by the browser tests
(tests/integration/browser.py's ``doc_screenshot``) at 1280x800, each with a
sidecar saying what it was taken of; one taken before the web view's look last changed
fails here (tests/docs/screenshots.py)."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from tests.docs.screenshots import SCREENSHOTS, stale, write_sidecar

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
IMAGES = DOCS / "images"
#: ![alt](path) and <img src="path">, alt text over several lines included.
IMAGE_REF = re.compile(r"!\[[^\]]*\]\(([^)\s]+)[^)]*\)|<img[^>]+src=\"([^\"]+)\"")


def references() -> dict[Path, list[str]]:
    """Each image file the docs point at -> the pages pointing at it."""
    found: dict[Path, list[str]] = {}
    for page in sorted(DOCS.rglob("*.md")):
        for m in IMAGE_REF.finditer(page.read_text(encoding="utf-8")):
            target = m.group(1) or m.group(2)
            if re.match(r"[a-z]+://", target):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            found.setdefault(path, []).append(str(page.relative_to(ROOT)))
    return found


def test_every_image_the_docs_show_exists() -> None:
    missing = {str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p): pages
               for p, pages in references().items() if not p.is_file()}
    assert not missing, f"images the docs show that do not exist: {missing}"


def test_every_image_is_shown() -> None:
    shown = set(references())
    files = {p.resolve() for p in IMAGES.iterdir() if p.is_file()
             and not (p.suffix == ".json" and p.with_suffix(".png").is_file())  # a sidecar
             } if IMAGES.is_dir() else set()
    unused = sorted(str(p.relative_to(ROOT)) for p in files - shown)
    assert not unused, f"docs/images files no page shows (remove them or show them): {unused}"


@pytest.mark.parametrize("name", ["web-view-sweep", "web-view-gate", "web-view-landing"])
def test_the_web_view_screenshots_are_there_at_their_size(name: str) -> None:
    png = (IMAGES / f"{name}.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1280, 800)
    assert (IMAGES / f"{name}.png").resolve() in references(), f"no page shows {name}.png"


@pytest.mark.parametrize("name", sorted(SCREENSHOTS))
def test_the_web_view_screenshots_show_it_as_it_looks_now(name: str) -> None:
    why = stale(name)
    assert not why, (
        f"docs/images/{name}.png is stale ({'; '.join(why)}): take it again with "
        f"`COORD_SCREENSHOTS=docs/images .venv/bin/python -m pytest {SCREENSHOTS[name]}` "
        f"or `make screenshots` (chromium and chromedriver on PATH) and commit "
        f"docs/images/{name}.png and {name}.json")


def test_a_screenshot_is_stale_once_the_look_changes(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.docs.screenshots as shots

    root = tmp_path / "repo"
    (root / "coordination/ui/static").mkdir(parents=True)
    (root / "coordination/ui/static/app.css").write_text("main { color: black }")
    (root / "coordination/ui/layout.py").write_text("NODE_W = 168\n")
    monkeypatch.setattr(shots, "ROOT", root)
    images = tmp_path / "images"
    images.mkdir()
    (images / "shot.png").write_bytes(b"\x89PNG one")
    write_sidecar(images / "shot.png")
    assert stale("shot", images) == []
    (root / "coordination/ui/layout.py").write_text("NODE_W = 200\n")
    assert stale("shot", images) == ["changed since it was taken: coordination/ui/layout.py"]
    write_sidecar(images / "shot.png")
    (images / "shot.png").write_bytes(b"\x89PNG two")
    assert stale("shot", images) == ["shot.png is not the screenshot shot.json was written with"]
    (images / "shot.json").unlink()
    assert stale("shot", images) == ["shot.json is missing"]


def test_every_screenshot_is_taken_by_the_test_it_names() -> None:
    for name, test in SCREENSHOTS.items():
        path, func = test.split("::")
        text = (ROOT / path).read_text(encoding="utf-8")
        body = text.split(f"def {func}(", 1)[1].split("\ndef ", 1)[0]
        assert f'doc_screenshot(browser, "{name}")' in body, (name, test)
