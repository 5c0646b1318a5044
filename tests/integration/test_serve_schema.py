"""Schemathesis over the service's OpenAPI schema: generated requests, valid and not, never get a 5xx, and every
answer's status, content type and body are the ones the schema documents (so a generated client can parse the
errors too: `{"detail": "...", "errors": [...]}` for a 422, `{"detail": "..."}` for the others).

Schemathesis's pytest plugin does not run under pytest 9 (it reads a private
`_nodeid`), so each operation's case strategy is driven by Hypothesis here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from shelfcast.service.app import create_app
from shelfcast.settings import Settings

pytestmark = pytest.mark.integration
EXAMPLES = 40  # per operation and mode: about 1,000 requests in all
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(serving_workspace: Settings) -> Iterator[Any]:
    app = create_app(Settings(workspace=serving_workspace.workspace, api_key="schemathesis-key"))
    with TestClient(app):  # runs the startup: models, data and predictions loaded
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
def test_no_generated_request_gets_a_server_error(api_schema: Any, mode: schemathesis.GenerationMode) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/predict", "/predict/batch", "/forecast", "/stockout/alerts", "/reorder"}
    calls: dict[str, int] = {}
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            label = f"{case.method} {case.path}"
            calls[label] = calls.get(label, 0) + 1
            case.call_and_validate(checks=CHECKS)

        try:
            check()
        except Unsatisfiable:
            # An operation without parameters or body (GET /health) has no invalid request to make.
            assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
    assert calls.get("POST /predict", 0) >= EXAMPLES // 2, calls
