# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.hybrid_activation through ansible-playbook against the lab.

Each test works in an account of its own (the `account` fixture). playbooks/hybrid/steps.yml runs one module task
per step, with no_log as a caller must, followed by an "outcome" task that shows the result without the code; a
step that names a `code_file` gets the code there (0600), so the test can register machines with it through the
lab's stand-in for the agent's registration (control API /agent/register). The code must appear nowhere else: not
in the playbook's output, not in the recorded task results.
"""
from __future__ import annotations

import json

from accounts import step as plain_step
from accounts import Fleet

STEPS = "tests/integration/playbooks/hybrid/steps.yml"
ROLE = "service-role/SSMHybridNodes"
NAME = "azure-wave"
NAME_TAG = "fleetpatch:activation"


def step(label: str, spec: dict, check: bool = False, **extra) -> dict:
    return dict(plain_step(label, dict({"name": NAME}, **spec), check), module="activation", **extra)


def outcome(results: dict, label: str) -> dict:
    return results[f"{label}: outcome"].result["msg"]


def run_with_output(run_playbook, account, steps: list):
    """Run the steps; {task name: TaskResult} of every step and outcome task, and the whole PlaybookResult."""
    result = run_playbook(STEPS, extra_vars={"steps": steps}, env=account.env)
    assert result.rc == 0, result.summary
    names = [s["step"] for s in steps] + [f"{s['step']}: outcome" for s in steps]
    return {name: result.task(name) for name in names}, result


def run(run_playbook, account, steps: list) -> dict:
    """Run the steps; {task name: TaskResult} of every step and outcome task."""
    return run_with_output(run_playbook, account, steps)[0]


def activations(ssm) -> list:
    return ssm.describe_activations()["ActivationList"]


def named(ssm, name: str = NAME) -> list:
    return [a for a in activations(ssm) if {"Key": NAME_TAG, "Value": name} in a["Tags"]]


def register(account, activation_id: str, code: str, computer_name: str) -> str:
    """A machine registers with the activation (the lab's stand-in for `amazon-ssm-agent -register`)."""
    return Fleet(account).control("/agent/register", {
        "activation_id": activation_id, "activation_code": code, "region": account.region,
        "computer_name": computer_name, "platform_key": "ubuntu-22.04"})["instance_id"]


def test_create_is_idempotent_and_returns_the_code_once(run_playbook, account, tmp_path):
    code_file = tmp_path / "code"
    spec = {"iam_role": ROLE, "registration_limit": 3, "expires_in_hours": 4, "description": "wave 1",
            "default_instance_name": "azure-vm", "tags": {"Owner": "platform"}}
    steps = [
        step("check mode", spec, check=True),
        step("create", spec, code_file=str(code_file)),
        step("same again", spec),
        step("check mode again", spec, check=True),
    ]
    results, playbook = run_with_output(run_playbook, account, steps)

    assert [results[s["step"]].changed for s in steps] == [True, True, False, False]
    checked = outcome(results, "check mode")
    assert checked["activation"]["activation_id"] is None and checked["code_returned"] is False

    created, again = outcome(results, "create"), outcome(results, "same again")
    assert created["code_returned"] is True and again["code_returned"] is False
    assert again["activation"] == created["activation"]
    assert created["activation"]["registration_limit"] == 3
    assert created["activation"]["registrations_remaining"] == 3
    assert created["activation"]["tags"] == {"Owner": "platform"}
    assert created["activation"]["usable"] is True

    (aws,) = named(account.ssm)  # one activation, tagged with the name, as the task asked
    assert aws["ActivationId"] == created["activation"]["activation_id"]
    assert (aws["IamRole"], aws["Description"], aws["DefaultInstanceName"]) == (ROLE, "wave 1", "azure-vm")

    code = code_file.read_text()
    assert len(code) >= 20
    assert register(account, aws["ActivationId"], code, "vm-1").startswith("mi-")  # the code is the working one
    # The secret is nowhere in what the run printed or what the callbacks saw.
    assert code not in playbook.stdout + playbook.stderr
    assert code not in json.dumps([task.result for task in playbook.tasks])


def test_a_task_without_no_log_is_refused_before_anything_is_created(run_playbook, account):
    results = run(run_playbook, account, [step("no no_log", {"iam_role": ROLE}, no_log=False)])
    assert results["no no_log"].status == "failed"
    assert results["no no_log"].result["msg"].startswith("no_log: this task can return an activation code")
    assert activations(account.ssm) == []


def test_different_settings_fail_naming_the_fields_or_replace_when_asked(run_playbook, account):
    spec = {"iam_role": ROLE, "registration_limit": 2}
    steps = [
        step("create", spec),
        step("other limit", dict(spec, registration_limit=5)),
        step("other limit, replace", dict(spec, registration_limit=5, replace_on_change=True)),
    ]
    results = run(run_playbook, account, steps)

    refused = outcome(results, "other limit")
    assert refused["failed"] is True
    assert refused["msg"].startswith("registration_limit: the activation 'azure-wave'")
    assert "registration_limit (2 -> 5)" in refused["msg"]
    replaced = outcome(results, "other limit, replace")
    assert replaced["changed"] is True and replaced["code_returned"] is True
    assert replaced["activation"]["activation_id"] != outcome(results, "create")["activation"]["activation_id"]
    assert replaced["diff"] == {"before": {"iam_role": ROLE, "registration_limit": 2},
                                "after": {"iam_role": ROLE, "registration_limit": 5}}
    assert [a["RegistrationLimit"] for a in named(account.ssm)] == [5]  # the old one is gone


def test_an_exhausted_activation_is_reported_and_replaced_only_when_asked(run_playbook, account, tmp_path):
    code_file = tmp_path / "code"
    spec = {"iam_role": ROLE, "registration_limit": 1}
    results = run(run_playbook, account, [step("create", spec, code_file=str(code_file))])
    activation_id = outcome(results, "create")["activation"]["activation_id"]
    register(account, activation_id, code_file.read_text(), "vm-1")  # uses its only registration

    steps = [step("exhausted", spec), step("exhausted, replace", dict(spec, replace_unusable=True))]
    results = run(run_playbook, account, steps)

    exhausted = outcome(results, "exhausted")
    assert exhausted["changed"] is False and exhausted["code_returned"] is False
    assert (exhausted["activation"]["registrations_remaining"], exhausted["activation"]["usable"]) == (0, False)
    assert any("has used all 1 of its registrations" in w and "replace_unusable=true" in w
               for w in exhausted["warnings"]), exhausted["warnings"]
    replaced = outcome(results, "exhausted, replace")
    assert replaced["changed"] is True and replaced["code_returned"] is True
    assert replaced["activation"]["usable"] is True and replaced["activation"]["activation_id"] != activation_id


def test_planned_nodes_beyond_the_standard_tier_warn_or_fail_before_anything_is_written(run_playbook, account):
    Fleet(account).register("ubuntu-22.04", 2, {})  # 2 of the standard tier's 1,000 hybrid nodes are taken
    steps = [
        step("fits", {"name": "fits", "iam_role": ROLE, "planned_nodes": 998}),
        step("warn", {"name": "warn", "iam_role": ROLE, "planned_nodes": 999}),
        step("fail", {"name": "fail", "iam_role": ROLE, "planned_nodes": 999, "tier_check": "fail"}),
    ]
    results = run(run_playbook, account, steps)

    fits, warned, failed = (outcome(results, s["step"]) for s in steps)
    assert fits["tier"] == {"tier": "standard", "hybrid_nodes": 2, "limit": 1000, "available": 998}
    assert fits["warnings"] == [] and fits["activation"]["registration_limit"] == 998  # sized to the wave
    problem = "planned_nodes: 999 more hybrid nodes do not fit the standard instance tier: 2 of its 1000"
    assert warned["changed"] is True and any(w.startswith(problem) for w in warned["warnings"]), warned
    assert failed["failed"] is True and failed["msg"].startswith(problem)
    assert sorted(a["Tags"][0]["Value"] for a in named_any(account.ssm)) == ["fits", "warn"]


def named_any(ssm) -> list:
    return [a for a in activations(ssm) if any(tag["Key"] == NAME_TAG for tag in a["Tags"])]


def test_delete_removes_every_activation_of_the_name_and_is_idempotent(run_playbook, account):
    account.ssm.create_activation(IamRole=ROLE, Tags=[{"Key": NAME_TAG, "Value": NAME}])  # e.g. a retried create
    account.ssm.create_activation(IamRole=ROLE, Tags=[{"Key": NAME_TAG, "Value": NAME}])
    other = account.ssm.create_activation(IamRole=ROLE, Tags=[{"Key": NAME_TAG, "Value": "other"}])["ActivationId"]
    steps = [step(label, {"state": "absent"}, check=check) for label, check in
             (("check mode", True), ("delete", False), ("delete again", False))]
    results = run(run_playbook, account, steps)

    assert [results[s["step"]].changed for s in steps] == [True, True, False]
    assert [a["ActivationId"] for a in activations(account.ssm)] == [other]


def test_invalid_options_fail_naming_the_field_before_any_call(run_playbook, account):
    steps = [
        step("limit", {"iam_role": ROLE, "registration_limit": 1001}),
        step("hours", {"iam_role": ROLE, "expires_in_hours": 721}),
        step("date", {"iam_role": ROLE, "expiration": "next week"}),
        step("name tag", {"iam_role": ROLE, "tags": {NAME_TAG: "x"}}),
    ]
    results = run(run_playbook, account, steps)

    assert [outcome(results, s["step"])["msg"].split(":")[0] for s in steps] == [
        "registration_limit", "expires_in_hours", "expiration", "tags"]
    assert activations(account.ssm) == []
    assert account.calls()["CreateActivation"] == 0
