"""Shared layer rules: cursors, config, attribute conversion, key hashing, OpenAPI drift."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from streamforge import keys
from streamforge.config import ConfigError, EnvConfig
from streamforge.ddb import from_item, to_item
from streamforge.errors import NotFound
from streamforge.pagination import decode_cursor, encode_cursor

from tests.support.contract import ARCHITECTURE_OPERATIONS, operations_of

pytestmark = pytest.mark.unit
KEY_NAMES = frozenset({"stream_id", "status", "created_at"})
LEK = {"stream_id": {"S": "st_aaaaaaaaaaaaaaaa"}, "status": {"S": "live"}, "created_at": {"S": "2026-11-25T10:00Z"}}


def test_cursor_round_trips_and_is_bound_to_its_scope() -> None:
    cursor = encode_cursor(LEK, "by_status|live|")
    assert decode_cursor(cursor, "by_status|live|", KEY_NAMES) == LEK
    with pytest.raises(NotFound):
        decode_cursor(cursor, "by_status|offline|", KEY_NAMES)
    with pytest.raises(NotFound):
        decode_cursor(cursor, "by_status|live|", frozenset({"stream_id"}))


@given(st.text(max_size=300))
def test_no_string_decodes_as_a_cursor_without_the_mac(text: str) -> None:
    with pytest.raises(NotFound):
        decode_cursor(text, "by_status|live|", KEY_NAMES)


def test_env_config_validates_and_coerces() -> None:
    class Config(EnvConfig):
        streams_table: str
        auto_confirm_signup: bool = False

    assert Config.from_env({"STREAMS_TABLE": "t", "AUTO_CONFIRM_SIGNUP": "true"}).auto_confirm_signup is True
    assert Config.from_env({"STREAMS_TABLE": "t"}).auto_confirm_signup is False
    problems = r"STREAMS_TABLE is required; AUTO_CONFIRM_SIGNUP='maybe' is not a valid bool"
    with pytest.raises(ConfigError, match=problems):
        Config.from_env({"AUTO_CONFIRM_SIGNUP": "maybe"})


def test_env_config_refuses_field_types_it_cannot_read_from_the_environment() -> None:
    with pytest.raises(TypeError, match="str, int, float or bool"):
        class Config(EnvConfig):
            ladder: list[str]


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.one_of(
    st.integers(-10**12, 10**12), st.text(max_size=20), st.booleans(),
    st.lists(st.integers(0, 100), max_size=3), st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=3))))
def test_attribute_conversion_round_trips(values: dict[str, object]) -> None:
    assert from_item(to_item(values)) == values


def test_stream_keys_hash_and_compare_in_constant_time() -> None:
    key = keys.generate_stream_key()
    assert keys.key_matches(key, keys.hash_stream_key(key))
    assert not keys.key_matches(key + "x", keys.hash_stream_key(key))
    assert key not in keys.redact(key)


def test_committed_openapi_matches_the_handlers() -> None:
    from openapi_spec import build_openapi, render

    committed = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
    assert committed.read_text() == render(), "docs/openapi.json is stale: run `python -m openapi_spec`"
    document = build_openapi()
    missing = ARCHITECTURE_OPERATIONS - operations_of(document)
    assert not missing, f"operations ARCHITECTURE.md promises that no handler declares: {sorted(missing)}"
    assert "HTTPValidationError" not in json.dumps(document)
    assert document["paths"]["/v1/streams"]["post"]["security"] == [{"bearerAuth": []}]


def test_partial_update_schema_matches_what_it_validates() -> None:
    """Fuzzing found PATCH bodies the schema allowed ({} and nulls) that the API refused with 422."""
    from metadata.models import UpdateStreamRequest
    from users.models import UpdateProfileRequest

    for model in (UpdateStreamRequest, UpdateProfileRequest):
        schema = model.model_json_schema()
        assert schema["minProperties"] == 1 and schema["additionalProperties"] is False
        assert "null" not in json.dumps(schema["properties"])
        for body in ({}, {next(iter(schema["properties"])): None}):
            with pytest.raises(ValidationError):
                model.model_validate(body)
    assert UpdateStreamRequest.model_validate({"title": "x"}).model_fields_set == {"title"}
