"""schemathesis against the local gateway: its default check set, every phase, every operation, once with a
signed-in user's token and once anonymous.

The default checks include more than "no 5xx": responses, status codes, content types and headers as documented,
schema-valid requests accepted and schema-violating ones refused, undeclared Content-Types answered 415,
undeclared methods 405 with `Allow`, a missing `Authorization` 401, deleted resources gone. schemathesis runs with
its own runner (`st run`) on the document the gateway serves. Bounded for CI: at most MAX_EXAMPLES cases per
operation in the examples, fuzzing and stateful phases (the coverage phase makes each boundary case once), a fixed
seed, no shrinking, one worker.

Half the time, path parameters and the heartbeat's stream id are real resources of the signed-in user (a live
stream, one of its keys, a channel to follow; DELETE of a stream gets one of its own), so valid input reaches the
handlers' success paths as well as their 404s; the HAR report shows that each operation answered 2xx at least once.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.contract import ARCHITECTURE_OPERATIONS, documented_operations, operations_of
from tests.support.http import call
from tests.support.platform import PlatformThread
from tests.support.streams import go_live
from tests.support.users import SignedInUser, create_stream, sign_up_and_log_in

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 20
SEED = 1
ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Credentials and refresh tokens are never guessed: a valid login or refresh request is answered 401.
NO_SUCCESS_EXPECTED = {("POST", "/v1/auth/login"), ("POST", "/v1/auth/refresh")}


@dataclass
class FuzzWorld:
    api: str
    user: SignedInUser
    stream_id: str  # live, so viewer sessions and heartbeats succeed
    doomed_stream_id: str  # what `DELETE /v1/streams/{id}` gets, so the other operations keep theirs
    key_id: str
    channel: str


@pytest.fixture
def fuzz_world(api_platform: PlatformThread) -> FuzzWorld:
    """Fresh resources for each run: a signed-in run's stateful phase deletes the streams it finds listed."""
    api = api_platform.urls["api"]
    user = sign_up_and_log_in(api, "fuzz")
    stream = create_stream(api, user, "fuzzed")
    go_live(api_platform, stream["id"])
    doomed = create_stream(api, user, "fuzzed, then deleted")
    channel = sign_up_and_log_in(api, "fzch")
    return FuzzWorld(api, user, stream["id"], doomed["id"], stream["ingest"]["key_id"], channel.username)


def _toml(value: Any) -> str:
    # The few shapes this config uses; TOML's basic strings, numbers, booleans and arrays read as JSON does.
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def schemathesis_config(world: FuzzWorld) -> str:
    """The run's `schemathesis.toml`: the bounds, and the real resources as dictionaries drawn half the time."""
    def real(dictionary: str) -> dict[str, Any]:
        return {"dictionary": dictionary, "probability": 0.5}

    lines = [
        f"seed = {SEED}",
        "workers = 1",
        "request-timeout = 30",
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        "no-shrink = true",
        'database = "none"',
        "[dictionaries]",
        f"streams = {_toml({'values': [world.stream_id]})}",
        f"doomed = {_toml({'values': [world.doomed_stream_id]})}",
        f"keys = {_toml({'values': [world.key_id]})}",
        f"channels = {_toml({'values': [world.channel]})}",
        "[parameters]",
        f'"path.id" = {_toml(real("streams"))}',
        f'"path.key_id" = {_toml(real("keys"))}',
        f'"path.username" = {_toml(real("channels"))}',
        f'"body.stream_id" = {_toml(real("streams"))}',
        "[[operations]]",
        'include-path = "/v1/streams/{id}"',
        'include-method = "DELETE"',
        f"parameters = {_toml({'path.id': real('doomed')})}",
    ]
    return "\n".join(lines) + "\n"


def fuzz_rate_per_s() -> int:
    """Below the stage's throttling rate (cdk.json's `apiThrottleRateLimit`, which the local gateway enforces as
    AWS does, before the authorizer): a faster run gets 429s where its checks expect 401s."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    return int(context["apiThrottleRateLimit"] * 0.9)


def run_schemathesis(world: FuzzWorld, tmp_path: Path, *, token: str | None) -> tuple[subprocess.CompletedProcess[str],
                                                                                     dict[tuple[str, str], set[int]]]:
    """`st run` with the default checks and phases; returns its result and the statuses each operation answered."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(schemathesis_config(world))
    har = tmp_path / "run.har"
    command = [str(SCHEMATHESIS), "--config-file", str(config), "--no-color", "run", f"{world.api}/v1/openapi.json",
               "--report", "har", "--report-har-path", str(har), "--rate-limit", f"{fuzz_rate_per_s()}/s"]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200, check=False, cwd=tmp_path)
    return result, statuses_by_operation(json.loads(har.read_text()) if har.exists() else {})


def _operation_patterns() -> list[tuple[tuple[str, str], re.Pattern[str]]]:
    """Each operation's path as a regex, literal paths first (`/v1/users/me` before `/v1/users/{username}`)."""
    operations = sorted(documented_operations(), key=lambda op: op[1].count("{"))
    return [(op, re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(op[1])) + "$"))
            for op in operations]


def statuses_by_operation(har: dict[str, Any]) -> dict[tuple[str, str], set[int]]:
    """The statuses each operation answered in a HAR log, requests to undeclared methods left out."""
    statuses: dict[tuple[str, str], set[int]] = {}
    patterns = _operation_patterns()
    for entry in har.get("log", {}).get("entries", []):
        method = entry["request"]["method"].upper()
        path = "/" + entry["request"]["url"].split("://", 1)[1].split("/", 1)[1].split("?", 1)[0]
        matched = next((op for op, pattern in patterns if pattern.match(path) and op[0] == method), None)
        if matched is not None:
            statuses.setdefault(matched, set()).add(entry["response"]["status"])
    return statuses


def never_succeeded(statuses: dict[tuple[str, str], set[int]],
                    operations: set[tuple[str, str]]) -> dict[tuple[str, str], list[int]]:
    """The operations among `operations` that never answered 2xx, with what they did answer."""
    return {op: sorted(statuses.get(op, set())) for op in operations
            if not any(200 <= status < 300 for status in statuses.get(op, set()))}


def _report(result: subprocess.CompletedProcess[str]) -> str:
    return f"st run exited {result.returncode}\n{result.stdout[-20000:]}\n{result.stderr[-5000:]}"


def test_signed_in_every_operation_passes_the_default_checks_and_succeeds(fuzz_world: FuzzWorld,
                                                                          tmp_path: Path) -> None:
    result, statuses = run_schemathesis(fuzz_world, tmp_path, token=fuzz_world.user.token)
    assert result.returncode == 0, _report(result)
    # Not only 4xx: valid input on the real resources reached every handler's success path.
    unreached = never_succeeded(statuses, documented_operations() - NO_SUCCESS_EXPECTED)
    assert not unreached, f"operations that never answered 2xx: {unreached}"


def test_anonymous_every_operation_passes_the_default_checks(fuzz_world: FuzzWorld, tmp_path: Path) -> None:
    result, statuses = run_schemathesis(fuzz_world, tmp_path, token=None)
    assert result.returncode == 0, _report(result)
    document = call("GET", f"{fuzz_world.api}/v1/openapi.json").json
    public = {(m.upper(), p) for p, ops in document["paths"].items() for m, op in ops.items() if not op.get("security")}
    unreached = never_succeeded(statuses, public - NO_SUCCESS_EXPECTED)
    assert not unreached, f"public operations that never answered 2xx without a token: {unreached}"
    assert statuses.keys() == documented_operations(), "an operation was not exercised"


def test_served_document_is_the_committed_one_with_every_operation(api_platform: PlatformThread) -> None:
    reply = call("GET", f"{api_platform.urls['api']}/v1/openapi.json")
    assert reply.status == 200
    served = reply.json
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    # The gateway sets `servers` to its own address; everything else is the committed document.
    assert served.pop("servers") == [{"url": api_platform.urls["api"]}]
    assert committed.pop("servers") == [{"url": "/"}]
    assert served == committed, "docs/openapi.json drifted from what the gateway serves"
    operations = operations_of(served)
    assert operations >= ARCHITECTURE_OPERATIONS, "an operation ARCHITECTURE.md promises is not served"
    protected = {(m, p) for m, p in operations if served["paths"][p][m.lower()].get("security")}
    assert ("POST", "/v1/streams") in protected and ("GET", "/v1/streams/{id}/analytics") in protected
    assert ("POST", "/v1/analytics/heartbeat") not in protected
    assert ("POST", "/v1/streams/{id}/playback") not in protected


def test_a_body_that_is_not_utf8_is_the_handlers_400(fuzz_world: FuzzWorld) -> None:
    reply = call("PATCH", f"{fuzz_world.api}/v1/streams/{fuzz_world.stream_id}", raw_body=b"\xff\xfe\x0f\x0c\xc3",
                 token=fuzz_world.user.token)
    assert reply.status == 400, reply.raw
    assert reply.json["error"]["code"] == "malformed_json"
