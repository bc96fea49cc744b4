"""Where every context's DynamoDB tables live: one construct scope (`Data`), one way to make a table.

Each bounded context declares its own tables (infra/streams.py, users.py, analytics.py, notifications.py) and adds
them here. The scope keeps the construct path every table has always had (`StreamForge/Data/<TableId>`), so the
regroup by context moved no table: a DynamoDB table whose logical id changed would be replaced, and emptied.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.support import pin_logical_id


@dataclass(frozen=True)
class Index:
    """A global secondary index on string keys."""

    name: str
    partition_key: str
    sort_key: str


@dataclass(frozen=True)
class TableSpec:
    """A table's string keys, global secondary indexes and TTL attribute (docs/contracts.md)."""

    partition_key: str
    sort_key: str | None = None
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None


# The single-table layout of the users and connections tables: one overloaded index.
GSI1 = Index("gsi1", "gsi1pk", "gsi1sk")


def _key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class Tables(Construct):
    """On-demand, point-in-time-recovered tables whose logical id is their construct id."""

    def add(self, table_id: str, spec: TableSpec) -> dynamodb.Table:
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
        return table
