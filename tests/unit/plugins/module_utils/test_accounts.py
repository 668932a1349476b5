# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Targets, assumed-role sessions and the bounded pool over account-regions."""
from __future__ import annotations

import threading
import time

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.fleetpatch.ssm.plugins.module_utils import accounts
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import no_sleep

MANAGEMENT, PRODUCTION, REFUSED = "123456789012", "234567890123", "345678901234"
CREDENTIALS = {"AccessKeyId": "ASIAEXAMPLEEXAMPLE", "SecretAccessKey": "secret", "SessionToken": "token",
               "Expiration": "2030-01-01T00:00:00Z"}


def role(account: str) -> str:
    return f"arn:aws:iam::{account}:role/fleetpatch-report"


# ---------------------------------------------------------------------------------------------- targets

def test_no_targets_means_the_tasks_credentials_in_the_tasks_region():
    assert accounts.targets_from_params(None, "eu-west-1") == [accounts.Target(regions=("eu-west-1",))]


def test_a_role_target_takes_its_account_from_the_arn_and_keeps_its_regions_in_order():
    (target,) = accounts.targets_from_params(
        [{"role_arn": role(PRODUCTION), "regions": ["us-east-1", "eu-west-1", "us-east-1"]}], "eu-west-1")
    assert (target.account_id, target.regions, target.label) == (
        PRODUCTION, ("us-east-1", "eu-west-1"), role(PRODUCTION))


@pytest.mark.parametrize("raw, message", [
    ({"role_arn": "arn:aws:iam::12345:role/x"}, r"targets\[0\].role_arn: .* is not valid; allowed: an IAM role ARN"),
    ({"role_arn": role(PRODUCTION), "account_id": MANAGEMENT},
     r"targets\[0\]: account_id 123456789012 is not the account of role_arn"),
    ({"account_id": "1234"}, r"targets\[0\].account_id: '1234' is not valid; allowed: a 12-digit AWS account id"),
    ({"external_id": "abc123"}, r"targets\[0\]: external_id needs a role_arn"),
    ({"regions": ["Ireland"]}, r"targets\[0\].regions\[0\]: 'Ireland' is not valid; allowed: an AWS region name"),
])
def test_bad_targets_are_refused_naming_the_entry(raw, message):
    with pytest.raises(ParameterError, match=message):
        accounts.targets_from_params([raw], "eu-west-1")


def test_a_target_without_regions_needs_the_tasks_region():
    with pytest.raises(ParameterError, match=r"targets\[0\]: no regions"):
        accounts.targets_from_params([{}], None)


def test_the_same_account_twice_is_refused():
    with pytest.raises(ParameterError, match=r"targets\[1\]: account 234567890123 is already targets\[0\]"):
        accounts.targets_from_params([{"role_arn": role(PRODUCTION)}, {"account_id": PRODUCTION}], "eu-west-1")


# ---------------------------------------------------------------------------------------------- sessions

class StubbedClients:
    """A client factory for Sessions: one stubbed client per service, shared by every session."""

    def __init__(self) -> None:
        self.stubbers: dict = {}
        self.clients: dict = {}
        self.built: list = []

    def stub(self, service: str) -> Stubber:
        if service not in self.stubbers:
            client = boto3.client(service, region_name="eu-west-1", aws_access_key_id="unit",
                                  aws_secret_access_key="unit")
            self.clients[service] = client
            self.stubbers[service] = Stubber(client)
            self.stubbers[service].activate()
        return self.stubbers[service]

    def __call__(self, session, service: str, region: str):
        credentials = session.get_credentials()
        self.built.append((service, region, credentials and credentials.access_key))
        self.stub(service)
        return self.clients[service]


@pytest.fixture
def clients():
    factory = StubbedClients()
    yield factory
    for stubber in factory.stubbers.values():
        stubber.assert_no_pending_responses()


def sessions_with(clients) -> accounts.Sessions:
    connection = accounts.Connection("eu-west-1", None, {"aws_access_key_id": "task", "aws_secret_access_key": "x"})
    return accounts.Sessions(connection, "fleetpatch-test", client_factory=clients)


def test_scopes_of_reachable_targets_and_one_failure_per_region_of_a_refused_role(clients):
    sts = clients.stub("sts")
    sts.add_response("get_caller_identity", {"Account": MANAGEMENT, "Arn": "arn:aws:iam::123456789012:user/ops",
                                             "UserId": "AIDAEXAMPLE"})
    sts.add_response("assume_role", {"Credentials": CREDENTIALS},
                     {"RoleArn": role(PRODUCTION), "RoleSessionName": "fleetpatch-test", "ExternalId": "ext-1"})
    sts.add_client_error("assume_role", "AccessDenied", "User: ops is not authorized to perform: sts:AssumeRole",
                         http_status_code=403)
    targets = accounts.targets_from_params([
        {"regions": ["eu-west-1"]},
        {"role_arn": role(PRODUCTION), "external_id": "ext-1", "regions": ["eu-west-1", "us-east-1"]},
        {"role_arn": role(REFUSED), "regions": ["eu-west-1", "us-east-1"]},
    ], "eu-west-1")

    scopes, failures = accounts.resolve_scopes(sessions_with(clients), targets)

    assert [scope.key for scope in scopes] == [(MANAGEMENT, "eu-west-1"), (PRODUCTION, "eu-west-1"),
                                               (PRODUCTION, "us-east-1")]
    assert [(f.account_id, f.region, f.stage, f.code, f.target) for f in failures] == [
        (REFUSED, "eu-west-1", "assume_role", "AccessDenied", role(REFUSED)),
        (REFUSED, "us-east-1", "assume_role", "AccessDenied", role(REFUSED))]
    assert "not authorized" in failures[0].message


def test_credentials_that_act_in_another_account_than_declared_are_a_failure(clients):
    clients.stub("sts").add_response("get_caller_identity", {"Account": PRODUCTION})
    targets = accounts.targets_from_params([{"account_id": MANAGEMENT}], "eu-west-1")
    scopes, failures = accounts.resolve_scopes(sessions_with(clients), targets)
    assert scopes == []
    assert [(f.account_id, f.code) for f in failures] == [(MANAGEMENT, "AccountMismatch")]


def test_a_role_is_assumed_once_and_its_clients_use_the_assumed_credentials_and_retry_throttling(clients):
    sts, ssm = clients.stub("sts"), clients.stub("ssm")
    sts.add_response("assume_role", {"Credentials": CREDENTIALS})
    ssm.add_client_error("describe_instance_information", "ThrottlingException", http_status_code=400)
    ssm.add_response("describe_instance_information", {"InstanceInformationList": []})
    target = accounts.targets_from_params([{"role_arn": role(PRODUCTION), "regions": ["eu-west-1", "us-east-1"]}],
                                          None)[0]
    sessions = sessions_with(clients)
    scopes = accounts.resolve_scopes(sessions, [target])[0]
    for scope in scopes:
        sessions.client(scope, "ssm")
    with no_sleep() as sleep:
        sessions.client(scopes[0], "ssm").describe_instance_information(aws_retry=True)
    assert sleep.call_count == 1
    assert [built for built in clients.built if built[0] == "ssm"] == [
        ("ssm", "eu-west-1", "ASIAEXAMPLEEXAMPLE"), ("ssm", "us-east-1", "ASIAEXAMPLEEXAMPLE"), ("ssm", "eu-west-1", "ASIAEXAMPLEEXAMPLE")]


# ---------------------------------------------------------------------------------------------- the pool

def scope(account: str, region: str = "eu-west-1") -> accounts.Scope:
    return accounts.Scope(account, region, accounts.Target(regions=(region,)))


def test_one_failing_scope_is_named_and_the_others_are_collected():
    def produce(where):
        yield f"{where.account_id}-a"
        if where.account_id == REFUSED:
            raise RuntimeError("the region stopped answering")
        yield f"{where.account_id}-b"

    scopes = [scope(MANAGEMENT), scope(REFUSED), scope(PRODUCTION)]
    results = list(accounts.run_scopes(scopes, produce, max_workers=2))

    items = sorted(item for where, item in results if isinstance(item, str))
    assert items == [f"{MANAGEMENT}-a", f"{MANAGEMENT}-b", f"{PRODUCTION}-a", f"{PRODUCTION}-b", f"{REFUSED}-a"]
    ends = {where.account_id: item for where, item in results if isinstance(item, accounts.ScopeEnd)}
    assert set(ends) == {MANAGEMENT, REFUSED, PRODUCTION}
    failure = ends[REFUSED].failure
    assert (failure.stage, failure.code, failure.region) == ("collect", "RuntimeError", "eu-west-1")
    assert "after 1 records" in failure.message
    assert ends[MANAGEMENT].failure is None and ends[MANAGEMENT].produced == 2


def test_the_pool_runs_at_most_max_workers_scopes_at_once():
    lock, running, peak = threading.Lock(), [0], [0]

    def produce(where):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        yield where.region

    regions = [scope(MANAGEMENT, f"eu-west-{n}") for n in range(1, 7)]
    results = list(accounts.run_scopes(regions, produce, max_workers=3))
    assert sorted(item for where, item in results if isinstance(item, str)) == sorted(r.region for r in regions)
    assert peak[0] == 3


def test_a_caller_that_stops_reading_early_leaves_no_producer_behind():
    produced = []

    def endless(where):
        while True:
            produced.append(where.region)
            yield where.region

    started = time.monotonic()
    stream = accounts.run_scopes([scope(MANAGEMENT), scope(PRODUCTION)], endless, 2, buffer=3)
    first = [next(stream) for attempt in range(5)]
    stream.close()
    assert len(first) == 5
    assert time.monotonic() - started < 5  # the generator closed: producers stopped, the pool shut down
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count
