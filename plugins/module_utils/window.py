# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Maintenance windows, their targets and tasks: the SSM calls and the user's (snake_case) view of them.

Used by maintenance_window, maintenance_window_target, maintenance_window_task and maintenance_window_info. A
window is identified by its name in the account and region; a target or a task by its name within its window.
Each has a `desired_*` function (the task's options validated and normalised, no AWS call), a `*_state` function
(AWS's answer in the same terms and normalisation) and a `*_request` function (the API members: only what is set,
so an unset option is never sent as zero or empty). Updates use `Replace=true`: the request is the complete
desired object and AWS nulls what it omits, so changes made elsewhere are undone.

Sources: [model] botocore's SSM model (lengths, ranges, patterns, list sizes); [api] the API reference of the
operation named; [quota] "Systems Manager service quotas" (targets per task); [guide] the SSM user guide page named.
"""

from __future__ import annotations

import re
import uuid

from .schedule import canonical_moment
from .schedule import canonical_schedule
from .schedule import check_active_period
from .schedule import check_timezone
from .schedule import schedule_kind
from .ssm import ManagedResource
from .ssm import SSMErrorHandler
from .ssm import iso_dates
from .ssm import paginated_items
from .tags import tag_list
from .validation import ParameterError
from .validation import check_count
from .validation import check_length
from .validation import check_pattern
from .validation import check_range
from .validation import check_unique
from .validation import field_path
from .validation import reject

RESOURCE_TYPE = "MaintenanceWindow"  # ListTagsForResource & co.

# [model] MaintenanceWindowName (windows, targets and tasks), MaintenanceWindowDescription, ranges.
NAME = (r"[a-zA-Z0-9_\-.]{3,128}", "3 to 128 letters, digits, '_', '-' or '.'")
DESCRIPTION_LENGTH = (1, 128)
DURATION = (1, 24)
CUTOFF = (0, 23)
SCHEDULE_OFFSET = (1, 6)
OWNER_INFORMATION_LENGTH = (1, 128)
MAX_TARGET_ENTRIES = 5  # [model] Targets
MAX_TARGET_VALUES = 50  # [model] TargetValues
TAG_KEY_LENGTH = (1, 128)  # [model] TagKey, for tag:<key> targets
MAX_TASK_TARGETS = 10  # [quota] "Targets per task"
TASK_ARN_LENGTH = (1, 1600)
MAX_CONCURRENCY = (r"[1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%", "a number of targets from 1, or a percentage 1% to 100%")
MAX_ERRORS = (r"[1-9][0-9]*|0|[1-9][0-9]%|[0-9]%|100%", "a number of errors from 0, or a percentage 0% to 100%")
DOCUMENT_VERSION = (r"\$LATEST|\$DEFAULT|[1-9][0-9]*", "$LATEST, $DEFAULT or a version number")
TIMEOUT_SECONDS = (30, 2592000)
# [model] string lengths of the invocation parameter groups' options.
LENGTHS = {
    "run_command": {"comment": (0, 100), "document_hash": (0, 256), "output_s3_bucket": (3, 63),
                    "output_s3_key_prefix": (0, 500)},
    "automation": {},
    "lambda": {"client_context": (1, 8000), "qualifier": (1, 128), "payload": (0, 4096)},
    "step_functions": {"input": (0, 4096), "name": (1, 80)},
}
LOG_GROUP_LENGTH = (1, 512)
ALARM_NAME_LENGTH = (1, 255)
MAX_AUTOMATION_PARAMETERS = 200
AUTOMATION_PARAMETER_KEY_LENGTH = (1, 50)
AUTOMATION_VALUE_LENGTH = (1, 512)
# EC2 instance IDs (8 or 17 hexadecimal digits) and hybrid managed node IDs (mi- and 17).
NODE_ID = (r"i-[0-9a-f]{8}|i-[0-9a-f]{17}|mi-[0-9a-f]{17}", "EC2 instance IDs (i-...) or managed node IDs (mi-...)")
WINDOW_ID = re.compile(r"mw-[0-9a-f]{17}")  # [model] MaintenanceWindowId
TARGET_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

RESOURCE_TYPES = ("INSTANCE", "RESOURCE_GROUP")
TASK_TYPES = ("RUN_COMMAND", "AUTOMATION", "LAMBDA", "STEP_FUNCTIONS")
CUTOFF_BEHAVIORS = ("CONTINUE_TASK", "CANCEL_TASK")
DEFAULT_CUTOFF_BEHAVIOR = "CONTINUE_TASK"  # [api] MaintenanceWindowTask.CutoffBehavior
# The invocation parameter group of each task type ([api] MaintenanceWindowTaskInvocationParameters: "Populate
# only the fields that match the task type. All other fields should be empty").
GROUPS = {"RUN_COMMAND": "run_command", "AUTOMATION": "automation", "LAMBDA": "lambda",
          "STEP_FUNCTIONS": "step_functions"}
API_GROUPS = {"run_command": "RunCommand", "automation": "Automation", "lambda": "Lambda",
              "step_functions": "StepFunctions"}


# ---------------------------------------------------------------------------------------------- helpers

def _optional(request: dict, member: str, value) -> None:
    """Set `member` only when the value is set: unset options are never sent as zero or empty."""
    if value is not None:
        request[member] = value


def _lenient(canonical, value):
    """An AWS value in the spelling `canonical` gives a task's value; what the module would refuse is kept as is
    (a window made elsewhere must still be readable)."""
    try:
        return canonical("", value)
    except ParameterError:
        return value


def _find_named(items: list, name: str, noun: str, where: str, field: str = "name"):
    """The item called `name` in `items`, or None; AWS allows duplicate names, the modules key by name."""
    matches = [item for item in items if item["name"] == name]
    if len(matches) > 1:
        raise ParameterError(
            f"{field}: {name!r} names {len(matches)} {noun}s {where}; {noun}s are identified by name here, so keep "
            "one of them"
        )
    return matches[0] if matches else None


def _check_name(field: str, name) -> None:
    check_pattern(field, name, *NAME)


# ---------------------------------------------------------------------------------------------- windows

WINDOW_FIELDS = ("name", "description", "schedule", "schedule_timezone", "schedule_offset", "duration", "cutoff",
                 "start_date", "end_date", "allow_unassociated_targets", "enabled")


def desired_window(params: dict) -> dict:
    """The window a maintenance_window task asks for; raises ParameterError naming the field, calls nothing."""
    _check_name("name", params["name"])
    check_length("description", params.get("description"), *DESCRIPTION_LENGTH)
    schedule = canonical_schedule("schedule", params["schedule"])
    duration, cutoff, offset = params["duration"], params["cutoff"], params.get("schedule_offset")
    check_range("duration", duration, *DURATION)
    check_range("cutoff", cutoff, *CUTOFF)
    if cutoff >= duration:  # [api] CreateMaintenanceWindow: no task starts after the end minus Cutoff
        reject("cutoff", cutoff, f"is not below duration ({duration}); allowed: 0 to {duration - 1} (AWS stops "
                                 "starting tasks cutoff hours before the window ends)")
    check_range("schedule_offset", offset, *SCHEDULE_OFFSET)
    if offset is not None and schedule_kind(schedule) != "cron":  # [guide] offsets apply to cron only
        reject("schedule_offset", offset, f"applies to cron schedules only, not {schedule!r}; allowed: a "
                                          "cron(...) schedule, or no schedule_offset")
    check_timezone("schedule_timezone", params.get("schedule_timezone"))
    start = canonical_moment("start_date", params.get("start_date"))
    end = canonical_moment("end_date", params.get("end_date"))
    check_active_period(start, end, params.get("schedule_timezone"))
    return {
        "name": params["name"],
        "description": params.get("description"),
        "schedule": schedule,
        "schedule_timezone": params.get("schedule_timezone"),
        "schedule_offset": offset,
        "duration": duration,
        "cutoff": cutoff,
        "start_date": start,
        "end_date": end,
        "allow_unassociated_targets": params["allow_unassociated_targets"],
        "enabled": params["enabled"],
    }


def window_state(response: dict) -> dict:
    """GetMaintenanceWindow (or a DescribeMaintenanceWindows identity) in the user's terms."""
    state = {
        "window_id": response["WindowId"],
        "name": response.get("Name"),
        "description": response.get("Description"),
        "schedule": _lenient(canonical_schedule, response.get("Schedule")),
        "schedule_timezone": response.get("ScheduleTimezone"),
        "schedule_offset": response.get("ScheduleOffset"),
        "duration": response.get("Duration"),
        "cutoff": response.get("Cutoff"),
        "start_date": _lenient(canonical_moment, response.get("StartDate")),
        "end_date": _lenient(canonical_moment, response.get("EndDate")),
        "allow_unassociated_targets": response.get("AllowUnassociatedTargets"),
        "enabled": response.get("Enabled"),
        "next_execution_time": response.get("NextExecutionTime"),
        "created_date": response.get("CreatedDate"),
        "modified_date": response.get("ModifiedDate"),
    }
    return iso_dates(state, "created_date", "modified_date")


def window_request(state: dict) -> dict:
    """CreateMaintenanceWindow/UpdateMaintenanceWindow members (Enabled is Update's only)."""
    request = {"Name": state["name"], "Schedule": state["schedule"], "Duration": state["duration"],
               "Cutoff": state["cutoff"], "AllowUnassociatedTargets": state["allow_unassociated_targets"]}
    for member, field in (("Description", "description"), ("ScheduleTimezone", "schedule_timezone"),
                          ("ScheduleOffset", "schedule_offset"), ("StartDate", "start_date"),
                          ("EndDate", "end_date")):
        _optional(request, member, state[field])
    return request


def is_window_id(value: str) -> bool:
    return bool(WINDOW_ID.fullmatch(value))


@SSMErrorHandler.common_error_handler("list maintenance windows")
def list_windows(client, name=None, enabled=None) -> list:
    """DescribeMaintenanceWindows with its filters Name and Enabled, as window states (without the members only
    GetMaintenanceWindow has: allow_unassociated_targets, dates)."""
    filters = [{"Key": key, "Values": [value]} for key, value in
               (("Name", name), ("Enabled", None if enabled is None else str(enabled).lower())) if value]
    identities = paginated_items(client, "describe_maintenance_windows", "WindowIdentities", Filters=filters)
    return [window_state(identity) for identity in identities]


def find_window(client, name: str, field: str = "name"):
    """The window named exactly `name` (the Name filter is not documented as exact), or None."""
    return _find_named(list_windows(client, name=name), name, "maintenance window", "in this account and region",
                       field)


@SSMErrorHandler.list_error_handler("get maintenance window")
def get_window(client, window_id: str):
    """GetMaintenanceWindow in the user's terms, or None when the window does not exist."""
    return window_state(client.get_maintenance_window(WindowId=window_id, aws_retry=True))


@SSMErrorHandler.common_error_handler("create maintenance window")
def create_window(client, state: dict, tags=None) -> str:
    """CreateMaintenanceWindow (a new window is enabled; Enabled is set by a following update when false)."""
    request = dict(window_request(state), ClientToken=str(uuid.uuid4()))  # a retried create creates once
    if tags:
        request["Tags"] = tag_list(tags)
    window_id = client.create_maintenance_window(aws_retry=True, **request)["WindowId"]
    if not state["enabled"]:
        client.update_maintenance_window(WindowId=window_id, Enabled=False, aws_retry=True)
    return window_id


@SSMErrorHandler.common_error_handler("update maintenance window")
def update_window(client, window_id: str, state: dict) -> None:
    client.update_maintenance_window(WindowId=window_id, Replace=True, Enabled=state["enabled"], aws_retry=True,
                                     **window_request(state))


@SSMErrorHandler.deletion_error_handler("delete maintenance window")
def delete_window(client, window_id: str) -> None:
    """DeleteMaintenanceWindow; AWS deletes the window's targets and tasks with it."""
    client.delete_maintenance_window(WindowId=window_id, aws_retry=True)


# ---------------------------------------------------------------------------------------------- window targets

# [api] RegisterTargetWithMaintenanceWindow, Targets examples: INSTANCE targets by InstanceIds, tag:<key> or
# tag-key; RESOURCE_GROUP targets by resource-groups:Name (+ resource-groups:ResourceTypeFilters).
_TARGET_KEYS = {key.lower(): key for key in ("InstanceIds", "tag-key", "resource-groups:Name",
                                             "resource-groups:ResourceTypeFilters")}
TAG_PREFIX = "tag:"
TARGET_KEY_MEANING = {
    "INSTANCE": "InstanceIds, tag:<tag key> or tag-key",
    "RESOURCE_GROUP": "resource-groups:Name and optionally resource-groups:ResourceTypeFilters",
}


def canonical_target_key(key: str) -> str:
    """Target keys in AWS's spelling (the API reference writes `InstanceIds` and `instanceids` alike); the tag key
    after `tag:` keeps its case, as tag keys are case-sensitive."""
    if key.lower().startswith(TAG_PREFIX):
        return TAG_PREFIX + key[len(TAG_PREFIX):]
    return _TARGET_KEYS.get(key.lower(), key)


def _targets(entries) -> list:
    """[{key, values}] with keys in AWS's spelling and sorted, values sorted and unique (values of one key are
    alternatives, keys must all match: AWS ignores both orders)."""
    normalised = [{"key": canonical_target_key(entry["key"]), "values": sorted(set(entry["values"] or ()))}
                  for entry in entries or ()]
    return sorted(normalised, key=lambda entry: entry["key"])


def _check_target_entry(field: str, entry: dict, resource_type: str) -> None:
    key, values = entry["key"], entry["values"]
    check_count(field_path(field, "values"), values, MAX_TARGET_VALUES, low=1)
    if resource_type == "RESOURCE_GROUP":
        valid = key in ("resource-groups:Name", "resource-groups:ResourceTypeFilters")
    else:
        valid = key in ("InstanceIds", "tag-key") or (key.startswith(TAG_PREFIX) and len(key) > len(TAG_PREFIX))
    if not valid:
        reject(field_path(field, "key"), key, f"is not a target key for resource_type {resource_type}; allowed: "
                                              f"{TARGET_KEY_MEANING[resource_type]}")
    if key.startswith(TAG_PREFIX):
        check_length(field_path(field, "key"), key[len(TAG_PREFIX):], *TAG_KEY_LENGTH)
    if key == "InstanceIds":
        for index, value in enumerate(values):
            check_pattern(field_path(field, "values", index), value, *NODE_ID)
    if key == "resource-groups:Name":
        check_count(field_path(field, "values"), values, 1, low=1)


def desired_target(params: dict) -> dict:
    """The window target a maintenance_window_target task asks for; raises ParameterError, calls nothing."""
    _check_name("name", params["name"])
    check_length("description", params.get("description"), *DESCRIPTION_LENGTH)
    check_length("owner_information", params.get("owner_information"), *OWNER_INFORMATION_LENGTH)
    resource_type = params["resource_type"]
    check_count("targets", params["targets"], MAX_TARGET_ENTRIES, low=1)
    check_unique("targets[].key", [canonical_target_key(entry["key"]) for entry in params["targets"]])
    for index, entry in enumerate(params["targets"]):
        _check_target_entry(field_path("targets", index), dict(entry, key=canonical_target_key(entry["key"])),
                            resource_type)
    keys = {canonical_target_key(entry["key"]) for entry in params["targets"]}
    if resource_type == "RESOURCE_GROUP" and "resource-groups:Name" not in keys:
        reject("targets", sorted(keys), "has no resource-groups:Name; allowed: a resource group by name, "
                                        "optionally with resource-groups:ResourceTypeFilters")
    return {
        "name": params["name"],
        "description": params.get("description"),
        "resource_type": resource_type,
        "targets": _targets(params["targets"]),
        "owner_information": params.get("owner_information"),
    }


def target_state(row: dict) -> dict:
    """A DescribeMaintenanceWindowTargets row in the user's terms."""
    return {
        "window_id": row["WindowId"],
        "window_target_id": row["WindowTargetId"],
        "name": row.get("Name"),
        "description": row.get("Description"),
        "resource_type": row.get("ResourceType"),
        "targets": _targets({"key": t["Key"], "values": t.get("Values")} for t in row.get("Targets") or ()),
        "owner_information": row.get("OwnerInformation"),
    }


def target_request(state: dict) -> dict:
    """RegisterTargetWithMaintenanceWindow/UpdateMaintenanceWindowTarget members (ResourceType: Register's only)."""
    request = {"Targets": [{"Key": t["key"], "Values": list(t["values"])} for t in state["targets"]]}
    for member, field in (("Name", "name"), ("Description", "description"), ("OwnerInformation", "owner_information")):
        _optional(request, member, state[field])
    return request


@SSMErrorHandler.list_error_handler("list maintenance window targets")
def list_targets(client, window_id: str):
    """The window's targets in the user's terms; None when the window does not exist."""
    rows = paginated_items(client, "describe_maintenance_window_targets", "Targets", WindowId=window_id)
    return [target_state(row) for row in rows]


@SSMErrorHandler.common_error_handler("register maintenance window target")
def register_target(client, window_id: str, state: dict) -> str:
    return client.register_target_with_maintenance_window(
        WindowId=window_id, ResourceType=state["resource_type"], ClientToken=str(uuid.uuid4()), aws_retry=True,
        **target_request(state))["WindowTargetId"]


@SSMErrorHandler.common_error_handler("update maintenance window target")
def update_target(client, window_id: str, target_id: str, state: dict) -> None:
    client.update_maintenance_window_target(WindowId=window_id, WindowTargetId=target_id, Replace=True,
                                            aws_retry=True, **target_request(state))


@SSMErrorHandler.deletion_error_handler("deregister maintenance window target")
def deregister_target(client, window_id: str, target_id: str, safe: bool) -> None:
    """Safe=true: AWS refuses when a task still uses the target (TargetInUseException)."""
    client.deregister_target_from_maintenance_window(WindowId=window_id, WindowTargetId=target_id, Safe=safe,
                                                     aws_retry=True)


# ---------------------------------------------------------------------------------------------- window tasks

PATCH_DOCUMENT = "AWS-RunPatchBaseline"
# AWS-RunPatchBaseline's parameters ([guide] "SSM Command document for patching: AWS-RunPatchBaseline").
PATCH_PARAMETERS = (("operation", "Operation"), ("reboot_option", "RebootOption"), ("snapshot_id", "SnapshotId"),
                    ("install_override_list", "InstallOverrideList"), ("baseline_override", "BaselineOverride"))
# SnapshotId is a GUID ([guide] "Parameter name: Snapshot ID"). In a maintenance window the guide's best practice
# is to leave it unset: Patch Manager derives one from the window execution ID for all the run's invocations.
SNAPSHOT_ID = (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
               "a GUID such as 12345699-9405-4f69-bc5e-9315a0000000")
# InstallOverrideList and BaselineOverride: "an https URL or an Amazon S3 path-style URL".
OVERRIDE_URL = (r"(https|s3)://\S+", "an https:// or s3:// URL")

# (option, AWS member) of the scalar members of each invocation parameter group.
SCALARS = {
    "run_command": (("comment", "Comment"), ("document_hash", "DocumentHash"),
                    ("document_hash_type", "DocumentHashType"), ("document_version", "DocumentVersion"),
                    ("output_s3_bucket", "OutputS3BucketName"), ("output_s3_key_prefix", "OutputS3KeyPrefix"),
                    ("service_role_arn", "ServiceRoleArn"), ("timeout_seconds", "TimeoutSeconds")),
    "automation": (("document_version", "DocumentVersion"),),
    "lambda": (("client_context", "ClientContext"), ("qualifier", "Qualifier"), ("payload", "Payload")),
    "step_functions": (("input", "Input"), ("name", "Name")),
}


def is_patch_document(task_arn) -> bool:
    """AWS-RunPatchBaseline by name or by the ARN of the AWS-owned document."""
    return bool(task_arn) and (task_arn == PATCH_DOCUMENT or task_arn.endswith(":document/" + PATCH_DOCUMENT))


def _parameters(parameters) -> dict:
    """Document parameters as {name: [values]}: a single value may be written alone. The order of values is kept
    (a list of commands is ordered)."""
    return {name: [str(v) for v in (values if isinstance(values, list) else [values])]
            for name, values in (parameters or {}).items()}


def _group_from_params(group: str, options: dict) -> dict:
    """An invocation parameter group in the user's terms: the options read back as AWS returns what the module
    sends for them, so that a task and AWS's answer are normalised by one function (_group_from_api)."""
    options = dict(options, parameters=_parameters(options.get("parameters")))
    return _group_from_api(group, _group_to_api(group, options))


def _cloudwatch_output(enabled, log_group):
    """None when output does not go to CloudWatch (enabled false and no group: what an unset config means)."""
    if not enabled and not log_group:
        return None
    return {"enabled": bool(enabled), "log_group": log_group}


def _group_from_api(group: str, api: dict) -> dict:
    state = {option: api.get(member) for option, member in SCALARS[group]}
    if isinstance(state.get("payload"), bytes):  # Lambda Payload is a blob
        state["payload"] = state["payload"].decode("utf-8", errors="replace")
    if group in ("run_command", "automation"):
        state["parameters"] = _parameters(api.get("Parameters"))
    if group == "run_command":
        output = api.get("CloudWatchOutputConfig") or {}
        state["cloudwatch_output"] = _cloudwatch_output(output.get("CloudWatchOutputEnabled"),
                                                        output.get("CloudWatchLogGroupName"))
        notification = api.get("NotificationConfig")
        state["notification_config"] = notification and {
            "arn": notification.get("NotificationArn"),
            "events": sorted(set(notification.get("NotificationEvents") or ())),  # a set to AWS
            "type": notification.get("NotificationType")}
    return state


def _group_to_api(group: str, state: dict) -> dict:
    api = {}
    for option, member in SCALARS[group]:
        _optional(api, member, state.get(option))
    if "Payload" in api:
        api["Payload"] = api["Payload"].encode("utf-8")
    if state.get("parameters"):
        api["Parameters"] = {name: list(values) for name, values in state["parameters"].items()}
    output = state.get("cloudwatch_output")
    if output:
        api["CloudWatchOutputConfig"] = {"CloudWatchOutputEnabled": output["enabled"]}
        _optional(api["CloudWatchOutputConfig"], "CloudWatchLogGroupName", output["log_group"])
    notification = state.get("notification_config")
    if notification:
        api["NotificationConfig"] = {"NotificationArn": notification["arn"]}
        if notification.get("events"):
            api["NotificationConfig"]["NotificationEvents"] = list(notification["events"])
        _optional(api["NotificationConfig"], "NotificationType", notification.get("type"))
    return api


def patch_baseline_view(parameters: dict) -> dict:
    """AWS-RunPatchBaseline's parameters in the options of the module's patch_baseline group."""
    return {option: (parameters.get(name) or [None])[0] for option, name in PATCH_PARAMETERS}


def _check_group(group: str, options: dict) -> None:
    """The [model] constraints of an invocation parameter group."""
    for option, length in LENGTHS[group].items():
        check_length(field_path(group, option), options.get(option), *length)
    check_length(field_path(group, "cloudwatch_output", "log_group"),
                 (options.get("cloudwatch_output") or {}).get("log_group"), *LOG_GROUP_LENGTH)
    check_range(field_path(group, "timeout_seconds"), options.get("timeout_seconds"), *TIMEOUT_SECONDS)
    check_pattern(field_path(group, "document_version"), options.get("document_version"), *DOCUMENT_VERSION)
    if group == "automation":
        parameters = options.get("parameters") or {}
        check_count(field_path(group, "parameters"), parameters, MAX_AUTOMATION_PARAMETERS)
        for name, values in _parameters(parameters).items():
            check_length(field_path(group, "parameters", "key"), name, *AUTOMATION_PARAMETER_KEY_LENGTH)
            check_count(field_path(group, "parameters", name), values, MAX_TARGET_VALUES)
            for index, value in enumerate(values):
                check_length(field_path(group, "parameters", name, index), value, *AUTOMATION_VALUE_LENGTH)


def _patch_parameters(params: dict) -> dict:
    """The AWS-RunPatchBaseline parameters of the patch_baseline option group, validated."""
    group = params["patch_baseline"]
    if params["task_type"] != "RUN_COMMAND":
        reject("patch_baseline", "AWS-RunPatchBaseline", f"is a Run Command document, not a {params['task_type']} "
                                                         "task; allowed: task_type RUN_COMMAND")
    if params.get("task_arn") is not None and not is_patch_document(params["task_arn"]):
        reject("task_arn", params["task_arn"], f"is not {PATCH_DOCUMENT}, the document patch_baseline sets the "
                                               "parameters of; allowed: AWS-RunPatchBaseline or no task_arn")
    if (params.get("run_command") or {}).get("parameters"):
        reject("run_command.parameters", sorted(params["run_command"]["parameters"]),
               "cannot be combined with patch_baseline, which sets the document's parameters; allowed: one of them")
    if group.get("install_override_list") and group.get("baseline_override"):
        reject("patch_baseline.baseline_override", group["baseline_override"],
               "cannot be combined with install_override_list (AWS-RunPatchBaseline uses one or the other); "
               "allowed: one of them")
    check_pattern("patch_baseline.snapshot_id", group.get("snapshot_id"), *SNAPSHOT_ID)
    for option in ("install_override_list", "baseline_override"):
        check_pattern(field_path("patch_baseline", option), group.get(option), *OVERRIDE_URL)
    return {name: [group[option]] for option, name in PATCH_PARAMETERS if group.get(option) is not None}


def _check_task_targets(params: dict, has_targets: bool) -> None:
    """Target counts and IDs, and MaxConcurrency/MaxErrors: required with targets, refused without."""
    check_count("targets", params.get("targets"), MAX_TASK_TARGETS)
    check_count("instance_ids", params.get("instance_ids"), MAX_TARGET_VALUES)
    for index, node_id in enumerate(params.get("instance_ids") or ()):
        check_pattern(field_path("instance_ids", index), node_id, *NODE_ID)
    if params["task_type"] == "RUN_COMMAND" and not has_targets:
        # [api] RegisterTaskWithMaintenanceWindow: "One or more targets must be specified for maintenance window
        # Run Command-type tasks".
        reject("targets", [], "is empty; allowed: Run Command tasks need window targets (targets) or instance_ids")
    for option, pattern in (("max_concurrency", MAX_CONCURRENCY), ("max_errors", MAX_ERRORS)):
        value = params.get(option)
        if has_targets and value is None:
            # [api] "a value can be omitted only when you are registering or updating a targetless task"
            raise ParameterError(f"{option}: required for a task with targets; allowed: {pattern[1]}")
        if not has_targets and value is not None:
            # [api] "For maintenance window tasks without a target specified, you can't supply a value for this
            # option" (Terraform #19396: sending one makes the call fail).
            reject(option, value, "cannot be set for a task without targets; allowed: no value (AWS shows 1)")
        check_pattern(option, value, *pattern)


def _alarm_configuration(config):
    """[model] AlarmConfiguration: exactly one alarm (AlarmList 1-1), not blank."""
    if config is None:
        return None
    check_count("alarm_configuration.alarms", config["alarms"], 1, low=1)
    for index, alarm in enumerate(config["alarms"]):
        check_length(field_path("alarm_configuration", "alarms", index), alarm, *ALARM_NAME_LENGTH)
        check_pattern(field_path("alarm_configuration", "alarms", index), alarm, r"(?!\s*$).+", "a non-blank name")
    return {"alarms": list(config["alarms"]),
            "ignore_poll_alarm_failure": bool(config.get("ignore_poll_alarm_failure"))}


def desired_task(params: dict) -> dict:
    """The window task a maintenance_window_task task asks for; raises ParameterError, calls nothing.

    `targets` are window target names or IDs as the user wrote them; task_target_names() maps them to names once
    the window's targets have been read.
    """
    task_type = params["task_type"]
    _check_name("name", params["name"])
    check_length("description", params.get("description"), *DESCRIPTION_LENGTH)
    for group in API_GROUPS:
        if params.get(group) is not None and group != GROUPS[task_type]:
            reject(group, sorted(k for k, v in params[group].items() if v is not None),
                   f"applies to {group.upper()} tasks, not {task_type}; allowed: {GROUPS[task_type]} for "
                   f"{task_type} tasks")
    task_arn = params.get("task_arn")
    patch_parameters = None
    if params.get("patch_baseline") is not None:
        patch_parameters = _patch_parameters(params)
        task_arn = task_arn or PATCH_DOCUMENT
    if task_arn is None:
        raise ParameterError("task_arn: required (the document, automation runbook, function or state machine to "
                             "run); allowed: a name or ARN, or patch_baseline for AWS-RunPatchBaseline")
    check_length("task_arn", task_arn, *TASK_ARN_LENGTH)
    if params["priority"] < 0:  # [model] MaintenanceWindowTaskPriority: min 0, no maximum
        reject("priority", params["priority"], "is negative; allowed: 0 (first) or more")
    has_targets = bool(params.get("targets") or params.get("instance_ids"))
    _check_task_targets(params, has_targets)
    group = GROUPS[task_type]
    options = params.get(group) or {}
    _check_group(group, options)
    state = {
        "name": params["name"],
        "description": params.get("description"),
        "task_type": task_type,
        "task_arn": task_arn,
        "priority": params["priority"],
        "targets": list(params.get("targets") or ()),
        "instance_ids": sorted(set(params.get("instance_ids") or ())),
        "max_concurrency": params.get("max_concurrency"),
        "max_errors": params.get("max_errors"),
        "cutoff_behavior": params.get("cutoff_behavior") or DEFAULT_CUTOFF_BEHAVIOR,
        "alarm_configuration": _alarm_configuration(params.get("alarm_configuration")),
        group: _group_from_params(group, options),
    }
    if patch_parameters is not None:
        state[group]["parameters"] = patch_parameters
        state["patch_baseline"] = patch_baseline_view(patch_parameters)
    if params.get("service_role_arn") is not None:  # unset: AWS uses (and shows) its service-linked role
        state["service_role_arn"] = params["service_role_arn"]
    return state


def task_target_names(given: list, window_targets: list) -> tuple:
    """(the window targets `given` (names or IDs) refer to, by name (by ID when unnamed), sorted and unique;
    the entries of `given` that refer to no target of the window)."""
    refs = {}
    for target in window_targets:
        shown = target["name"] or target["window_target_id"]
        refs[target["window_target_id"]] = shown
        if target["name"]:
            refs[target["name"]] = shown
    return sorted({refs[ref] for ref in given if ref in refs}), [ref for ref in given if ref not in refs]


def task_target_ids(names: list, window_targets: list) -> list:
    """The IDs of window targets shown by name (or ID) in a task state."""
    ids = {target["name"] or target["window_target_id"]: target["window_target_id"] for target in window_targets}
    return [ids[name] for name in names]


def _split_task_targets(targets) -> tuple:
    """(window target IDs, node IDs) of a task's Targets; keys are matched in any case, as AWS does."""
    by_key = {"windowtargetids": [], "instanceids": []}
    for target in targets or ():
        by_key.setdefault(target["Key"].lower(), []).extend(target.get("Values") or ())
    return by_key["windowtargetids"], by_key["instanceids"]


def task_state(response: dict, target_names: dict) -> dict:
    """GetMaintenanceWindowTask in the user's terms; `target_names` maps window target IDs to names (a target
    without a name, or deregistered since, is shown by its ID)."""
    target_ids, instance_ids = _split_task_targets(response.get("Targets"))
    targetless = not (target_ids or instance_ids)
    invocation = response.get("TaskInvocationParameters") or {}
    alarms = response.get("AlarmConfiguration")
    state = {
        "window_id": response["WindowId"],
        "window_task_id": response["WindowTaskId"],
        "name": response.get("Name"),
        "description": response.get("Description"),
        "task_type": response.get("TaskType"),
        "task_arn": response.get("TaskArn"),
        "priority": response.get("Priority"),
        "targets": sorted({target_names.get(target_id) or target_id for target_id in target_ids}),
        "instance_ids": sorted(set(instance_ids)),
        # Targetless tasks show AWS's placeholder "1" for both ([api] MaxConcurrency): not a setting.
        "max_concurrency": None if targetless else response.get("MaxConcurrency"),
        "max_errors": None if targetless else response.get("MaxErrors"),
        "cutoff_behavior": response.get("CutoffBehavior") or DEFAULT_CUTOFF_BEHAVIOR,
        "service_role_arn": response.get("ServiceRoleArn"),
        "alarm_configuration": alarms and {
            "alarms": [alarm["Name"] for alarm in alarms.get("Alarms") or ()],
            "ignore_poll_alarm_failure": bool(alarms.get("IgnorePollAlarmFailure"))},
    }
    for group, member in API_GROUPS.items():
        state[group] = _group_from_api(group, invocation.get(member) or {}) \
            if GROUPS.get(state["task_type"]) == group else None
    state["patch_baseline"] = patch_baseline_view(state["run_command"]["parameters"]) \
        if state["run_command"] is not None and is_patch_document(state["task_arn"]) else None
    return state


def task_request(state: dict, target_ids: list) -> dict:
    """RegisterTaskWithMaintenanceWindow/UpdateMaintenanceWindowTask members (TaskType: Register's only).

    MaxConcurrency/MaxErrors only for a task with targets; TaskInvocationParameters, never the deprecated
    TaskParameters/LoggingInfo ([api]: "LoggingInfo has been deprecated", "TaskParameters has been deprecated").
    """
    targets = [{"Key": key, "Values": list(values)} for key, values in
               (("WindowTargetIds", target_ids), ("InstanceIds", state["instance_ids"])) if values]
    request = {"TaskArn": state["task_arn"], "Priority": state["priority"]}
    if targets:
        request.update(Targets=targets, MaxConcurrency=state["max_concurrency"], MaxErrors=state["max_errors"])
    group = GROUPS[state["task_type"]]
    invocation = _group_to_api(group, state[group] or {})
    if invocation:
        request["TaskInvocationParameters"] = {API_GROUPS[group]: invocation}
    if state["cutoff_behavior"] != DEFAULT_CUTOFF_BEHAVIOR:
        request["CutoffBehavior"] = state["cutoff_behavior"]
    if state["alarm_configuration"]:
        request["AlarmConfiguration"] = {
            "Alarms": [{"Name": name} for name in state["alarm_configuration"]["alarms"]],
            "IgnorePollAlarmFailure": state["alarm_configuration"]["ignore_poll_alarm_failure"]}
    for member, field in (("Name", "name"), ("Description", "description"), ("ServiceRoleArn", "service_role_arn")):
        _optional(request, member, state.get(field))
    return request


@SSMErrorHandler.list_error_handler("list maintenance window tasks")
def list_tasks(client, window_id: str):
    """DescribeMaintenanceWindowTasks rows {window_task_id, name, targets (IDs)}; None when the window is gone."""
    rows = paginated_items(client, "describe_maintenance_window_tasks", "Tasks", WindowId=window_id)
    return [{"window_task_id": row["WindowTaskId"], "name": row.get("Name"),
             "target_ids": _split_task_targets(row.get("Targets"))[0]} for row in rows]


@SSMErrorHandler.list_error_handler("get maintenance window task")
def get_task(client, window_id: str, task_id: str, target_names: dict):
    """GetMaintenanceWindowTask in the user's terms, or None when the task does not exist."""
    response = client.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id, aws_retry=True)
    return task_state(response, target_names)


@SSMErrorHandler.common_error_handler("register maintenance window task")
def register_task(client, window_id: str, state: dict, target_ids: list) -> str:
    return client.register_task_with_maintenance_window(
        WindowId=window_id, TaskType=state["task_type"], ClientToken=str(uuid.uuid4()), aws_retry=True,
        **task_request(state, target_ids))["WindowTaskId"]


@SSMErrorHandler.common_error_handler("update maintenance window task")
def update_task(client, window_id: str, task_id: str, state: dict, target_ids: list) -> None:
    client.update_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id, Replace=True, aws_retry=True,
                                          **task_request(state, target_ids))


@SSMErrorHandler.deletion_error_handler("deregister maintenance window task")
def deregister_task(client, window_id: str, task_id: str) -> None:
    client.deregister_task_from_maintenance_window(WindowId=window_id, WindowTaskId=task_id, aws_retry=True)


# ---------------------------------------------------------------------------------------------- executions

@SSMErrorHandler.list_error_handler("list maintenance window executions", default_value=[])
def recent_executions(client, window_id: str, count: int) -> list:
    """The `count` most recent executions of the window, newest first, each with its task executions (AWS
    documents no order for DescribeMaintenanceWindowExecutions, so every page is read and sorted)."""
    rows = paginated_items(client, "describe_maintenance_window_executions", "WindowExecutions", WindowId=window_id)
    rows = sorted(rows, key=lambda row: row["StartTime"], reverse=True)[:count]
    return [dict(window_execution_id=row["WindowExecutionId"], **_outcome(row),
                 tasks=_execution_tasks(client, row["WindowExecutionId"])) for row in rows]


def _outcome(row: dict) -> dict:
    """Status and times of an execution or task execution."""
    return iso_dates({"status": row.get("Status"), "status_details": row.get("StatusDetails"),
                      "start_time": row.get("StartTime"), "end_time": row.get("EndTime")}, "start_time", "end_time")


def _execution_tasks(client, execution_id: str) -> list:
    rows = paginated_items(client, "describe_maintenance_window_execution_tasks", "WindowExecutionTaskIdentities",
                           WindowExecutionId=execution_id)
    return [dict(task_execution_id=row["TaskExecutionId"], task_arn=row.get("TaskArn"), task_type=row.get("TaskType"),
                 **_outcome(row)) for row in rows]


# ---------------------------------------------------------------------------------------------- resources

class WindowPart(ManagedResource):
    """A target or task of a maintenance window, identified by its name within the window.

    `read_window()` resolves the `window` option (a name, or an ID mw-...) and lists the window's targets: the
    target module finds itself among them, the task module maps target names to IDs with them.
    """

    def read_window(self) -> bool:
        """Sets self.window ({window_id, name}) and self.window_targets; False when the window does not exist."""
        given = self.params["window"]
        if is_window_id(given):
            self.window = {"window_id": given, "name": None}
        else:
            self.window = find_window(self.client, given, field="window")
        self.window_targets = self.window and list_targets(self.client, self.window["window_id"])
        if self.window_targets is None:  # an unknown ID, or deleted since it was listed
            self.window = None
            self._missing_window()
            return False
        return True

    def _missing_window(self) -> None:
        """Nothing to delete; in check mode an earlier task of the play may create the window."""
        if self.params["state"] == "absent":
            return
        if self.module.check_mode:
            self.module.warn(f"window {self.params['window']!r} does not exist (yet): check mode assumes an earlier "
                             f"task creates it")
            return
        raise ParameterError(
            f"window: {self.params['window']!r} is not a maintenance window in this account and region; allowed: "
            "the name or ID of an existing window (create it first with fleetpatch.ssm.maintenance_window)"
        )

    def window_id(self):
        return self.window and self.window["window_id"]

    def find_named(self, items: list):
        where = f"in maintenance window {self.params['window']!r}"
        return _find_named(items, self.params["name"], self.noun, where)
