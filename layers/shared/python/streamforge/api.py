"""The HTTP API plumbing every function shares: resolver factory, error mapping, caller, handler wrapper.

This is the one place where errors become HTTP responses, always as `{"error": {"code", "message"}}`, and where
request bodies are checked before any handler sees them: JSON only (415 otherwise), at most `MAX_BODY_BYTES`
(413), UTF-8 (400), present when the operation needs one (400). Validation messages name the field and the rule,
never the submitted value.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from pydantic import BaseModel

from streamforge.errors import (
    BadRequest,
    DomainError,
    MethodNotAllowed,
    PayloadTooLarge,
    Unauthorized,
    Unprocessable,
    UnsupportedMediaType,
)
from streamforge.models import ErrorResponse, GatewayMessage
from streamforge.observability import logger, metrics, tracer

# The largest body the schemas allow is ~32 KB (a 2000-character description written as JSON `\uXXXX` pairs);
# API Gateway itself allows 10 MB.
MAX_BODY_BYTES = 64 * 1024
JSON_MEDIA_TYPE = content_types.APPLICATION_JSON

BEARER_SCHEME = "bearerAuth"
AUTH: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]

_ERROR_DESCRIPTIONS = {
    400: "Malformed request: the body is missing, not UTF-8 or not JSON",
    401: "Missing or invalid token (refused by the JWT authorizer: `{\"message\": \"Unauthorized\"}`)",
    403: "Not allowed for this caller",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body too large",
    415: "The request body is not application/json",
    422: "Validation error",
    429: "Too many requests: from this client (the edge's per-client limits, `error` shape), or to the API "
         "(stage throttling: `{\"message\": \"Too Many Requests\"}`)",
}
# Every operation may answer these: the body checks run before any route, and the edge limits every client.
_ALWAYS = (400, 413, 415, 422, 429)
# Statuses API Gateway may answer itself, before any function, in its own shape (docs/api.md).
_GATEWAY_ANSWERS = (401, 429)


def responses(success: int, model: type[BaseModel] | None, *errors: int) -> dict[int, OpenAPIResponse]:
    """A route's OpenAPI responses: its success (with `model`, or no content) and the errors it may answer.

    Every route may answer 400, 413, 415, 422 and 429 as well (see `_ALWAYS`).
    """
    documented: dict[int, OpenAPIResponse] = {
        success: {"description": "Success", "content": {content_types.APPLICATION_JSON: {"model": model}}}
        # An explicit empty `content`: left out, Powertools would document the return annotation as a JSON body.
        if model is not None else {"description": "No content", "content": {}},
    }
    for status in sorted({*errors, *_ALWAYS}):
        # A union is documented as anyOf (Powertools' TypedDict only names a single model class).
        error_model: Any = ErrorResponse | GatewayMessage if status in _GATEWAY_ANSWERS else ErrorResponse
        documented[status] = {
            "description": _ERROR_DESCRIPTIONS[status],
            "content": {content_types.APPLICATION_JSON: {"model": error_model}},
        }
    return documented


def no_content() -> Response[None]:
    """A 204 as HTTP has it: no body and no Content-Type (a route returning None would answer JSON `null`)."""
    return Response(status_code=HTTPStatus.NO_CONTENT.value)


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=error_body(code, message),
                    headers=dict(headers or {}))


# pydantic error types whose messages are built from the schema alone (limits, patterns, expected types). Any
# other type may quote the input in its message (`union_tag_invalid` does), so only its name is reported.
_SCHEMA_ONLY_MESSAGES = frozenset({
    "missing", "string_type", "string_too_short", "string_too_long", "string_pattern_mismatch", "int_type",
    "int_parsing", "int_from_float", "float_type", "float_parsing", "bool_type", "bool_parsing",
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "too_short", "too_long", "list_type",
    "dict_type", "model_type", "model_attributes_type", "literal_error", "enum", "value_error", "json_type",
})


# The member of a union that failed, which pydantic names after the field (`reconnect_grace_s.constrained-int`,
# `tags.list[constrained-str]`): pydantic's names, never the schema's (field names have no `-` or `[`).
_UNION_MEMBER = re.compile(r".*[-\[].*|int|str|float|bool|none|list|dict")


def _location(error: Mapping[str, Any]) -> str:
    """Where the error is, from the schema's names only: an unknown field's name is the caller's input."""
    path = [str(p) for p in error.get("loc", ()) if p != "body" and not _UNION_MEMBER.fullmatch(str(p))]
    if error.get("type") == "extra_forbidden":
        path = path[:-1]
    return ".".join(path) or "body"


def describe_validation(errors: Iterable[Mapping[str, Any]]) -> str:
    """`field: rule` for the first five problems, e.g. `password: String should have at least 10 characters`.

    Never the submitted value, nor an unknown field's name: either may be a secret pasted in the wrong place.
    """
    errors = list(errors)
    # "or null" is never the useful half of a union's complaint: no request schema offers null there.
    errors = [e for e in errors if e.get("type") != "none_required"] or errors
    parts = []
    for error in errors[:5]:
        kind = str(error.get("type", "invalid"))
        if kind == "extra_forbidden":
            rule = "has a field this operation does not take (see the API reference for its fields)"
        elif kind in _SCHEMA_ONLY_MESSAGES:
            rule = str(error.get("msg", kind))
        else:
            rule = f"is invalid ({kind})"
        parts.append(f"{_location(error)}: {rule}")
    return "; ".join(parts) or "invalid request"


def _is_missing_body(errors: Iterable[Mapping[str, Any]]) -> bool:
    return any(e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in errors)


def _allowed_methods(app: APIGatewayHttpResolver, path: str) -> list[str]:
    """The methods this function serves on `path` (Powertools 3 keeps its routes in these two lists only)."""
    routes = [*app._static_routes, *app._dynamic_routes]
    return sorted({route.method for route in routes if route.rule.match(path)})


def create_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.exception_handler(DomainError)
    def _domain(exc: DomainError) -> Response:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(_exc: RequestUnsupportedContentType) -> Response:
        # `body_refusal` answers these first; this keeps any that reach Powertools a 415, never a 500.
        refusal = UnsupportedMediaType(f"send the request body as {JSON_MEDIA_TYPE}")
        return _error(refusal.status, refusal.code, refusal.message)

    @app.exception_handler(RequestValidationError)
    def _validation(exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "malformed_json", "the request body is not valid JSON")
        if _is_missing_body(errors):
            return _error(400, "missing_body", "this operation needs a JSON body")
        return _error(422, "validation_error", describe_validation(errors))

    @app.exception_handler(ServiceError)
    def _service(exc: ServiceError) -> Response:
        status = HTTPStatus(exc.status_code)
        return _error(status.value, status.phrase.lower().replace(" ", "_"), str(exc.msg))

    @app.not_found
    def _not_found(_exc: Exception) -> Response:
        # API Gateway's `ANY` route of a path brings here the methods no other route of the path takes.
        allowed = _allowed_methods(app, app.current_event.path)
        if allowed:
            refusal = MethodNotAllowed("this resource does not take this method")
            return _error(refusal.status, refusal.code, refusal.message, {"Allow": ", ".join(allowed)})
        return _error(404, "route_not_found", "no such route")

    @app.exception_handler(Exception)
    def _fault(exc: Exception) -> Response:
        # Where and what, not the message: an exception's message may quote a request value (pydantic's do).
        logger.error("unhandled error", error_type=type(exc).__name__,
                     stack="".join(traceback.format_tb(exc.__traceback__)))
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


def _body_size(event: Mapping[str, Any]) -> int:
    body = event.get("body") or ""
    # Base64 inflates by 4/3; size the decoded payload.
    return len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode("utf-8"))


def _media_type(event: Mapping[str, Any]) -> str:
    """The Content-Type without its parameters, lower case ("" when absent); API Gateway lower-cases header names."""
    headers = event.get("headers") or {}
    return str(headers.get("content-type", "")).split(";", 1)[0].strip().lower()


def _is_text(event: Mapping[str, Any]) -> bool:
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


def _is_object_null_or_invalid(event: Mapping[str, Any]) -> bool:
    body = event["body"]
    text = base64.b64decode(body).decode("utf-8") if event.get("isBase64Encoded") else body
    try:
        value = json.loads(text)
    except ValueError:
        return True
    return value is None or isinstance(value, dict)


def body_refusal(event: Mapping[str, Any]) -> DomainError | None:
    """Why the request's body is refused before any route sees it, or None.

    A body must be at most `MAX_BODY_BYTES` (413), declared `application/json`, with or without parameters such as
    `charset` (415; a body without a Content-Type too), and UTF-8 (400). Every request body of this API is a JSON
    object, so another JSON value is 422 (Powertools would take an array for no body); `null` is no body. A request
    without a body passes here; an operation that needs one answers 400 `missing_body`. Invalid JSON is left to the
    resolver (400).
    """
    if not event.get("body"):
        return None
    if _body_size(event) > MAX_BODY_BYTES:
        return PayloadTooLarge(f"the request body exceeds {MAX_BODY_BYTES} bytes")
    if _media_type(event) != JSON_MEDIA_TYPE:
        return UnsupportedMediaType(f"send the request body as {JSON_MEDIA_TYPE}")
    if not _is_text(event):
        return BadRequest("the request body is not UTF-8 JSON", code="malformed_json")
    if not _is_object_null_or_invalid(event):
        return Unprocessable("body: must be a JSON object")
    return None


def _refusal(exc: DomainError) -> dict[str, Any]:
    """A domain error answered before the resolver runs, in the resolver's own response shape."""
    return {
        "statusCode": exc.status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps(error_body(exc.code, exc.message)),
        "isBase64Encoded": False,
    }


def make_lambda_handler(
    app: APIGatewayHttpResolver,
    before: Callable[[dict[str, Any], Any], None] | None = None,
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point for a resolver, with correlation ids, tracing, EMF metrics and the body checks."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # Checked before the resolver parses anything, so a huge or foreign body costs nothing.
        refused = body_refusal(event)
        if refused is not None:
            return _refusal(refused)
        if event.get("body"):
            # Media types are case-insensitive (RFC 9110); Powertools compares them as written.
            event["headers"]["content-type"] = JSON_MEDIA_TYPE
        if before is not None:
            before(event, context)
        return app.resolve(event, context)

    return lambda_handler
