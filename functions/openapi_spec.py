"""One OpenAPI document for the whole v1 API, merged from the resolvers of the users, metadata and analytics functions.

`python -m openapi_spec > docs/openapi.json` (with `functions/` and `layers/shared/python/` on the path)
writes the committed copy; a unit test fails when it drifts. The local gateway serves `build_openapi()`.

The committed document is also where the CDK app reads its HTTP routes (infra/api.py): each operation's method,
path and `security`, and in `x-streamforge-handler` the Lambda handler that serves it, so a route is declared once,
in its handler's decorator.
"""

from __future__ import annotations

import json
import sys
from typing import Any

TITLE = "StreamForge"
API_VERSION = "1.0.0"
_UNUSED_DEFAULTS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")
# The operation extension naming the Lambda handler (docs/contracts.md) whose resolver declares the operation.
HANDLER_EXTENSION = "x-streamforge-handler"


def build_openapi() -> dict[str, Any]:
    import analytics.handler
    import metadata.handler
    import users.handler
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    schemes: dict[str, Any] = {"bearerAuth": HTTPBearer(bearerFormat="JWT", description="Cognito access token")}
    document: dict[str, Any] = {}
    for module in (users.handler, metadata.handler, analytics.handler):
        part = json.loads(module.app.get_openapi_schema(title=TITLE, version=API_VERSION, security_schemes=schemes)
                          .model_dump_json(by_alias=True, exclude_none=True))
        for operations in part.get("paths", {}).values():
            for operation in operations.values():
                operation[HANDLER_EXTENSION] = f"{module.__name__}.lambda_handler"
        if not document:
            document = part
            continue
        for path, operations in part.get("paths", {}).items():
            merged = document["paths"].setdefault(path, {})
            clash = set(merged) & set(operations)
            if clash:
                raise ValueError(f"{path} {sorted(clash)} is defined by two functions")
            merged.update(operations)
        document["components"]["schemas"].update(part.get("components", {}).get("schemas", {}))

    document["info"]["description"] = (
        "Live streaming, the AWS-serverless way. Errors are always `{\"error\": {\"code\", \"message\"}}`. "
        "Protected operations need `Authorization: Bearer <access token>` from `POST /v1/auth/login`."
    )
    # Powertools' default validation shapes are never answered (streamforge.api maps them); drop them if unused.
    for name in _UNUSED_DEFAULTS:
        if f'"#/components/schemas/{name}"' not in json.dumps(document):
            document["components"]["schemas"].pop(name, None)
    document["paths"] = dict(sorted(document["paths"].items()))
    document["components"]["schemas"] = dict(sorted(document["components"]["schemas"].items()))
    return document


def render() -> str:
    return json.dumps(build_openapi(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
