"""The generated reference (docs/hooks/gen_ref.py, mkdocs-click) describes everything.

Issue #42: a command, option, setting or catalog field without a description fails
here, and every setting, field, event kind and metric appears on its generated page
(an event's fields and what emits them: tests/unit/test_event_fields.py).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(60)
def test_every_command_and_option_has_help(gen_ref: ModuleType) -> None:
    names = [name for name, _cmd in gen_ref.cli_commands()]
    # every noun's module was loaded (the lazy group hides none) and walked to its leaves
    assert {"coord sweep resume", "coord change land", "coord schema"} <= set(names)
    assert gen_ref.undescribed_cli() == []


@pytest.mark.timeout(30)
def test_every_setting_has_a_description(gen_ref: ModuleType) -> None:
    assert gen_ref.undescribed_settings() == []


@pytest.mark.timeout(30)
def test_every_catalog_field_has_a_description(gen_ref: ModuleType) -> None:
    names = {m.__name__ for m in gen_ref.catalog_models()}
    assert {"Catalog", "Repo", "Todo", "Plan", "Gate", "Wave", "Change", "Approvers"} <= names
    assert gen_ref.undescribed_fields() == []


@pytest.mark.timeout(30)
def test_settings_page_lists_every_setting(gen_ref: ModuleType) -> None:
    from coordination.settings import Settings

    page = gen_ref.settings_page()
    for name, field in Settings.model_fields.items():
        assert f"`COORD_{name.upper()}`" in page
        assert " ".join(str(field.description).split()) in page


@pytest.mark.timeout(30)
def test_catalog_page_lists_every_field(gen_ref: ModuleType) -> None:
    page = gen_ref.catalog_page()
    for model in gen_ref.catalog_models():
        section = page.split(f"## {model.__name__}\n", 1)[1].split("\n## ", 1)[0]
        for name, field in model.model_fields.items():
            assert f"| `{field.alias or name}` |" in section, (model.__name__, name)


@pytest.mark.timeout(30)
def test_events_page_lists_every_kind_with_its_fields(gen_ref: ModuleType) -> None:
    from coordination.status import EventKind

    page = gen_ref.events_page()
    for kind in EventKind:
        assert f"## `{kind.value}`\n" in page
    # fields from the declaration: sweep.finished carries status and reason
    section = page.split("## `sweep.finished`\n", 1)[1].split("\n## ", 1)[0]
    assert "| `status` |" in section and "| `reason` |" in section


@pytest.mark.timeout(30)
def test_every_event_kind_has_a_description(gen_ref: ModuleType) -> None:
    from coordination.status import EVENT_DESCRIPTIONS, EventKind

    assert gen_ref.undescribed_events() == []
    assert set(EVENT_DESCRIPTIONS) == set(EventKind), "a description of no kind"
    page = gen_ref.events_page()
    for kind in EventKind:
        section = page.split(f"## `{kind.value}`\n", 1)[1].split("\n## ", 1)[0]
        assert gen_ref._cell(EVENT_DESCRIPTIONS[kind]) in section, kind


@pytest.mark.timeout(30)
def test_the_site_publishes_the_catalog_schema(gen_ref: ModuleType) -> None:
    from coordination.cli.schema import schema_text

    assert gen_ref.page("schema/ecosystem.schema.json") == schema_text()
    assert "schema/ecosystem.schema.json" in gen_ref.ASSETS
    page = (ROOT / "docs/reference/schema.md").read_text(encoding="utf-8")
    assert "(../schema/ecosystem.schema.json)" in page
    assert "# yaml-language-server: $schema=.coord/schema.json" in page


@pytest.mark.timeout(30)
def test_metrics_page_lists_every_family(gen_ref: ModuleType) -> None:
    from coordination.ops.metrics import families
    from coordination.runtime.metrics import Counters, Snapshot

    page = gen_ref.metrics_page()
    snap = Snapshot(Counters.parse({}), {}, {}, [], {}, {})
    names = [f.name for f in families(snap, [], lambda r: r)]
    assert len(names) >= 10
    for name in [*names, "coord_redis_up", "coord_redis_replicas"]:
        assert f"| `{name}` |" in page
    assert all(text for _n, _t, _l, text in gen_ref.metrics_rows())


@pytest.mark.timeout(30)
def test_cli_page_is_generated_from_the_click_app() -> None:
    page = (ROOT / "docs/reference/cli.md").read_text()
    assert "::: mkdocs-click" in page and ":module: coordination.cli.main" in page


def test_settings_page_names_every_variable_settings_py_declares_beside_the_model(
        gen_ref: ModuleType) -> None:
    """A variable coord reads outside the settings model (``*_ENV`` in settings.py:
    COORD_FLOWER_ALLOW_CONTROL was in no doc, #50) is on the settings page too."""
    import coordination.settings as settings

    page = gen_ref.settings_page()
    names = [v for k, v in vars(settings).items() if k.endswith("_ENV") and isinstance(v, str)]
    assert "COORD_FLOWER_ALLOW_CONTROL" in names
    for name in names:
        assert f"`{name}`" in page, name
