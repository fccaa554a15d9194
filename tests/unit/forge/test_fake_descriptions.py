"""The descriptions the fake forges validate every request and response against
(tests/forges/openapi/) are valid OpenAPI: checked here, once for the run, rather than
each time a process loads one (tests/forges/validation.py)."""

from __future__ import annotations

import copy

import pytest
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from tests.forges import FAKES, validation

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("kind", sorted(FAKES))
def test_each_fake_forges_description_is_valid_openapi(kind: str) -> None:
    validation.checked(kind)


def test_a_broken_description_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = copy.deepcopy(validation.document("gitea"))
    path = next(iter(broken["paths"].values()))
    next(iter(op for op in path.values() if isinstance(op, dict)))["responses"] = "none"
    monkeypatch.setattr(validation, "document", lambda kind: broken)
    with pytest.raises(OpenAPIValidationError):
        validation.checked("gitea")
