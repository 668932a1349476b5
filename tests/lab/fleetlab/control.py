"""The lab control API: what a test (or the demo) does to the world that AWS gives no API for.

Plain JSON over HTTP on 127.0.0.1 (FLEETLAB_CONTROL_URL in .lab/env.sh). Modules add routes with
`@route("POST", "/clock/advance")`; a handler takes (body, query) and returns a JSON-able dict.
"""
from __future__ import annotations

import json
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlparse

from . import api
from .state import LAB
from .throttle import THROTTLE

Route = Callable[[dict, dict], dict]
ROUTES: dict[tuple[str, str], Route] = {}


class ControlError(Exception):
    """A bad control request (HTTP 400 with the message)."""


def route(method: str, path: str) -> Callable[[Route], Route]:
    def register(fn: Route) -> Route:
        ROUTES[(method, path)] = fn
        return fn

    return register


def accounts_route(path: str) -> set:
    """A set of account ids that POST `path` {accounts: [...]} replaces (answers {denied: [...]}): how a test makes
    a service refuse these accounts. The caller's service checks the returned set."""
    accounts: set = set()

    @route("POST", path)
    def _replace(body: dict, query: dict) -> dict:
        accounts.clear()
        accounts.update(str(account) for account in body.get("accounts") or [])
        return {"denied": sorted(accounts)}

    return accounts


@route("GET", "/health")
def _health(body: dict, query: dict) -> dict:
    return {"ok": True, "operations": sorted(api.OPERATIONS), "now": LAB.clock.now().isoformat()}


@route("GET", "/clock")
def _clock(body: dict, query: dict) -> dict:
    return {"now": LAB.clock.now().isoformat(), "offset_days": LAB.clock.offset.total_seconds() / 86400}


@route("POST", "/clock/advance")
def _advance(body: dict, query: dict) -> dict:
    with LAB.lock:
        now = LAB.clock.advance(days=float(body.get("days", 0)), hours=float(body.get("hours", 0)))
    return {"now": now.isoformat(), "offset_days": LAB.clock.offset.total_seconds() / 86400}


@route("GET", "/settings")
def _get_settings(body: dict, query: dict) -> dict:
    return dict(LAB.settings)


@route("POST", "/settings")
def _set_settings(body: dict, query: dict) -> dict:
    """Simulation settings, e.g. {"agent_seconds_per_node": 0.5}: how long the simulated agent takes per node
    (so a run can be observed in progress)."""
    unknown = set(body) - set(LAB.settings)
    if unknown:
        raise ControlError(f"unknown settings {sorted(unknown)}; known: {sorted(LAB.settings)}")
    with LAB.lock:
        LAB.settings.update({key: float(value) for key, value in body.items()})
    return dict(LAB.settings)


@route("GET", "/throttle")
def _get_throttle(body: dict, query: dict) -> dict:
    return THROTTLE.describe()


@route("POST", "/throttle")
def _set_throttle(body: dict, query: dict) -> dict:
    return THROTTLE.configure(body)


@route("GET", "/calls")
def _calls(body: dict, query: dict) -> dict:
    return {"calls": api.CALLS.snapshot()}


@route("POST", "/calls/reset")
def _reset_calls(body: dict, query: dict) -> dict:
    api.CALLS.reset()
    return {"calls": []}


@route("GET", "/validated")
def _validated(body: dict, query: dict) -> dict:
    """Operations whose responses passed the strict output-shape check, with counts (lab self-test)."""
    return {"served": sorted(api.OPERATIONS), "validated": dict(api.VALIDATOR.validated)}


@route("GET", "/install-log")
def _install_log(body: dict, query: dict) -> dict:
    """What the simulated agents installed, as the lab recorded it (to compare reports with)."""
    wanted = {k: v[0] for k, v in query.items() if k in ("account", "region", "node_id", "command_id")}
    with LAB.lock:
        rows = [r for r in LAB.install_log if all(str(r.get(k)) == v for k, v in wanted.items())]
    return {"installs": rows}


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # otherwise every response stalls ~40 ms (Nagle + delayed ACK)
    server_version = "fleetlab-control"

    def log_message(self, fmt: str, *args) -> None:  # keep the lab log for errors only
        pass

    def _serve(self, method: str) -> None:
        url = urlparse(self.path)
        handler = ROUTES.get((method, url.path))
        if handler is None:
            self._reply(404, {"error": f"no route {method} {url.path}", "routes": sorted(p for _, p in ROUTES)})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            self._reply(200, handler(body, parse_qs(url.query)))
        except ControlError as err:
            self._reply(400, {"error": str(err)})
        except Exception as err:  # a lab bug: say so loudly, keep serving
            traceback.print_exc()
            self._reply(500, {"error": f"{type(err).__name__}: {err}"})

    def _reply(self, status: int, payload: dict) -> None:
        data = json.dumps(payload, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")


def start(port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="fleetlab-control", daemon=True).start()
    return server
