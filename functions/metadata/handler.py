"""Streams API (HTTP API routes `/v1/streams*`): thin routes over `StreamService`."""

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from streamforge.api import AUTH, create_resolver, make_lambda_handler, no_content, require_caller, responses
from streamforge.aws import client
from streamforge.config import EnvConfig
from streamforge.errors import Conflict
from streamforge.models import STREAM_ID_PATTERN
from streamforge.observability import metrics
from streamforge.pagination import CURSOR_PATTERN
from streamforge.streams import StreamStatus

from metadata.models import (
    CreateKeyRequest,
    CreateStreamRequest,
    CreateStreamResponse,
    KeyCreated,
    KeyList,
    SessionList,
    StreamDetail,
    StreamList,
    UpdateStreamRequest,
)
from metadata.repository import DynamoStreamRepository
from metadata.service import StreamService, Urls


class MetadataConfig(EnvConfig):
    streams_table: str
    stream_keys_table: str
    sessions_table: str
    idempotency_table: str
    event_bus_name: str
    cdn_base_url: str
    rtmp_ingest_url: str
    whip_ingest_url: str = ""
    srt_ingest_url: str = ""


@cache
def config() -> MetadataConfig:
    return MetadataConfig.from_env()


@cache
def service() -> StreamService:
    from streamforge.events import SOURCE_API, EventBridgePublisher

    cfg = config()
    ddb = client("dynamodb")
    repo = DynamoStreamRepository(streams_table=cfg.streams_table, keys_table=cfg.stream_keys_table,
                                  sessions_table=cfg.sessions_table, dynamodb=ddb)
    publisher = EventBridgePublisher(source=SOURCE_API, bus_name=cfg.event_bus_name,
                                     streams_table=cfg.streams_table, events_client=client("events"),
                                     dynamodb_client=ddb)
    return StreamService(repo, publisher, Urls(cdn_base_url=cfg.cdn_base_url, rtmp_ingest_url=cfg.rtmp_ingest_url,
                                               whip_ingest_url=cfg.whip_ingest_url,
                                               srt_ingest_url=cfg.srt_ingest_url))


@cache
def _idempotent_create() -> tuple[Any, Any]:
    """Powertools idempotency around the business function, built on first use (it is not cheap to import)."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    persistence = DynamoDBPersistenceLayer(table_name=config().idempotency_table, boto3_client=client("dynamodb"))
    # The record is keyed by caller and header; the body must match, or the key was reused for another request.
    idem_config = IdempotencyConfig(event_key_jmespath="key", payload_validation_jmespath="request",
                                    raise_on_no_idempotency_key=True, expires_after_seconds=3600)

    @idempotent_function(data_keyword_argument="payload", persistence_store=persistence, config=idem_config)
    def create(payload: dict[str, Any]) -> dict[str, Any]:
        return service().create(owner_id=payload["owner_id"], owner_username=payload["owner_username"],
                                **payload["request"])

    return create, idem_config


app = create_resolver()

# A stream's path parameter is `{id}`, as in ARCHITECTURE.md §3 and the deployed route keys; Powertools passes
# `<id>` to the handler argument of that name, so the handlers take `id` (the services name it `stream_id`).
StreamIdParam = Annotated[str, Path(pattern=STREAM_ID_PATTERN, description="Stream id")]


@app.post("/v1/streams", status_code=201, security=AUTH, tags=["streams"], summary="Create a stream",
          responses=responses(201, CreateStreamResponse, 401, 409))
def create_stream(
    body: Annotated[CreateStreamRequest, Body()],
    idempotency_key: Annotated[str | None, Header(alias="idempotency-key", min_length=1, max_length=128,
                                                   pattern=r"^[A-Za-z0-9_.:\-]+$",
                                                   description="Retries with the same key return the same stream")
                               ] = None,
) -> CreateStreamResponse:
    caller = require_caller(app)
    request = body.model_dump()
    if idempotency_key is None:
        created = service().create(owner_id=caller.user_id, owner_username=caller.username, **request)
    else:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        create, idem_config = _idempotent_create()
        idem_config.register_lambda_context(app.lambda_context)
        payload = {"key": f"{caller.user_id}#{idempotency_key}", "owner_id": caller.user_id,
                   "owner_username": caller.username, "request": request}
        try:
            created = create(payload=payload)
        except IdempotencyValidationError as exc:
            # 409 (not the 422 of the IETF draft): the body is valid; what it conflicts with is the key's first use.
            raise Conflict("this Idempotency-Key was used with a different request body",
                           code="idempotency_key_reused") from exc
        except IdempotencyAlreadyInProgressError as exc:
            raise Conflict("a request with this Idempotency-Key is in progress", code="request_in_progress") from exc
        # A retry gets the first answer back; if its stream has been deleted since, that answer names nothing.
        if not service().exists(created["id"]):
            raise Conflict("the stream this Idempotency-Key created has been deleted; use a new key",
                           code="stream_deleted")
    metrics.add_metric(name="StreamCreated", unit=MetricUnit.Count, value=1)
    return CreateStreamResponse.model_validate(created)


@app.get("/v1/streams", tags=["streams"], summary="List streams", responses=responses(200, StreamList, 404))
def list_streams(
    status: Annotated[StreamStatus | None, Query()] = None,
    owner: Annotated[str | None, Query(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9\-_]+$",
                                       description="Owner's user id")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(min_length=3, max_length=2048, pattern=CURSOR_PATTERN,
                                        description="`next_cursor` of the previous page")] = None,
) -> StreamList:
    items, next_cursor = service().list_streams(status=status, owner_id=owner, limit=limit, cursor=cursor)
    return StreamList.model_validate({"items": items, "next_cursor": next_cursor})


@app.get("/v1/streams/<id>", tags=["streams"], summary="Get a stream",
         responses=responses(200, StreamDetail, 404))
def get_stream(id: StreamIdParam) -> StreamDetail:
    return StreamDetail.model_validate(service().get(id))


@app.patch("/v1/streams/<id>", security=AUTH, tags=["streams"], summary="Update a stream (owner)",
           responses=responses(200, StreamDetail, 401, 403, 404))
def update_stream(id: StreamIdParam, body: Annotated[UpdateStreamRequest, Body()]) -> StreamDetail:
    caller = require_caller(app)
    changes = body.model_dump(exclude_unset=True)
    return StreamDetail.model_validate(service().update(id, caller.user_id, changes))


@app.delete("/v1/streams/<id>", status_code=204, security=AUTH, tags=["streams"],
            summary="Delete a stream (owner): ends a live session and revokes every key",
            responses=responses(204, None, 401, 403, 404))
def delete_stream(id: StreamIdParam) -> Response[None]:
    caller = require_caller(app)
    service().delete(id, caller.user_id)
    metrics.add_metric(name="StreamDeleted", unit=MetricUnit.Count, value=1)
    return no_content()


@app.post("/v1/streams/<id>/keys", status_code=201, security=AUTH, tags=["keys"],
          summary="Create a stream key (owner)", responses=responses(201, KeyCreated, 401, 403, 404, 409))
def create_key(id: StreamIdParam, body: Annotated[CreateKeyRequest | None, Body()] = None) -> KeyCreated:
    caller = require_caller(app)
    name = body.name if body else CreateKeyRequest().name
    return KeyCreated.model_validate(service().create_key(id, caller.user_id, name))


@app.get("/v1/streams/<id>/keys", security=AUTH, tags=["keys"], summary="List stream keys (owner)",
         responses=responses(200, KeyList, 401, 403, 404))
def list_keys(id: StreamIdParam) -> KeyList:
    caller = require_caller(app)
    return KeyList.model_validate({"items": service().list_keys(id, caller.user_id)})


@app.delete("/v1/streams/<id>/keys/<key_id>", status_code=204, security=AUTH, tags=["keys"],
            summary="Revoke a stream key (owner)", responses=responses(204, None, 401, 403, 404))
def revoke_key(id: StreamIdParam,
               key_id: Annotated[str, Path(pattern=r"^key_[0-9a-f]{12}$", description="Key id")]) -> Response[None]:
    caller = require_caller(app)
    service().revoke_key(id, caller.user_id, key_id)
    return no_content()


@app.get("/v1/streams/<id>/sessions", tags=["streams"], summary="List a stream's sessions",
         responses=responses(200, SessionList, 404))
def list_sessions(id: StreamIdParam) -> SessionList:
    return SessionList.model_validate({"items": service().list_sessions(id)})


lambda_handler = make_lambda_handler(app)
