"""Users bounded context: accounts (Cognito sign-up, login, refresh), profiles and follows, and UsersFunction that
serves them over HTTP.

Built in the stack's passes (infra/stack.py): its table first, since other contexts read it, then its function and
grants. Its HTTP routes are the operations of docs/openapi.json that its handler declares.
"""

from __future__ import annotations

from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_

from infra import constants as c
from infra.functions import Functions
from infra.tables import GSI1, Tables, TableSpec


class Users:
    """Not a construct scope of its own: its resources keep the construct paths, so the logical ids, they had."""

    def __init__(self, *, tables: Tables) -> None:
        self.users = tables.add(c.USERS_TABLE, TableSpec("pk", "sk", indexes=(GSI1,)))

    def add_function(
        self,
        *,
        functions: Functions,
        user_pool: cognito.IUserPool,
        user_pool_client: cognito.IUserPoolClient,
        streams_table: dynamodb.ITable,
        auto_confirm_signup: bool,
        cdn_base_url: str,
    ) -> None:
        # UsersConfig (functions/users/handler.py).
        self.function = functions.add(c.USERS_FUNCTION, environment={
            "STREAMS_TABLE": streams_table.table_name,
            "USERS_TABLE": self.users.table_name,
            "USER_POOL_ID": user_pool.user_pool_id,
            "USER_POOL_CLIENT_ID": user_pool_client.user_pool_client_id,
            "AUTO_CONFIRM_SIGNUP": "true" if auto_confirm_signup else "false",
            "CDN_BASE_URL": cdn_base_url,
        })
        self.users.grant_read_write_data(self.function)
        # A profile shows the channel's live stream.
        streams_table.grant_read_data(self.function)
        user_pool.grant(
            self.function,
            "cognito-idp:SignUp",
            "cognito-idp:AdminConfirmSignUp",
            "cognito-idp:InitiateAuth",
            "cognito-idp:GetUser",
            "cognito-idp:AdminGetUser",
        )

    @property
    def http_functions(self) -> dict[str, lambda_.IFunction]:
        """The functions whose handlers serve HTTP API operations."""
        return {c.USERS_FUNCTION: self.function}
