"""The ssm_agent role on real Linux hosts: `molecule test` (roles/ssm_agent/molecule/default) against a lab of its
own. Needs root, systemd-nspawn, socat, zstd, debootstrap, rpm/rpmbuild and gpg (tests/hosts/build-rootfs.sh,
tests/agent_package/build.sh); the rootfs tarballs are cached in .cache/hosts (first run ~2-4 min more)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "ssm_agent"
CACHE = ROOT / ".cache" / "hosts"
REGION = "eu-west-1"
ACCOUNT_B_ROLE = "arn:aws:iam::210987654321:role/fleetpatch-ssm-agent-test"
NEEDED = ("systemd-nspawn", "socat", "zstd", "debootstrap", "rpmbuild", "gpg", "ip")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or any(shutil.which(tool) is None for tool in NEEDED),
    reason=f"needs root and {', '.join(NEEDED)}",
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A lab of this test's own (--fleet none), its environment as a dict."""
    state = tmp_path_factory.mktemp("lab")
    labctl = [sys.executable, "-m", "fleetlab.labctl"]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests" / "lab"))
    subprocess.run([*labctl, "up", "--state-dir", str(state), "--fleet", "none"], env=env, check=True, cwd=ROOT)
    try:
        yield _exports(state / "env.sh")
    finally:
        subprocess.run([*labctl, "down", "--state-dir", str(state)], env=env, check=False, cwd=ROOT)


def _exports(env_sh: Path) -> dict:
    """The variables `. env.sh` would export (what the lab writes: `export NAME=value`, values maybe quoted)."""
    exported = {}
    for line in env_sh.read_text().splitlines():
        if line.startswith("export "):
            name, _sep, value = line[len("export "):].partition("=")
            exported[name] = value.strip("'")
    return exported


def _activation(lab_env: dict, role_arn: str | None = None) -> dict:
    session = boto3.Session(aws_access_key_id=lab_env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=lab_env["AWS_SECRET_ACCESS_KEY"], region_name=REGION)
    endpoint = lab_env["AWS_ENDPOINT_URL"]
    if role_arn:
        credentials = session.client("sts", endpoint_url=endpoint).assume_role(
            RoleArn=role_arn, RoleSessionName="ssm-agent-test")["Credentials"]
        session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                                aws_secret_access_key=credentials["SecretAccessKey"],
                                aws_session_token=credentials["SessionToken"], region_name=REGION)
    return session.client("ssm", endpoint_url=endpoint).create_activation(
        IamRole="SSMServiceRole", RegistrationLimit=4, Description="ssm_agent role test")


def test_role_installs_registers_idempotently_and_leaves_no_code(lab, tmp_path):
    subprocess.run([str(ROOT / "tests" / "agent_package" / "build.sh"), str(CACHE / "agent")], check=True)
    subprocess.run([str(ROOT / "tests" / "hosts" / "build-rootfs.sh"), "all"], check=True)
    first, second = _activation(lab), _activation(lab, ACCOUNT_B_ROLE)
    env = dict(
        os.environ, **lab,
        PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"),
        ANSIBLE_NOCOLOR="1", PY_COLORS="0", NO_COLOR="1",
        FLEETPATCH_AGENT_DIR=str(CACHE / "agent"),
        FLEETPATCH_HOSTS_STATE=str(tmp_path / "hosts"),
        SSM_AGENT_TEST_REGION=REGION,
        SSM_AGENT_TEST_ACTIVATION_ID=first["ActivationId"],
        SSM_AGENT_TEST_ACTIVATION_CODE=first["ActivationCode"],
        SSM_AGENT_TEST_ACTIVATION_ID_B=second["ActivationId"],
        SSM_AGENT_TEST_ACTIVATION_CODE_B=second["ActivationCode"],
        SSM_AGENT_TEST_ROLE_ARN_B=ACCOUNT_B_ROLE,
    )
    # check -> converge -> idempotence -> verify (molecule.yml); verify greps the hosts' files and journals.
    run = subprocess.run(["molecule", "test"], cwd=ROLE, env=env, capture_output=True, text=True, check=False)
    output = run.stdout + run.stderr
    (tmp_path / "molecule.log").write_text(output)
    assert run.returncode == 0, output[-6000:]
    for code in (first["ActivationCode"], second["ActivationCode"]):
        assert code not in output, "an activation code is in molecule's output"
