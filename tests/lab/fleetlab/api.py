"""How lab handlers become SSM operations of the moto server.

moto dispatches an SSM request by turning the X-Amz-Target action into snake_case and calling that method of
`SimpleSystemManagerResponse`. `install()` puts one method per registered handler there (replacing moto's own
where moto has it wrong or incomplete). Each call: throttle check -> model constraints (ValidationException like
AWS) -> handler under the lab lock -> strict output check against botocore's output shape -> moto serializes.

A handler is `fn(ctx, params) -> dict` registered with `@operation("CreatePatchBaseline")`; `params` is the
request as sent (AWS member names), the result uses AWS output member names and datetime for timestamps.
"""
from __future__ import annotations

import collections
import json
import threading
from dataclasses import dataclass
from typing import Callable

from moto.core.responses import ActionResult
from moto.core.utils import camelcase_to_underscores
from moto.ssm.responses import SimpleSystemManagerResponse

from . import model
from .state import LAB, Lab, RegionState
from .throttle import THROTTLE

Handler = Callable[["Context", dict], dict]

OPERATIONS: dict[str, Handler] = {}
VALIDATOR = model.OutputValidator()
_MOTO_ORIGINALS: dict[str, Callable] = {}


class CallCounter:
    """Counts calls per (account, region, operation): lets tests prove how many API calls a module makes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: collections.Counter = collections.Counter()

    def add(self, account: str, region: str, operation: str) -> None:
        with self._lock:
            self.counts[(account, region, operation)] += 1

    def snapshot(self) -> list[dict]:
        with self._lock:
            return [
                {"account": a, "region": r, "operation": o, "count": n}
                for (a, r, o), n in sorted(self.counts.items())
            ]

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()


CALLS = CallCounter()


@dataclass
class Context:
    lab: Lab
    account: str
    region: str
    response: SimpleSystemManagerResponse | None = None

    @property
    def state(self) -> RegionState:
        return self.lab.region(self.account, self.region)

    @property
    def now(self):
        return self.lab.clock.now()


def operation(name: str) -> Callable[[Handler], Handler]:
    """Register `fn` as the lab's implementation of the SSM operation `name` (botocore's operation name)."""
    model.operation_model(name)  # fails at import time for a misspelt operation

    def register(fn: Handler) -> Handler:
        if name in OPERATIONS and OPERATIONS[name] is not fn:
            raise RuntimeError(f"SSM operation {name} registered twice")
        OPERATIONS[name] = fn
        return fn

    return register


def moto_original(name: str) -> Callable | None:
    """moto's own method for an operation the lab replaced (used to delegate e.g. Parameter tags)."""
    return _MOTO_ORIGINALS.get(camelcase_to_underscores(name))


def call(name: str, ctx: Context, params: dict) -> dict:
    """Run a registered operation the way the server does, for in-process callers (windows, Azure)."""
    model.validate_input(name, params)
    with ctx.lab.lock:
        result = OPERATIONS[name](ctx, params) or {}
    VALIDATOR.check(name, result)
    return result


def _make_method(name: str, handler: Handler) -> Callable:
    def method(self: SimpleSystemManagerResponse) -> ActionResult:
        account, region = self.current_account, self.region
        CALLS.add(account, region, name)
        THROTTLE.check(account, region, name)
        params = json.loads(self.body) if self.body else {}
        model.validate_input(name, params)
        ctx = Context(LAB, account, region, self)
        with LAB.lock:
            result = handler(ctx, params) or {}
        VALIDATOR.check(name, result)
        return ActionResult(result)

    method.__name__ = camelcase_to_underscores(name)
    method.__doc__ = f"fleetlab: {name}"
    return method


def install() -> list[str]:
    """Import every handler module and attach the handlers to moto's SSM response class. Idempotent."""
    from . import handlers, sts, tagging  # noqa: F401  (imports register the operations)

    sts.install()
    tagging.install()

    for name, handler in OPERATIONS.items():
        attr = camelcase_to_underscores(name)
        current = getattr(SimpleSystemManagerResponse, attr, None)
        if current is not None and not (current.__doc__ or "").startswith("fleetlab:"):
            _MOTO_ORIGINALS.setdefault(attr, current)
        setattr(SimpleSystemManagerResponse, attr, _make_method(name, handler))
    return sorted(OPERATIONS)
