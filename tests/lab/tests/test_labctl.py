"""`make lab-up` / `make lab-down` as a user runs them: a background lab, env.sh, every operation through boto3.

This is the contract other tests, the demo and AWX-like runs rely on: after `labctl up`, a shell that sources
`.lab/env.sh` reaches every SSM operation of the lab with plain boto3 (no endpoint or credential arguments), and
`labctl down` leaves no process behind.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
import yaml

LAB_DIR = Path(__file__).resolve().parent.parent

TINY_FLEET = {
    "name": "tiny",
    "regions": ["eu-west-1"],
    "accounts": [
        {"id": "123456789012", "regions": {"eu-west-1": {"ec2": [
            {"platform": "ubuntu-22.04", "count": 2, "patch_group": "prod-auto", "name_prefix": "app"},
            {"platform": "amzn-2023", "count": 1, "patch_group": "jump-log", "name_prefix": "log"},
        ]}}},
    ],
    "azure": {"subscriptions": [{"name": "sub-a", "vms": [
        {"platform": "ubuntu-22.04", "count": 1, "patch_group": "prod-auto", "name_prefix": "az-app"}]}]},
}


def labctl(state_dir: Path, *args: str, fleet: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "fleetlab.labctl", *args, "--state-dir", str(state_dir)]
    if fleet is not None:
        command += ["--fleet", str(fleet)]
    env = dict(os.environ, PYTHONPATH=str(LAB_DIR))
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)


def read_env(path: Path) -> dict[str, str]:
    """What `. .lab/env.sh` would export (values are shell-quoted)."""
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def process_group_alive(pgid: int) -> bool:
    """Any live (non-zombie) process in the group? A zombie left for a non-reaping PID 1 does not count."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            return True
    return False


@pytest.fixture(scope="module")
def running_lab(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("labctl")
    fleet = state_dir / "tiny.yml"
    fleet.write_text(yaml.safe_dump(TINY_FLEET))
    started = labctl(state_dir, "up", fleet=fleet)
    assert started.returncode == 0, started.stderr
    pid = int((state_dir / "lab.pid").read_text())
    yield state_dir, fleet, pid
    labctl(state_dir, "down")


def test_up_twice_is_harmless_and_says_so(running_lab):
    state_dir, fleet, pid = running_lab
    again = labctl(state_dir, "up", fleet=fleet)
    assert again.returncode == 0
    assert "already running" in again.stdout
    assert int((state_dir / "lab.pid").read_text()) == pid


def test_env_sh_has_every_export_a_shell_or_awx_run_needs(running_lab):
    state_dir, _, _ = running_lab
    env = read_env(state_dir / "env.sh")
    for key in ("AWS_ENDPOINT_URL", "AWS_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                "FLEETLAB_CONTROL_URL", "FLEETPATCH_AZURE_ENDPOINT", "AZURE_AUTHORITY_HOST", "AZURE_TENANT_ID",
                "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_SUBSCRIPTION_IDS", "REQUESTS_CA_BUNDLE"):
        assert env.get(key), key
    assert oct((state_dir / "env.sh").stat().st_mode & 0o777) == "0o600"  # it holds the lab's client secret


def _wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_plain_boto3_with_env_sh_reaches_every_listed_operation(running_lab, monkeypatch):
    state_dir, _, _ = running_lab
    for key, value in read_env(state_dir / "env.sh").items():
        monkeypatch.setenv(key, value)
    ssm = boto3.client("ssm")  # endpoint, credentials and region all come from env.sh
    name = f"tour-{uuid.uuid4().hex[:8]}"

    # Baselines, patch groups, default baseline, properties
    baseline = ssm.create_patch_baseline(
        Name=name, OperatingSystem="AMAZON_LINUX_2023",
        ApprovalRules={"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [
            {"Key": "CLASSIFICATION", "Values": ["Security"]}]}, "ApproveAfterDays": 0}]},
        Tags=[{"Key": "Owner", "Value": "ops"}])["BaselineId"]
    assert ssm.get_patch_baseline(BaselineId=baseline)["Name"] == name
    ssm.update_patch_baseline(BaselineId=baseline, Description="tour")
    assert any(b["BaselineId"] == baseline for b in ssm.describe_patch_baselines(
        Filters=[{"Key": "NAME_PREFIX", "Values": ["tour-"]}])["BaselineIdentities"])
    ssm.register_patch_baseline_for_patch_group(BaselineId=baseline, PatchGroup="jump-log")
    assert ssm.get_patch_baseline_for_patch_group(
        PatchGroup="jump-log", OperatingSystem="AMAZON_LINUX_2023")["BaselineId"] == baseline
    assert any(m["PatchGroup"] == "jump-log" for m in ssm.describe_patch_groups()["Mappings"])
    aws_default = ssm.get_default_patch_baseline(OperatingSystem="AMAZON_LINUX_2023")["BaselineId"]
    ssm.register_default_patch_baseline(BaselineId=baseline)
    assert ssm.get_default_patch_baseline(OperatingSystem="AMAZON_LINUX_2023")["BaselineId"] == baseline
    ssm.register_default_patch_baseline(BaselineId=aws_default)
    assert ssm.describe_patch_properties(OperatingSystem="UBUNTU", Property="PRIORITY")["Properties"]

    # Managed nodes, tags, service setting
    nodes = ssm.describe_instance_information(MaxResults=5)["InstanceInformationList"]
    assert nodes
    ssm.add_tags_to_resource(ResourceType="PatchBaseline", ResourceId=baseline,
                             Tags=[{"Key": "Team", "Value": "platform"}])
    tags = ssm.list_tags_for_resource(ResourceType="PatchBaseline", ResourceId=baseline)["TagList"]
    assert {"Key": "Team", "Value": "platform"} in tags
    ssm.remove_tags_from_resource(ResourceType="PatchBaseline", ResourceId=baseline, TagKeys=["Team"])
    assert ssm.get_service_setting(
        SettingId="/ssm/managed-instance/activation-tier")["ServiceSetting"]["SettingValue"] == "standard"

    # Activations and a hybrid node registered with one, then deregistered
    activation = ssm.create_activation(IamRole="SSMServiceRole", RegistrationLimit=1, DefaultInstanceName="tour")
    assert ssm.describe_activations(Filters=[{"FilterKey": "ActivationIds",
                                              "FilterValues": [activation["ActivationId"]]}])["ActivationList"]
    from fleetlab.client import LabClient

    control = LabClient(os.environ["FLEETLAB_CONTROL_URL"])
    registered = control.post("/agent/register", {
        "activation_id": activation["ActivationId"], "activation_code": activation["ActivationCode"],
        "region": os.environ["AWS_DEFAULT_REGION"], "computer_name": "tour-host", "platform_key": "ubuntu-22.04"})
    assert activation["ActivationCode"] not in str(registered)
    ssm.add_tags_to_resource(ResourceType="ManagedInstance", ResourceId=registered["instance_id"],
                             Tags=[{"Key": "PatchGroup", "Value": "prod-auto"}])
    ssm.deregister_managed_instance(InstanceId=registered["instance_id"])
    ssm.delete_activation(ActivationId=activation["ActivationId"])

    # Run Command + compliance
    node_ids = [n["InstanceId"] for n in nodes]
    command = ssm.send_command(DocumentName="AWS-RunPatchBaseline", InstanceIds=node_ids,
                               Parameters={"Operation": ["Scan"]})["Command"]["CommandId"]
    _wait_for(lambda: ssm.list_commands(CommandId=command)["Commands"][0]["Status"] in ("Success", "Failed"))
    invocations = ssm.list_command_invocations(CommandId=command, Details=True)["CommandInvocations"]
    assert len(invocations) == len(node_ids)
    assert ssm.get_command_invocation(CommandId=command, InstanceId=node_ids[0],
                                      PluginName="PatchLinux")["Status"] in ("Success", "Failed")
    states = ssm.describe_instance_patch_states(InstanceIds=node_ids)["InstancePatchStates"]
    assert {s["InstanceId"] for s in states} == set(node_ids)
    assert ssm.describe_instance_patch_states_for_patch_group(PatchGroup="prod-auto")["InstancePatchStates"]
    assert "Patches" in ssm.describe_instance_patches(InstanceId=node_ids[0])

    # Maintenance windows, targets, tasks, executions
    window = ssm.create_maintenance_window(Name=name, Schedule="cron(0 2 ? * SUN *)", Duration=3, Cutoff=1,
                                           AllowUnassociatedTargets=False)["WindowId"]
    assert ssm.get_maintenance_window(WindowId=window)["Name"] == name
    ssm.update_maintenance_window(WindowId=window, Description="tour")
    assert any(w["WindowId"] == window for w in ssm.describe_maintenance_windows()["WindowIdentities"])
    target = ssm.register_target_with_maintenance_window(
        WindowId=window, ResourceType="INSTANCE", Targets=[{"Key": "tag:PatchGroup", "Values": ["jump-log"]}],
        Name="jump-log")["WindowTargetId"]
    ssm.update_maintenance_window_target(WindowId=window, WindowTargetId=target, Description="tour")
    assert ssm.describe_maintenance_window_targets(WindowId=window)["Targets"]
    task = ssm.register_task_with_maintenance_window(
        WindowId=window, TaskType="RUN_COMMAND", TaskArn="AWS-RunPatchBaseline", Priority=1,
        Targets=[{"Key": "WindowTargetIds", "Values": [target]}], MaxConcurrency="10%", MaxErrors="1",
        TaskInvocationParameters={"RunCommand": {"Parameters": {"Operation": ["Scan"]}}})["WindowTaskId"]
    ssm.update_maintenance_window_task(WindowId=window, WindowTaskId=task, Description="tour")
    assert ssm.describe_maintenance_window_tasks(WindowId=window)["Tasks"][0]["Type"] == "RUN_COMMAND"
    assert ssm.get_maintenance_window_task(WindowId=window, WindowTaskId=task)["TaskInvocationParameters"]
    control.post("/windows/execute", {"account": "123456789012", "region": os.environ["AWS_DEFAULT_REGION"],
                                      "window_id": window, "wait": True, "timeout": 60})
    execution = ssm.describe_maintenance_window_executions(WindowId=window)["WindowExecutions"][0]
    task_executions = ssm.describe_maintenance_window_execution_tasks(
        WindowExecutionId=execution["WindowExecutionId"])["WindowExecutionTaskIdentities"]
    assert ssm.describe_maintenance_window_execution_task_invocations(
        WindowExecutionId=execution["WindowExecutionId"],
        TaskId=task_executions[0]["TaskExecutionId"])["WindowExecutionTaskInvocationIdentities"]
    ssm.deregister_task_from_maintenance_window(WindowId=window, WindowTaskId=task)
    ssm.deregister_target_from_maintenance_window(WindowId=window, WindowTargetId=target)
    ssm.delete_maintenance_window(WindowId=window)

    ssm.deregister_patch_baseline_for_patch_group(BaselineId=baseline, PatchGroup="jump-log")
    ssm.delete_patch_baseline(BaselineId=baseline)


def test_down_leaves_no_process_and_down_again_says_so(running_lab):
    state_dir, fleet, pid = running_lab
    stopped = labctl(state_dir, "down")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not process_group_alive(pid)
    assert not (state_dir / "env.sh").exists()
    again = labctl(state_dir, "down")
    assert again.returncode == 0 and "not running" in again.stdout
