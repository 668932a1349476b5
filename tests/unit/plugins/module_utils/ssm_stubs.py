# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit-test helpers: an SSM client under botocore's Stubber, and a way to run a module's main() on it.

Stubber checks every request against botocore's SSM model (types, required members, enums, lengths), so a test
that passes proves each call the module makes is one AWS would accept in shape. `expected_params` pins the exact
request where the test is about what is sent.
"""
from __future__ import annotations

import contextlib
import datetime
import json
from unittest import mock

import boto3
import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.testing import patch_module_args
from botocore.stub import Stubber

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import SSM_RETRY
from ansible_collections.fleetpatch.ssm.plugins.modules.patch_baseline import argument_spec as baseline_spec

REGION = "eu-west-1"
ACCOUNT = "123456789012"
NOW = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.timezone.utc)


def raw_client():
    return boto3.client("ssm", region_name=REGION, aws_access_key_id="unit", aws_secret_access_key="unit")


@contextlib.contextmanager
def stubbed():
    """(client, stubber): the client retries like the modules' (SSM_RETRY), without sleeping."""
    client = raw_client()
    with Stubber(client) as stubber, no_sleep():
        yield RetryingBotoClientWrapper(client, SSM_RETRY), stubber
        stubber.assert_no_pending_responses()


@contextlib.contextmanager
def no_sleep():
    with mock.patch("ansible_collections.amazon.aws.plugins.module_utils.cloud.time.sleep") as sleep:
        yield sleep


def record_params(client, operation: str) -> list:
    """A list that fills with the parameters of each `operation` call the client makes (retries included)."""
    sent = []
    client.meta.events.register(f"provide-client-params.ssm.{operation}",
                                lambda params, **kwargs: sent.append(dict(params)))
    return sent


class ModuleExit(Exception):
    def __init__(self, result: dict) -> None:
        super().__init__(result)
        self.result = result


def _exit(self, **result):
    raise ModuleExit(json.loads(json.dumps(result, default=str)))


def _fail(self, msg=None, **result):
    raise ModuleExit(json.loads(json.dumps(dict(result, msg=msg, failed=True), default=str)))


def run_module(main, args: dict, client, check_mode: bool = False, diff: bool = True) -> dict:
    """Run a module's main() with `args` against `client`; return its result (failed=True on fail_json)."""
    args = dict({"region": REGION, "_ansible_check_mode": check_mode, "_ansible_diff": diff}, **args)
    with patch_module_args(args), \
            mock.patch.object(AnsibleAWSModule, "client", lambda self, service, retry_decorator=None: client), \
            mock.patch.object(basic.AnsibleModule, "exit_json", _exit), \
            mock.patch.object(basic.AnsibleModule, "fail_json", _fail), \
            pytest.raises(ModuleExit) as exited:
        main()
    return exited.value.result


def baseline_params(**options) -> dict:
    """patch_baseline's parameters after Ansible's argument spec (defaults applied), as the module gets them."""
    options.setdefault("name", "baseline-1")
    result = ArgumentSpecValidator(baseline_spec()).validate(options)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


# ---------------------------------------------------------------------------------------------- API answers

def baseline_id(n: int = 1) -> str:
    return f"pb-{n:017x}"


def aws_baseline_arn(n: int) -> str:
    return f"arn:aws:ssm:{REGION}:000000000001:patchbaseline/{baseline_id(n)}"


def identity(name: str, operating_system: str, n: int = 1, default: bool = False, arn: bool = False) -> dict:
    return {
        "BaselineId": aws_baseline_arn(n) if arn else baseline_id(n),
        "BaselineName": name,
        "OperatingSystem": operating_system,
        "DefaultBaseline": default,
    }


def get_response(name: str, operating_system: str, n: int = 1, **members) -> dict:
    """GetPatchBaseline's answer for a baseline holding AWS's defaults plus `members`."""
    response = {
        "BaselineId": baseline_id(n),
        "Name": name,
        "OperatingSystem": operating_system,
        "GlobalFilters": {"PatchFilters": []},
        "ApprovalRules": {"PatchRules": []},
        "ApprovedPatches": [],
        "ApprovedPatchesComplianceLevel": "UNSPECIFIED",
        "ApprovedPatchesEnableNonSecurity": False,
        "RejectedPatches": [],
        "RejectedPatchesAction": "ALLOW_AS_DEPENDENCY",
        "Sources": [],
        "PatchGroups": [],
        "CreatedDate": NOW,
        "ModifiedDate": NOW,
    }
    response.update(members)
    return response


def name_filter(name: str, owner: str | None = "Self") -> list:
    filters = [{"Key": "NAME_PREFIX", "Values": [name]}]
    if owner:
        filters.append({"Key": "OWNER", "Values": [owner]})
    return filters


def expect_find(stubber, name: str, identities: list, owner: str | None = "Self") -> None:
    """The DescribePatchBaselines call that looks a baseline up by name."""
    stubber.add_response(
        "describe_patch_baselines",
        {"BaselineIdentities": identities},
        {"Filters": name_filter(name, owner), "MaxResults": 50},
    )
