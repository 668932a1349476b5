# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by the module integration tests: a fresh AWS account per test, and the step runner.

Each test works in an account of its own (STS AssumeRole into a fresh account id, as with AWS), so resources of
one test never meet another's. A playbook runs one module task per step (`steps` extra var); `converge()` gives
the four steps every module is held to (check mode, apply, check mode again, apply again).
"""
from __future__ import annotations

import itertools
import json
import urllib.request
from collections import Counter
from dataclasses import dataclass

import boto3
import pytest

_account_ids = itertools.count(310000000001)


@dataclass
class Account:
    """A fresh AWS account in the lab: credentials for ansible-playbook, an SSM client, its SSM call counts."""

    account_id: str
    region: str
    env: dict
    ssm: object
    control_url: str

    def calls(self) -> Counter:
        """SSM calls made in this account and region so far, by operation."""
        with urllib.request.urlopen(f"{self.control_url}/calls", timeout=30) as response:
            rows = json.loads(response.read())["calls"]
        return Counter({row["operation"]: row["count"] for row in rows
                        if row["account"] == self.account_id and row["region"] == self.region})

    def own_baselines(self) -> list:
        return self.ssm.describe_patch_baselines(Filters=[{"Key": "OWNER", "Values": ["Self"]}])["BaselineIdentities"]

    def baseline(self, name: str) -> dict:
        """GetPatchBaseline of the only own baseline called `name` (fails if there is not exactly one)."""
        (identity,) = [b for b in self.own_baselines() if b["BaselineName"] == name]
        return self.ssm.get_patch_baseline(BaselineId=identity["BaselineId"])

    def tags(self, baseline_id: str) -> dict:
        tags = self.ssm.list_tags_for_resource(ResourceType="PatchBaseline", ResourceId=baseline_id)["TagList"]
        return {tag["Key"]: tag["Value"] for tag in tags}

    def create(self, name: str, operating_system: str, **members) -> str:
        """A baseline made directly through the API (test setup, or a change made outside Ansible)."""
        return self.ssm.create_patch_baseline(Name=name, OperatingSystem=operating_system, **members)["BaselineId"]

    def groups(self) -> dict:
        """{(patch group, OS): baseline name}."""
        mappings = self.ssm.describe_patch_groups()["Mappings"]
        return {(m["PatchGroup"], m["BaselineIdentity"]["OperatingSystem"]): m["BaselineIdentity"]["BaselineName"]
                for m in mappings}

    def default_baseline(self, operating_system: str) -> str:
        return self.ssm.get_default_patch_baseline(OperatingSystem=operating_system)["BaselineId"]


@pytest.fixture
def account(lab) -> Account:
    account_id, region, endpoint = str(next(_account_ids)), lab.env["AWS_REGION"], lab.env["AWS_ENDPOINT_URL"]
    base = boto3.Session(aws_access_key_id=lab.env["AWS_ACCESS_KEY_ID"],
                         aws_secret_access_key=lab.env["AWS_SECRET_ACCESS_KEY"], region_name=region)
    credentials = base.client("sts", endpoint_url=endpoint).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/fleetpatch-integration", RoleSessionName="integration"
    )["Credentials"]
    env = {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }
    ssm = boto3.client("ssm", endpoint_url=endpoint, region_name=region, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], aws_session_token=env["AWS_SESSION_TOKEN"])
    return Account(account_id, region, env, ssm, lab.env["FLEETLAB_CONTROL_URL"])


def converge(label: str, spec: dict) -> list:
    """The four steps every module is held to: check mode, apply, check mode again, apply again."""
    return [
        {"step": f"{label}: check mode", "spec": spec, "check": True},
        {"step": f"{label}: apply", "spec": spec},
        {"step": f"{label}: check mode again", "spec": spec, "check": True},
        {"step": f"{label}: apply again", "spec": spec},
    ]


def step(label: str, spec: dict, check: bool = False) -> dict:
    return {"step": label, "spec": spec, "check": check}


def run_steps(run_playbook, account: Account, playbook: str, steps: list) -> dict:
    """Run the steps in one ansible-playbook run; return {step name: TaskResult}."""
    result = run_playbook(playbook, extra_vars={"steps": steps}, env=account.env)
    assert result.rc == 0, result.summary  # failing steps are ignore_errors: rc 0 unless the play broke
    return {s["step"]: result.task(s["step"]) for s in steps}


def changes(results: dict) -> list:
    return [(name, "failed" if r.status == "failed" else r.changed) for name, r in results.items()]


def failure(results: dict, name: str) -> str:
    assert results[name].status == "failed", f"{name}: {results[name].result}"
    return results[name].result["msg"]
