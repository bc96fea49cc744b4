"""Auth and users API (HTTP API routes `/v1/auth/*`, `/v1/users/*`): thin routes over `UsersService`."""

from functools import cache
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.metrics import MetricUnit
from streamforge.api import AUTH, create_resolver, make_lambda_handler, require_caller, responses
from streamforge.aws import client
from streamforge.config import EnvConfig
from streamforge.observability import metrics
from streamforge.streams import StreamsReader

from users.cognito import CognitoIdentityProvider
from users.models import (
    FollowState,
    LoginRequest,
    MyProfile,
    PublicProfile,
    RefreshRequest,
    SignupRequest,
    SignupResponse,
    TokenResponse,
    UpdateProfileRequest,
)
from users.repository import DynamoUsersRepository
from users.service import UsersService


class UsersConfig(EnvConfig):
    users_table: str
    streams_table: str
    user_pool_id: str
    user_pool_client_id: str
    cdn_base_url: str
    auto_confirm_signup: bool = False


@cache
def service() -> UsersService:
    cfg = UsersConfig.from_env()
    ddb = client("dynamodb")
    return UsersService(
        idp=CognitoIdentityProvider(user_pool_id=cfg.user_pool_id, client_id=cfg.user_pool_client_id,
                                    cognito=client("cognito-idp")),
        repo=DynamoUsersRepository(table=cfg.users_table, dynamodb=ddb),
        streams=StreamsReader(cfg.streams_table, ddb),
        cdn_base_url=cfg.cdn_base_url,
        auto_confirm=cfg.auto_confirm_signup,
    )


app = create_resolver()

UsernameParam = Annotated[str, Path(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_]{3,32}$",
                                    description="Username (case-insensitive)")]


@app.post("/v1/auth/signup", status_code=201, tags=["auth"], summary="Sign up",
          responses=responses(201, SignupResponse, 409, 429))
def signup(body: Annotated[SignupRequest, Body()]) -> SignupResponse:
    created = service().sign_up(email=body.email, username=body.username, password=body.password)
    metrics.add_metric(name="UserSignedUp", unit=MetricUnit.Count, value=1)
    return SignupResponse.model_validate(created)


@app.post("/v1/auth/login", tags=["auth"], summary="Log in with username or email",
          responses=responses(200, TokenResponse, 401, 403, 429))
def login(body: Annotated[LoginRequest, Body()]) -> TokenResponse:
    return TokenResponse.model_validate(service().login(username=body.username, email=body.email,
                                                        password=body.password))


@app.post("/v1/auth/refresh", tags=["auth"], summary="Exchange a refresh token for new tokens",
          responses=responses(200, TokenResponse, 401, 429))
def refresh(body: Annotated[RefreshRequest, Body()]) -> TokenResponse:
    return TokenResponse.model_validate(service().refresh(body.refresh_token))


@app.get("/v1/users/me", security=AUTH, tags=["users"], summary="My profile",
         responses=responses(200, MyProfile, 401, 404))
def get_me() -> MyProfile:
    return MyProfile.model_validate(service().me(require_caller(app).user_id))


@app.patch("/v1/users/me", security=AUTH, tags=["users"], summary="Update my profile",
           responses=responses(200, MyProfile, 401, 404))
def update_me(body: Annotated[UpdateProfileRequest, Body()]) -> MyProfile:
    caller = require_caller(app)
    return MyProfile.model_validate(service().update_me(caller.user_id, body.model_dump(exclude_unset=True)))


@app.get("/v1/users/<username>", tags=["users"], summary="A channel's public profile",
         responses=responses(200, PublicProfile, 404))
def get_user(username: UsernameParam) -> PublicProfile:
    return PublicProfile.model_validate(service().public_profile(username.lower()))


@app.put("/v1/users/<username>/follow", security=AUTH, tags=["users"], summary="Follow a channel (idempotent)",
         responses=responses(200, FollowState, 401, 404, 409))
def follow(username: UsernameParam) -> FollowState:
    caller = require_caller(app)
    return FollowState.model_validate(service().follow(caller.user_id, username.lower()))


@app.delete("/v1/users/<username>/follow", security=AUTH, tags=["users"], summary="Unfollow a channel (idempotent)",
            responses=responses(200, FollowState, 401, 404, 409))
def unfollow(username: UsernameParam) -> FollowState:
    caller = require_caller(app)
    return FollowState.model_validate(service().unfollow(caller.user_id, username.lower()))


lambda_handler = make_lambda_handler(app)
