"""The reference for the functions' cold-start imports: a handler as Powertools' documentation writes one.

Logger, Tracer and Metrics, and an HTTP API resolver with validation, one pydantic model and one route.
StreamForge's functions import the same stack, with a tracer that loads the X-Ray SDK only when tracing is on.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

logger, tracer, metrics = Logger(), Tracer(), Metrics(namespace="Reference")
app = APIGatewayHttpResolver(enable_validation=True)


class Pong(BaseModel):
    ok: bool


@app.get("/ping")
@tracer.capture_method
def ping() -> Pong:
    return Pong(ok=True)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
