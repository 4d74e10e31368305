"""Property-based run of the service's OpenAPI schema with schemathesis.

The schema is read from the live server (``/openapi.json``, uvicorn on loopback) and
schemathesis generates requests for every operation (valid and invalid bodies,
parameters, headers), sent over HTTP with a manager's bearer token — the role that may
call every API operation. The property: no request makes a server error
(``not_a_server_error``: no 5xx). Examples are bounded (``MAX_EXAMPLES`` per operation)
so the run stays under a minute.
"""

from __future__ import annotations

import pytest
import schemathesis
import web_fixtures as wf
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

MAX_EXAMPLES = 50


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    folder = tmp_path_factory.mktemp("schema")
    db, key = wf.make_trial(folder)
    wf.add_user(db, "mary", "manager")
    token = wf.user_token(db, "mary")
    with wf.LiveServer(db, key) as server:
        server.db, server.key, server.token = db, key, token
        yield server


@pytest.fixture(scope="module")
def api_schema(live):
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json", timeout=30)


def operations(api_schema) -> list:
    return [result.ok() for result in api_schema.get_all_operations()]


def test_schema_is_served_and_describes_the_api(api_schema):
    """The property test below is not vacuous: the schema lists the enrolment operations."""
    listed = {(op.method.upper(), op.path) for op in operations(api_schema)}
    assert {("POST", "/api/enrolments"), ("GET", "/api/enrolments"), ("GET", "/api/verify")} <= listed


# schemathesis' own pytest loader (``schemathesis.pytest.from_fixture``) does not run
# under pytest 9 (it reads ``request.node._nodeid``), so each operation's strategy is
# driven by hypothesis here, valid and invalid requests alike.
@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_request_makes_a_server_error(live, api_schema, mode):
    tried = []
    for operation in operations(api_schema):
        calls = []

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            response = case.call(base_url=live.url, headers=wf.bearer(live.token), timeout=30)
            calls.append(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])

        try:
            run()
        except Unsatisfiable:
            # no parameters and no body (GET /api/health): nothing to make invalid
            if mode is GenerationMode.POSITIVE or operation.body or any(True for _ in operation.iter_parameters()):
                raise
        except Exception as exc:
            exc.add_note(f"operation {operation.label}, {mode.value} requests")
            raise
        tried.append((operation.label, len(calls)))
    counts = dict(tried)
    print(mode.value, tried)
    assert counts["POST /api/enrolments"] >= MAX_EXAMPLES // 2, tried
    assert sum(n > 0 for n in counts.values()) >= 3, tried


def test_store_is_intact_after_the_property_run(live):
    """Whatever the generated requests did, the store still verifies (runs after the above)."""
    from rjtrial.registry import Registry

    with Registry.open(live.db, key_path=live.key) as reg:
        result = reg.verify()
    assert result.ok, result.problems
