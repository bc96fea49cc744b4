"""Streams bounded context: streams, their keys and sessions, and MetadataFunction that serves them over HTTP
(CRUD, stream keys, status, sessions) and announces their changes on the bus.

Like every context it is built in the stack's passes (infra/stack.py): its tables first, since other contexts
read them, then its function and grants. Its HTTP routes are the operations of docs/openapi.json that its handler
declares.
"""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_

from infra import constants as c
from infra.functions import Functions
from infra.tables import Index, Tables, TableSpec


class Streams:
    """Not a construct scope of its own: its resources keep the construct paths, so the logical ids, they had."""

    def __init__(self, *, tables: Tables) -> None:
        self._tables = tables
        self.streams = tables.add(c.STREAMS_TABLE, TableSpec(
            "stream_id",
            indexes=(Index("by_status", "status", "created_at"), Index("by_owner", "owner_id", "created_at")),
        ))
        self.stream_keys = tables.add(
            c.STREAM_KEYS_TABLE, TableSpec("key_hash", indexes=(Index("by_stream", "stream_id", "created_at"),))
        )
        self.sessions = tables.add(c.SESSIONS_TABLE, TableSpec("stream_id", "session_id"))

    def add_function(
        self,
        *,
        functions: Functions,
        event_bus: events.IEventBus,
        users_table: dynamodb.ITable,
        analytics_table: dynamodb.ITable,
        cdn_base_url: str,
        rtmp_ingest_url: str,
        whip_ingest_url: str,
        srt_ingest_url: str,
    ) -> None:
        # Powertools idempotency records of `POST /v1/streams`: the metadata function's own store.
        self.idempotency = self._tables.add(c.IDEMPOTENCY_TABLE, TableSpec("id", ttl_attribute="expiration"))
        # MetadataConfig (functions/metadata/handler.py).
        self.function = functions.add(c.METADATA_FUNCTION, environment={
            "STREAMS_TABLE": self.streams.table_name,
            "STREAM_KEYS_TABLE": self.stream_keys.table_name,
            "SESSIONS_TABLE": self.sessions.table_name,
            "IDEMPOTENCY_TABLE": self.idempotency.table_name,
            "EVENT_BUS_NAME": event_bus.event_bus_name,
            "CDN_BASE_URL": cdn_base_url,
            "RTMP_INGEST_URL": rtmp_ingest_url,
            "WHIP_INGEST_URL": whip_ingest_url,
            "SRT_INGEST_URL": srt_ingest_url,
        })
        for table in (self.streams, self.stream_keys, self.sessions, self.idempotency):
            table.grant_read_write_data(self.function)
        analytics_table.grant_read_data(self.function)
        users_table.grant_read_data(self.function)
        event_bus.grant_put_events_to(self.function)

    @property
    def http_functions(self) -> dict[str, lambda_.IFunction]:
        """The functions whose handlers serve HTTP API operations."""
        return {c.METADATA_FUNCTION: self.function}
