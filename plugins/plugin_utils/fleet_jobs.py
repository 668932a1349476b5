# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Independent API calls on a bounded thread pool; a finished call may schedule more; a failed one is recorded.

The fleet inventory makes many independent calls (one role per account, one listing per account, region and source,
and, where the Tagging API is denied, one tag lookup per hybrid node). `run_jobs` runs them `max_workers` at a time. Workers only make the call
(`Job.call`); what uses its result (`Job.then`) runs on the calling thread, which is therefore the only one that
touches the collected data (no lock needed) and the only one that schedules follow-up jobs, so no worker ever waits
for another one (a bounded pool cannot deadlock on itself).

Order: by `Job.priority`, then first scheduled first. UNLOCK jobs (a role, the enabled regions, the organization's
accounts) come first since every other call of their account waits for them; then LISTING jobs, long chains of
pages; LOOKUP jobs (one short call per resource) last, where they fill the pool while the last listings run instead
of holding back the listings and roles not started yet (run depth first, per-node tag lookups of the first regions
once kept an account's role and the Azure listings waiting for half of a cold run).

A job that raises one of `expected_errors` (the SDKs' service and connection errors, after their own retries) is
a `JobFailure` naming where it happened; its follow-ups never run. Anything else is a bug and propagates.
"""

from __future__ import annotations

import heapq
import itertools
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
from dataclasses import dataclass
from typing import Any
from typing import Callable
from typing import Iterable
from typing import Optional


UNLOCK, LISTING, LOOKUP = 0, 1, 2  # Job.priority, first to run first (see the module docstring)


@dataclass
class Job:
    """One call. `where` names it for a failure message ("account 123456789012 eu-west-1 ssm")."""

    where: str
    call: Callable[[], Any]
    then: Optional[Callable[[Any], Optional[Iterable["Job"]]]] = None
    priority: int = LISTING


@dataclass
class JobFailure:
    where: str
    error: BaseException

    def __str__(self) -> str:
        return f"{self.where}: {describe_error(self.error)}"


_MESSAGE_LENGTH = 400


def describe_error(error: BaseException) -> str:
    """The SDK's own message (botocore's names the error code and the operation) on one line (Azure's span several),
    cut short when a proxy or load balancer answered with a whole HTML page."""
    message = " ".join((str(error).strip() or type(error).__name__).split())
    return message if len(message) <= _MESSAGE_LENGTH else message[:_MESSAGE_LENGTH] + "..."


def run_jobs(jobs: Iterable[Job], max_workers: int, expected_errors: tuple) -> list[JobFailure]:
    """Run `jobs` and every follow-up they schedule, at most `max_workers` at a time, in priority order (the module
    docstring); return the failures. Jobs that finish together are handled in the order they were started (one
    worker: everything runs in a fixed order)."""
    failures: list[JobFailure] = []
    order = itertools.count()
    ready: list = []

    def schedule(scheduled: Optional[Iterable[Job]]) -> None:
        for job in scheduled or ():
            heapq.heappush(ready, (job.priority, next(order), job))

    schedule(jobs)
    running: dict = {}
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fleet-inventory") as pool:
        while ready or running:
            while ready and len(running) < max_workers:
                _priority, started, job = heapq.heappop(ready)
                running[pool.submit(job.call)] = (started, job)
            done = wait(running, return_when=FIRST_COMPLETED).done
            for future in sorted(done, key=lambda finished: running[finished][0]):
                job = running.pop(future)[1]
                try:
                    result = future.result()
                except expected_errors as error:
                    failures.append(JobFailure(job.where, error))
                    continue
                schedule(job.then(result) if job.then else None)
    return failures
