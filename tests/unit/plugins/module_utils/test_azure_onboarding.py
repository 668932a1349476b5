# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Onboarding Azure VMs through Run Command: the scripts (quoting, no secret in their text), what is read back
from the VM, the per-VM decision, and the per-VM flow against a fake Azure (the lab test runs the real thing)."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from ansible_collections.fleetpatch.ssm.plugins.module_utils import azure_onboarding as onboarding
from ansible_collections.fleetpatch.ssm.plugins.module_utils.azure_compute import ScriptOutput
from ansible_collections.fleetpatch.ssm.plugins.module_utils.azure_compute import VmRef
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError

REGION = "eu-west-1"
ACTIVATION_ID = "5a2e4b6c-1d3f-4e5a-9b7c-0d1e2f3a4b5c"
CODE = "Zq8$'x`y\"1LfgtPP518S6"  # characters a careless script would break on
BASE = "https://s3.eu-west-1.amazonaws.com/amazon-ssm-eu-west-1/latest"
NODE = "mi-0123456789abcdef0"
OTHER_NODE = "mi-0fedcba9876543210"
TRICKY = ["plain", "it's", "a b", "$HOME", "`id`", "\"q\"", "back\\slash", "new\nline", "", "'''"]


# --------------------------------------------------------------------------------------------------- quoting

@pytest.mark.parametrize("value", TRICKY)
def test_a_bash_quoted_value_is_exactly_the_value_for_bash(value):
    printed = subprocess.run(["bash", "-c", f"printf %s {onboarding.sh_quote(value)}"], capture_output=True,
                             text=True, check=True).stdout
    assert printed == value


@pytest.mark.parametrize("value, quoted", [("it's", "'it''s'"), ("$env:TEMP", "'$env:TEMP'"), ("`n", "'`n'")])
def test_a_powershell_value_is_a_verbatim_string_with_its_quotes_doubled(value, quoted):
    assert onboarding.ps_quote(value) == quoted


# --------------------------------------------------------------------------------------------------- scripts

@pytest.mark.parametrize("windows", [False, True])
@pytest.mark.parametrize("override", [False, True])
def test_the_register_script_carries_the_settings_quoted_and_never_the_code(windows, override):
    script = onboarding.register_script(windows, REGION, ACTIVATION_ID, BASE + "/", override, "http://proxy:3128")
    quote = onboarding.ps_quote if windows else onboarding.sh_quote
    for value in (REGION, ACTIVATION_ID, BASE, "http://proxy:3128"):  # the base URL without its trailing slash
        assert quote(value) in script
    assert CODE not in script and "ActivationCode" in script  # the code is a run command parameter
    assert quote("yes" if override else "no") in script  # -y (answer yes to "override?") only with override


def test_the_linux_scripts_are_valid_bash_and_pass_shellcheck(tmp_path):
    scripts = {"probe.sh": onboarding.LINUX_PROBE,
               "register.sh": onboarding.register_script(False, REGION, ACTIVATION_ID, BASE, True, "http://p:1")}
    for name, text in scripts.items():
        (tmp_path / name).write_text("#!/bin/bash\n" + text)
        subprocess.run(["bash", "-n", str(tmp_path / name)], check=True)
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt install shellcheck)")
    result = subprocess.run(["shellcheck", *[str(tmp_path / name) for name in scripts]], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_a_proxy_value_cannot_escape_its_quotes_in_the_linux_script(tmp_path):
    proxy = "http://p:1/'; touch " + str(tmp_path / "pwned") + "; '"
    script = onboarding.register_script(False, REGION, ACTIVATION_ID, BASE, False, proxy)
    assignment = next(line for line in script.splitlines() if line.startswith("PROXY="))
    printed = subprocess.run(["bash", "-c", assignment + '\nprintf %s "$PROXY"'], capture_output=True, text=True,
                             check=True).stdout
    assert printed == proxy and not (tmp_path / "pwned").exists()


def test_the_code_reaches_the_linux_script_from_its_environment_or_its_first_argument():
    script = onboarding.register_script(False, REGION, ACTIVATION_ID, BASE, False, None)
    first_line = next(line for line in script.splitlines() if line.startswith("ACTIVATION_CODE="))
    probe = first_line + '\nprintf %s "$ACTIVATION_CODE"'
    from_environment = subprocess.run(["bash", "-c", probe], env={"ActivationCode": CODE}, capture_output=True,
                                      text=True, check=True).stdout
    from_argument = subprocess.run(["bash", "-c", probe, "script", CODE], env={}, capture_output=True, text=True,
                                   check=True).stdout
    assert from_environment == from_argument == CODE


# --------------------------------------------------------------------------------------------------- reading

def registration_block(instance_id=NODE, region=REGION, bom=False):
    text = ("\ufeff" if bom else "") + json.dumps({"ManagedInstanceID": instance_id, "Region": region})
    return f"fleetpatch:registration-begin\n{text}\nfleetpatch:registration-end\n"


def test_the_probe_output_gives_os_agents_service_and_registration():
    stdout = ("fleetpatch:os=ubuntu 22.04\nfleetpatch:agents=deb:1 rpm:0 snap:1\nfleetpatch:running=yes\n"
              + registration_block() + "fleetpatch:exit=0\n")
    state = onboarding.parse_output(stdout)
    assert (state.os, state.agents, state.running, state.exit_status) == ("ubuntu 22.04", ["deb", "snap"], True, 0)
    assert (state.registration.instance_id, state.registration.region) == (NODE, REGION)


def test_windows_output_with_crlf_and_a_byte_order_mark_is_read_the_same():
    stdout = ("fleetpatch:agents=windows:1\r\n" + registration_block(bom=True).replace("\n", "\r\n")
              + "fleetpatch:exit=0\r\n")
    state = onboarding.parse_output(stdout)
    assert (state.agents, state.registration.instance_id, state.exit_status) == (["windows"], NODE, 0)


def test_no_registration_file_and_tool_chatter_are_not_a_registration():
    stdout = "Setting up amazon-ssm-agent ...\nfleetpatch:registration-begin\n\nfleetpatch:registration-end\n"
    state = onboarding.parse_output(stdout)
    assert state.registration is None and state.exit_status is None and state.agents == []


def test_a_registration_file_that_names_no_node_is_an_error():
    with pytest.raises(ValueError, match="does not name a managed node"):
        onboarding.parse_output("fleetpatch:registration-begin\n{\"Region\": \"eu-west-1\"}\n"
                                "fleetpatch:registration-end\n")


def test_redact_removes_the_code_from_anything_the_vm_sends_back():
    assert onboarding.redact(f"-code {CODE} -id x", CODE) == "-code ******** -id x"
    assert onboarding.redact("text", None) == "text"


# -------------------------------------------------------------------------------------------------- deciding

def agent_state(agents=(), registration=None):
    return onboarding.AgentState(agents=list(agents), registration=registration)


HERE = onboarding.Registration(NODE, REGION)
OTHER_REGION = onboarding.Registration(NODE, "us-east-1")


@pytest.mark.parametrize("state, ping, override, action, status", [
    (agent_state(["deb"], HERE), "Online", False, "none", "registered"),
    (agent_state(["deb"], HERE), "Online", True, "none", "registered"),  # override never re-registers a good one
    (agent_state(), None, False, "register", "onboarded"),
    (agent_state(["snap"]), None, False, "register", "onboarded"),
    (agent_state(["deb"], HERE), None, False, "refuse", "failed"),  # another account's, or deregistered
    (agent_state(["deb"], HERE), None, True, "reregister", "reregistered"),
    (agent_state(["deb"], OTHER_REGION), None, False, "refuse", "failed"),
    (agent_state(["deb"], OTHER_REGION), None, True, "reregister", "reregistered"),
    (agent_state(["deb"], HERE), "ConnectionLost", False, "refuse", "failed"),
    (agent_state(["deb"], HERE), "ConnectionLost", True, "reregister", "reregistered"),
    (agent_state(["snap", "deb"]), None, True, "refuse", "failed"),  # two agents: never, override or not
])
def test_decide(state, ping, override, action, status):
    decision = onboarding.decide(state, ping, REGION, override)
    assert (decision.action, decision.status) == (action, status)


def test_the_refusals_say_what_to_do():
    assert "remove all but one" in onboarding.decide(agent_state(["snap", "deb"]), None, REGION, False).message
    elsewhere = onboarding.decide(agent_state(["deb"], OTHER_REGION), None, REGION, False).message
    assert NODE in elsewhere and "us-east-1" in elsewhere and "set override" in elsewhere


# ---------------------------------------------------------------------------------------------- the VM flow

class FakeVm:
    def __init__(self, name, windows=False, agents=(), registration=None, power="running", managed=True,
                 echo_code=False, register_fails=False):
        self.ref = VmRef("6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "rg", name)
        self.windows, self.agents, self.registration, self.power = windows, list(agents), registration, power
        self.managed, self.echo_code, self.register_fails = managed, echo_code, register_fails
        self.scripts = []  # (transport, script, parameters, protected parameters)


class FakeAzure:
    """The azure_compute functions the flow uses, on FakeVms; registration gives the next node id."""

    def __init__(self, vms):
        self.vms = {vm.ref.name: vm for vm in vms}
        self.registered = []

    def get_vm(self, client, ref):
        vm = self.vms[ref.name]
        return {"location": "westeurope", "properties": {
            "vmId": f"vm-id-{ref.name}", "storageProfile": {"osDisk": {"osType": "Windows" if vm.windows else "Linux"}},
            "instanceView": {"statuses": [{"code": f"PowerState/{vm.power}"}]}}}

    @staticmethod
    def power_state(vm):
        return vm["properties"]["instanceView"]["statuses"][0]["code"].split("/")[1]

    def run_action(self, client, ref, windows, script, parameters, timeout):
        vm = self.vms[ref.name]
        vm.scripts.append(("action", script, parameters, []))
        if "-register" in script:
            return self._register(vm, dict(parameters))
        flags = " ".join(f"{flavour}:1" for flavour in vm.agents)
        registration = (json.dumps({"ManagedInstanceID": vm.registration.instance_id,
                                    "Region": vm.registration.region}) if vm.registration else "")
        return ScriptOutput(f"fleetpatch:agents={flags}\nfleetpatch:registration-begin\n{registration}\n"
                            "fleetpatch:registration-end\nfleetpatch:exit=0\n", "")

    def run_managed(self, client, ref, location, name, script, parameters, protected, timeout):
        vm = self.vms[ref.name]
        if not vm.managed:
            raise _Refused()
        vm.scripts.append(("managed", script, parameters, protected))
        return self._register(vm, dict(protected))

    def _register(self, vm, values):
        code = values[onboarding.CODE_PARAMETER]
        echoed = f"agent: registering with code {code}\n" if vm.echo_code else ""
        if vm.register_fails:
            return ScriptOutput(echoed + "ERROR Registration failed: InvalidActivation\nfleetpatch:exit=1\n", "")
        vm.registration = onboarding.Registration(f"mi-{len(self.registered):017x}", REGION)
        self.registered.append(vm.registration.instance_id)
        return ScriptOutput(echoed + "fleetpatch:installed=yes\n" + registration_block(vm.registration.instance_id)
                            + "fleetpatch:exit=0\n", "")

    @staticmethod
    def managed_run_command_refused(error):
        return isinstance(error, _Refused)


class _Refused(Exception):
    status_code = 404


def settings(**changes):
    values = dict(region=REGION, activation_id=ACTIVATION_ID, activation_code=CODE, agent_base_url=BASE, proxy=None,
                  override=False, run_command="auto", timeout=60, wait_online=True, wait_timeout=1,
                  poll_interval=0.01, check_mode=False)
    values.update(changes)
    return onboarding.Settings(**values)


def run(azure, nodes=None, **changes):
    """Onboard the VMs of `azure` (a FakeAzure); `nodes` is what SSM says: {node id: PingStatus}. New
    registrations come Online. Returns {VM name: result}."""
    nodes = dict(nodes or {})

    def ping_status(instance_id):
        if instance_id in azure.registered and instance_id not in nodes:
            nodes[instance_id] = "Online"
        return nodes.get(instance_id)

    flow = onboarding.Onboarding(settings(**changes), compute_for=lambda subscription: object(),
                                 ping_status=ping_status, azure=azure, errors=(_Refused,))
    return {result["name"]: result for result in flow.run([vm.ref for vm in azure.vms.values()], parallelism=4)}


def test_a_new_vm_is_registered_through_a_managed_run_command_with_the_code_protected():
    vm = FakeVm("app")
    results = run(FakeAzure([vm]))
    assert results["app"]["status"] == "onboarded" and results["app"]["changed"]
    assert results["app"]["instance_id"] == vm.registration.instance_id
    assert results["app"]["run_command"] == "managed"
    transport, script, parameters, protected = vm.scripts[-1]
    assert protected == [(onboarding.CODE_PARAMETER, CODE)] and parameters == []
    assert CODE not in script


def test_a_vm_online_in_the_account_is_left_alone_and_nothing_secret_is_sent():
    vm = FakeVm("app", agents=["deb"], registration=HERE)
    azure = FakeAzure([vm])
    results = run(azure, nodes={NODE: "Online"})
    assert (results["app"]["status"], results["app"]["changed"], results["app"]["instance_id"]) == \
        ("registered", False, NODE)
    assert [script[0] for script in vm.scripts] == ["action"] and azure.registered == []


def test_check_mode_reads_only_and_needs_no_activation():
    vms = [FakeVm("new"), FakeVm("elsewhere", agents=["deb"], registration=OTHER_REGION)]
    azure = FakeAzure(vms)
    results = run(azure, check_mode=True, activation_id=None, activation_code=None, override=True)
    assert (results["new"]["status"], results["new"]["changed"]) == ("onboarded", True)
    assert results["new"]["message"].startswith("would ")
    assert (results["elsewhere"]["status"], results["elsewhere"]["previous_instance_id"]) == ("reregistered", NODE)
    assert azure.registered == [] and all("-register" not in s for vm in vms for _transport, s, *_rest in vm.scripts)


def test_one_failing_vm_does_not_stop_the_others():
    vms = [FakeVm("two", agents=["snap", "deb"]), FakeVm("off", power="deallocated"), FakeVm("ok"),
           FakeVm("elsewhere", agents=["deb"], registration=OTHER_REGION)]
    results = run(FakeAzure(vms))
    assert results["ok"]["status"] == "onboarded"
    assert {name: results[name]["status"] for name in ("two", "off", "elsewhere")} == dict.fromkeys(
        ("two", "off", "elsewhere"), "failed")
    assert "deallocated" in results["off"]["message"]
    assert len(vms[0].scripts) == 1  # two agents: only the read-only script ran


def test_override_reregisters_and_returns_the_old_node():
    vm = FakeVm("moved", agents=["deb"], registration=OTHER_REGION)
    results = run(FakeAzure([vm]), override=True)
    assert (results["moved"]["status"], results["moved"]["previous_instance_id"]) == ("reregistered", NODE)
    assert results["moved"]["instance_id"] != NODE and "-y" in vm.scripts[-1][1]


def test_a_vm_that_refuses_managed_run_commands_gets_the_action_run_command():
    vm = FakeVm("old-agent", managed=False)
    results = run(FakeAzure([vm]))
    assert (results["old-agent"]["status"], results["old-agent"]["run_command"]) == ("onboarded", "action")
    assert vm.scripts[-1][2] == [(onboarding.CODE_PARAMETER, CODE)]


def test_run_command_managed_never_falls_back():
    results = run(FakeAzure([FakeVm("old-agent", managed=False)]), run_command="managed")
    assert results["old-agent"]["status"] == "failed"


def test_the_code_never_reaches_a_result_even_when_the_vm_echoes_it():
    results = run(FakeAzure([FakeVm("echo", echo_code=True, register_fails=True), FakeVm("echo-ok", echo_code=True)]))
    assert results["echo"]["status"] == "failed" and "InvalidActivation" in results["echo"]["message"]
    assert CODE not in json.dumps(results)


def test_a_registered_node_that_never_comes_online_fails_after_the_wait():
    vm = FakeVm("silent")
    azure = FakeAzure([vm])
    results = run(azure, nodes={"mi-00000000000000000": "ConnectionLost"})
    assert results["silent"]["status"] == "failed" and "ConnectionLost" in results["silent"]["message"]


def test_registering_without_an_activation_fails_naming_the_options():
    results = run(FakeAzure([FakeVm("new")]), activation_id=None, activation_code=None)
    assert results["new"]["status"] == "failed" and "activation_id and activation_code" in results["new"]["message"]


def test_summary_counts_statuses():
    assert onboarding.summary([{"status": "failed"}, {"status": "onboarded"}, {"status": "failed"}]) == {
        "failed": 2, "onboarded": 1}


# ---------------------------------------------------------------------------------------------- option checks

def params(**changes):
    values = dict(region=REGION, activation_id=ACTIVATION_ID, agent_base_url=None, proxy=None, parallelism=10,
                  timeout=900, wait_timeout=300, poll_interval=5)
    values.update(changes)
    return values


@pytest.mark.parametrize("changes, message", [
    ({"region": None}, "region: required"),
    ({"region": "Ireland"}, "region: 'Ireland' is not valid"),
    ({"activation_id": "abc"}, "activation_id: 'abc' is not valid"),
    ({"agent_base_url": "ftp://mirror/ssm"}, "agent_base_url: 'ftp://mirror/ssm' is not valid"),
    ({"proxy": "proxy:3128"}, "proxy: 'proxy:3128' is not valid"),
    ({"parallelism": 0}, "parallelism: 0 is out of range"),
    ({"poll_interval": 0}, "poll_interval: 0 is out of range"),
    ({"azure_client_secret": "s", "azure_client_id": "c"}, "azure_client_secret: .* needs azure_tenant_id"),
])
def test_bad_options_are_refused_naming_the_field(changes, message):
    with pytest.raises(ParameterError, match=message):
        onboarding.check_settings(params(**changes))


def test_the_default_agent_url_is_the_regions_bucket():
    assert onboarding.default_agent_base_url("us-east-1") == \
        "https://s3.us-east-1.amazonaws.com/amazon-ssm-us-east-1/latest"
