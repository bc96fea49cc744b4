import pytest

from local.ws_gateway import WebSocketApi, WebSocketGateway

pytestmark = pytest.mark.unit


@pytest.fixture
def gateway() -> WebSocketGateway:
    api = WebSocketApi(api_id="Ws", selection_expression="$request.body.action",
                       routes={"$connect": "Fn", "$default": "Fn", "subscribe": "Fn", "unsubscribe": "Fn"})
    return WebSocketGateway(api, runtime=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("body", "route"), [
    ('{"action": "subscribe", "stream_id": "st_1"}', "subscribe"),
    ('{"action": "unsubscribe"}', "unsubscribe"),
    ('{"action": "$connect"}', "$default"),
    ('{"action": "nope"}', "$default"),
    ('{"action": 3}', "$default"),
    ('["subscribe"]', "$default"),
    ("not json", "$default"),
])
def test_route_selection_follows_the_expression(gateway: WebSocketGateway, body: str, route: str) -> None:
    assert gateway._select_route(body) == route
