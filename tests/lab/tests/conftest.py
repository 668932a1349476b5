"""Shared fixtures of the lab's own tests: one in-process lab per session, a fresh AWS account per test.

Each test that asks for `aws` gets clients for an account id nobody else uses (STS AssumeRole into it, the AWS
way), so tests never see each other's resources although they share one server.
"""
from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import boto3
import botocore.loaders
import botocore.session
import pytest

LAB_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(LAB_DIR))

from fleetlab.client import LabClient  # noqa: E402
from fleetlab.server import LAB_CREDENTIALS, LabServer  # noqa: E402
from fleetlab.state import LAB  # noqa: E402

REGION = "eu-west-1"
_accounts = itertools.count(200000000001)


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    server = LabServer(tmp_path_factory.mktemp("lab"), fleet=None, azure=False)
    env = server.start()
    yield SimpleNamespace(env=env, server=server)
    server.stop()


@pytest.fixture(scope="session")
def control(lab_server):
    return LabClient(lab_server.env["FLEETLAB_CONTROL_URL"])


@pytest.fixture
def lab():
    return LAB


# One model loader for every session: parsing botocore's JSON models is most of a client's creation cost.
_LOADER = botocore.loaders.create_loader()


def _botocore_session() -> botocore.session.Session:
    session = botocore.session.get_session()
    session.register_component("data_loader", _LOADER)
    return session


def make_session(endpoint: str, account: str | None = None, region: str = REGION) -> boto3.Session:
    base = boto3.Session(
        aws_access_key_id=LAB_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LAB_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
        botocore_session=_botocore_session(),
    )
    if account is None:
        return base
    creds = base.client("sts", endpoint_url=endpoint).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/fleetlab-test", RoleSessionName="pytest"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
        botocore_session=_botocore_session(),
    )


class Account(SimpleNamespace):
    """Clients for one fresh account: aws.ssm, aws.ec2, aws.client('s3'), aws.account, aws.region."""

    @functools.cached_property
    def ssm(self):
        return self.client("ssm")

    @functools.cached_property
    def ec2(self):
        return self.client("ec2")

    def client(self, service: str, region: str | None = None):
        return self.session.client(service, endpoint_url=self.endpoint, region_name=region or self.region)

    def launch(self, platform_key: str, count: int = 1, tags: dict | None = None, region: str | None = None):
        """Managed EC2 nodes of `platform_key` in this account (fleetlab.provision)."""
        from fleetlab import provision

        return provision.launch_nodes(self.account, region or self.region, platform_key, count, tags)


@pytest.fixture
def aws(lab_server) -> Account:
    endpoint = lab_server.env["AWS_ENDPOINT_URL"]
    account = str(next(_accounts))
    session = make_session(endpoint, account)
    return Account(account=account, region=REGION, endpoint=endpoint, session=session)


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch):
    # The lab is on loopback; a proxy setting in the environment must not capture its traffic.
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def pytest_configure(config):
    # Under xdist each worker runs its own in-process lab: workers leave their counts in this directory and the
    # controller adds them up (environment variables set here are inherited by the workers it starts next).
    if os.environ.get("FLEETLAB_SELFTEST") == "1" and not hasattr(config, "workerinput"):
        os.environ["FLEETLAB_SELFTEST_DIR"] = tempfile.mkdtemp(prefix="fleetlab-selftest-")


def pytest_sessionfinish(session, exitstatus):
    """Lab self-test: every operation the lab serves answered at least once with a model-valid response.

    Each response is checked against botocore's output shape as it is produced (fleetlab.model); this hook makes
    sure no served operation escaped that check because no test called it. It runs when the whole lab suite
    runs (FLEETLAB_SELFTEST=1, set by `make test-lab`), not for a subset.
    """
    if os.environ.get("FLEETLAB_SELFTEST") != "1":
        return
    from fleetlab import api

    shared = Path(os.environ.get("FLEETLAB_SELFTEST_DIR", ""))
    mine = {"served": sorted(api.OPERATIONS), "validated": sorted(api.VALIDATOR.validated)}
    worker = getattr(session.config, "workerinput", None)
    if worker is not None:
        (shared / f"{worker['workerid']}.json").write_text(json.dumps(mine))
        return
    served, validated = set(mine["served"]), set(mine["validated"])
    for report in shared.glob("*.json"):
        counts = json.loads(report.read_text())
        served |= set(counts["served"])
        validated |= set(counts["validated"])
    if shared.name.startswith("fleetlab-selftest-"):
        shutil.rmtree(shared, ignore_errors=True)
    if exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    unvalidated = sorted(served - validated)
    if not served or unvalidated:
        reporter.write_line("fleetlab self-test FAILED: served operations never answered with a validated "
                            f"response: {unvalidated or 'no operation was served at all'}", red=True)
        session.exitstatus = 1
    else:
        reporter.write_line(f"fleetlab self-test: all {len(served)} served operations returned model-valid "
                            "responses", green=True)
