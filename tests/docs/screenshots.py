"""The docs' screenshots of the web view, and what they were taken of.

The browser tests (tests/integration/browser.py's ``doc_screenshot``) write each
screenshot as ``NAME.png`` and, beside it, ``NAME.json`` (in docs/images/ under
`make screenshots`, else in .artifacts/screenshots/): the SHA-256 of the
PNG and of each file that makes the web view look as it does (:data:`LOOK`: the page,
its script and style sheet, the graph's layout). tests/unit/test_docs_images.py compares
the committed sidecar with the files as they are now: a change to how the web view
looks, not followed by new screenshots, fails there (cheaply, without a browser), and so
does a PNG that is not the one its sidecar was written with.

What is on a screenshot also depends on the data the test's sweep shows and on the
JSON documents the server sends; those change with features, not with the look, and are
left out: a change there that shows on a screenshot is a reviewer's to see.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
#: The files whose content decides how the web view looks.
LOOK = ("coordination/ui/static/*", "coordination/ui/layout.py")
#: The screenshots the docs show, and the browser test that takes each.
SCREENSHOTS = {
    "web-view-sweep": "tests/integration/test_ui_browser.py::test_sweep_page_follows_a_live_sweep",
    "web-view-gate":
        "tests/integration/test_ui_browser.py::test_approve_and_reject_gates_from_the_browser",
    "web-view-landing":
        "tests/integration/test_ui_change_browser.py::"
        "test_change_page_follows_a_landing_repo_by_repo",
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def look() -> dict[str, str]:
    """Each file of :data:`LOOK` (relative to the repository) -> its SHA-256."""
    files = sorted({p for pattern in LOOK for p in ROOT.glob(pattern) if p.is_file()})
    return {str(p.relative_to(ROOT)): _sha256(p.read_bytes()) for p in files}


def sidecar(png: bytes) -> dict[str, object]:
    """What ``NAME.json`` holds for a screenshot taken now."""
    return {"png_sha256": _sha256(png), "look": look()}


def write_sidecar(png_path: Path) -> Path:
    path = png_path.with_suffix(".json")
    path.write_text(json.dumps(sidecar(png_path.read_bytes()), indent=2, sort_keys=True) + "\n",
                    encoding="utf-8")
    return path


def stale(name: str, images: Path = IMAGES) -> list[str]:
    """Why ``images/NAME.png`` is not a screenshot of the web view as it is now (none
    when it is)."""
    png, side = images / f"{name}.png", images / f"{name}.json"
    if not side.is_file():
        return [f"{side.name} is missing"]
    recorded = json.loads(side.read_text(encoding="utf-8"))
    why = []
    if not png.is_file() or _sha256(png.read_bytes()) != recorded.get("png_sha256"):
        why.append(f"{png.name} is not the screenshot {side.name} was written with")
    now, then = look(), recorded.get("look", {})
    changed = sorted(f for f in now.keys() | then.keys() if now.get(f) != then.get(f))
    if changed:
        why.append(f"changed since it was taken: {', '.join(changed)}")
    return why
