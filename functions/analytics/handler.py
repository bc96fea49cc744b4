"""Analytics API: viewer sessions, the public heartbeat (onto SQS when a viewer token vouches for it) and the
owner's figures for a stream."""

import json
import time
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from streamforge.api import AUTH, create_resolver, make_lambda_handler, require_caller, responses
from streamforge.aws import client
from streamforge.config import EnvConfig
from streamforge.errors import Forbidden, NotFound
from streamforge.models import STREAM_ID_PATTERN
from streamforge.observability import metrics
from streamforge.streams import StreamsReader

from analytics.aggregate import NO_SESSION
from analytics.models import (
    HeartbeatAccepted,
    HeartbeatRequest,
    PlaybackRequest,
    PlaybackSession,
    StreamAnalytics,
)
from analytics.repository import DynamoAnalyticsStore
from analytics.service import ViewerSessions

# How long a fetched signing key is used before it is read again (Powertools' parameter cache).
SIGNING_KEY_MAX_AGE_S = 300


class AnalyticsConfig(EnvConfig):
    streams_table: str
    analytics_table: str
    heartbeat_queue_url: str
    cdn_base_url: str
    viewer_token_secret_arn: str
    viewer_token_ttl_s: int


@cache
def config() -> AnalyticsConfig:
    return AnalyticsConfig.from_env()


@cache
def streams() -> StreamsReader:
    return StreamsReader(config().streams_table, client("dynamodb"))


@cache
def store() -> DynamoAnalyticsStore:
    cfg = config()
    return DynamoAnalyticsStore(analytics_table=cfg.analytics_table, streams_table=cfg.streams_table,
                                dynamodb=client("dynamodb"))


@cache
def _secrets() -> Any:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=client("secretsmanager"))


def signing_key() -> bytes:
    """The viewer-token key from Secrets Manager, cached for SIGNING_KEY_MAX_AGE_S."""
    return str(_secrets().get(config().viewer_token_secret_arn, max_age=SIGNING_KEY_MAX_AGE_S)).encode()


@cache
def viewer_sessions() -> ViewerSessions:
    cfg = config()
    return ViewerSessions(signing_key=signing_key, ttl_s=cfg.viewer_token_ttl_s, cdn_base_url=cfg.cdn_base_url)


def heartbeat_message(body: HeartbeatRequest, stream: dict[str, Any], at: float) -> dict[str, Any]:
    """The SQS message the consumer reads (docs/contracts.md, "Heartbeat message")."""
    return {"v": 1, "stream_id": body.stream_id, "session_id": stream.get("current_session_id") or NO_SESSION,
            "viewer_id": body.viewer_id, "rendition": body.rendition, "buffering_ms": body.buffering_ms, "at": at}


app = create_resolver()


# A stream's path parameter is `{id}`, as in ARCHITECTURE.md §3 and the deployed route keys; Powertools passes
# `<id>` to the handler argument of that name, so the handlers take `id` (the services name it `stream_id`).
StreamIdParam = Annotated[str, Path(pattern=STREAM_ID_PATTERN, description="Stream id")]


@app.post("/v1/streams/<id>/playback", status_code=201, tags=["analytics"],
          summary="Start a viewer session for a live stream (public): a viewer token for its heartbeats",
          responses=responses(201, PlaybackSession, 404, 409))
def start_playback(id: StreamIdParam,
                   body: Annotated[PlaybackRequest | None, Body()] = None) -> PlaybackSession:
    stream = streams().get(id)
    if stream is None:
        raise NotFound("no such stream", code="stream_not_found")
    session = viewer_sessions().start(stream, body.viewer_id if body else None)
    metrics.add_metric(name="ViewerSessionStarted", unit=MetricUnit.Count, value=1)
    return PlaybackSession.model_validate(session)


@app.post("/v1/analytics/heartbeat", status_code=202, tags=["analytics"], summary="Viewer heartbeat (public)",
          responses=responses(202, HeartbeatAccepted, 404))
def heartbeat(body: Annotated[HeartbeatRequest, Body()]) -> HeartbeatAccepted:
    stream = streams().get(body.stream_id)
    if stream is None:
        raise NotFound("no such stream", code="stream_not_found")
    refusal = viewer_sessions().refusal(body.viewer_token, stream_id=body.stream_id, viewer_id=body.viewer_id)
    if refusal is not None:
        # Still 202: the player has nothing to fix but its token, and the answer says whether it counted.
        with single_metric(name="HeartbeatRefused", unit=MetricUnit.Count, value=1,
                           namespace=metrics.namespace) as refused:
            refused.add_dimension(name="reason", value=refusal)
        return HeartbeatAccepted(counted=False)
    message = heartbeat_message(body, stream, time.time())
    client("sqs").send_message(QueueUrl=config().heartbeat_queue_url, MessageBody=json.dumps(message))
    metrics.add_metric(name="HeartbeatAccepted", unit=MetricUnit.Count, value=1)
    return HeartbeatAccepted(counted=True)


@app.get("/v1/streams/<id>/analytics", security=AUTH, tags=["analytics"],
         summary="A stream's analytics (owner)", responses=responses(200, StreamAnalytics, 401, 403, 404))
def stream_analytics(id: StreamIdParam) -> StreamAnalytics:
    caller = require_caller(app)
    stream = streams().get(id)
    if stream is None:
        raise NotFound("no such stream", code="stream_not_found")
    if stream["owner_id"] != caller.user_id:
        raise Forbidden("only the stream's owner may see its analytics", code="not_owner")
    summary = store().summary(id, stream.get("current_session_id"), time.time())
    # Until the consumer has seen an Ingest Health event, fall back on what the media task wrote on the stream.
    if all(v is None for v in summary["ingest"].values()) and stream.get("ingest_health"):
        summary["ingest"] = stream["ingest_health"]
    return StreamAnalytics.model_validate(summary)


lambda_handler = make_lambda_handler(app)
