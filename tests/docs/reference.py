"""docs/hooks/gen_ref.py (what generates the reference pages from the code), imported as
module ``gen_ref`` for the tests that compare the reference with what coord does."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_gen_ref() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_ref", ROOT / "docs/hooks/gen_ref.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_ref"] = mod
    spec.loader.exec_module(mod)
    return mod
