"""Configuration of the notification functions, from the environment (docs/contracts.md)."""

from __future__ import annotations

from streamforge.config import EnvConfig

# API Gateway closes every WebSocket connection after 2 h, so nothing about one outlives that.
CONNECTION_TTL_S = 2 * 60 * 60


class _Common(EnvConfig):
    connections_table: str
    streams_table: str
    websocket_management_url: str


class HandlerConfig(_Common):
    """`NotificationsFunction`: the WebSocket routes."""

    user_pool_id: str
    # Checked when set: a token must have been issued to this app client.
    user_pool_client_id: str | None = None


class FanoutConfig(_Common):
    """`NotificationsFanoutFunction`: EventBridge stream events to sockets."""

    users_table: str
