"""What triggers functions besides the APIs: SQS event source mappings and EventBridge rule targets.

The emulator cannot invoke Lambda, so both become SQS queues that a poller drains into the
function's worker, with the event shapes Lambda would use. Partial batch failures are honoured:
only the records the handler reports as failed stay on the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from local.functions import FunctionRuntime, InvocationError
from local.provision import Provisioner, emulator_client
from local.template import LOCAL_REGION, Template

log = logging.getLogger("streamforge.local.events")

LONG_POLL_S = 1


@dataclass
class QueueSource:
    function_id: str
    queue_url: str
    queue_arn: str
    batch_size: int
    unwrap_eventbridge: bool  # True: each message is an EventBridge event for a rule target
    partial_failures: bool


def discover_sources(template: Template, provisioner: Provisioner) -> list[QueueSource]:
    sources = []
    queue_by_arn = {r.attributes.get("Arn"): r for r in template.resolved.values()}
    for _, props in template.of_type("AWS::Lambda::EventSourceMapping"):
        arn = template.try_resolve(props.get("EventSourceArn"))
        if not arn or ":sqs:" not in arn or arn not in queue_by_arn:
            continue
        sources.append(QueueSource(
            function_id=template.logical_id_of(props["FunctionName"]), queue_url=queue_by_arn[arn].ref,
            queue_arn=arn, batch_size=min(int(props.get("BatchSize", 10)), 10),
            unwrap_eventbridge=False,
            partial_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
        ))
    lambda_types = {"AWS::Lambda::Function", "AWS::Lambda::Alias"}
    for rule_id, props in template.of_type("AWS::Events::Rule"):
        for target in props.get("Targets", []):
            try:
                function_id = template.logical_id_of(target["Arn"])
            except LookupError:
                continue
            if template.resources.get(function_id, {}).get("Type") not in lambda_types:
                continue
            url, arn = provisioner.shadow_queue_for_rule(rule_id, target["Id"])
            sources.append(QueueSource(function_id=function_id, queue_url=url, queue_arn=arn, batch_size=1,
                                       unwrap_eventbridge=True, partial_failures=False))
    return sources


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": LOCAL_REGION,
    }


class QueuePoller:
    def __init__(self, source: QueueSource, runtime: FunctionRuntime, *, endpoint_url: str) -> None:
        self.source = source
        self.runtime = runtime
        self._sqs = emulator_client("sqs", endpoint_url)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("poller for %s failed; retrying", self.source.function_id)
                await asyncio.sleep(LONG_POLL_S)

    async def poll_once(self) -> int:
        received = await asyncio.to_thread(
            self._sqs.receive_message, QueueUrl=self.source.queue_url, MaxNumberOfMessages=self.source.batch_size,
            WaitTimeSeconds=LONG_POLL_S, AttributeNames=["All"], MessageAttributeNames=["All"])
        messages = received.get("Messages", [])
        if not messages:
            return 0
        if self.source.unwrap_eventbridge:
            done = []
            for message in messages:
                try:
                    await self.runtime.invoke(self.source.function_id, json.loads(message["Body"]))
                    done.append(message)
                except InvocationError as error:
                    log.error("rule target %s failed: %s", self.source.function_id, error)
            await self._delete(done)
            return len(done)
        event = {"Records": [sqs_record(m, self.source.queue_arn) for m in messages]}
        try:
            result = await self.runtime.invoke(self.source.function_id, event)
        except InvocationError as error:
            log.error("batch for %s failed; it stays on the queue: %s", self.source.function_id, error)
            return 0
        failed = set()
        if self.source.partial_failures and isinstance(result, dict):
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        await self._delete(done)
        return len(done)

    async def _delete(self, messages: list[dict[str, Any]]) -> None:
        if messages:
            await asyncio.to_thread(self._sqs.delete_message_batch, QueueUrl=self.source.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
