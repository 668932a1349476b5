# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""AWS-RunPatchBaseline through Run Command: the document's parameters, targets, SendCommand, waiting, and what a
run did on each node (status, compliance counts, packages it installed or failed to install, pending reboots).

Used by run_patch_baseline (plan, send, wait, report) and patch_command_info (follow a run under way).

Targets (`target_selections`)
    A run targets instance ids, tags or a patch group. Each is first listed with DescribeInstanceInformation (pages
    of 50): check mode reports those nodes, offline ones are named before anything is sent, and the two patch group
    tag keys are told apart. SendCommand takes at most 50 InstanceIds (model), so instance ids go in commands of
    50; tags and patch groups go as `Targets`, which AWS resolves itself at any fleet size, so MaxConcurrency and
    MaxErrors apply to the whole group.
    Patch groups: Patch Manager reads the `PatchGroup` or the `Patch Group` tag (user guide, "Patch groups"), but
    the entries of `Targets` are ANDed, so one command cannot select either key. One command is sent per key the
    listed nodes carry (usually one). A node that carries the group under both keys would receive both commands and
    run the document twice at once, so such a run is refused before anything is sent, naming the nodes.

Protected patch groups (`refuse_protected`)
    Defence in depth under the roles' guards: an Install whose targets include a node of a protected (sensitive)
    group is refused before SendCommand unless it installs an explicit InstallOverrideList (what the
    sensitive_patching role builds only from a recorded, checked approval). Tags and instance ids say nothing of a
    node's group, so the protected nodes are listed by their tags: one DescribeInstanceInformation per group and
    tag key (its `tag:` filter sees EC2 and hybrid nodes' tags alike), whatever the fleet size, then compared with
    the run's targets. A BaselineOverride would approve whatever it says, so it does not lift the guard.

Waiting (`wait_for_commands`)
    ListCommands(CommandId) answers a command's aggregate (TargetCount, CompletedCount, ErrorCount, Status) in one
    call whatever the fleet size. boto3's CommandExecuted waiter polls GetCommandInvocation once per node, which
    is N calls per poll at fleet scale. Invocations are listed once, at the end (pages of 50).

Results (`collect_nodes`, `run_report`)
    Per node: the invocation (ListCommandInvocations with Details), the compliance its agent reported for this run
    (DescribeInstancePatchStates, 50 ids per call) and, after an Install, its patches (DescribeInstancePatches: one
    node per call, filtered by State; the API has no InstalledTime filter). Installed patches whose InstalledTime
    falls within the operation's start..end were installed by this run; FAILED ones failed.

Every call is retried on throttling (SSM_RETRY); nothing here sleeps except the wait loop, between polls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from .ssm import SSMErrorHandler
from .ssm import iso_dates
from .ssm import paginated_items
from .validation import ParameterError
from .validation import check_count
from .validation import check_length
from .validation import check_pattern
from .validation import check_range
from .validation import check_tag_characters
from .validation import check_unique
from .validation import field_path
from .validation import reject

DOCUMENT = "AWS-RunPatchBaseline"
OPERATIONS = ("Scan", "Install")
REBOOT_OPTIONS = ("RebootIfNeeded", "NoReboot")
PATCH_GROUP_TAG_KEYS = ("PatchGroup", "Patch Group")  # user guide, "Patch groups": either key, exactly spelled

# [model] SendCommand and the reads of a run.
MAX_INSTANCE_IDS = 50  # SendCommand InstanceIds, DescribeInstancePatchStates InstanceIds
MAX_TARGETS = 5  # SendCommand Targets (entries are ANDed)
MAX_TARGET_VALUES = 50  # Target Values
INSTANCE_ID_PATTERN = r"(i-(\w{8}|\w{17}))|(mi-\w{17})"
TIMEOUT_SECONDS = (30, 2592000)
COMMENT_LENGTH = (0, 100)
S3_BUCKET_LENGTH = (3, 63)
S3_KEY_PREFIX_LENGTH = (0, 500)
S3_REGION_LENGTH = (3, 20)
LOG_GROUP_LENGTH = (1, 512)
TAG_KEY_LENGTH = (1, 128)
TAG_VALUE_LENGTH = (0, 256)
PATCH_GROUP_LENGTH = (1, 256)
COMMAND_ID_LENGTH = (36, 36)
MAX_CONCURRENCY_PATTERN = r"[1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%"
MAX_ERRORS_PATTERN = r"[1-9][0-9]*|0|[1-9][0-9]%|[0-9]%|100%"
CONCURRENCY_LENGTH = (1, 7)

# AWS-RunPatchBaseline's parameters (the document's allowedPattern values).
SNAPSHOT_ID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
OVERRIDE_URL_PATTERN = r"https://.+|s3://[^/]+/.*[^/]"
# "The BaselineOverride file name can't contain the following characters: ` ' " $" (user guide).
BASELINE_OVERRIDE_FORBIDDEN = "`'\"$"

# Command Status values after which nothing changes (CommandStatus; Cancelling is on its way to Cancelled).
COMMAND_DONE = ("Success", "Cancelled", "Failed", "TimedOut")
# Command StatusDetails that mean every node succeeded, or there was no node to run on.
CLEAN_DETAILS = ("Success", "NoInstancesInTag")
# The most telling StatusDetails when several commands make one run: failures first, then time-outs,
# cancellations, and Incomplete ("not enough invocations failed for the status to be Failed").
DETAILS_BY_SEVERITY = ("Failed", "ExecutionTimedOut", "DeliveryTimedOut", "Cancelled", "Incomplete")

# Invocation StatusDetails (user guide, "Understanding command statuses") -> the node's outcome. Terminated: not
# sent because the command exceeded MaxErrors. Anything else (Pending, InProgress, Delayed, Cancelling) is running.
OUTCOMES = {
    "Success": "succeeded",
    "Failed": "failed",
    "InvalidPlatform": "failed",
    "AccessDenied": "failed",
    "Undeliverable": "undeliverable",
    "DeliveryTimedOut": "timed_out",
    "ExecutionTimedOut": "timed_out",
    "Cancelled": "cancelled",
    "Terminated": "cancelled",
}
RUNNING = "running"
NODE_LISTS = {"failed": "failed_nodes", "undeliverable": "undeliverable_nodes", "timed_out": "timed_out_nodes",
              "cancelled": "cancelled_nodes", RUNNING: "running_nodes"}

# DescribeInstancePatches State filter values and the PatchComplianceData states they report.
PATCH_STATE_FILTER = ["Installed", "InstalledOther", "InstalledPendingReboot", "Failed"]
INSTALLED_STATES = ("INSTALLED", "INSTALLED_OTHER", "INSTALLED_PENDING_REBOOT")
FAILED_STATE = "FAILED"

NODE_FIELDS = ("InstanceId", "ComputerName", "PingStatus", "PlatformType", "PlatformName", "PlatformVersion",
               "ResourceType")
COMMAND_FIELDS = ("CommandId", "Status", "StatusDetails", "RequestedDateTime", "TargetCount", "CompletedCount",
                  "ErrorCount", "DeliveryTimedOutCount", "MaxConcurrency", "MaxErrors", "Targets", "InstanceIds")
COUNT_FIELDS = ("TargetCount", "CompletedCount", "ErrorCount", "DeliveryTimedOutCount")


# ---------------------------------------------------------------------------------------------- validation

def check_run_options(params: dict) -> None:
    """The document's parameters and SendCommand's options, checked before any call (names are the module's)."""
    check_pattern("snapshot_id", params.get("snapshot_id"), SNAPSHOT_ID_PATTERN,
                  "a GUID such as 8b8f2d4e-6a36-4c5e-9d57-0f3c1a2b4c5d")
    for field in ("install_override_list", "baseline_override"):
        check_pattern(field, params.get(field), OVERRIDE_URL_PATTERN,
                      "an https:// URL or s3://bucket/key of the file")
    override = params.get("baseline_override")
    if override and any(char in override for char in BASELINE_OVERRIDE_FORBIDDEN):
        reject("baseline_override", override, "is not valid; allowed: a file name without ` ' \" or $")
    _check_limit("max_concurrency", params.get("max_concurrency"), MAX_CONCURRENCY_PATTERN,
                 "a number of nodes from 1, or a percentage from 1% to 100%")
    _check_limit("max_errors", params.get("max_errors"), MAX_ERRORS_PATTERN,
                 "a number of errors from 0, or a percentage from 0% to 100%")
    check_range("timeout_seconds", params.get("timeout_seconds"), *TIMEOUT_SECONDS)
    check_length("comment", params.get("comment"), *COMMENT_LENGTH)
    check_length("output_s3_bucket", params.get("output_s3_bucket"), *S3_BUCKET_LENGTH)
    check_length("output_s3_key_prefix", params.get("output_s3_key_prefix"), *S3_KEY_PREFIX_LENGTH)
    check_length("output_s3_region", params.get("output_s3_region"), *S3_REGION_LENGTH)
    check_length("cloudwatch_log_group_name", params.get("cloudwatch_log_group_name"), *LOG_GROUP_LENGTH)
    if params.get("cloudwatch_log_group_name") and params.get("cloudwatch_output") is False:
        reject("cloudwatch_log_group_name", params["cloudwatch_log_group_name"],
               "is set while cloudwatch_output is false; allowed: cloudwatch_output unset or true")
    check_wait_options(params)


def _check_limit(field: str, value, pattern: str, meaning: str) -> None:
    check_length(field, value, *CONCURRENCY_LENGTH)
    check_pattern(field, value, pattern, meaning)


def check_wait_options(params: dict) -> None:
    check_range("wait_timeout", params.get("wait_timeout"), 0, TIMEOUT_SECONDS[1])
    check_range("poll_interval", params.get("poll_interval"), 1, 3600)


def check_targets(params: dict) -> None:
    """instance_ids, tags or patch_group (the module makes them mutually exclusive), checked against the model."""
    instance_ids = params.get("instance_ids")
    if instance_ids is not None:
        if not instance_ids:
            raise ParameterError("instance_ids: 0 entries; allowed: at least 1")
        for index, instance_id in enumerate(instance_ids):
            check_pattern(field_path("instance_ids", index), instance_id, INSTANCE_ID_PATTERN,
                          "an EC2 instance ID (i-...) or a hybrid managed node ID (mi- and 17 characters)")
        check_unique("instance_ids", instance_ids)
    if params.get("tags") is not None:
        _check_tags(params["tags"])
    if params.get("patch_group") is not None:
        check_length("patch_group", params["patch_group"], *PATCH_GROUP_LENGTH)
        check_tag_characters("patch_group", params["patch_group"])
    for index, group in enumerate(params.get("protected_patch_groups") or []):
        field = field_path("protected_patch_groups", index)
        check_length(field, group, *PATCH_GROUP_LENGTH)
        check_tag_characters(field, group)


def _check_tags(tags: dict) -> None:
    check_count("tags", tags, high=MAX_TARGETS, low=1)
    for key, values in tags.items():
        field = field_path("tags", key)
        check_length(field, key, *TAG_KEY_LENGTH)
        check_tag_characters(field, key)
        if "+" in key:  # Target.Key's pattern lacks the + that tag keys may hold
            reject(field, key, "contains '+'; allowed in a target key: letters, digits, spaces and _ . : / = - @")
        values = tag_values(values)
        check_count(field, values, high=MAX_TARGET_VALUES, low=1)
        for value in values:
            check_length(field, value, *TAG_VALUE_LENGTH)


def tag_values(values) -> list:
    """A `tags` entry's value(s) as a list of strings: one value or a list of values (ORed)."""
    return [str(value) for value in (values if isinstance(values, list) else [values])]


# ---------------------------------------------------------------------------------------------- the request

def document_parameters(operation: str, snapshot_id: str, reboot_option: str, install_override_list=None,
                        baseline_override=None) -> dict:
    """SendCommand's Parameters for AWS-RunPatchBaseline: always Operation, SnapshotId and RebootOption (never the
    document's defaults by omission). InstallOverrideList only with Install: a Scan ignores it (user guide)."""
    parameters = {"Operation": [operation], "SnapshotId": [snapshot_id], "RebootOption": [reboot_option]}
    if install_override_list and operation == "Install":
        parameters["InstallOverrideList"] = [install_override_list]
    if baseline_override:
        parameters["BaselineOverride"] = [baseline_override]
    return parameters


def command_request(params: dict, snapshot_id: str) -> dict:
    """SendCommand's arguments but the targets; options the task leaves unset are not sent (AWS's defaults)."""
    request = {
        "DocumentName": DOCUMENT,
        "Parameters": document_parameters(params["operation"], snapshot_id, params["reboot_option"],
                                          params.get("install_override_list"), params.get("baseline_override")),
    }
    optional = {
        "Comment": params.get("comment"),
        "TimeoutSeconds": params.get("timeout_seconds"),
        "MaxConcurrency": params.get("max_concurrency"),
        "MaxErrors": params.get("max_errors"),
        "OutputS3BucketName": params.get("output_s3_bucket"),
        "OutputS3KeyPrefix": params.get("output_s3_key_prefix"),
        "OutputS3Region": params.get("output_s3_region"),
    }
    request.update({name: value for name, value in optional.items() if value is not None})
    log_group = params.get("cloudwatch_log_group_name")
    if params.get("cloudwatch_output") or log_group:
        request["CloudWatchOutputConfig"] = dict({"CloudWatchOutputEnabled": True},
                                                 **({"CloudWatchLogGroupName": log_group} if log_group else {}))
    return request


# ---------------------------------------------------------------------------------------------- targets

@dataclass
class Selection:
    """One SendCommand's targets (`address`: InstanceIds or Targets) and the managed nodes listed for them."""

    address: dict
    nodes: list

    @property
    def listed_ids(self) -> set:
        return {node["InstanceId"] for node in self.nodes}


@SSMErrorHandler.common_error_handler("list managed nodes")
def list_nodes(client, filters: list) -> list:
    """DescribeInstanceInformation with `Filters` (tag filters alone, or InstanceIds): the managed nodes AWS lists,
    which excludes stopped and terminated instances ("does not return information for nodes that are either
    Stopped or Terminated")."""
    return paginated_items(client, "describe_instance_information", "InstanceInformationList", Filters=filters)


def target_selections(client, instance_ids=None, tags=None, patch_group=None) -> list:
    """The commands a run sends, each with its listed nodes; tag and patch-group selections that list no node are
    left out (they would end as NoInstancesInTag, or wait for stopped instances until TimeoutSeconds)."""
    if instance_ids:
        return [_instance_selection(client, instance_ids[start:start + MAX_INSTANCE_IDS])
                for start in range(0, len(instance_ids), MAX_INSTANCE_IDS)]
    if tags:
        targets = [{"Key": f"tag:{key}", "Values": tag_values(values)} for key, values in sorted(tags.items())]
        selections = [Selection({"Targets": targets}, list_nodes(client, targets))]
    else:
        selections = _patch_group_selections(client, patch_group)
    return [selection for selection in selections if selection.nodes]


def _instance_selection(client, instance_ids: list) -> Selection:
    """Named ids are sent even when AWS does not list them: SendCommand itself says which ids it refuses."""
    nodes = list_nodes(client, [{"Key": "InstanceIds", "Values": instance_ids}])
    return Selection({"InstanceIds": instance_ids}, nodes)


def _patch_group_selections(client, patch_group: str) -> list:
    """One selection per patch group tag key (see the module docstring); refuses nodes that carry both."""
    selections = []
    for key in PATCH_GROUP_TAG_KEYS:
        targets = [{"Key": f"tag:{key}", "Values": [patch_group]}]
        selections.append(Selection({"Targets": targets}, list_nodes(client, targets)))
    both = sorted(set.intersection(*(selection.listed_ids for selection in selections)))
    if both:
        raise ParameterError(
            f"patch_group: {patch_group!r} is the value of both the PatchGroup and the Patch Group tag of "
            f"{', '.join(both)}; one command per tag key would run AWS-RunPatchBaseline twice at once on them. "
            "Remove one of the two tags (Patch Manager reads either), or target these nodes by instance_ids"
        )
    return selections


def protected_nodes(client, groups: list) -> dict:
    """{node id: patch group} of the managed nodes whose PatchGroup or Patch Group tag is one of `groups`."""
    found = {}
    for group in groups:
        for key in PATCH_GROUP_TAG_KEYS:
            for node in list_nodes(client, [{"Key": f"tag:{key}", "Values": [group]}]):
                found.setdefault(node["InstanceId"], group)
    return found


def refuse_protected(selections: list, protected: dict) -> None:
    """Refuse an Install (without an InstallOverrideList) whose targets include protected nodes, naming them."""
    named = {instance_id for selection in selections for instance_id in selection.address.get("InstanceIds", ())}
    hit = sorted((_all_listed(selections) | named) & set(protected))
    if hit:
        groups = ", ".join(sorted({protected[node] for node in hit}))
        raise ParameterError(
            f"protected_patch_groups: Install refused, nothing was sent: {', '.join(hit)} belong to the protected "
            f"patch group(s) {groups}. Their installs go only through an approved InstallOverrideList "
            "(install_override_list; the fleetpatch.ssm.sensitive_patching role's install step), never the "
            "baseline's approvals")


def node_view(node: dict) -> dict:
    """An InstanceInformation record in the result's terms."""
    return camel_dict_to_snake_dict({field: node.get(field) for field in NODE_FIELDS})


def unlisted_ids(selections: list) -> list:
    """Instance ids a task names that AWS does not list as managed nodes (stopped, terminated, unknown)."""
    named = {instance_id for selection in selections for instance_id in selection.address.get("InstanceIds", ())}
    return sorted(named - _all_listed(selections))


def offline_ids(selections: list) -> list:
    """Listed nodes whose agent is not Online: Run Command reports them Undeliverable."""
    return sorted({node["InstanceId"] for selection in selections for node in selection.nodes
                   if node.get("PingStatus") != "Online"})


def _all_listed(selections: list) -> set:
    return set().union(*(selection.listed_ids for selection in selections))


# ---------------------------------------------------------------------------------------------- send and wait

@SSMErrorHandler.common_error_handler("send AWS-RunPatchBaseline")
def send_command(client, request: dict) -> dict:
    """SendCommand; the Command it answers. SendCommand takes no client token: a throttled request did not run,
    but a retry after a server error could send the command twice (AWS offers no way to tell)."""
    return client.send_command(aws_retry=True, **request)["Command"]


@SSMErrorHandler.common_error_handler("read command")
def get_command(client, command_id: str) -> dict:
    """The Command (ListCommands with its CommandId); InvalidCommandId when AWS has no such command."""
    return client.list_commands(CommandId=command_id, aws_retry=True)["Commands"][0]


def is_done(command: dict) -> bool:
    return command["Status"] in COMMAND_DONE


def wait_for_commands(client, command_ids: list, timeout: float, interval: float, sleep=None, clock=None) -> list:
    """The commands once all are done, or as they are when `timeout` seconds have passed (one call per command
    and poll). `sleep` and `clock` default to time.sleep and time.monotonic."""
    sleep, clock = sleep or time.sleep, clock or time.monotonic
    deadline = clock() + timeout
    while True:
        commands = [get_command(client, command_id) for command_id in command_ids]
        remaining = deadline - clock()
        if all(is_done(command) for command in commands) or remaining <= 0:
            return commands
        sleep(min(interval, remaining))


# ---------------------------------------------------------------------------------------------- reads

@SSMErrorHandler.common_error_handler("list command invocations")
def list_invocations(client, command_id: str) -> list:
    return paginated_items(client, "list_command_invocations", "CommandInvocations", CommandId=command_id,
                           Details=True)


@SSMErrorHandler.common_error_handler("read patch states")
def patch_states(client, instance_ids: list) -> dict:
    """InstanceId -> InstancePatchState, 50 ids per call (nodes that never reported are absent)."""
    states = {}
    for start in range(0, len(instance_ids), MAX_INSTANCE_IDS):
        batch = instance_ids[start:start + MAX_INSTANCE_IDS]
        for state in paginated_items(client, "describe_instance_patch_states", "InstancePatchStates",
                                     InstanceIds=batch):
            states[state["InstanceId"]] = state
    return states


def pending_reboot_ids(client, instance_ids: list) -> set:
    """Nodes whose last report has patches pending a reboot: an Install with RebootIfNeeded reboots them."""
    return {node for node, state in patch_states(client, instance_ids).items()
            if state.get("InstalledPendingRebootCount", 0) > 0}


@SSMErrorHandler.common_error_handler("read a node's patches")
def installed_and_failed_patches(client, instance_id: str) -> list:
    return paginated_items(client, "describe_instance_patches", "Patches", InstanceId=instance_id,
                           Filters=[{"Key": "State", "Values": PATCH_STATE_FILTER}])


# ---------------------------------------------------------------------------------------------- per node

@dataclass(frozen=True)
class Run:
    """What one command runs, from its Parameters (AWS's document defaults where a parameter was not sent)."""

    operation: str
    snapshot_id: str | None
    reboot_option: str
    requested: object  # datetime

    @classmethod
    def of(cls, command: dict) -> Run:
        parameters = command.get("Parameters") or {}

        def first(name, default=None):
            return (parameters.get(name) or [None])[0] or default

        return cls(first("Operation"), first("SnapshotId"), first("RebootOption", "RebootIfNeeded"),
                   command.get("RequestedDateTime"))

    def reported(self, state) -> bool:
        """Whether a node's InstancePatchState is this run's report. Every operation overwrites the last one, so the
        state must name this operation and this run's SnapshotId. Without a SnapshotId AWS makes one per node, so
        the operation must have ended after the command was sent instead."""
        if not state or state.get("Operation") != self.operation:
            return False
        if self.snapshot_id:
            return state.get("SnapshotId") == self.snapshot_id
        return self.requested is not None and state.get("OperationEndTime") is not None \
            and state["OperationEndTime"] >= self.requested


def node_outcome(invocation: dict) -> str:
    return OUTCOMES.get(invocation.get("StatusDetails"), RUNNING)


def step_result(plugins) -> tuple:
    """(response code, output) of the document's step that decided the node's result.

    AWS-RunPatchBaseline has one step per platform (PatchWindows, PatchLinux, PatchMacOS) behind a platformType
    precondition; the others end skipped with code 0. So a non-zero code, if any, is the step that failed; else
    the code is 0 (None: no step ran yet) and the output is not needed.
    """
    plugins = plugins or []
    failing = [plugin for plugin in plugins if plugin.get("ResponseCode", 0) != 0]
    if failing:
        return failing[0]["ResponseCode"], failing[0].get("Output")
    return (0 if plugins else None), None


def _patch_view(patch: dict) -> dict:
    view = camel_dict_to_snake_dict({key: value for key, value in patch.items() if key != "CVEIds"})
    view["cve_ids"] = [cve for cve in (patch.get("CVEIds") or "").split(",") if cve]
    return iso_dates(view, "installed_time")


def installed_by_run(patches: list, state: dict) -> list:
    """Installed patches whose InstalledTime is within the operation's start..end (where the OS reports one)."""
    start, end = state.get("OperationStartTime"), state.get("OperationEndTime")
    if start is None or end is None:
        return []
    return [patch for patch in patches if patch["State"] in INSTALLED_STATES
            and patch.get("InstalledTime") is not None and start <= patch["InstalledTime"] <= end]


def reboot_pending(run: Run, state, installed) -> bool | None:
    """InstalledPendingReboot patches on the node, or installs this run made under NoReboot (unknown: None)."""
    if not state:
        return None
    return state.get("InstalledPendingRebootCount", 0) > 0 or (run.reboot_option == "NoReboot" and bool(installed))


def node_result(invocation: dict, run: Run, state, patches) -> dict:
    """One node's result. `state`: this run's InstancePatchState or None; `patches`: its installed and failed patches
    (DescribeInstancePatches) or None when they were not read."""
    code, output = step_result(invocation.get("CommandPlugins"))
    outcome = node_outcome(invocation)
    installed = None if patches is None or not state else installed_by_run(patches, state)
    failed = None if patches is None else [patch for patch in patches if patch["State"] == FAILED_STATE]
    view = None
    if state:
        view = iso_dates(camel_dict_to_snake_dict({k: v for k, v in state.items() if k != "InstanceId"}),
                         "operation_start_time", "operation_end_time", "last_no_reboot_install_operation_time")
    return {
        "instance_id": invocation["InstanceId"],
        "computer_name": invocation.get("InstanceName") or None,
        "command_id": invocation["CommandId"],
        "status": invocation["Status"],
        "status_details": invocation["StatusDetails"],
        "outcome": outcome,
        "response_code": code,
        "output": output if outcome != "succeeded" else None,
        "patch_state": view,
        "installed_patches": None if installed is None else [_patch_view(p) for p in installed],
        "failed_patches": None if failed is None else [_patch_view(p) for p in failed],
        "reboot_pending": reboot_pending(run, state, installed),
    }


def collect_nodes(client, commands: list, package_details: bool = True) -> list:
    """Every node's result of `commands` (see node_result), in command then instance id order."""
    runs = {command["CommandId"]: Run.of(command) for command in commands}
    invocations = [invocation for command in commands for invocation in list_invocations(client, command["CommandId"])]
    states = patch_states(client, sorted({invocation["InstanceId"] for invocation in invocations}))
    nodes = []
    for invocation in sorted(invocations, key=lambda inv: (inv["CommandId"], inv["InstanceId"])):
        run = runs[invocation["CommandId"]]
        state = states.get(invocation["InstanceId"])
        state = state if run.reported(state) else None
        patches = None
        if package_details and run.operation == "Install" and state:
            patches = installed_and_failed_patches(client, invocation["InstanceId"])
        nodes.append(node_result(invocation, run, state, patches))
    return nodes


# ---------------------------------------------------------------------------------------------- the run

def run_status(commands: list) -> str:
    """One status for the run's commands, in AWS's StatusDetails words (Pending, InProgress, Success, Failed...).
    No command: no managed node matched, AWS's NoInstancesInTag."""
    if not commands:
        return "NoInstancesInTag"
    if not all(is_done(command) for command in commands):
        return "Pending" if all(command["Status"] == "Pending" for command in commands) else "InProgress"
    details = [command["StatusDetails"] for command in commands]
    unclean = [detail for detail in details if detail not in CLEAN_DETAILS]
    if not unclean:
        return details[0] if len(set(details)) == 1 else "Success"
    return next((detail for detail in DETAILS_BY_SEVERITY if detail in unclean), unclean[0])


def aws_verdict_failed(status: str) -> bool:
    """The run failed by AWS's own rules: more than MaxErrors errors, timed out, cancelled (not Incomplete)."""
    return status not in CLEAN_DETAILS + ("Incomplete", "Pending", "InProgress")


def command_view(command: dict) -> dict:
    view = camel_dict_to_snake_dict({field: command[field] for field in COMMAND_FIELDS if field in command})
    return iso_dates(view, "requested_date_time")


def run_report(commands: list, nodes=None) -> dict:
    """The run's progress from its commands and, given the nodes, who succeeded and who did not."""
    counts = {_snake(field): sum(command.get(field) or 0 for command in commands) for field in COUNT_FIELDS}
    done = all(is_done(command) for command in commands)
    report = dict(
        counts,
        command_ids=[command["CommandId"] for command in commands],
        commands=[command_view(command) for command in commands],
        status=run_status(commands),
        done=done,
        percent_complete=counts["completed_count"] * 100 // counts["target_count"] if counts["target_count"] else 100,
    )
    if nodes is not None:
        report.update(node_lists(nodes))
        report["nodes"] = nodes
        report["clean"] = done and all(node["outcome"] == "succeeded" for node in nodes)
    report["summary"] = summary_line(report)
    return report


def _snake(field: str) -> str:
    return camel_dict_to_snake_dict({field: None}).popitem()[0]


def node_lists(nodes: list) -> dict:
    lists = {name: [] for name in NODE_LISTS.values()}
    for node in nodes:
        if node["outcome"] in NODE_LISTS:
            lists[NODE_LISTS[node["outcome"]]].append(node["instance_id"])
    lists["reboot_pending_nodes"] = [node["instance_id"] for node in nodes if node["reboot_pending"]]
    return lists


def summary_line(report: dict) -> str:
    """'InProgress: 12/40 nodes done, 1 error(s)' and, given the nodes, those that did not succeed."""
    line = (f"{report['status']}: {report['completed_count']}/{report['target_count']} nodes done, "
            f"{report['error_count']} error(s)")
    if "nodes" in report:
        problems = [f"{len(report[name])} {outcome.replace('_', ' ')} ({', '.join(report[name])})"
                    for outcome, name in NODE_LISTS.items() if report[name]]
        line += "; " + ("; ".join(problems) if problems else "every node succeeded")
    return line
