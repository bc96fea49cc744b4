"""HTTP routes are declared once: the template's routes and their auth are the operations of docs/openapi.json.

The document is generated from the handlers' decorators (functions/openapi_spec.py) and its drift is caught by a
unit test; here it is read directly, not through infra/, so a route the CDK app invents or drops is caught too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra import constants as c
from tests.infra.conftest import Synth, integration_function, routes_of

pytestmark = pytest.mark.infra

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def _operations() -> dict[str, dict[str, Any]]:
    """Every operation of the committed document, by HTTP API route key (`METHOD /path`)."""
    document = json.loads(OPENAPI.read_text())
    return {f"{method.upper()} {path}": operation
            for path, operations in document["paths"].items() for method, operation in operations.items()}


def test_template_routes_are_the_openapi_operations_and_a_catch_all_per_path(synth: Synth) -> None:
    operations = _operations()
    paths = {key.split(" ", 1)[1] for key in operations}
    assert set(routes_of(synth, "HttpApi")) == set(operations) | {f"ANY {path}" for path in paths}


def test_route_auth_is_the_operation_security(synth: Synth) -> None:
    routes = routes_of(synth, "HttpApi")
    for key, operation in _operations().items():
        route = routes[key]
        if operation.get("security"):
            assert operation["security"] == [{"bearerAuth": []}], key
            assert route["AuthorizationType"] == "JWT", key
            assert "AuthorizerId" in route, key
        else:
            assert route["AuthorizationType"] == "NONE", key
            assert "AuthorizerId" not in route, key


def test_route_function_runs_the_operation_handler(synth: Synth) -> None:
    routes = routes_of(synth, "HttpApi")
    for key, operation in _operations().items():
        function_id = integration_function(synth, routes[key])
        assert synth.resources[function_id]["Properties"]["Handler"] == operation["x-streamforge-handler"], key


def test_each_path_takes_other_methods_to_its_function_which_answers_405(synth: Synth) -> None:
    """API Gateway would answer 404 to a method no route takes; each path's public `ANY` route brings it to the
    function of the path, which answers 405 with `Allow` (streamforge.api)."""
    routes = routes_of(synth, "HttpApi")
    for key in _operations():
        path = key.split(" ", 1)[1]
        catch_all = routes[f"ANY {path}"]
        assert integration_function(synth, catch_all) == integration_function(synth, routes[key])
        assert catch_all["AuthorizationType"] == "NONE"


def test_one_path_parameter_name_for_a_stream(synth: Synth) -> None:
    """A stream's path parameter is `{id}` (ARCHITECTURE.md §3) in the template, the document and the handlers: the
    route keys of deployed stacks, which cannot be renamed in place (API Gateway refuses a second parameter name at one
    level of a path, and CloudFormation creates the new routes before it deletes the old ones)."""
    for key in routes_of(synth, "HttpApi"):
        path = key.split(" ", 1)[1]
        if path.startswith("/v1/streams/{"):
            assert path.startswith("/v1/streams/{id}"), key


def test_each_function_keeps_the_integration_deployed_stacks_have(synth: Synth) -> None:
    """Every route of a function targets one integration, whose logical id is pinned (infra/constants.py) so that a
    change in the document's order of operations does not replace the integrations of a deployed stack."""
    for key, route in routes_of(synth, "HttpApi").items():
        integration_id = route["Target"]["Fn::Join"][1][1]["Ref"]
        assert integration_id == c.HTTP_API_INTEGRATIONS[integration_function(synth, route)], key
