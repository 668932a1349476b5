# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Azure VMs become SSM hybrid managed nodes through Azure Run Command, without SSH or WinRM.

Per VM, one script at a time (Azure runs one action script at a time per VM):
  1. read     the VM (power state, OS type), then a read-only script: which SSM agent packages are installed
              (deb, rpm, snap; the Windows service), whether the agent runs, and its registration file
              (/var/lib/amazon/ssm/registration or %ProgramData%\\Amazon\\SSM\\InstanceData\\registration: JSON
              ManagedInstanceID + Region, no account id);
  2. decide   (`decide`, pure): a registration whose mi- id is Online in the target account-region is kept
              (unchanged); two agent flavours are refused (two agents break each other: never install a second);
              a registration the target account does not know (another account, another region, a deregistered
              node) is replaced only with `override`; no registration means install-if-missing + register;
  3. register (not in check mode) with a script that installs the agent from AWS's regional bucket when it is
              missing, stops the service, registers (`amazon-ssm-agent -register -code -id -region`, -y only
              with override), starts the service and prints the registration file;
  4. confirm  the new mi- id through DescribeInstanceInformation until it is Online (optional wait).

The activation code is a one-time secret. It travels only as a managed run command's protected parameter (Azure
encrypts it and never returns it; the script reads it from its environment on Linux, its param() block on Windows)
or, on VMs that refuse managed run commands, as an action run command parameter. It is never part of a script's
text, never written to a file on the VM, never in a result or a message: `redact` removes it from any text that
comes back from the VM before that text is used.

Scripts print `fleetpatch:<key>=<value>` lines; the module reads those and ignores everything else. The action Run
Command keeps only the last 4,096 bytes of each stream and gives no exit code, so the markers come last and the
register script prints its own exit status.
"""

from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from typing import Callable
from typing import Optional
from urllib.parse import urlparse

from .validation import ParameterError

MARKER = "fleetpatch:"
CODE_PARAMETER = "ActivationCode"  # the script's environment variable (Linux) / param() name (Windows)
RUN_COMMAND_NAME = "fleetpatch-ssm-register"
ONLINE = "Online"
AGENT_FLAVOURS = ("deb", "rpm", "snap", "windows")
_INSTANCE_ID = re.compile(r"mi-[0-9a-f]{17}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_ACTIVATION_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


# ---------------------------------------------------------------------------------------------------- quoting

def sh_quote(value: str) -> str:
    """A bash word that is exactly `value`: single quotes, each ' written as '\\''."""
    return "'" + value.replace("'", "'\\''") + "'"


def ps_quote(value: str) -> str:
    """A PowerShell verbatim string that is exactly `value`: single quotes, each ' doubled."""
    return "'" + value.replace("'", "''") + "'"


def default_agent_base_url(region: str) -> str:
    """AWS's regional bucket of the SSM agent (user guide, "Manually installing SSM Agent")."""
    return f"https://s3.{region}.amazonaws.com/amazon-ssm-{region}/latest"


def check_url(field_name: str, value: Optional[str]) -> None:
    if value is None:
        return
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ParameterError(f"{field_name}: {value!r} is not valid; allowed: an http:// or https:// URL")


# ------------------------------------------------------------------------------------------------------ scripts

# Which agent packages are installed. A deb counts only with its binary in place (dpkg -s also answers for a
# removed package whose configuration files remain).
_LINUX_DETECT = """\
DEB=0
RPM=0
SNAP=0
if dpkg -s amazon-ssm-agent >/dev/null 2>&1 && [ -x /usr/bin/amazon-ssm-agent ]; then DEB=1; fi
if rpm -q amazon-ssm-agent >/dev/null 2>&1; then RPM=1; fi
if snap list amazon-ssm-agent >/dev/null 2>&1; then SNAP=1; fi
echo "fleetpatch:agents=deb:$DEB rpm:$RPM snap:$SNAP"
"""

_LINUX_REGISTRATION = """\
echo "fleetpatch:registration-begin"
cat /var/lib/amazon/ssm/registration 2>/dev/null
echo ""
echo "fleetpatch:registration-end"
"""

LINUX_PROBE = """\
# fleetpatch.ssm: read the SSM agent's state on this VM (changes nothing)
if [ -f /etc/os-release ]; then
  # shellcheck source=/dev/null
  . /etc/os-release
  echo "fleetpatch:os=${ID:-linux} ${VERSION_ID:-}"
fi
""" + _LINUX_DETECT + """\
if systemctl is-active amazon-ssm-agent >/dev/null 2>&1; then echo "fleetpatch:running=yes"; fi
if systemctl is-active snap.amazon-ssm-agent.amazon-ssm-agent >/dev/null 2>&1; then echo "fleetpatch:running=yes"; fi
""" + _LINUX_REGISTRATION + """\
echo "fleetpatch:exit=0"
"""

WINDOWS_PROBE = """\
# fleetpatch.ssm: read the SSM agent's state on this VM (changes nothing)
$Service = Get-Service -Name AmazonSSMAgent -ErrorAction SilentlyContinue
if ($Service) {
    Write-Output 'fleetpatch:agents=windows:1'
    if ($Service.Status -eq 'Running') { Write-Output 'fleetpatch:running=yes' }
}
Write-Output 'fleetpatch:registration-begin'
$Registration = Join-Path $env:ProgramData 'Amazon\\SSM\\InstanceData\\registration'
if (Test-Path $Registration) { Get-Content -Raw $Registration }
Write-Output 'fleetpatch:registration-end'
Write-Output 'fleetpatch:exit=0'
"""

_LINUX_REGISTER = """\
# fleetpatch.ssm: install the SSM agent if it is missing, then register it with a hybrid activation.
# The activation code comes as the protected parameter ActivationCode (an environment variable) or, through an
# action run command, as the first argument: it is not part of this text and is never written to disk.
ACTIVATION_CODE="${{ActivationCode:-${{1:-}}}}"
unset ActivationCode
REGION={region}
ACTIVATION_ID={activation_id}
AGENT_BASE_URL={base_url}
OVERRIDE={override}
PROXY={proxy}
if [ -z "$ACTIVATION_CODE" ]; then
  echo "fleetpatch:error=the activation code did not reach the script"
  exit 2
fi
if [ -n "$PROXY" ]; then
  export https_proxy="$PROXY" HTTPS_PROXY="$PROXY" http_proxy="$PROXY" HTTP_PROXY="$PROXY"
fi
""" + _LINUX_DETECT + """\
if printf %s "$DEB$RPM$SNAP" | grep -q '1.*1'; then
  echo "fleetpatch:error=more than one SSM agent is installed (deb:$DEB rpm:$RPM snap:$SNAP); remove all but one"
  exit 3
fi
if [ "$DEB$RPM$SNAP" = "000" ]; then
  if [ "$(uname -m)" = "aarch64" ]; then ARCH=arm64; else ARCH=amd64; fi
  WORK=/var/tmp/fleetpatch-ssm-agent
  mkdir -p "$WORK"
  if command -v dpkg >/dev/null 2>&1; then
    PACKAGE="$WORK/amazon-ssm-agent.deb"
    URL="$AGENT_BASE_URL/debian_$ARCH/amazon-ssm-agent.deb"
  elif command -v rpm >/dev/null 2>&1; then
    PACKAGE="$WORK/amazon-ssm-agent.rpm"
    URL="$AGENT_BASE_URL/linux_$ARCH/amazon-ssm-agent.rpm"
  else
    echo "fleetpatch:error=this VM has neither dpkg nor rpm: no SSM agent package fits it"
    exit 3
  fi
  if ! curl -fsS --retry 3 -o "$PACKAGE" "$URL"; then
    echo "fleetpatch:error=could not download $URL"
    exit 4
  fi
  if command -v dpkg >/dev/null 2>&1; then
    dpkg -i "$PACKAGE" >/dev/null
    INSTALLED=$?
    DEB=1
  else
    rpm -U --replacepkgs "$PACKAGE" >/dev/null
    INSTALLED=$?
    RPM=1
  fi
  rm -rf "$WORK"
  if [ "$INSTALLED" != "0" ]; then
    echo "fleetpatch:error=the agent package did not install (exit status $INSTALLED)"
    exit 5
  fi
  echo "fleetpatch:installed=yes"
fi
if [ "$SNAP" = "1" ]; then
  AGENT=/snap/amazon-ssm-agent/current/amazon-ssm-agent
  UNIT=snap.amazon-ssm-agent.amazon-ssm-agent
else
  AGENT=/usr/bin/amazon-ssm-agent
  UNIT=amazon-ssm-agent
fi
if [ -n "$PROXY" ]; then
  DROP_IN="/etc/systemd/system/$UNIT.service.d"
  mkdir -p "$DROP_IN"
  printf '[Service]\\nEnvironment="https_proxy=%s" "http_proxy=%s" "no_proxy=169.254.169.254"\\n' \\
    "$PROXY" "$PROXY" > "$DROP_IN/fleetpatch-proxy.conf"
  systemctl daemon-reload
fi
systemctl stop "$UNIT"
if [ "$OVERRIDE" = "yes" ]; then
  "$AGENT" -register -clear >/dev/null
  "$AGENT" -register -code "$ACTIVATION_CODE" -id "$ACTIVATION_ID" -region "$REGION" -y
else
  "$AGENT" -register -code "$ACTIVATION_CODE" -id "$ACTIVATION_ID" -region "$REGION"
fi
REGISTERED=$?
ACTIVATION_CODE=""
systemctl enable "$UNIT" >/dev/null 2>&1
systemctl start "$UNIT"
""" + _LINUX_REGISTRATION + """\
echo "fleetpatch:exit=$REGISTERED"
exit "$REGISTERED"
"""

_WINDOWS_REGISTER = """\
# fleetpatch.ssm: install the SSM agent if it is missing, then register it with a hybrid activation.
# The activation code comes as the protected parameter ActivationCode: it is not part of this text.
param([string]$ActivationCode)
$Region = {region}
$ActivationId = {activation_id}
$AgentBaseUrl = {base_url}
$Override = {override}
$Proxy = {proxy}
if (-not $ActivationCode) {{
    Write-Output 'fleetpatch:error=the activation code did not reach the script'
    exit 2
}}
$Agent = Join-Path $env:ProgramFiles 'Amazon\\SSM\\amazon-ssm-agent.exe'
$Registration = Join-Path $env:ProgramData 'Amazon\\SSM\\InstanceData\\registration'
$Service = Get-Service -Name AmazonSSMAgent -ErrorAction SilentlyContinue
if ($Service) {{
    Stop-Service AmazonSSMAgent
    if ($Override -eq 'yes') {{
        & $Agent -register -clear | Out-Null
        & $Agent -register -code $ActivationCode -id $ActivationId -region $Region -y
    }} else {{
        & $Agent -register -code $ActivationCode -id $ActivationId -region $Region
    }}
    $Registered = $LASTEXITCODE
    Start-Service AmazonSSMAgent
}} else {{
    $Work = Join-Path $env:TEMP 'fleetpatch-ssm-agent'
    New-Item -ItemType Directory -Path $Work -Force | Out-Null
    $Setup = Join-Path $Work 'AmazonSSMAgentSetup.exe'
    $Url = $AgentBaseUrl + '/windows_amd64/AmazonSSMAgentSetup.exe'
    try {{
        if ($Proxy) {{
            Invoke-WebRequest -Uri $Url -OutFile $Setup -UseBasicParsing -Proxy $Proxy -ErrorAction Stop
        }} else {{
            Invoke-WebRequest -Uri $Url -OutFile $Setup -UseBasicParsing -ErrorAction Stop
        }}
    }} catch {{
        Write-Output ('fleetpatch:error=could not download ' + $Url)
        exit 4
    }}
    $Process = Start-Process -FilePath $Setup -ArgumentList @('/q', ('CODE=' + $ActivationCode), ('ID=' + $ActivationId), ('REGION=' + $Region)) -Wait -PassThru
    $Registered = $Process.ExitCode
    Remove-Item -Path $Work -Recurse -Force
    Write-Output 'fleetpatch:installed=yes'
}}
$ActivationCode = ''
Write-Output 'fleetpatch:registration-begin'
if (Test-Path $Registration) {{ Get-Content -Raw $Registration }}
Write-Output 'fleetpatch:registration-end'
Write-Output ('fleetpatch:exit=' + $Registered)
exit $Registered
"""


def register_script(windows: bool, region: str, activation_id: str, base_url: str, override: bool,
                    proxy: Optional[str]) -> str:
    """The install-and-register script with this task's settings. Every value is quoted for the VM's shell; the
    activation code is not among them (it is a parameter of the run command)."""
    quote = ps_quote if windows else sh_quote
    template = _WINDOWS_REGISTER if windows else _LINUX_REGISTER
    return template.format(region=quote(region), activation_id=quote(activation_id),
                           base_url=quote(base_url.rstrip("/")), override=quote("yes" if override else "no"),
                           proxy=quote(proxy or ""))


def probe_script(windows: bool) -> str:
    return WINDOWS_PROBE if windows else LINUX_PROBE


# ------------------------------------------------------------------------------------------------------ reading

@dataclass
class Registration:
    instance_id: str
    region: str


@dataclass
class AgentState:
    """What a script printed about the agent: installed flavours, running, registration, errors, exit status."""

    os: Optional[str] = None
    agents: list = field(default_factory=list)
    running: bool = False
    registration: Optional[Registration] = None
    installed: bool = False
    errors: list = field(default_factory=list)
    exit_status: Optional[int] = None


def redact(text: str, secret: Optional[str]) -> str:
    """`text` without `secret` (what a VM sends back could echo what it was given)."""
    return text.replace(secret, "********") if secret else text


def parse_registration(text: str) -> Optional[Registration]:
    """The agent's registration file ({"ManagedInstanceID": "mi-...", "Region": "..."}), or None when empty."""
    text = text.strip().lstrip("\ufeff")
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = {}
    instance_id, region = str(data.get("ManagedInstanceID") or ""), str(data.get("Region") or "")
    if not _INSTANCE_ID.fullmatch(instance_id):
        raise ValueError(f"the registration file does not name a managed node: {text[:200]!r}")
    return Registration(instance_id, region)


def parse_output(stdout: str) -> AgentState:
    """The `fleetpatch:` lines of a script's output (anything else is the tools' own output)."""
    state = AgentState()
    registration_lines, in_registration = [], False
    for line in stdout.splitlines():
        line = line.rstrip("\r")
        if line == MARKER + "registration-begin":
            in_registration = True
        elif line == MARKER + "registration-end":
            in_registration = False
        elif in_registration:
            registration_lines.append(line)
        elif line.startswith(MARKER):
            key, value = (line[len(MARKER):].split("=", 1) + [""])[:2]
            _read_marker(state, key, value)
    state.registration = parse_registration("\n".join(registration_lines))
    return state


def _read_marker(state: AgentState, key: str, value: str) -> None:
    if key == "os":
        state.os = value.strip() or None
    elif key == "agents":
        state.agents = [name for name, flag in (item.split(":", 1) for item in value.split() if ":" in item)
                        if flag == "1" and name in AGENT_FLAVOURS]
    elif key == "running":
        state.running = value == "yes"
    elif key == "installed":
        state.installed = value == "yes"
    elif key == "error":
        state.errors.append(value)
    elif key == "exit" and value.lstrip("-").isdigit():
        state.exit_status = int(value)


# ----------------------------------------------------------------------------------------------------- deciding

@dataclass(frozen=True)
class Decision:
    """What to do with a VM: `action` none | register | reregister | refuse, the status it leads to, and why."""

    action: str
    status: str
    message: str


def decide(state: AgentState, node_ping_status: Optional[str], region: str, override: bool) -> Decision:
    """`node_ping_status`: the PingStatus the target account-region gives the registered mi- id, None when it does
    not know that id (or there is no registration)."""
    if len(state.agents) > 1:
        return Decision("refuse", "failed",
                        f"more than one SSM agent is installed ({' and '.join(state.agents)}); two agents break each "
                        "other: remove all but one, then run again")
    registration = state.registration
    if registration is None:
        what = f"the installed {state.agents[0]} agent" if state.agents else "the SSM agent (not installed yet)"
        return Decision("register", "onboarded", f"register {what} with the activation")
    if registration.region == region and node_ping_status == ONLINE:
        return Decision("none", "registered", f"already registered as {registration.instance_id}, Online in {region}")
    if registration.region == region and node_ping_status is not None:
        where = f"registered as {registration.instance_id} in this account but {node_ping_status}"
        if override:
            return Decision("reregister", "reregistered", f"{where}; re-register it (override)")
        return Decision("refuse", "failed", f"{where}: start the agent or check its network; override re-registers "
                                            "it (a new managed node)")
    where = (f"registered as {registration.instance_id} in {registration.region or 'an unknown region'}, which "
             f"the target account does not know in {region} (another account, another region, or a deregistered "
             "node)")
    if override:
        return Decision("reregister", "reregistered", f"{where}; re-register it (override)")
    return Decision("refuse", "failed", f"{where}: set override to re-register it here")


# ------------------------------------------------------------------------------------------------------ running

@dataclass
class Settings:
    """The task's options that every VM shares."""

    region: str
    activation_id: Optional[str]
    activation_code: Optional[str]
    agent_base_url: str
    proxy: Optional[str]
    override: bool
    run_command: str  # auto | managed | action
    timeout: float
    wait_online: bool
    wait_timeout: float
    poll_interval: float
    check_mode: bool


class VmFailure(Exception):
    """This VM cannot go on; the message says why (never with the activation code)."""


class Onboarding:
    """Runs the per-VM steps (module docstring) with bounded parallelism across VMs.

    `compute_for(subscription_id)` gives a ComputeManagementClient; `ping_status(instance_id)` the node's PingStatus
    in the target account-region (None: unknown there); `azure` is the azure_compute module (run commands)."""

    def __init__(self, settings: Settings, compute_for: Callable, ping_status: Callable, azure,
                 errors: tuple = ()) -> None:
        self.settings = settings
        self.compute_for = compute_for
        self.ping_status = ping_status
        self.azure = azure
        self.errors = errors  # the SDK errors that fail one VM (Azure HTTP errors, AWS client errors)
        self._clients: dict = {}
        self._lock = threading.Lock()

    def run(self, refs: list, parallelism: int) -> list:
        with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(refs) or 1))) as pool:
            return list(pool.map(self.onboard, refs))

    def _client(self, subscription_id: str):
        with self._lock:
            if subscription_id.lower() not in self._clients:
                self._clients[subscription_id.lower()] = self.compute_for(subscription_id)
            return self._clients[subscription_id.lower()]

    def onboard(self, ref) -> dict:
        result = {"vm": ref.resource_id, "name": ref.name, "vm_id": None, "os": None, "agent": None,
                  "instance_id": None, "previous_instance_id": None, "run_command": None, "changed": False,
                  "status": "failed", "message": ""}
        try:
            self._onboard(ref, result)
        except VmFailure as failure:
            result.update(status="failed", message=self._clean(str(failure)))
        except self.errors as error:
            result.update(status="failed", message=self._clean(_error_text(error)))
        except ValueError as error:  # a registration file that is not the agent's JSON
            result.update(status="failed", message=self._clean(str(error)))
        return result

    def _onboard(self, ref, result: dict) -> None:
        client = self._client(ref.subscription_id)
        vm = self.azure.get_vm(client, ref)
        properties = vm.get("properties") or {}
        windows = ((properties.get("storageProfile") or {}).get("osDisk") or {}).get("osType") == "Windows"
        view = properties.get("instanceView") or {}
        result.update(vm_id=properties.get("vmId"),
                      os=" ".join(filter(None, (view.get("osName"), view.get("osVersion")))) or None)
        power = self.azure.power_state(vm)
        if power not in (None, "running"):
            raise VmFailure(f"the VM is {power}: Run Command needs it running")
        state = self._probe(client, ref, windows)
        result.update(os=state.os or result["os"], agent=(state.agents or [None])[0])
        registration = state.registration
        if registration:
            result["instance_id"] = registration.instance_id
        ping = self.ping_status(registration.instance_id) \
            if registration and registration.region == self.settings.region else None
        decision = decide(state, ping, self.settings.region, self.settings.override)
        result.update(status=decision.status, message=decision.message)
        if decision.action in ("none", "refuse"):
            return
        result["changed"] = True
        if decision.action == "reregister":
            result["previous_instance_id"] = registration.instance_id
        if self.settings.check_mode:
            result["message"] = "would " + decision.message
            return
        self._register(client, ref, vm, windows, decision, result)

    def _probe(self, client, ref, windows: bool) -> AgentState:
        """The read-only script through the action Run Command: nothing secret goes in, and no resource is left."""
        output = self.azure.run_action(client, ref, windows, probe_script(windows), [], self.settings.timeout)
        state = parse_output(self._clean(output.stdout))
        if state.exit_status != 0:
            raise VmFailure("the read-only script did not finish: "
                            + (_tail(_unmarked(self._clean(output.stderr + "\n" + output.stdout))) or "no output"))
        return state

    def _register(self, client, ref, vm: dict, windows: bool, decision: Decision, result: dict) -> None:
        settings = self.settings
        if not (settings.activation_id and settings.activation_code):
            raise VmFailure(f"{decision.message}: needs activation_id and activation_code")
        script = register_script(windows, settings.region, settings.activation_id, settings.agent_base_url,
                                 decision.action == "reregister", settings.proxy)
        output, transport = self._run_with_code(client, ref, vm, windows, script)
        result["run_command"] = transport
        state = parse_output(self._clean(output.stdout))
        if state.errors or state.exit_status != 0 or state.registration is None:
            problem = "; ".join(state.errors) or _tail(_unmarked(self._clean(output.stdout + "\n" + output.stderr)))
            ended = "" if output.state in ("Succeeded", "Failed") else f" ({output.state})"
            raise VmFailure(f"registration failed{ended}: {problem or 'the script ended without a registration'}")
        result["instance_id"] = state.registration.instance_id
        if settings.wait_online:
            self._wait_online(state.registration.instance_id)
        installed = "installed the agent and " if state.installed else ""
        result["message"] = f"{installed}registered as {state.registration.instance_id}" + (
            f" (was {result['previous_instance_id']})" if result["previous_instance_id"] else "")

    def _run_with_code(self, client, ref, vm: dict, windows: bool, script: str):
        """A managed run command with the code as a protected parameter; the action Run Command only where the
        option says so, or (auto) where Azure refuses managed run commands on this VM."""
        code = [(CODE_PARAMETER, self.settings.activation_code)]
        if self.settings.run_command in ("auto", "managed"):
            try:
                return self.azure.run_managed(client, ref, vm["location"], RUN_COMMAND_NAME, script, [], code,
                                              self.settings.timeout), "managed"
            except self.errors as error:
                if self.settings.run_command == "managed" or not self.azure.managed_run_command_refused(error):
                    raise
        return self.azure.run_action(client, ref, windows, script, code, self.settings.timeout), "action"

    def _wait_online(self, instance_id: str) -> None:
        deadline = time.monotonic() + self.settings.wait_timeout
        status = self.ping_status(instance_id)
        while status != ONLINE:
            if time.monotonic() >= deadline:
                raise VmFailure(f"registered as {instance_id}, but it is {status or 'not listed'} in SSM after "
                                f"{self.settings.wait_timeout:g} seconds")
            time.sleep(self.settings.poll_interval)
            status = self.ping_status(instance_id)

    def _clean(self, text: str) -> str:
        return redact(text, self.settings.activation_code)


def _unmarked(text: str) -> str:
    """The tools' own output: what a script printed besides its `fleetpatch:` lines, blank lines dropped."""
    return "\n".join(line for line in text.splitlines() if line.strip() and not line.startswith(MARKER))


def _tail(text: str, limit: int = 600) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def _error_text(error: Exception) -> str:
    """An SDK error in one line: Azure's HttpResponseError has `message`, botocore's ClientError its response."""
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        return f"{response['Error'].get('Code')}: {response['Error'].get('Message')}"
    text = (getattr(error, "message", None) or str(error)).strip()
    return text.splitlines()[0] if text else type(error).__name__


def summary(results: list) -> dict:
    counts: dict = {}
    for result in results:
        counts[result["status"]] = counts.get(result["status"], 0) + 1
    return counts


def check_settings(params: dict) -> None:
    """The option checks that need no call (ParameterError names the field)."""
    if not params.get("region"):
        raise ParameterError("region: required (the AWS region the VMs register in), e.g. eu-west-1")
    if not _REGION.fullmatch(params["region"]):
        raise ParameterError(f"region: {params['region']!r} is not valid; allowed: an AWS region name, e.g. "
                             "eu-west-1")
    if params.get("activation_id") and not _ACTIVATION_ID.fullmatch(params["activation_id"]):
        raise ParameterError(f"activation_id: {params['activation_id']!r} is not valid; allowed: the activation's "
                             "id as CreateActivation returns it (a GUID)")
    if params.get("azure_client_secret") and not (params.get("azure_tenant_id") and params.get("azure_client_id")):
        raise ParameterError("azure_client_secret: a service principal secret needs azure_tenant_id and "
                             "azure_client_id too (or leave all three out for DefaultAzureCredential)")
    check_url("agent_base_url", params.get("agent_base_url"))
    check_url("proxy", params.get("proxy"))
    for name in ("parallelism", "timeout", "wait_timeout"):
        if params[name] < 1:
            raise ParameterError(f"{name}: {params[name]!r} is out of range; allowed: 1 or more")
    if not 0 < params["poll_interval"] <= 60:
        raise ParameterError(f"poll_interval: {params['poll_interval']!r} is out of range; allowed: more than 0, "
                             "at most 60")
