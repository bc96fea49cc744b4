"""Data bounded context: the seven DynamoDB tables of docs/contracts.md."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra import constants as c
from infra.support import pin_logical_id


@dataclass(frozen=True)
class _Index:
    name: str
    partition_key: str
    sort_key: str


@dataclass(frozen=True)
class _TableSpec:
    partition_key: str
    sort_key: str | None = None
    indexes: tuple[_Index, ...] = ()
    ttl_attribute: str | None = None


_GSI1 = _Index("gsi1", "gsi1pk", "gsi1sk")

TABLE_SPECS: dict[str, _TableSpec] = {
    c.STREAMS_TABLE: _TableSpec(
        "stream_id",
        indexes=(_Index("by_status", "status", "created_at"), _Index("by_owner", "owner_id", "created_at")),
    ),
    c.STREAM_KEYS_TABLE: _TableSpec("key_hash", indexes=(_Index("by_stream", "stream_id", "created_at"),)),
    c.SESSIONS_TABLE: _TableSpec("stream_id", "session_id"),
    c.USERS_TABLE: _TableSpec("pk", "sk", indexes=(_GSI1,)),
    c.ANALYTICS_TABLE: _TableSpec("pk", "sk", ttl_attribute="expires_at"),
    c.CONNECTIONS_TABLE: _TableSpec("pk", "sk", indexes=(_GSI1,), ttl_attribute="expires_at"),
    c.IDEMPOTENCY_TABLE: _TableSpec("id", ttl_attribute="expiration"),
}


def _key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class Data(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {}
        for table_id, spec in TABLE_SPECS.items():
            table = dynamodb.Table(
                self,
                table_id,
                partition_key=_key(spec.partition_key),
                sort_key=_key(spec.sort_key) if spec.sort_key else None,
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                time_to_live_attribute=spec.ttl_attribute,
            )
            for index in spec.indexes:
                table.add_global_secondary_index(
                    index_name=index.name, partition_key=_key(index.partition_key), sort_key=_key(index.sort_key)
                )
            pin_logical_id(table, table_id)
            self.tables[table_id] = table

    @property
    def streams(self) -> dynamodb.Table:
        return self.tables[c.STREAMS_TABLE]

    @property
    def stream_keys(self) -> dynamodb.Table:
        return self.tables[c.STREAM_KEYS_TABLE]

    @property
    def sessions(self) -> dynamodb.Table:
        return self.tables[c.SESSIONS_TABLE]

    @property
    def users(self) -> dynamodb.Table:
        return self.tables[c.USERS_TABLE]

    @property
    def analytics(self) -> dynamodb.Table:
        return self.tables[c.ANALYTICS_TABLE]

    @property
    def connections(self) -> dynamodb.Table:
        return self.tables[c.CONNECTIONS_TABLE]

    @property
    def idempotency(self) -> dynamodb.Table:
        return self.tables[c.IDEMPOTENCY_TABLE]

    def table_name_environment(self) -> dict[str, str]:
        """The `*_TABLE` variables of docs/contracts.md."""
        return {
            "STREAMS_TABLE": self.streams.table_name,
            "STREAM_KEYS_TABLE": self.stream_keys.table_name,
            "SESSIONS_TABLE": self.sessions.table_name,
            "USERS_TABLE": self.users.table_name,
            "ANALYTICS_TABLE": self.analytics.table_name,
            "CONNECTIONS_TABLE": self.connections.table_name,
            "IDEMPOTENCY_TABLE": self.idempotency.table_name,
        }
