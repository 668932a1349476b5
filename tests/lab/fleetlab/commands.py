"""Run Command for AWS-RunPatchBaseline: SendCommand, ListCommands, ListCommandInvocations, GetCommandInvocation,
CancelCommand, and the worker that delivers commands to the simulated agents (agent.py).

AWS rules followed (SSM API reference; user guide "Understanding command statuses" and "Run commands at scale"):
* SendCommand answers at once with status Pending; the command runs afterwards. Invocations are delivered to one
  node first, then to exponentially more nodes up to MaxConcurrency (default 50; a number or a percentage of the
  targets). Once more than MaxErrors invocations failed (default 0), no further invocation is sent: those left
  end as Terminated, and in-flight ones finish.
* Invocation statuses (Status / StatusDetails): Pending, InProgress, Success, Failed (the agent's exit code was not
  0; counts against MaxErrors), Failed/Undeliverable (the node does not respond; does not count against MaxErrors,
  and the command fails only when every invocation is undeliverable), TimedOut/DeliveryTimedOut (not delivered
  before TimeoutSeconds, or not finished when the command expires), Cancelled/Terminated, Cancelling/Cancelled.
* Command statuses: Success (every delivered invocation succeeded), Failed (more than MaxErrors errors, or every
  invocation undeliverable), TimedOut/DeliveryTimedOut (every invocation timed out), Incomplete (anything else),
  Cancelled, and Success/NoInstancesInTag when the targets match no node.

Choices where AWS documents nothing (each is marked "lab choice" where it is made):
* The node is offline (its PingStatus is not Online) when its turn comes: Undeliverable at once. The guide defines
  Undeliverable as "the node might not exist or might not be responding", and that is what AWS reports for agents
  in ConnectionLost; the lab does not model the Delayed retries before it.
* Terminated invocations report Status Cancelled (the guide: "canceled by the system"); Incomplete commands report
  Status Failed (CommandStatus has no Incomplete value).
* Percentages of MaxConcurrency/MaxErrors are rounded down (the guide's example: 10% of 50 = 5); MaxConcurrency
  is at least 1.
* Targets are resolved when the command is sent (AWS resolves them asynchronously: TargetCount may read 0 first).
* ExecutionTimedOut is not simulated: the simulated agent finishes within its step timeout (7200 s).
* The document runs one step per platform (PatchWindows / PatchLinux, by a platformType precondition); the other
  step is reported skipped, with the agent's message. macOS (PatchMacOS) is not simulated.
* Undocumented default page sizes are the model's maximum.
* A node receives the command when DescribeInstanceInformation would show it Online (nodes.ping_status).
"""
from __future__ import annotations

import collections
import datetime
import re
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Iterator
from urllib.parse import urlparse

from moto.s3.exceptions import MissingBucket
from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

from . import agent, nodes, paging, targets
from .api import Context, operation
from .control import ControlError, route
from .errors import (
    InvalidCommandId,
    InvalidDocument,
    InvalidFilterKey,
    InvalidInstanceId,
    InvalidOutputFolder,
    InvalidParameters,
    InvalidPluginName,
    InvocationDoesNotExist,
    ValidationException,
)
from .state import LAB, Node, RegionState

DOCUMENT = "AWS-RunPatchBaseline"
# The document's steps: (step name, plugin directory of its S3 output), chosen by a platformType precondition.
STEPS = {"Windows": ("PatchWindows", "awsrunPowerShellScript"), "Linux": ("PatchLinux", "awsrunShellScript")}
# Both steps run with timeoutSeconds 7200 (the document's execution timeout).
STEP_TIMEOUT = datetime.timedelta(seconds=7200)
DEFAULT_TIMEOUT_SECONDS = 3600
DEFAULT_MAX_CONCURRENCY = "50"
DEFAULT_MAX_ERRORS = "0"
# CommandPlugin.Output holds 2,500 characters (the agent truncates with this marker); GetCommandInvocation's
# StandardOutputContent the first 24,000.
PLUGIN_OUTPUT_LIMIT = 2500
OUTPUT_TRUNCATED = "\n---Output truncated---"
CONTENT_LIMIT = 24000


# --- statuses: (Status, StatusDetails) ---------------------------------------------------------------------------

PENDING = ("Pending", "Pending")
IN_PROGRESS = ("InProgress", "InProgress")
SUCCESS = ("Success", "Success")
FAILED = ("Failed", "Failed")
UNDELIVERABLE = ("Failed", "Undeliverable")
DELIVERY_TIMED_OUT = ("TimedOut", "DeliveryTimedOut")
TERMINATED = ("Cancelled", "Terminated")
CANCELLING = ("Cancelling", "Cancelling")
CANCELLED = ("Cancelled", "Cancelled")
INCOMPLETE = ("Failed", "Incomplete")
NO_INSTANCES_IN_TAG = ("Success", "NoInstancesInTag")

# Terminal states of an invocation (Command.CompletedCount's list) and of a command.
TERMINAL_INVOCATION_DETAILS = {"Success", "Failed", "ExecutionTimedOut", "DeliveryTimedOut", "Cancelled",
                               "Terminated", "Undeliverable"}
TERMINAL_COMMAND_DETAILS = {"Success", "Failed", "DeliveryTimedOut", "ExecutionTimedOut", "Incomplete",
                            "Cancelled", "NoInstancesInTag"}
# Status filter values (CommandFilter): each matches Status or StatusDetails.
COMMAND_STATUS_FILTERS = {"Pending", "InProgress", "Success", "Cancelled", "Failed", "TimedOut", "AccessDenied",
                          "DeliveryTimedOut", "ExecutionTimedOut", "Incomplete", "NoInstancesInTag",
                          "LimitExceeded"}
INVOCATION_STATUS_FILTERS = {"Pending", "InProgress", "Delayed", "Success", "Cancelled", "Failed", "TimedOut",
                             "AccessDenied", "DeliveryTimedOut", "ExecutionTimedOut", "Undeliverable",
                             "InvalidPlatform", "Terminated"}


# --- the document's parameters -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Parameter:
    """A String parameter of the document: `default` None means required."""

    default: str | None
    allowed: tuple[str, ...] = ()
    pattern: str = ""


_URL_PATTERN = r"(^$)|^https://.+$|^s3://([^/]+)/(.*?([^/]+))$"
PARAMETERS = {
    "Operation": Parameter(None, allowed=("Scan", "Install")),
    "SnapshotId": Parameter(
        "", pattern=r"(^$)|^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
    "InstallOverrideList": Parameter("", pattern=_URL_PATTERN),
    "BaselineOverride": Parameter("", pattern=_URL_PATTERN),
    "RebootOption": Parameter("RebootIfNeeded", allowed=("RebootIfNeeded", "NoReboot")),
}


def document_parameters(sent: dict[str, list[str]]) -> dict[str, list[str]]:
    """All of the document's parameters, defaults filled in, as the agent receives them.

    AWS (InvalidParameters): "You must specify values for all required parameters ... You can only supply values to
    parameters defined in the SSM document"; values must satisfy the parameter's allowedValues/allowedPattern.
    """
    unknown = sorted(set(sent) - set(PARAMETERS))
    if unknown:
        raise InvalidParameters(f"Parameters {unknown} are not defined in document {DOCUMENT}")
    resolved = {}
    for name, spec in PARAMETERS.items():
        values = sent.get(name, [] if spec.default is None else [spec.default])
        if not values and spec.default is None:
            raise InvalidParameters(f"Parameter {name} of document {DOCUMENT} is required")
        if len(values) != 1:
            raise InvalidParameters(f"Parameter {name} of document {DOCUMENT} takes exactly one value")
        value = values[0]
        if spec.allowed and value not in spec.allowed:
            raise InvalidParameters(f"Parameter {name} value {value!r} is not one of {', '.join(spec.allowed)}")
        if spec.pattern and not re.search(spec.pattern, value):
            raise InvalidParameters(f"Parameter {name} value {value!r} does not match pattern {spec.pattern}")
        resolved[name] = [value]
    return resolved


def _document_name(name_or_arn: str) -> str:
    """SendCommand takes a document name or ARN. The lab has exactly one document; others do not exist for it.

    Lab choice: AWS-RunPatchBaselineWithHooks (aws:runDocument steps and hooks) is not simulated.
    """
    name = name_or_arn.rsplit(":document/", 1)[-1]
    if name != DOCUMENT:
        raise InvalidDocument(f"Document {name} does not exist (the lab runs {DOCUMENT} only)")
    return name


# --- times as GetCommandInvocation writes them -------------------------------------------------------------------

def _iso(moment: datetime.datetime | None) -> str:
    """ISO 8601 with milliseconds in UTC ('' before the step started), like AWS's StringDateTime values."""
    if moment is None:
        return ""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _elapsed(start: datetime.datetime | None, end: datetime.datetime | None) -> str:
    """An ISO 8601 duration ('PT1.234S'), as AWS reports ExecutionElapsedTime."""
    if start is None or end is None:
        return ""
    return f"PT{(end - start).total_seconds():.3f}S"


def _truncated(text: str) -> str:
    """The agent keeps 2,500 characters of plugin output, ending a cut text with its truncation marker."""
    if len(text) <= PLUGIN_OUTPUT_LIMIT:
        return text
    return text[:PLUGIN_OUTPUT_LIMIT - len(OUTPUT_TRUNCATED)] + OUTPUT_TRUNCATED


# --- S3: the agent's output and the override lists it reads ------------------------------------------------------

def _s3(account: str, region: str = "us-east-1"):
    return s3_backends[account][get_partition(region)]


def _s3_location(url: str) -> tuple[str, str] | None:
    """(bucket, key) of an s3:// URL or an https S3 URL (path or virtual-hosted style); None for other hosts."""
    parsed = urlparse(url)
    path = parsed.path.lstrip("/")
    if parsed.scheme == "s3":
        return parsed.netloc, path
    host = parsed.hostname or ""
    if parsed.scheme != "https" or not host.endswith(".amazonaws.com"):
        return None
    if host.startswith("s3.") or host.startswith("s3-"):
        bucket, _, key = path.partition("/")
        return bucket, key
    bucket, _, rest = host.partition(".s3")
    return (bucket, path) if rest else None


def read_s3(account: str, url: str) -> str:
    """The text of an S3 object an agent of `account` downloads (InstallOverrideList, BaselineOverride).

    Raises FileNotFoundError when the object is absent or the URL is not S3 (the lab has no internet).
    """
    location = _s3_location(url)
    if location is None:
        raise FileNotFoundError(f"{url}: not an S3 URL; the lab reaches no other host")
    bucket, key = location
    try:
        obj = _s3(account).get_object(bucket, key)
    except MissingBucket:
        obj = None
    if obj is None:
        raise FileNotFoundError(f"{url}: no such S3 object")
    return obj.value.decode("utf-8")


def _require_bucket(account: str, bucket: str) -> None:
    """SendCommand: InvalidOutputFolder, "The S3 bucket doesn't exist"."""
    try:
        _s3(account).get_bucket(bucket)
    except MissingBucket:
        raise InvalidOutputFolder(f"The S3 bucket {bucket} doesn't exist.") from None


# --- commands and invocations ------------------------------------------------------------------------------------

@dataclass
class Invocation:
    """One node's copy of a command. `output` is the full stdout of the step that ran on the node."""

    node_id: str
    instance_name: str
    platform_type: str  # Linux or Windows: which step runs
    status: str = PENDING[0]
    status_details: str = PENDING[1]
    response_code: int = -1
    started: datetime.datetime | None = None
    finished: datetime.datetime | None = None
    output: str = ""
    output_url: str = ""

    @property
    def terminal(self) -> bool:
        return self.status_details in TERMINAL_INVOCATION_DETAILS

    @property
    def counts_as_error(self) -> bool:
        """Failed and ExecutionTimedOut invocations count against MaxErrors (Command.ErrorCount)."""
        return self.status_details in ("Failed", "ExecutionTimedOut")

    def set(self, status: tuple[str, str]) -> None:
        self.status, self.status_details = status

    def begin(self, now: datetime.datetime) -> None:
        self.set(IN_PROGRESS)
        self.started = now

    def end(self, status: tuple[str, str], now: datetime.datetime) -> None:
        self.set(status)
        self.finished = now

    @property
    def step(self) -> str:
        return STEPS[self.platform_type][0]


@dataclass(frozen=True)
class StepResult:
    """What one step (plugin) of an invocation reports."""

    status: str
    status_details: str
    response_code: int
    output: str
    started: datetime.datetime | None
    finished: datetime.datetime | None
    output_url: str


@dataclass
class Command:
    """A command of one account and region (`RegionState.commands[command_id]`)."""

    command_id: str
    account: str
    region: str
    requested: datetime.datetime
    parameters: dict[str, list[str]]  # as sent (what ListCommands echoes)
    document_parameters: dict[str, list[str]]  # with defaults: what the agent runs with
    invocations: dict[str, Invocation]  # node id -> invocation, in node id order
    instance_ids: list[str] = field(default_factory=list)
    targets: list[dict] = field(default_factory=list)
    document_version: str = "$DEFAULT"
    comment: str = ""
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    max_concurrency: str = DEFAULT_MAX_CONCURRENCY
    max_errors: str = DEFAULT_MAX_ERRORS
    output_bucket: str = ""
    output_prefix: str = ""
    service_role: str = ""
    notification_config: dict = field(default_factory=lambda: {"NotificationArn": "", "NotificationEvents": []})
    cloudwatch_output_config: dict = field(
        default_factory=lambda: {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False})
    alarm_configuration: dict | None = None
    status: str = PENDING[0]
    status_details: str = PENDING[1]
    cancel_requested: bool = False

    document_name = DOCUMENT

    def set(self, status: tuple[str, str]) -> None:
        self.status, self.status_details = status

    @property
    def terminal(self) -> bool:
        return self.status_details in TERMINAL_COMMAND_DETAILS

    @property
    def delivery_deadline(self) -> datetime.datetime:
        """TimeoutSeconds: "If this time is reached and the command hasn't already started running, it won't run"."""
        return self.requested + datetime.timedelta(seconds=self.timeout_seconds)

    @property
    def expires_after(self) -> datetime.datetime:
        """Total timeout = delivery timeout + the document's execution timeout; then DeliveryTimedOut for all
        invocations still Pending or InProgress."""
        return self.delivery_deadline + STEP_TIMEOUT

    @property
    def error_count(self) -> int:
        return sum(inv.counts_as_error for inv in self.invocations.values())

    def concurrency_limit(self) -> int:
        return max(1, _node_count(self.max_concurrency, len(self.invocations)))

    def error_limit(self) -> int:
        return _node_count(self.max_errors, len(self.invocations))

    def final_status(self) -> tuple[str, str]:
        """The aggregated command status once every invocation is terminal (see the module docstring)."""
        invocations = list(self.invocations.values())
        if not invocations:
            return NO_INSTANCES_IN_TAG
        if self.cancel_requested:
            return CANCELLED
        if self.error_count > self.error_limit():
            return FAILED
        delivered = [inv for inv in invocations if inv.status_details != "Undeliverable"]
        if not delivered:
            return FAILED
        if all(inv.status_details == "Success" for inv in delivered):
            return SUCCESS
        if all(inv.status_details == "DeliveryTimedOut" for inv in delivered):
            return DELIVERY_TIMED_OUT
        return INCOMPLETE

    def finish_if_done(self) -> None:
        if not self.terminal and all(inv.terminal for inv in self.invocations.values()):
            self.set(self.final_status())

    def describe(self) -> dict:
        """The Command structure of SendCommand and ListCommands."""
        invocations = list(self.invocations.values())
        result = {
            "CommandId": self.command_id,
            "DocumentName": self.document_name,
            "DocumentVersion": self.document_version,
            "Comment": self.comment,
            "ExpiresAfter": self.expires_after,
            "Parameters": {name: list(values) for name, values in self.parameters.items()},
            "InstanceIds": list(self.instance_ids),
            "Targets": [dict(t) for t in self.targets],
            "RequestedDateTime": self.requested,
            "Status": self.status,
            "StatusDetails": self.status_details,
            "OutputS3Region": self.region,
            "OutputS3BucketName": self.output_bucket,
            "OutputS3KeyPrefix": self.output_prefix,
            "MaxConcurrency": self.max_concurrency,
            "MaxErrors": self.max_errors,
            "TargetCount": len(invocations),
            "CompletedCount": sum(inv.terminal for inv in invocations),
            "ErrorCount": self.error_count,
            "DeliveryTimedOutCount": sum(inv.status_details == "DeliveryTimedOut" for inv in invocations),
            "ServiceRole": self.service_role,
            "NotificationConfig": dict(self.notification_config),
            "CloudWatchOutputConfig": dict(self.cloudwatch_output_config),
            "TimeoutSeconds": self.timeout_seconds,
        }
        if self.alarm_configuration is not None:
            result["AlarmConfiguration"] = self.alarm_configuration
        return result

    def describe_invocation(self, inv: Invocation, details: bool) -> dict:
        """A CommandInvocation structure of ListCommandInvocations (plugins and output with Details=true).

        StandardOutputUrl is empty at invocation level: AWS fills it only for documents with a single plugin.
        """
        return {
            "CommandId": self.command_id,
            "InstanceId": inv.node_id,
            "InstanceName": inv.instance_name,
            "Comment": self.comment,
            "DocumentName": self.document_name,
            "DocumentVersion": self.document_version,
            "RequestedDateTime": self.requested,
            "Status": inv.status,
            "StatusDetails": inv.status_details,
            "TraceOutput": "",
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "CommandPlugins": [self.describe_plugin(inv, step) for step in self.steps(inv)] if details else [],
            "ServiceRole": self.service_role,
            "NotificationConfig": dict(self.notification_config),
            "CloudWatchOutputConfig": dict(self.cloudwatch_output_config),
        }

    def steps(self, inv: Invocation) -> list[str]:
        """The document's steps as plugins of a delivered invocation (none before delivery)."""
        return [name for name, _ in STEPS.values()] if inv.started else []

    def step_result(self, inv: Invocation, step: str) -> StepResult:
        if step == inv.step or inv.started is None:
            return StepResult(inv.status, inv.status_details, inv.response_code, inv.output, inv.started,
                              inv.finished, inv.output_url)
        platform = "Windows" if step == STEPS["Windows"][0] else "Linux"
        skipped = (f"Step execution skipped due to unsatisfied preconditions: "
                   f"'\"StringEquals\": [platformType, {platform}]'. Step name: {step}")
        return StepResult(*SUCCESS, 0, skipped, inv.started, inv.started, "")

    def describe_plugin(self, inv: Invocation, step: str) -> dict:
        result = self.step_result(inv, step)
        plugin = {
            "Name": step,
            # CommandPluginStatus has no Cancelling: the step is still running until it is cancelled.
            "Status": "InProgress" if result.status == "Cancelling" else result.status,
            "StatusDetails": result.status_details,
            "ResponseCode": result.response_code,
            "Output": _truncated(result.output),
            "StandardOutputUrl": result.output_url,
            "StandardErrorUrl": "",
            "OutputS3Region": self.region,
            "OutputS3BucketName": self.output_bucket,
            "OutputS3KeyPrefix": self.output_key_prefix(inv, step) if self.output_bucket else "",
        }
        for member, moment in (("ResponseStartDateTime", result.started), ("ResponseFinishDateTime", result.finished)):
            if moment is not None:
                plugin[member] = moment
        return plugin

    def output_key_prefix(self, inv: Invocation, step: str) -> str:
        """`<prefix>/<command-id>/<instance-id>/<plugin>`: where the agent writes `<step>/stdout`."""
        plugin_dir = dict(STEPS.values())[step]
        parts = (self.output_prefix.strip("/"), self.command_id, inv.node_id, plugin_dir)
        return "/".join(part for part in parts if part)


def _node_count(limit: str, target_count: int) -> int:
    """A MaxConcurrency/MaxErrors value ('10' or '10%' of the targets) as a number of nodes (lab choice: rounded
    down, as in the guide's example of 10% of 50 targets stopping at the sixth error)."""
    if limit.endswith("%"):
        return target_count * int(limit[:-1]) // 100
    return int(limit)


# --- SendCommand -------------------------------------------------------------------------------------------------

def _selected_nodes(state: RegionState, params: dict) -> list[Node]:
    """The nodes of InstanceIds or Targets (exactly one of them: lab choice, AWS documents no combination)."""
    instance_ids, target_list = params.get("InstanceIds"), params.get("Targets")
    if bool(instance_ids) == bool(target_list):
        raise ValidationException("Specify either InstanceIds or Targets (exactly one of them).")
    if instance_ids:
        _require_managed(state, instance_ids)
    return targets.resolve_targets(state, target_list, instance_ids)


def _require_managed(state: RegionState, instance_ids: list[str]) -> None:
    """InvalidInstanceId: the node is not a managed node of this account and region, or its instance is
    shutting down or terminated (AWS: valid states are Running, Pending, Stopped and Stopping)."""
    invalid = [i for i in dict.fromkeys(instance_ids)
               if i not in state.nodes or targets.ec2_state(state.nodes[i]) in ("shutting-down", "terminated")]
    if invalid:
        raise InvalidInstanceId(f"Instances [[{', '.join(invalid)}]] not in a valid state for account {state.account}")


def create_command(state: RegionState, params: dict, now: datetime.datetime,
                   resolved_nodes: list[Node] | None = None) -> Command:
    """Validate a SendCommand request, store the command and queue it for the worker. Call under LAB.lock.

    `resolved_nodes` (in-process callers such as maintenance windows) replaces InstanceIds/Targets resolution.
    """
    _document_name(params["DocumentName"])
    resolved = document_parameters(params.get("Parameters") or {})
    selected = _selected_nodes(state, params) if resolved_nodes is None else resolved_nodes
    bucket = params.get("OutputS3BucketName") or ""
    if bucket:
        _require_bucket(state.account, bucket)
    optional = {
        "document_version": params.get("DocumentVersion"),
        "comment": params.get("Comment"),
        "timeout_seconds": params.get("TimeoutSeconds"),
        "max_concurrency": params.get("MaxConcurrency"),
        "max_errors": params.get("MaxErrors"),
        "output_prefix": params.get("OutputS3KeyPrefix"),
        "service_role": params.get("ServiceRoleArn"),
        "notification_config": params.get("NotificationConfig"),
        "cloudwatch_output_config": params.get("CloudWatchOutputConfig"),
        "alarm_configuration": params.get("AlarmConfiguration"),
    }
    command = Command(
        command_id=str(uuid.uuid4()),
        account=state.account,
        region=state.region,
        requested=now,
        parameters=params.get("Parameters") or {},
        document_parameters=resolved,
        invocations={node.node_id: Invocation(node.node_id, node.computer_name, node.platform.platform_type)
                     for node in sorted(selected, key=lambda n: n.node_id)},
        instance_ids=list(params.get("InstanceIds") or []),
        targets=list(params.get("Targets") or []),
        output_bucket=bucket,
        **{name: value for name, value in optional.items() if value is not None},
    )
    state.commands[command.command_id] = command
    WORKER.submit(command)
    return command


@operation("SendCommand")
def send_command(ctx: Context, params: dict) -> dict:
    return {"Command": create_command(ctx.state, params, ctx.now).describe()}


# --- the worker --------------------------------------------------------------------------------------------------

class Worker:
    """One daemon thread runs queued commands in FIFO order; `changed` wakes whoever waits for a status."""

    def __init__(self) -> None:
        self.queue: collections.deque[Command] = collections.deque()
        self.changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, command: Command) -> None:
        with self.changed:
            self.queue.append(command)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="fleetlab-commands", daemon=True)
                self._thread.start()
            self.changed.notify_all()

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def _loop(self) -> None:
        while True:
            with self.changed:
                self.changed.wait_for(lambda: self.queue)
                command = self.queue[0]
            try:
                run_command(command)
            except Exception as error:  # a lab bug: say so loudly, end the command, serve the next ones
                traceback.print_exc()
                _abort(command, error)
            finally:
                with self.changed:
                    self.queue.popleft()
                    self.changed.notify_all()


WORKER = Worker()


def _batch_sizes(limit: int) -> Iterator[int]:
    """Run Command sends to one node, then to exponentially more, until MaxConcurrency is reached."""
    size = 1
    while True:
        yield min(size, limit)
        size *= 2


def run_command(command: Command) -> None:
    """Deliver `command` batch by batch; each batch runs for the simulated agent duration, outside the lock."""
    with LAB.lock:
        sizes = _batch_sizes(command.concurrency_limit())
    while True:
        with LAB.lock:
            batch = _deliver_batch(command, next(sizes), LAB.clock.now())
        WORKER.notify()
        if not batch:
            break
        seconds = float(LAB.settings.get("agent_seconds_per_node") or 0)
        if seconds > 0:
            time.sleep(seconds)  # the batch's nodes work in parallel
        for inv in batch:
            with LAB.lock:
                _complete(command, inv, LAB.clock.now())
            WORKER.notify()
    with LAB.lock:
        command.finish_if_done()
    WORKER.notify()


def _abort(command: Command, error: Exception) -> None:
    """End a command the lab failed to run: its unfinished invocations fail with the error as their output."""
    with LAB.lock:
        for inv in command.invocations.values():
            if not inv.terminal:
                inv.output = f"fleetlab internal error: {type(error).__name__}: {error}"
                inv.end(FAILED, LAB.clock.now())
        command.finish_if_done()


def _deliver_batch(command: Command, size: int, now: datetime.datetime) -> list[Invocation]:
    """Start up to `size` pending invocations; end the rest when the command may no longer send them."""
    pending = [inv for inv in command.invocations.values() if inv.status_details == "Pending"]
    if command.terminal or not pending:
        return []
    stop = None
    if now >= command.delivery_deadline:
        stop = DELIVERY_TIMED_OUT
    elif command.error_count > command.error_limit():
        stop = TERMINATED  # more than MaxErrors errors: the system stops sending the command
    if stop:
        for inv in pending:
            inv.end(stop, now)
        return []
    registered = LAB.region(command.account, command.region).nodes
    batch = []
    for inv in pending:
        if len(batch) == size:
            break
        node = registered.get(inv.node_id)
        if node is None or nodes.ping_status(node) != "Online":
            inv.end(UNDELIVERABLE, now)  # lab choice, see the module docstring
        else:
            inv.begin(now)
            batch.append(inv)
    if batch and command.status == PENDING[0]:
        command.set(IN_PROGRESS)
    return batch


def _complete(command: Command, inv: Invocation, now: datetime.datetime) -> None:
    """The agent runs the document on the node (unless the invocation was cancelled or the command expired)."""
    if inv.status == CANCELLING[0]:
        inv.end(CANCELLED, now)
        return
    if now >= command.expires_after:
        inv.end(DELIVERY_TIMED_OUT, now)
        return
    state = LAB.region(command.account, command.region)
    node = state.nodes.get(inv.node_id)
    if node is None:  # deregistered while the command ran
        inv.end(UNDELIVERABLE, now)
        return
    result = agent.run_patch_baseline(state, node, command.document_parameters, now=now,
                                      command_id=command.command_id, read_s3=partial(read_s3, command.account))
    inv.output = result.output or ""
    inv.response_code = result.response_code
    inv.end(SUCCESS if result.status == SUCCESS[0] else FAILED, now)
    if command.output_bucket:
        _upload_output(command, inv)


def _upload_output(command: Command, inv: Invocation) -> None:
    """The agent writes the step's stdout to `<OutputS3KeyPrefix>/<step>/stdout` in the command's bucket.

    Lab choice: if the bucket was deleted after SendCommand checked it, the output is simply not uploaded.
    """
    key = f"{command.output_key_prefix(inv, inv.step)}/{inv.step}/stdout"
    backend = _s3(command.account, command.region)
    try:
        bucket = backend.get_bucket(command.output_bucket)
        backend.put_object(command.output_bucket, key, inv.output.encode("utf-8"))
    except MissingBucket:
        return
    inv.output_url = f"https://s3.{bucket.region_name}.amazonaws.com/{command.output_bucket}/{key}"


# --- reading commands --------------------------------------------------------------------------------------------

def _parse_time(value: str) -> datetime.datetime:
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidFilterKey(f"Filter value {value!r} is not an ISO 8601 date/time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _filter_predicate(item_filter: dict, for_commands: bool) -> Callable[[Command, Invocation | None], bool]:
    """A CommandFilter as a test of (command, invocation); the invocation is None for ListCommands.

    Documented: ExecutionStage only for ListCommands; Status values per API. Lab choice: an invalid value is
    answered with InvalidFilterKey (the only filter error these operations model).
    """
    key, value = item_filter["key"], item_filter["value"]
    if key == "InvokedAfter":
        after = _parse_time(value)
        return lambda cmd, inv: cmd.requested >= after
    if key == "InvokedBefore":
        before = _parse_time(value)
        return lambda cmd, inv: cmd.requested <= before
    if key == "DocumentName":
        return lambda cmd, inv: cmd.document_name == value
    if key == "ExecutionStage":
        if not for_commands:
            raise InvalidFilterKey("The ExecutionStage filter can be used with ListCommands only")
        if value not in ("Executing", "Complete"):
            raise InvalidFilterKey(f"ExecutionStage value {value!r} is not Executing or Complete")
        return lambda cmd, inv: cmd.terminal == (value == "Complete")
    allowed = COMMAND_STATUS_FILTERS if for_commands else INVOCATION_STATUS_FILTERS
    if value not in allowed:
        raise InvalidFilterKey(f"Status value {value!r} is not one of {', '.join(sorted(allowed))}")
    if for_commands:
        return lambda cmd, inv: value in (cmd.status, cmd.status_details)
    return lambda cmd, inv: value in (inv.status, inv.status_details)


def _filters(params: dict, for_commands: bool) -> list[Callable[[Command, Invocation | None], bool]]:
    return [_filter_predicate(f, for_commands) for f in params.get("Filters") or []]


_LAST_MOMENT = datetime.datetime.max.replace(tzinfo=datetime.timezone.utc)


def _newest_first_key(command: Command) -> str:
    """Lab choice: newest command first (AWS documents no order). A string key that sorts that way, for paging."""
    age = (_LAST_MOMENT - command.requested) // datetime.timedelta(microseconds=1)
    return f"{age:020d}/{command.command_id}"


def _newest_first(state: RegionState) -> list[Command]:
    return sorted(state.commands.values(), key=_newest_first_key)


@operation("ListCommands")
def list_commands(ctx: Context, params: dict) -> dict:
    """CommandId (InvalidCommandId when unknown), InstanceId and Filters narrow the list."""
    command_id, node_id = params.get("CommandId"), params.get("InstanceId")
    if command_id and command_id not in ctx.state.commands:
        raise InvalidCommandId(f"Command {command_id} does not exist")
    predicates = _filters(params, for_commands=True)
    commands = [c for c in _newest_first(ctx.state)
                if (not command_id or c.command_id == command_id)
                and (not node_id or node_id in c.invocations)
                and all(test(c, None) for test in predicates)]
    result = paging.page(params, "ListCommands", "Commands", commands, _newest_first_key,
                         default_size=paging.MODEL_MAX)
    result["Commands"] = [command.describe() for command in result["Commands"]]
    return result


@operation("ListCommandInvocations")
def list_command_invocations(ctx: Context, params: dict) -> dict:
    """Lab choice: an unknown CommandId lists nothing (Run Command is eventually consistent; callers poll)."""
    command_id, node_id = params.get("CommandId"), params.get("InstanceId")
    predicates = _filters(params, for_commands=False)
    rows = [(cmd, inv) for cmd in _newest_first(ctx.state) if not command_id or cmd.command_id == command_id
            for inv in cmd.invocations.values()
            if (not node_id or inv.node_id == node_id) and all(test(cmd, inv) for test in predicates)]
    result = paging.page(params, "ListCommandInvocations", "CommandInvocations", rows,
                         lambda row: f"{_newest_first_key(row[0])}/{row[1].node_id}", default_size=paging.MODEL_MAX)
    details = bool(params.get("Details"))
    result["CommandInvocations"] = [cmd.describe_invocation(inv, details) for cmd, inv in result["CommandInvocations"]]
    return result


def _invocation(state: RegionState, command_id: str, node_id: str) -> tuple[Command, Invocation]:
    command = state.commands.get(command_id)
    inv = command.invocations.get(node_id) if command else None
    if inv is None:
        raise InvocationDoesNotExist(f"Command {command_id} has no invocation for {node_id}")
    return command, inv


@operation("GetCommandInvocation")
def get_command_invocation(ctx: Context, params: dict) -> dict:
    """Without PluginName: the invocation's status, and no output (the document has more than one step).
    With a step name: that step's status, its first 24,000 characters of stdout and its S3 URL."""
    command, inv = _invocation(ctx.state, params["CommandId"], params["InstanceId"])
    plugin_name = params.get("PluginName")
    if plugin_name is None:
        result = StepResult(inv.status, inv.status_details, inv.response_code, "", inv.started, inv.finished, "")
    elif plugin_name in (name for name, _ in STEPS.values()):
        result = command.step_result(inv, plugin_name)
    else:
        raise InvalidPluginName(f"Document {DOCUMENT} has no step {plugin_name}")
    answer = {
        "CommandId": command.command_id,
        "InstanceId": inv.node_id,
        "Comment": command.comment,
        "DocumentName": command.document_name,
        "DocumentVersion": command.document_version,
        "ResponseCode": result.response_code,
        "ExecutionStartDateTime": _iso(result.started),
        "ExecutionElapsedTime": _elapsed(result.started, result.finished),
        "ExecutionEndDateTime": _iso(result.finished),
        "Status": result.status,
        "StatusDetails": result.status_details,
        "StandardOutputContent": result.output[:CONTENT_LIMIT],
        "StandardOutputUrl": result.output_url,
        "StandardErrorContent": "",
        "StandardErrorUrl": "",
        "CloudWatchOutputConfig": dict(command.cloudwatch_output_config),
    }
    if plugin_name is not None:
        answer["PluginName"] = plugin_name
    return answer


@operation("CancelCommand")
def cancel_command(ctx: Context, params: dict) -> dict:
    """Pending invocations are cancelled at once, running ones when their step ends (AWS: "There is no guarantee
    that the command will be terminated"). A finished command is left as it is. Lab choice: InstanceIds that are
    not targets of the command are InvalidInstanceId."""
    command = ctx.state.commands.get(params["CommandId"])
    if command is None:
        raise InvalidCommandId(f"Command {params['CommandId']} does not exist")
    selected = params.get("InstanceIds") or list(command.invocations)
    unknown = [node_id for node_id in selected if node_id not in command.invocations]
    if unknown:
        raise InvalidInstanceId(f"Instances [[{', '.join(unknown)}]] are not targets of command {command.command_id}")
    if command.terminal:
        return {}
    for node_id in selected:
        inv = command.invocations[node_id]
        if inv.status_details == "Pending":
            inv.end(CANCELLED, ctx.now)
        elif inv.status_details == "InProgress":
            inv.set(CANCELLING)
    if not params.get("InstanceIds"):
        command.cancel_requested = True
        if any(inv.status == CANCELLING[0] for inv in command.invocations.values()):
            command.set(CANCELLING)
    command.finish_if_done()
    WORKER.notify()
    return {}


# --- control API: wait for commands without polling loops in every test -----------------------------------------

def _commands_matching(body: dict) -> list[Command]:
    wanted = {key: body[key] for key in ("account", "region") if body.get(key)}
    found = [command for state in LAB.regions() for command in state.commands.values()
             if all(getattr(command, key) == value for key, value in wanted.items())
             and (not body.get("command_id") or command.command_id == body["command_id"])]
    if body.get("command_id") and not found:
        raise ControlError(f"no command {body['command_id']} (account/region {wanted or 'any'})")
    return found


def _summary(command: Command) -> dict:
    return {
        "account": command.account,
        "region": command.region,
        "command_id": command.command_id,
        "status": command.status,
        "status_details": command.status_details,
        "target_count": len(command.invocations),
        "completed_count": sum(inv.terminal for inv in command.invocations.values()),
        "error_count": command.error_count,
    }


def wait_for_commands(commands: list[Command], timeout: float) -> bool:
    """Block until every command is terminal (True) or `timeout` seconds passed (False). Do not hold LAB.lock."""
    return WORKER.wait(lambda: all(command.terminal for command in commands), timeout)


@route("POST", "/commands/wait")
def _wait_route(body: dict, query: dict) -> dict:
    """{"account", "region", "command_id", "timeout"}: waits until the matching commands (all of them when no
    command_id) are finished; answers {"done": bool, "commands": [summaries]}."""
    with LAB.lock:
        commands = _commands_matching(body)
    done = wait_for_commands(commands, float(body.get("timeout", 60)))
    with LAB.lock:
        return {"done": done, "commands": [_summary(c) for c in commands]}


@route("GET", "/commands/pending")
def _pending_route(body: dict, query: dict) -> dict:
    with LAB.lock:
        return {"commands": [_summary(c) for state in LAB.regions() for c in state.commands.values()
                             if not c.terminal]}

