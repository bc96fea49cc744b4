"""The HTTP API plumbing every function shares: resolver factory, error mapping, caller, handler wrapper.

This is the one place where errors become HTTP responses, always as `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from pydantic import BaseModel

from streamforge.errors import DomainError, Unauthorized
from streamforge.models import ErrorResponse
from streamforge.observability import logger, metrics, tracer

# API Gateway allows 10 MB; nothing in this API needs more than a few KB.
MAX_BODY_BYTES = 16 * 1024

BEARER_SCHEME = "bearerAuth"
AUTH: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]

_ERROR_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing or invalid token",
    403: "Not allowed for this caller",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body too large",
    422: "Validation error",
    429: "Too many requests",
}


def responses(success: int, model: type[BaseModel] | None, *errors: int) -> dict[int, OpenAPIResponse]:
    """A route's OpenAPI responses: its success (with `model`, or no content) and the errors it may answer.

    Every route may answer 400 (malformed JSON), 413 (body too large) and 422 (validation) as well.
    """
    documented: dict[int, OpenAPIResponse] = {
        success: {"description": "Success", "content": {content_types.APPLICATION_JSON: {"model": model}}}
        # An explicit empty `content`: left out, Powertools would document the return annotation as a JSON body.
        if model is not None else {"description": "No content", "content": {}},
    }
    for status in (*errors, 400, 413, 422):
        documented[status] = {
            "description": _ERROR_DESCRIPTIONS[status],
            "content": {content_types.APPLICATION_JSON: {"model": ErrorResponse}},
        }
    return documented


def no_content() -> Response[None]:
    """A 204 as HTTP has it: no body and no Content-Type (a route returning None would answer JSON `null`)."""
    return Response(status_code=HTTPStatus.NO_CONTENT.value)


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _error(status: int, code: str, message: str) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=error_body(code, message))


def _describe_validation(errors: list[Any]) -> str:
    # Location and pydantic's message only: never echo the input back (it may be a secret).
    parts = []
    for error in errors[:5]:
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{location}: {error.get('msg', error.get('type', 'invalid'))}")
    return "; ".join(parts) or "invalid request"


def create_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.exception_handler(DomainError)
    def _domain(exc: DomainError) -> Response:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    def _validation(exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "malformed_json", "the request body is not valid JSON")
        return _error(422, "validation_error", _describe_validation(errors))

    @app.exception_handler(ServiceError)
    def _service(exc: ServiceError) -> Response:
        status = HTTPStatus(exc.status_code)
        return _error(status.value, status.phrase.lower().replace(" ", "_"), str(exc.msg))

    @app.not_found
    def _not_found(_exc: Exception) -> Response:
        return _error(404, "route_not_found", "no such route")

    @app.exception_handler(Exception)
    def _fault(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return _error(500, "internal_error", "internal server error")

    return app


@dataclass(frozen=True)
class Caller:
    user_id: str
    username: str


def optional_caller(app: APIGatewayHttpResolver) -> Caller | None:
    """The caller from the JWT authorizer's claims, or None on a public route without a token."""
    context = app.current_event.raw_event.get("requestContext") or {}
    claims = ((context.get("authorizer") or {}).get("jwt") or {}).get("claims") or {}
    user_id = claims.get("sub")
    if not user_id:
        return None
    username = claims.get("username") or claims.get("cognito:username") or ""
    return Caller(user_id=str(user_id), username=str(username))


def require_caller(app: APIGatewayHttpResolver) -> Caller:
    caller = optional_caller(app)
    if caller is None:
        raise Unauthorized("a valid bearer token is required", code="unauthorized")
    return caller


def _body_size(event: dict[str, Any]) -> int:
    body = event.get("body") or ""
    # Base64 inflates by 4/3; size the decoded payload.
    return len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode("utf-8"))


def _is_text(event: dict[str, Any]) -> bool:
    """Whether the body, if any, is UTF-8 text, as every body of this JSON API must be.

    Powertools decodes a base64 body as UTF-8 without a guard, so a binary body would otherwise be a 500.
    """
    body = event.get("body")
    if not body:
        return True
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode("utf-8")
        raw.decode("utf-8")
    except (binascii.Error, UnicodeError):
        return False
    return True


def _refusal(status: int, code: str, message: str) -> dict[str, Any]:
    """An error answered before the resolver runs, in the resolver's own response shape."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps(error_body(code, message)),
        "isBase64Encoded": False,
    }


def make_lambda_handler(
    app: APIGatewayHttpResolver,
    before: Callable[[dict[str, Any], Any], None] | None = None,
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point for a resolver, with correlation ids, tracing, EMF metrics and a body limit."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # Checked before the resolver parses anything, so a huge body costs nothing.
        if _body_size(event) > MAX_BODY_BYTES:
            return _refusal(413, "payload_too_large", f"the request body exceeds {MAX_BODY_BYTES} bytes")
        if not _is_text(event):
            return _refusal(400, "malformed_json", "the request body is not UTF-8 JSON")
        if before is not None:
            before(event, context)
        return app.resolve(event, context)

    return lambda_handler
