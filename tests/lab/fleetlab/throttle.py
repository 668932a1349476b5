"""Optional request throttling, answered with ThrottlingException like AWS.

Two modes, both off by default and set through the control API:
* `rates`: a token bucket per (account, region, operation), refilled at `rate` requests per second with a burst
  of `burst` (AWS applies its SSM API rate limits per account and region and per API; it publishes no figures,
  so the numbers are the caller's).
* `ratio`: a seeded random fraction of calls is throttled, to test retries under a given failure rate.
"""
from __future__ import annotations

import random
import threading
import time

from .errors import ThrottlingException


class _Bucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.capacity = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Throttle:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.configure({})

    def configure(self, config: dict) -> dict:
        """config: {"rates": {"DescribeInstancePatches": 5, "*": 20}, "burst": 5, "ratio": 0.3, "seed": 1,
        "operations": [...] (ratio applies to these only; all when absent)}."""
        with self._lock:
            self.rates = dict(config.get("rates") or {})
            self.burst = float(config.get("burst") or 1)
            self.ratio = float(config.get("ratio") or 0)
            self.ratio_operations = set(config.get("operations") or [])
            self.random = random.Random(config.get("seed", 1))
            self.buckets: dict[tuple[str, str, str], _Bucket] = {}
            self.counts = {"allowed": 0, "throttled": 0}
            return self.describe()

    def describe(self) -> dict:
        return {
            "rates": self.rates,
            "burst": self.burst,
            "ratio": self.ratio,
            "operations": sorted(self.ratio_operations),
            "counts": dict(self.counts),
        }

    def check(self, account: str, region: str, operation: str) -> None:
        with self._lock:
            throttled = False
            if self.ratio and (not self.ratio_operations or operation in self.ratio_operations):
                throttled = self.random.random() < self.ratio
            rate = self.rates.get(operation, self.rates.get("*"))
            if not throttled and rate:
                key = (account, region, operation)
                bucket = self.buckets.get(key)
                if bucket is None:
                    bucket = self.buckets[key] = _Bucket(float(rate), max(self.burst, 1.0))
                throttled = not bucket.take()
            self.counts["throttled" if throttled else "allowed"] += 1
        if throttled:
            raise ThrottlingException("Rate exceeded")


THROTTLE = Throttle()
