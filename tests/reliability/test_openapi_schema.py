"""Schemathesis over Parley's OpenAPI schema, against a real server: its default checks (no server error,
documented status codes, content types and response schemas) pass for every operation."""

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import TEST_RUNS, make_settings
from tests.support.server import serve


def test_every_operation_passes_schemathesis_default_checks(tmp_path: Path) -> None:
    config = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'api.db'}", tmp_path, TEST_RUNS)
    config = config.model_copy(update={"admin_token": "schema-admin-token-0123456789"})
    with serve(config) as live:
        schema = schemathesis.openapi.from_url(f"{live.base}/openapi.json")
        checked = []
        for result in schema.get_all_operations():
            operation = result.ok()

            @given(case=operation.as_strategy())
            @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
            def check(case: Any) -> None:
                case.call_and_validate()

            check()
            checked.append(operation.label)
    assert "POST /task/{run_id}/join" in checked and len(checked) >= 5, checked
