"""A small client for the lab control API (tests, the demo and bench use it)."""
from __future__ import annotations

import json
import os
import urllib.request
from urllib.parse import urlencode


class LabClient:
    def __init__(self, url: str | None = None) -> None:
        self.url = (url or os.environ["FLEETLAB_CONTROL_URL"]).rstrip("/")

    def _request(self, method: str, path: str, body: dict | None = None, **query) -> dict:
        url = self.url + path + (("?" + urlencode(query)) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            raise RuntimeError(f"lab control {method} {path}: HTTP {err.code}: {detail}") from None

    def get(self, path: str, **query) -> dict:
        return self._request("GET", path, **query)

    def post(self, path: str, body: dict | None = None) -> dict:
        return self._request("POST", path, body or {})
