"""Which emulator serves which AWS service for the local platform.

Two modes, chosen by `STREAMFORGE_EMULATOR` (`make dev`) or by the test fixtures:

- `moto` (the default): one embedded moto server serves every service.
- `localstack`: LocalStack serves every service it offers (DynamoDB, S3, SQS, EventBridge, Secrets Manager);
  an embedded moto serves the ones its free edition lacks (Cognito). `AWS_ENDPOINT_URL` names a LocalStack
  already running; without it `make dev` starts one (local/localstack.py).

The functions and the media task get the choice as environment: `AWS_ENDPOINT_URL` for the default emulator and
`AWS_ENDPOINT_URL_<SERVICE_ID>` for each service served elsewhere, which boto3 honours by itself, so nothing under
functions/, layers/ or media_tasks/ knows which emulator it talks to.
"""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.session

MODES = ("moto", "localstack")

# Every service the platform's own code, the functions and the media task call through an emulator. The WebSocket
# management API is not among them: the local WebSocket gateway serves `@connections` itself.
SERVICES = ("dynamodb", "s3", "sqs", "events", "cognito-idp", "secretsmanager")


# Resolved in the parent: a forked child of a threaded process should not load libraries.
_prctl = ctypes.CDLL(None, use_errno=True).prctl
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent() -> None:
    """In the emulator's process before exec: SIGTERM when the process that started it dies, however it dies."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


# How an emulator's process is started: in a session of its own, so the terminal's Ctrl-C (SIGINT to the
# foreground process group) reaches only the platform, which stops the media task and the functions while the
# emulator still takes their last writes (a VOD, a stream going offline), and stops the emulator last.
EMULATOR_PROCESS: dict[str, Any] = {"start_new_session": True, "preexec_fn": _die_with_parent}


def endpoint_variable(service: str) -> str:
    """boto3's per-service endpoint variable: the service id, spaces to underscores, upper-cased
    (`cognito-idp` is `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`)."""
    model = botocore.session.get_session().get_service_model(service)
    return f"AWS_ENDPOINT_URL_{model.service_id.replace(' ', '_').upper()}"


@dataclass(frozen=True)
class Endpoints:
    """The default emulator's URL, and the services some other emulator serves."""

    default: str
    elsewhere: Mapping[str, str] = field(default_factory=dict)

    def of(self, service: str) -> str:
        return self.elsewhere.get(service, self.default)

    def environment(self) -> dict[str, str]:
        """What points boto3 in a function or the media task at these endpoints."""
        return {"AWS_ENDPOINT_URL": self.default,
                **{endpoint_variable(service): url for service, url in sorted(self.elsewhere.items())}}
