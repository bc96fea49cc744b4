"""The whole platform on one machine, assembled from the synthesized template.

`make dev` runs it on the standard ports; tests run it on free ports beside a running `make dev`. The AWS
services come from an embedded moto, or from LocalStack with moto for what LocalStack lacks (local/emulators.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from local import localstack
from local.cdn import Cdn, media_bucket_of
from local.docs import ApiDocs
from local.edge import EDGE_STACK_NAME, load_edge_rules
from local.emulators import EMULATOR_PROCESS, SERVICES, Endpoints
from local.event_sources import QueuePoller, discover_sources
from local.functions import FunctionRuntime, forward_lines, function_specs, worker_base_env
from local.http_gateway import HttpGateway, load_http_api
from local.provision import Provisioner
from local.template import Template
from local.tls import self_signed_certificate
from local.ws_gateway import WebSocketGateway, load_websocket_api

log = logging.getLogger("streamforge.local")

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
MEDIA_STOP_GRACE_S = 3.0
EMULATOR_START_TIMEOUT_S = 30.0
MAX_REQUEST_LINE_BYTES = 64 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def port_answers(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        port: int = s.getsockname()[1]
        return port


def udp_port_taken(port: int) -> bool:
    """Whether something is bound to UDP `port` (SRT listens on UDP, so nothing answers a TCP connect)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
        return False


@dataclass
class Ports:
    api: int = 8080
    rtmp: int = 1935
    cdn: int = 8084
    websocket: int = 8085
    web: int = 3000
    emulator: int = 4566
    whip: int = 8889  # the media task's HTTP port: WHIP ingest and the LL-HLS origin (/ll/, behind the CDN)
    srt: int = 9000  # UDP
    rtmps: int = 1936  # RTMPS with a self-signed certificate
    moto: int = 4567  # beside LocalStack: moto for the services LocalStack lacks

    @classmethod
    def from_env(cls) -> Ports:
        defaults = cls()
        return cls(**{name: int(os.environ.get(f"STREAMFORGE_{name.upper()}_PORT", getattr(defaults, name)))
                      for name in defaults.__dataclass_fields__})

    @classmethod
    def free(cls) -> Ports:
        return cls(**{name: free_udp_port() if name == "srt" else free_port() for name in cls.__dataclass_fields__})


@dataclass
class PlatformConfig:
    assembly_dir: Path = REPO_ROOT / "cdk.out"
    ports: Ports = field(default_factory=Ports)
    endpoint_url: str | None = None  # an emulator already running (LocalStack, say); else moto is embedded
    public_host: str = LOOPBACK
    with_media: bool = True
    media_env: dict[str, str] = field(default_factory=dict)  # e.g. a short reconnect grace for tests
    web_root: Path = REPO_ROOT / "web"
    # The edge's per-client limits (the web ACL's rate rules). Tests that share one platform, and so one client
    # address, turn them off; tests of the limits run a platform of their own with them on.
    edge_limits: bool = True
    # Suffixes every resource name, so platforms sharing one long-lived emulator (tests on LocalStack) share no data.
    namespace: str = ""

    @property
    def urls(self) -> dict[str, str]:
        host, ports = self.public_host, self.ports
        return {
            "api": f"http://{host}:{ports.api}",
            "docs": f"http://{host}:{ports.api}/docs",
            "websocket": f"ws://{host}:{ports.websocket}",
            "rtmp": f"rtmp://{host}:{ports.rtmp}/live",
            "rtmps": f"rtmps://{host}:{ports.rtmps}/live",
            "whip": f"http://{host}:{ports.whip}/whip",
            "srt": f"srt://{host}:{ports.srt}",
            "cdn": f"http://{host}:{ports.cdn}",
            "dashboard": f"http://{host}:{ports.web}",
            "emulator": self.endpoint_url or f"http://{LOOPBACK}:{ports.emulator}",
        }

    @property
    def dashboard_config(self) -> dict[str, str]:
        """What the dashboard reads from /config.json; the deployed dashboard gets the same keys from CDK."""
        urls = self.urls
        return {"apiUrl": urls["api"], "websocketUrl": urls["websocket"], "cdnUrl": urls["cdn"],
                "rtmpUrl": urls["rtmp"]}


class LocalPlatform:
    def __init__(self, config: PlatformConfig) -> None:
        self.config = config
        self.template = Template.load(config.assembly_dir)
        self.endpoint_url = config.urls["emulator"]
        self.endpoints = Endpoints(self.endpoint_url)
        self._moto: asyncio.subprocess.Process | None = None
        self._runners: list[web.AppRunner] = []
        self._pollers: list[QueuePoller] = []
        self._media: asyncio.subprocess.Process | None = None
        self._media_logs: asyncio.Task[None] | None = None
        self._emulator_logs: asyncio.Task[None] | None = None
        self.runtime: FunctionRuntime | None = None
        self.ws_gateway: WebSocketGateway | None = None

    # Values that in AWS come from CloudFront, the NLB and the WebSocket stage.
    def local_overrides(self) -> dict[str, str]:
        urls = self.config.urls
        return {"CDN_BASE_URL": urls["cdn"], "RTMP_INGEST_URL": urls["rtmp"], "WHIP_INGEST_URL": urls["whip"],
                "SRT_INGEST_URL": urls["srt"],
                "WEBSOCKET_MANAGEMENT_URL": f"http://{LOOPBACK}:{self.config.ports.websocket}",
                "AUTO_CONFIRM_SIGNUP": os.environ.get("STREAMFORGE_AUTO_CONFIRM_SIGNUP", "true")}

    def ports_in_use(self) -> list[str]:
        ports = self.config.ports
        wanted = {name: getattr(ports, name) for name in ports.__dataclass_fields__}
        if self.config.endpoint_url is not None:
            wanted.pop("emulator")
        else:
            wanted.pop("moto")
        media = ("rtmp", "rtmps", "whip", "srt")
        if not self.config.with_media:
            for name in media:
                wanted.pop(name)
        taken = [f"{name} :{port}" for name, port in wanted.items() if name != "srt" and port_answers(port)]
        if self.config.with_media and udp_port_taken(ports.srt):
            taken.append(f"srt :{ports.srt}/udp")
        return taken

    async def start(self) -> None:
        busy = self.ports_in_use()
        if busy:
            raise OSError(f"ports already in use: {', '.join(busy)} (another `make dev`? Change them with "
                          "STREAMFORGE_<NAME>_PORT, or set AWS_ENDPOINT_URL to use a running emulator)")
        if self.config.endpoint_url is None:
            await self._start_emulator(self.config.ports.emulator)
        else:
            await self._fill_in_for_localstack()
        provisioner = Provisioner(self.template, endpoints=self.endpoints, namespace=self.config.namespace)
        await asyncio.to_thread(provisioner.provision)
        overrides = self.local_overrides()
        self.runtime = FunctionRuntime(function_specs(self.template, overrides=overrides),
                                       base_env=worker_base_env(self.endpoints))
        await self.runtime.start()
        for source in await asyncio.to_thread(discover_sources, self.template, provisioner):
            poller = QueuePoller(source, self.runtime, endpoint_url=self.endpoints.of("sqs"))
            poller.start()
            self._pollers.append(poller)
        docs = ApiDocs(pools=self.runtime.pools, public_api_url=self.config.urls["api"],
                       web_root=self.config.web_root)
        edge = load_edge_rules(Template.load(self.config.assembly_dir, EDGE_STACK_NAME)) if self.config.edge_limits \
            else None
        http = HttpGateway(load_http_api(self.template, endpoint_url=self.endpoints.of("cognito-idp")), self.runtime,
                           extra_routes={("GET", "/health"): self.health, **docs.routes()}, edge=edge)
        self.ws_gateway = WebSocketGateway(load_websocket_api(self.template), self.runtime)
        cdn = Cdn(bucket=media_bucket_of(self.template), endpoint_url=self.endpoints.of("s3"),
                  ll_origin=f"http://{LOOPBACK}:{self.config.ports.whip}" if self.config.with_media else None)
        ports = self.config.ports
        await self._serve(http.app(), ports.api)
        await self._serve(self.ws_gateway.app(), ports.websocket)
        await self._serve(cdn.app(), ports.cdn)
        await self._serve(self._web_app(), ports.web)
        if self.config.with_media:
            await self._start_media(overrides)

    async def _fill_in_for_localstack(self) -> None:
        """When the emulator is a LocalStack, moto serves what it lacks; any other emulator serves everything."""
        offered = await asyncio.to_thread(localstack.services, self.endpoint_url)
        lacking = [service for service in SERVICES if offered is not None and service not in offered]
        if lacking:
            await self._start_emulator(self.config.ports.moto)
            moto = f"http://{LOOPBACK}:{self.config.ports.moto}"
            self.endpoints = Endpoints(self.endpoint_url, {service: moto for service in lacking})
            log.info("LocalStack at %s has no %s: moto serves them on %s", self.endpoint_url, ", ".join(lacking),
                     moto)

    async def _start_emulator(self, port: int) -> None:
        """moto in a process of its own: in-process moto servers share one state, so two platforms would mix."""
        self._moto = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, **EMULATOR_PROCESS)
        self._emulator_logs = asyncio.create_task(forward_lines(self._moto.stdout, logging.getLogger("moto.server"),
                                                               level=logging.DEBUG))
        deadline = asyncio.get_running_loop().time() + EMULATOR_START_TIMEOUT_S
        while not await asyncio.to_thread(self._emulator_answers, f"http://{LOOPBACK}:{port}"):
            if self._moto.returncode is not None or asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"the moto server did not start on :{port}")
            await asyncio.sleep(0.1)

    async def _serve(self, app: web.Application, port: int) -> None:
        # aiohttp's 8 KB line limit would answer a long URL with its own text/plain 400 before any gateway code.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1, max_line_size=MAX_REQUEST_LINE_BYTES,
                               max_field_size=MAX_REQUEST_LINE_BYTES)
        await runner.setup()
        await web.TCPSite(runner, LOOPBACK if self.config.public_host == LOOPBACK else "0.0.0.0", port,
                          reuse_address=True).start()
        self._runners.append(runner)

    def _web_app(self) -> web.Application:
        app = web.Application()
        config = self.config.dashboard_config

        async def runtime_config(_: web.Request) -> web.Response:
            return web.json_response(config, headers={"Cache-Control": "no-store"})

        async def index(_: web.Request) -> web.StreamResponse:
            return web.FileResponse(self.config.web_root / "index.html")

        async def openapi(_: web.Request) -> web.StreamResponse:
            return web.FileResponse(REPO_ROOT / "docs" / "openapi.json", headers={"Cache-Control": "no-cache"})

        app.router.add_get("/config.json", runtime_config)
        app.router.add_get("/openapi.json", openapi)
        app.router.add_get("/", index)
        app.router.add_static("/", self.config.web_root, follow_symlinks=False)
        return app

    def media_environment(self, overrides: dict[str, str]) -> dict[str, str]:
        """The Fargate container's environment from the template, pointed at the local emulator."""
        env: dict[str, str] = {}
        declared: set[str] = set()
        for _, props in self.template.of_type("AWS::ECS::TaskDefinition"):
            for container in props.get("ContainerDefinitions", []):
                for variable in container.get("Environment", []):
                    declared.add(variable["Name"])
                    value = self.template.try_resolve(variable["Value"])
                    if value is not None:
                        env[variable["Name"]] = str(value)
        env.update({k: v for k, v in overrides.items() if k in declared})
        env.update({k: v for k, v in os.environ.items() if k.startswith("STREAMFORGE_")})
        env.update(self.config.media_env)
        base = worker_base_env(self.endpoints)
        pythonpath = os.pathsep.join(str(REPO_ROOT / p) for p in ("media_tasks", "layers/shared/python"))
        ports = self.config.ports
        cert, key = self_signed_certificate(REPO_ROOT / "build" / "rtmps", self.config.public_host)
        return {**base, **env, "RTMP_PORT": str(ports.rtmp), "MEDIA_HTTP_PORT": str(ports.whip),
                "SRT_PORT": str(ports.srt), "RTMPS_PORT": str(ports.rtmps), "RTMPS_CERT_FILE": str(cert),
                "RTMPS_KEY_FILE": str(key), "PYTHONPATH": pythonpath}

    async def _start_media(self, overrides: dict[str, str]) -> None:
        self._media = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streamforge_media", env=self.media_environment(overrides), cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        media_log = logging.getLogger("streamforge.media")
        self._media_logs = asyncio.create_task(forward_lines(self._media.stdout, media_log))

    async def health(self, _: web.Request | None = None) -> web.Response:
        ports = self.config.ports
        emulators = {self.endpoints.default, *self.endpoints.elsewhere.values()}
        emulators_up = await asyncio.gather(*(asyncio.to_thread(self._emulator_answers, url) for url in emulators))
        components: dict[str, Any] = {
            "emulator": "ok" if all(emulators_up) else "down",
            "http_api": "ok",
            "websocket": "ok" if port_answers(ports.websocket) else "down",
            "cdn": "ok" if port_answers(ports.cdn) else "down",
            "dashboard": "ok" if port_answers(ports.web) else "down",
            "functions": self.runtime.health() if self.runtime else {},
        }
        if self.config.with_media:
            alive = self._media is not None and self._media.returncode is None
            answering = all(port_answers(p) for p in (ports.rtmp, ports.rtmps, ports.whip))
            components["media_ingest"] = "ok" if alive and answering else "down"
        states = [v for v in components.values() if isinstance(v, str)] + list(components["functions"].values())
        healthy = all(state == "ok" for state in states)
        return web.json_response({"status": "ok" if healthy else "degraded", "components": components},
                                 status=200 if healthy else 503, headers={"Cache-Control": "no-store"})

    @staticmethod
    def _emulator_answers(endpoint_url: str) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{endpoint_url}/moto-api/", timeout=2):
                return True
        except OSError as error:
            # LocalStack and others answer on the root; any HTTP answer means alive.
            return hasattr(error, "code")

    async def wait_healthy(self, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            response = await self.health()
            if response.status == 200:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"platform not healthy: {response.text}")
            if self._media is not None and self._media.returncode is not None:
                raise RuntimeError(f"media task exited with {self._media.returncode}")
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        if self._media is not None and self._media.returncode is None:
            self._media.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._media.wait(), MEDIA_STOP_GRACE_S)
            except TimeoutError:
                self._media.kill()
                await self._media.wait()
        if self._media_logs is not None:
            await asyncio.wait([self._media_logs], timeout=1)
        for poller in self._pollers:
            await poller.stop()
        if self.ws_gateway:
            await self.ws_gateway.close_all()
        for runner in self._runners:
            await runner.cleanup()
        if self.runtime:
            await self.runtime.stop()
        if self._moto is not None and self._moto.returncode is None:
            self._moto.terminate()
            await self._moto.wait()
