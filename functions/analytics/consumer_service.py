"""Analytics rules of the heartbeat consumer: a batch of heartbeats and ingest figures becomes stored figures.

A batch (SQS, partial batch failures) is grouped in memory per stream, merged with recent presence (one query per
stream), then written in a few updates per stream (`analytics.aggregate` does the arithmetic). If a stream's writes
fail, only that stream's records are reported as failed, so SQS retries them alone. Apart from `analytics.service`
because it is another function's: the API's cold start loads neither this nor Powertools' batch utility, and the
consumer's loads no viewer-session code. No boto3 here.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from streamforge.events import EventPublisher, IngestHealth, ViewerCountChanged
from streamforge.observability import logger, metrics

from analytics.aggregate import MAX_AGE_S, NO_SESSION, Heartbeat, aggregate_stream, presence_range
from analytics.repository import INGEST_CODECS, INGEST_NUMBERS, AnalyticsStore

_STREAM_ID = re.compile(r"^st_[a-z2-7]{16}$")
_CODEC_NAME = re.compile(r"^[a-z0-9_]{1,16}$")  # ffmpeg's codec names, as the media task reports them


class InvalidRecord(ValueError):
    """A record that no retry can fix; SQS moves it to the dead-letter queue after its retries."""


def parse_heartbeat(message: dict[str, Any]) -> Heartbeat:
    stream_id, viewer_id = message.get("stream_id"), message.get("viewer_id")
    session_id, at = message.get("session_id") or NO_SESSION, message.get("at")
    if not isinstance(stream_id, str) or not _STREAM_ID.match(stream_id):
        raise InvalidRecord("bad stream_id")
    if not isinstance(viewer_id, str) or not 0 < len(viewer_id) <= 128:
        raise InvalidRecord("bad viewer_id")
    if not isinstance(session_id, str) or len(session_id) > 64:
        raise InvalidRecord("bad session_id")
    if not isinstance(at, (int, float)) or isinstance(at, bool):
        raise InvalidRecord("bad at")
    return Heartbeat(stream_id=stream_id, session_id=session_id, viewer_id=viewer_id, at=float(at))


def parse_ingest_health(event: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    detail = event.get("detail") or {}
    stream_id = detail.get("stream_id")
    if not isinstance(stream_id, str) or not _STREAM_ID.match(stream_id):
        raise InvalidRecord("bad stream_id in Ingest Health")
    try:
        at = datetime.fromisoformat(str(detail["at"]).replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError) as exc:
        raise InvalidRecord("bad at in Ingest Health") from exc
    health: dict[str, Any] = {"at_epoch": at, "at": detail["at"]}
    for name in INGEST_NUMBERS:
        value = detail.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            health[name] = value
    for name in INGEST_CODECS:
        value = detail.get(name)
        if isinstance(value, str) and _CODEC_NAME.match(value):
            health[name] = value
    return stream_id, detail.get("session_id"), health


class _Batch:
    """Collects one invocation's heartbeats; ingest events are small and written as they come."""

    def __init__(self, store: AnalyticsStore) -> None:
        self._store = store
        self.heartbeats: dict[str, list[Heartbeat]] = defaultdict(list)
        self.message_ids: dict[str, list[str]] = defaultdict(list)
        self.changed_counts: dict[str, tuple[str, int]] = {}  # stream -> (session, new live viewer count)

    def add(self, record: SQSRecord) -> None:
        try:
            message = json.loads(record.body)
        except ValueError as exc:
            raise InvalidRecord("body is not JSON") from exc
        if not isinstance(message, dict):
            raise InvalidRecord("body is not an object")
        if message.get("detail-type") == IngestHealth.DETAIL_TYPE:
            # An EventBridge rule may target the queue instead of the function.
            self._store.record_ingest(*parse_ingest_health(message))
            return
        heartbeat = parse_heartbeat(message)
        self.heartbeats[heartbeat.stream_id].append(heartbeat)
        self.message_ids[heartbeat.stream_id].append(record.message_id)

    def flush(self, now: float) -> list[str]:
        """Aggregates and writes per stream; returns the message ids of streams whose writes failed."""
        failed: list[str] = []
        for stream_id, heartbeats in self.heartbeats.items():
            recent = [h for h in heartbeats if now - h.at <= MAX_AGE_S]
            if not recent:
                continue
            try:
                first, last = presence_range(recent, now)
                prior = self._store.load_presence(stream_id, first, last)
                delta = aggregate_stream(stream_id, recent, prior, now)
                count = self._store.apply(delta, now)
                if count is not None:
                    self.changed_counts[stream_id] = (delta.session_id, count)
            except Exception:
                logger.exception("could not aggregate heartbeats", stream_id=stream_id, records=len(heartbeats))
                failed.extend(self.message_ids[stream_id])
        return failed


def announce_viewer_counts(changed: dict[str, tuple[str, int]], publisher: EventPublisher) -> None:
    """`Viewer Count Changed` per stream whose count this batch changed (the fan-out pushes it as `viewers`).

    The counts are already stored, so a failed announcement is logged, not retried with the batch.
    """
    for stream_id, (session_id, count) in changed.items():
        try:
            publisher.publish(ViewerCountChanged(stream_id=stream_id,
                                                 session_id=None if session_id == NO_SESSION else session_id,
                                                 viewer_count=count))
        except Exception:
            logger.exception("could not announce the viewer count", stream_id=stream_id)


def process_sqs_batch(event: dict[str, Any], store: AnalyticsStore, context: Any = None,
                      now: float | None = None, publisher: EventPublisher | None = None) -> dict[str, Any]:
    batch = _Batch(store)
    response: dict[str, Any] = dict(process_partial_response(
        event=event, record_handler=batch.add, processor=BatchProcessor(event_type=EventType.SQS), context=context))
    failures = list(response.get("batchItemFailures", []))
    failures.extend({"itemIdentifier": message_id} for message_id in batch.flush(time.time() if now is None else now))
    if publisher is not None:
        announce_viewer_counts(batch.changed_counts, publisher)
    metrics.add_metric(name="HeartbeatsAggregated", unit="Count",
                       value=sum(len(v) for v in batch.heartbeats.values()))
    return {"batchItemFailures": failures}
