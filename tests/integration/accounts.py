# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by the integration tests: a fresh AWS account per test, managed nodes in it, and the step runner.

Each test works in an account of its own (STS AssumeRole into a fresh account id, as with AWS), so resources of
one test never meet another's. `Fleet` registers managed nodes there (hybrid activations) and reads what the lab's
agents did. A playbook runs one module task per step (`steps` extra var); `converge()` gives the four steps every
module is held to (check mode, apply, check mode again, apply again).
"""
from __future__ import annotations

import itertools
import json
import urllib.request
from collections import Counter
from dataclasses import dataclass
from dataclasses import field

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


def open_account(lab, account_id: str, region: str) -> Account:
    """An Account (accounts.py) for `account_id` in `region`, through the role the policy assumes there."""
    endpoint = lab.env["AWS_ENDPOINT_URL"]
    base = boto3.Session(aws_access_key_id=lab.env["AWS_ACCESS_KEY_ID"],
                         aws_secret_access_key=lab.env["AWS_SECRET_ACCESS_KEY"], region_name=region)
    credentials = base.client("sts", endpoint_url=endpoint).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/fleetpatch-policy", RoleSessionName="integration")["Credentials"]
    ssm = boto3.client("ssm", endpoint_url=endpoint, region_name=region,
                       aws_access_key_id=credentials["AccessKeyId"],
                       aws_secret_access_key=credentials["SecretAccessKey"],
                       aws_session_token=credentials["SessionToken"])
    return Account(account_id, region, {}, ssm, lab.env["FLEETLAB_CONTROL_URL"])


@dataclass
class Fleet:
    """A fresh AWS account in the lab (accounts.Account), the managed nodes a test registers in it, and the lab's
    records."""

    account: object
    nodes: list = field(default_factory=list)

    @property
    def env(self) -> dict:
        return self.account.env

    @property
    def account_id(self) -> str:
        return self.account.account_id

    @property
    def region(self) -> str:
        return self.account.region

    def client(self, service: str):
        """A client of another service in the same account (the account's SSM client is `account.ssm`)."""
        return boto3.client(service, endpoint_url=self.account.ssm.meta.endpoint_url, region_name=self.region,
                            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
                            aws_session_token=self.env["AWS_SESSION_TOKEN"])

    def control(self, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.account.control_url + path, data=data,
                                         method="POST" if data else "GET",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def register(self, platform: str, count: int, tags: dict) -> list:
        """`count` hybrid nodes of `platform` whose activation carries `tags` (copied to each node)."""
        activation = self.account.ssm.create_activation(
            IamRole="SSMServiceRole", RegistrationLimit=count,
            Tags=[{"Key": key, "Value": value} for key, value in tags.items()])
        ids = [self.control("/agent/register", {
            "activation_id": activation["ActivationId"], "activation_code": activation["ActivationCode"],
            "region": self.region, "computer_name": f"{platform}-{len(self.nodes) + n}", "platform_key": platform,
        })["instance_id"] for n in range(count)]
        self.nodes += ids
        return sorted(ids)

    def node_control(self, path: str, node: str, **body) -> None:
        self.control(path, dict(body, account=self.account_id, region=self.region, node_id=node))

    def installed_by(self, command_id: str) -> dict:
        """{node: {package: version}} the lab's agents installed for this command."""
        rows = self.control(f"/install-log?account={self.account_id}&command_id={command_id}")["installs"]
        installed: dict = {}
        for row in rows:
            installed.setdefault(row["node_id"], {})[row["package"]] = row["to_version"]
        return installed

    def patches(self, node: str, state: str) -> list:
        pages = self.account.ssm.get_paginator("describe_instance_patches").paginate(
            InstanceId=node, Filters=[{"Key": "State", "Values": [state]}])
        return [row for page in pages for row in page["Patches"]]


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
