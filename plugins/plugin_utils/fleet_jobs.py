# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Independent API calls on a bounded thread pool; a finished call may schedule more; a failed one is recorded.

The fleet inventory makes many independent calls (one role per account, one listing per account, region and source,
one tag lookup per hybrid node). `run_jobs` runs them `max_workers` at a time. Workers only make the call
(`Job.call`); what uses its result (`Job.then`) runs on the calling thread, which is therefore the only one that
touches the collected data (no lock needed) and the only one that schedules follow-up jobs, so no worker ever waits
for another one (a bounded pool cannot deadlock on itself).

A job that raises one of `expected_errors` (the SDKs' service and connection errors, after their own retries) is
a `JobFailure` naming where it happened; its follow-ups never run. Anything else is a bug and propagates.
"""

from __future__ import annotations

import collections
import itertools
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
from dataclasses import dataclass
from typing import Any
from typing import Callable
from typing import Iterable
from typing import Optional


@dataclass
class Job:
    """One call. `where` names it for a failure message ("account 123456789012 eu-west-1 ssm")."""

    where: str
    call: Callable[[], Any]
    then: Optional[Callable[[Any], Optional[Iterable["Job"]]]] = None


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
    """Run `jobs` and every follow-up they schedule, at most `max_workers` at a time; return the failures.

    Follow-ups go first (depth first): a region's tag lookups run as soon as its listing is in, beside the listings
    still running, instead of queueing behind every account not started yet. Jobs that finish together are handled
    in the order they were started (one worker: everything runs in a fixed order).
    """
    failures: list[JobFailure] = []
    ready = collections.deque(jobs)
    order = itertools.count()
    running: dict = {}
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fleet-inventory") as pool:
        while ready or running:
            while ready and len(running) < max_workers:
                job = ready.popleft()
                running[pool.submit(job.call)] = (next(order), job)
            done = wait(running, return_when=FIRST_COMPLETED).done
            for future in sorted(done, key=lambda finished: running[finished][0]):
                job = running.pop(future)[1]
                try:
                    result = future.result()
                except expected_errors as error:
                    failures.append(JobFailure(job.where, error))
                    continue
                ready.extendleft(reversed(list((job.then(result) if job.then else None) or ())))
    return failures
