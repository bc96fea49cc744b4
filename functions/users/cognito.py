"""The identity provider interface and its Cognito implementation (plain boto3 `cognito-idp`)."""

from __future__ import annotations

from typing import Any, Protocol

from streamforge.ddb import error_code
from streamforge.errors import BadRequest, Conflict, DomainError, Forbidden, TooManyRequests, Unauthorized


class IdentityProvider(Protocol):
    def sign_up(self, *, username: str, email: str, password: str) -> str:
        """Registers the user and returns its id (the Cognito `sub`)."""
        ...

    def confirm(self, username: str) -> None: ...
    def login(self, *, username: str, password: str) -> dict[str, Any]: ...
    def refresh(self, refresh_token: str) -> dict[str, Any]: ...


def _map_cognito_error(exc: Exception) -> DomainError | None:
    code = error_code(exc)
    mapped: dict[str, DomainError] = {
        "UsernameExistsException": Conflict("this username is taken", code="username_taken"),
        "AliasExistsException": Conflict("this email is already registered", code="email_taken"),
        "InvalidPasswordException": BadRequest("the password does not meet the password policy",
                                               code="weak_password"),
        "NotAuthorizedException": Unauthorized("wrong username, email or password", code="invalid_credentials"),
        "UserNotFoundException": Unauthorized("wrong username, email or password", code="invalid_credentials"),
        "UserNotConfirmedException": Forbidden("the account is not confirmed yet", code="user_not_confirmed"),
        "PasswordResetRequiredException": Forbidden("a password reset is required", code="password_reset_required"),
        "TooManyRequestsException": TooManyRequests("too many requests, retry later"),
        "TooManyFailedAttemptsException": TooManyRequests("too many failed attempts, retry later"),
        "LimitExceededException": TooManyRequests("too many requests, retry later"),
    }
    return mapped.get(code)


def _tokens(result: dict[str, Any], refresh_token: str | None = None) -> dict[str, Any]:
    auth = result["AuthenticationResult"]
    return {
        "access_token": auth["AccessToken"],
        "id_token": auth["IdToken"],
        # REFRESH_TOKEN_AUTH returns no new refresh token unless rotation is on; the old one stays valid.
        "refresh_token": auth.get("RefreshToken") or refresh_token,
        "expires_in": int(auth.get("ExpiresIn", 3600)),
    }


class CognitoIdentityProvider:
    def __init__(self, *, user_pool_id: str, client_id: str, cognito: Any) -> None:
        self._pool = user_pool_id
        self._client_id = client_id
        self._idp = cognito

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = getattr(self._idp, operation)(**kwargs)
        except Exception as exc:
            mapped = _map_cognito_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        return result

    def sign_up(self, *, username: str, email: str, password: str) -> str:
        result = self._call("sign_up", ClientId=self._client_id, Username=username, Password=password,
                            UserAttributes=[{"Name": "email", "Value": email}])
        return str(result["UserSub"])

    def confirm(self, username: str) -> None:
        self._call("admin_confirm_sign_up", UserPoolId=self._pool, Username=username)

    def login(self, *, username: str, password: str) -> dict[str, Any]:
        result = self._call("initiate_auth", ClientId=self._client_id, AuthFlow="USER_PASSWORD_AUTH",
                            AuthParameters={"USERNAME": username, "PASSWORD": password})
        if "AuthenticationResult" not in result:
            # A challenge (new password, MFA) is not something this API can complete.
            raise Forbidden(f"login needs the {result.get('ChallengeName', 'unknown')} challenge",
                            code="challenge_required")
        return _tokens(result)

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        result = self._call("initiate_auth", ClientId=self._client_id, AuthFlow="REFRESH_TOKEN_AUTH",
                            AuthParameters={"REFRESH_TOKEN": refresh_token})
        if "AuthenticationResult" not in result:
            raise Unauthorized("the refresh token is not valid", code="invalid_refresh_token")
        return _tokens(result, refresh_token)
