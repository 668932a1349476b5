# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bounded pool: follow-up jobs, failures named where they happened, bugs not swallowed."""
from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_jobs import LISTING
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_jobs import LOOKUP
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_jobs import UNLOCK
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_jobs import Job
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_jobs import run_jobs


class ServiceError(Exception):
    pass


def test_follow_ups_run_and_see_their_parents_result():
    seen = []

    def region_jobs(regions):
        return [Job(f"region {r}", lambda r=r: r.upper(), seen.append) for r in regions]

    failures = run_jobs([Job("regions", lambda: ["eu-west-1", "us-east-1"], region_jobs)], 4, (ServiceError,))

    assert failures == []
    assert sorted(seen) == ["EU-WEST-1", "US-EAST-1"]


def test_a_failure_is_named_and_its_follow_ups_never_run():
    ran = []

    def fail():
        raise ServiceError("An error occurred (AccessDenied) when calling the AssumeRole operation:\n  denied")

    jobs = [Job("account 234567890123 assume role", fail, lambda _: [Job("never", lambda: ran.append(1))]),
            Job("account 345678901234 eu-west-1 ec2", lambda: ["i-1"], ran.extend)]
    failures = run_jobs(jobs, 2, (ServiceError,))

    assert ran == ["i-1"]
    assert [str(f) for f in failures] == [
        "account 234567890123 assume role: An error occurred (AccessDenied) when calling the AssumeRole operation: "
        "denied"]


def test_an_unexpected_error_is_a_bug_and_propagates():
    with pytest.raises(KeyError):
        run_jobs([Job("bug", lambda: {}["missing"])], 2, (ServiceError,))


def test_at_most_max_workers_calls_are_in_flight():
    lock, in_flight, peak = threading.Lock(), [0], [0]

    def call():
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.01)
        with lock:
            in_flight[0] -= 1

    run_jobs([Job(str(n), call) for n in range(12)], 3, (ServiceError,))

    assert peak[0] == 3


def test_results_are_used_on_the_calling_thread():
    threads = set()
    run_jobs([Job(str(n), lambda: None, lambda _: threads.add(threading.current_thread())) for n in range(5)], 3, ())

    assert threads == {threading.current_thread()}


def test_roles_run_first_listings_next_and_lookups_only_when_no_listing_waits():
    """A region's tag lookups must not hold back the roles and listings not started yet (they are the long chains);
    one worker shows the order."""
    ran = []

    def job(name, priority, follow_ups=()):
        return Job(name, lambda: ran.append(name), lambda _: list(follow_ups), priority)

    region = job("account 1 eu-west-1 ssm", LISTING, [job(f"tags of mi-{n}", LOOKUP) for n in (1, 2)])
    jobs = [region, job("account 1 us-east-1 ssm", LISTING), job("azure subscription s", LISTING),
            job("account 2 assume role", UNLOCK, [job("account 2 eu-west-1 ec2", LISTING)])]

    assert run_jobs(jobs, 1, (ServiceError,)) == []
    assert ran == ["account 2 assume role", "account 1 eu-west-1 ssm", "account 1 us-east-1 ssm",
                   "azure subscription s", "account 2 eu-west-1 ec2", "tags of mi-1", "tags of mi-2"]
