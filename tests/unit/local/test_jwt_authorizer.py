import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from local.jwt_authorizer import JwtAuthorizer, Unauthorized

pytestmark = pytest.mark.unit

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool"
CLIENT = "client123"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def authorizer(signing_key: rsa.RSAPrivateKey) -> JwtAuthorizer:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    jwks = {"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]}
    fetched: list[str] = []

    def fetch(url: str) -> dict[str, Any]:
        fetched.append(url)
        return jwks

    return JwtAuthorizer(issuer=ISSUER, audiences=[CLIENT], jwks_url="http://emulator/pool/jwks", fetch=fetch)


def token(key: rsa.RSAPrivateKey, *, kid: str = "k1", **overrides: Any) -> str:
    now = int(time.time())
    claims = {"sub": "u1", "iss": ISSUER, "client_id": CLIENT, "token_use": "access", "exp": now + 600,
              "iat": now, "username": "ada", **overrides}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


def test_valid_access_token_gives_its_claims(authorizer: JwtAuthorizer, signing_key: rsa.RSAPrivateKey) -> None:
    claims = authorizer.authorize(bearer(token(signing_key)), [])
    assert claims["sub"] == "u1" and claims["username"] == "ada"


def test_id_token_is_checked_by_audience(authorizer: JwtAuthorizer, signing_key: rsa.RSAPrivateKey) -> None:
    id_token = token(signing_key, token_use="id", client_id=None, aud=CLIENT)
    assert authorizer.authorize(bearer(id_token), [])["sub"] == "u1"
    with pytest.raises(Unauthorized):
        authorizer.authorize(bearer(token(signing_key, token_use="id", client_id=None, aud="other")), [])


@pytest.mark.parametrize("overrides", [
    {"exp": int(time.time()) - 5},
    {"iss": "https://cognito-idp.us-east-1.amazonaws.com/other_pool"},
    {"client_id": "someone-else"},
    {"token_use": "refresh"},
    {"token_use": None},
    {"exp": None},
])
def test_tokens_api_gateway_would_refuse(authorizer: JwtAuthorizer, signing_key: rsa.RSAPrivateKey,
                                         overrides: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized):
        authorizer.authorize(bearer(token(signing_key, **overrides)), [])


def test_tampered_and_foreign_signatures_are_refused(authorizer: JwtAuthorizer,
                                                      signing_key: rsa.RSAPrivateKey) -> None:
    good = token(signing_key)
    header, payload, signature = good.split(".")
    with pytest.raises(Unauthorized):
        authorizer.authorize(bearer(f"{header}.{payload}.{signature[:-4]}AAAA"), [])
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthorized):
        authorizer.authorize(bearer(token(foreign)), [])
    with pytest.raises(Unauthorized):
        authorizer.authorize(bearer(token(signing_key, kid="unknown")), [])


def test_missing_or_garbage_header_is_refused(authorizer: JwtAuthorizer) -> None:
    for headers in ({}, {"authorization": ""}, {"authorization": "Bearer "}, bearer("not-a-jwt")):
        with pytest.raises(Unauthorized):
            authorizer.authorize(headers, [])


def test_route_scopes_must_be_granted(authorizer: JwtAuthorizer, signing_key: rsa.RSAPrivateKey) -> None:
    scoped = token(signing_key, scope="streams/write profile")
    assert authorizer.authorize(bearer(scoped), ["streams/write"])["sub"] == "u1"
    with pytest.raises(Unauthorized):
        authorizer.authorize(bearer(scoped), ["admin"])
