"""Maintenance windows: windows, targets, tasks and executions, and the lab's stand-in for their scheduler.

AWS rules followed (SSM API reference for each operation, user guide "Maintenance Windows" and "Systems Manager
service quotas"; each rule is cited where it is enforced):
* Quotas per account and Region: 50 windows, 100 targets per window, 20 tasks per window, 10 targets per task,
  5 concurrently running window executions (ResourceLimitExceededException).
* Update* operations change only the members they are sent; with Replace=true every member Register/Create
  requires must be sent and every optional member not sent becomes null.
* Run Command tasks need targets; targetless tasks take neither MaxConcurrency nor MaxErrors and report the
  placeholder "1" for both. TaskParameters/LoggingInfo are deprecated: Run Command tasks use them only when no
  TaskInvocationParameters are set; other task types ignore them.
* Executions: tasks run in Priority order (lower first); a task with several window targets runs them one
  after the other (one invocation, i.e. one SendCommand, per window target); no task starts after the cutoff
  (start + Duration - Cutoff); pseudo parameters such as {{WINDOW_EXECUTION_ID}} are substituted.

Choices where AWS documents nothing (stated, never tuned to a client):
* Page size when MaxResults is omitted: 10 (the model's minimum); NextToken is opaque and carries an offset.
* Error messages name the offending member; AWS's wording is known only for "Maintenance window <id> does not
  exist" (reproduced) and the Cutoff rule (a CloudFormation user's report, followed in shape).
* ModifiedDate changes with UpdateMaintenanceWindow only, not with target or task changes.
* DeleteMaintenanceWindow of an unknown id succeeds: the model lists no DoesNotExistException for it.
* Priority defaults to 1 (the console's default); ServiceRoleArn defaults to the SSM service-linked role
  (the API reference: "Systems Manager uses a service-linked role in your account").
* Run Command tasks run one SendCommand per window target; when their parameters use {{TARGET_ID}} or
  {{RESOURCE_ID}} (per-node values) and for the other task types, one invocation per node.
* AUTOMATION, LAMBDA and STEP_FUNCTIONS tasks are recorded but not simulated: their invocations end FAILED
  with a status detail saying so. They are never reported as successful.
"""
from __future__ import annotations

import base64
import binascii
import copy
import datetime
import json
import re
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import api, nodes, paging, schedule
from .api import Context, operation
from .control import ControlError, route
from .errors import (
    DoesNotExistException,
    IdempotentParameterMismatch,
    LabError,
    ResourceLimitExceededException,
    TargetInUseException,
    ValidationException,
)
from .state import LAB, RegionState
from .targets import resolve_targets

MAX_WINDOWS = 50
MAX_TARGETS_PER_WINDOW = 100
MAX_TASKS_PER_WINDOW = 20
MAX_TARGETS_PER_TASK = 10
MAX_CONCURRENT_EXECUTIONS = 5
DEFAULT_PAGE_SIZE = 10
SCHEDULE_RUNS_PER_WINDOW = 100  # DescribeMaintenanceWindowSchedule lists at most this many runs per window
DEFAULT_PRIORITY = 1
SERVICE_LINKED_ROLE = "arn:aws:iam::{account}:role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM"
POLL_SECONDS = 0.05

WINDOW_FIELDS = ("Name", "Description", "StartDate", "EndDate", "Schedule", "ScheduleTimezone", "ScheduleOffset",
                 "Duration", "Cutoff", "AllowUnassociatedTargets")
WINDOW_REQUIRED = ("Name", "Schedule", "Duration", "Cutoff", "AllowUnassociatedTargets")
TIMING_FIELDS = ("StartDate", "EndDate", "Schedule", "ScheduleTimezone", "ScheduleOffset")
TARGET_FIELDS = ("Targets", "OwnerInformation", "Name", "Description")
TARGET_REQUIRED = ("Targets",)
TASK_FIELDS = ("Targets", "TaskArn", "ServiceRoleArn", "TaskParameters", "TaskInvocationParameters", "Priority",
               "MaxConcurrency", "MaxErrors", "LoggingInfo", "Name", "Description", "CutoffBehavior",
               "AlarmConfiguration")
TASK_REQUIRED = ("TaskArn",)
INVOCATION_PARAMETER_KEYS = {"RUN_COMMAND": "RunCommand", "AUTOMATION": "Automation", "LAMBDA": "Lambda",
                             "STEP_FUNCTIONS": "StepFunctions"}
# MaintenanceWindowRunCommandParameters members that SendCommand takes as they are (+ LoggingInfo's S3 Region).
SEND_COMMAND_MEMBERS = ("Comment", "CloudWatchOutputConfig", "DocumentHash", "DocumentHashType", "DocumentVersion",
                        "NotificationConfig", "OutputS3BucketName", "OutputS3KeyPrefix", "OutputS3Region",
                        "Parameters", "ServiceRoleArn", "TimeoutSeconds")
PER_NODE_PSEUDO_PARAMETERS = ("TARGET_ID", "RESOURCE_ID")
# AWS CommandStatus -> MaintenanceWindowExecutionStatus
COMMAND_STATUS = {"Pending": "PENDING", "InProgress": "IN_PROGRESS",
                  "Success": "SUCCESS", "Cancelled": "CANCELLED", "Cancelling": "CANCELLING",
                  "Failed": "FAILED", "TimedOut": "TIMED_OUT"}
FINAL = {"SUCCESS", "FAILED", "TIMED_OUT", "CANCELLED", "SKIPPED_OVERLAPPING"}
ORCHESTRATION_FAILED = "One or more tasks in the orchestration failed."  # AWS's wording (API reference example)
NO_INVOCATIONS = "No invocations to execute."  # AWS's wording for a task whose targets select no node
NOT_STARTED_BEFORE_CUTOFF = "The task did not start before the maintenance window cutoff."




# ---------------------------------------------------------------------------------------------------------------
# Records (kept in RegionState.windows / RegionState.window_executions)


@dataclass
class WindowTarget:
    target_id: str
    resource_type: str
    config: dict[str, Any]  # TARGET_FIELDS as AWS members
    client_token: str | None = None
    request_key: str = ""


@dataclass
class WindowTask:
    task_id: str
    task_type: str
    config: dict[str, Any]  # TASK_FIELDS as AWS members
    client_token: str | None = None
    request_key: str = ""


@dataclass
class Window:
    window_id: str
    config: dict[str, Any]  # WINDOW_FIELDS as AWS members
    created: datetime.datetime
    modified: datetime.datetime
    effective_from: datetime.datetime  # when the current schedule took effect
    due_checked_at: datetime.datetime  # /windows/run-due looked for runs up to this lab time
    enabled: bool = True
    targets: dict[str, WindowTarget] = field(default_factory=dict)
    tasks: dict[str, WindowTask] = field(default_factory=dict)
    client_token: str | None = None
    request_key: str = ""


@dataclass
class Invocation:
    invocation_id: str
    task_type: str
    parameters: str = ""
    execution_id: str | None = None  # the command id of a RUN_COMMAND invocation
    status: str = "PENDING"
    status_details: str | None = None
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None
    owner_information: str | None = None
    window_target_id: str | None = None


@dataclass
class TaskExecution:
    task_execution_id: str
    task: WindowTask  # a copy taken when the window execution started
    status: str = "PENDING"
    status_details: str | None = None
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None
    invocations: dict[str, Invocation] = field(default_factory=dict)


@dataclass
class WindowExecution:
    window_execution_id: str
    window_id: str
    account: str
    region: str
    start: datetime.datetime
    cutoff_at: datetime.datetime
    window_targets: dict[str, WindowTarget]  # copies taken at start
    status: str = "IN_PROGRESS"
    status_details: str | None = None
    end: datetime.datetime | None = None
    tasks: dict[str, TaskExecution] = field(default_factory=dict)
    cancel_requested: bool = False
    done: threading.Event = field(default_factory=threading.Event)


# ---------------------------------------------------------------------------------------------------------------
# Small helpers


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _pick(params: dict, members: Iterable[str]) -> dict[str, Any]:
    return {member: copy.deepcopy(params[member]) for member in members if params.get(member) is not None}


def _new_window_id() -> str:
    return "mw-" + uuid.uuid4().hex[:17]


def _new_uuid() -> str:
    return str(uuid.uuid4())


def _updated(current: dict, params: dict, members: tuple[str, ...], required: tuple[str, ...]) -> dict:
    """Update semantics of UpdateMaintenanceWindow/Target/Task: members not sent are kept, unless Replace=true,
    which needs every member the Register/Create call requires and sets every other member to null."""
    sent = _pick(params, members)
    if not params.get("Replace"):
        return {**copy.deepcopy(current), **sent}
    missing = [member for member in required if member not in sent]
    if missing:
        raise ValidationException(f"{', '.join(missing)} must be specified when Replace is true")
    return sent


def _request_key(params: dict) -> str:
    return json.dumps({k: v for k, v in params.items() if k != "ClientToken"}, sort_keys=True, default=str)


def _idempotent_match(records: Iterable, params: dict):
    """ClientToken idempotency: the same token with the same request returns the first call's resource; with
    a different request it is IdempotentParameterMismatch (API reference: "User-provided idempotency token")."""
    token = params.get("ClientToken")
    if not token:
        return None
    for record in records:
        if record.client_token == token:
            if record.request_key != _request_key(params):
                raise IdempotentParameterMismatch(
                    f"ClientToken {token} was already used with different parameters")
            return record
    return None


def _window(state: RegionState, window_id: str) -> Window:
    window = state.windows.get(window_id)
    if window is None:
        raise DoesNotExistException(f"Maintenance window {window_id} does not exist")
    return window


def _target(window: Window, target_id: str) -> WindowTarget:
    target = window.targets.get(target_id)
    if target is None:
        raise DoesNotExistException(
            f"Maintenance window target {target_id} does not exist in maintenance window {window.window_id}")
    return target


def _task(window: Window, task_id: str) -> WindowTask:
    task = window.tasks.get(task_id)
    if task is None:
        raise DoesNotExistException(
            f"Maintenance window task {task_id} does not exist in maintenance window {window.window_id}")
    return task


def _execution(state: RegionState, execution_id: str) -> WindowExecution:
    execution = state.window_executions.get(execution_id)
    if execution is None:
        raise DoesNotExistException(f"Maintenance window execution {execution_id} does not exist")
    return execution


def _task_execution(execution: WindowExecution, task_execution_id: str) -> TaskExecution:
    task_execution = execution.tasks.get(task_execution_id)
    if task_execution is None:
        raise DoesNotExistException(f"Maintenance window execution task {task_execution_id} does not exist")
    return task_execution


Matcher = Callable[[Any, list], bool]


def _filtered(items: list, filters: list[dict] | None, matchers: dict[str, Matcher]) -> list:
    """Keep the items every filter matches. Unknown keys are rejected: each operation's API reference lists the
    keys it supports."""
    for item_filter in filters or []:
        key, values = item_filter.get("Key"), item_filter.get("Values") or []
        matcher = matchers.get(key)
        if matcher is None:
            raise ValidationException(f"Filter key {key} is not supported. Supported keys: {', '.join(matchers)}")
        items = [item for item in items if matcher(item, values)]
    return items


def _iso_moment(text: str, member: str, timezone: datetime.tzinfo = datetime.timezone.utc) -> datetime.datetime:
    """An ISO-8601 date/time ("ISO-8601 Extended format"); a value without offset is read in `timezone`."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValidationException(f"{member} {text!r} is not a valid ISO-8601 date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone)


def _time_filter(member: str, before: bool, moment_of: Callable[[Any], datetime.datetime]) -> Matcher:
    """ExecutedBefore/ExecutedAfter and ScheduledBefore/ScheduledAfter filters (values are ISO-8601 times)."""
    def match(item, values: list) -> bool:
        moment = moment_of(item)
        bounds = [_iso_moment(value, member) for value in values]
        return all((moment < bound) if before else (moment > bound) for bound in bounds)
    return match


def _json(value) -> str:
    """JSON text of request-like values; blobs (a Lambda Payload) are shown as text."""
    return json.dumps(value, default=lambda blob: blob.decode(errors="replace"))


def _truncate(text: str | None, limit: int = 250) -> str | None:
    """MaintenanceWindowExecutionStatusDetails is at most 250 characters."""
    return text if text is None or len(text) <= limit else text[:limit - 3] + "..."


# ---------------------------------------------------------------------------------------------------------------
# Windows


def _zone(name: str | None) -> ZoneInfo:
    """ScheduleTimezone: an IANA time zone name ("America/Los_Angeles", "UTC"); UTC when not set."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationException(
            f"ScheduleTimezone {name!r} is not a valid IANA time zone (for example America/Los_Angeles)") from None


def _parsed_schedule(expression: str) -> schedule.Schedule:
    try:
        return schedule.parse(expression)
    except schedule.ScheduleError as err:
        raise ValidationException(f"Schedule {expression!r} is not valid: {err}") from None


def _validate_window(config: dict, now: datetime.datetime, sent: Iterable[str]) -> None:
    """The window rules of CreateMaintenanceWindow/UpdateMaintenanceWindow beyond the model's ranges."""
    parsed = _parsed_schedule(config["Schedule"])
    if config.get("ScheduleOffset") is not None and not isinstance(parsed, schedule.Cron):
        raise ValidationException("ScheduleOffset can be used only with a cron schedule")
    # "No maintenance window tasks are permitted to start after the resulting endtime minus ... Cutoff":
    # Cutoff must leave time in the window. Shaped like AWS's message as a CloudFormation user reported it.
    if config["Cutoff"] >= config["Duration"]:
        raise ValidationException(
            f"Cutoff was {config['Cutoff']} but must be at most {config['Duration'] - 1} (Duration - 1)")
    zone = _zone(config.get("ScheduleTimezone"))
    start = _window_date(config, "StartDate", zone)
    end = _window_date(config, "EndDate", zone)
    if end is not None and "EndDate" in sent and end <= now:
        raise ValidationException("EndDate must be in the future")  # "a date and time in the future"
    if start is not None and end is not None and end <= start:
        raise ValidationException("EndDate must be later than StartDate")


def _window_date(config: dict, member: str, zone: ZoneInfo) -> datetime.datetime | None:
    text = config.get(member)
    return _iso_moment(text, member, zone) if text else None


def _timing(window: Window) -> schedule.Timing:
    zone = _zone(window.config.get("ScheduleTimezone"))
    return schedule.Timing(
        schedule=schedule.parse(window.config["Schedule"]),
        timezone=zone,
        effective_from=window.effective_from,
        offset_days=window.config.get("ScheduleOffset") or 0,
        start=_window_date(window.config, "StartDate", zone),
        end=_window_date(window.config, "EndDate", zone),
    )


def _next_execution_time(window: Window, now: datetime.datetime) -> str | None:
    """Only enabled windows have a next run (API reference examples omit it for disabled windows)."""
    if not window.enabled:
        return None
    timing = _timing(window)
    run = timing.next_after(now)
    return schedule.format_time(run, timing.timezone) if run else None


def _window_fields(window: Window) -> dict:
    return {"WindowId": window.window_id, **copy.deepcopy(window.config), "Enabled": window.enabled}


@operation("CreateMaintenanceWindow")
def create_maintenance_window(ctx: Context, params: dict) -> dict:
    state = ctx.state
    existing = _idempotent_match(state.windows.values(), params)
    if existing is not None:
        return {"WindowId": existing.window_id}
    config = _pick(params, WINDOW_FIELDS)
    _validate_window(config, ctx.now, sent=config)
    tags = nodes.merged_tags({}, params.get("Tags"), "the new maintenance window")  # AWS's tag rules, before writing
    if len(state.windows) >= MAX_WINDOWS:
        raise ResourceLimitExceededException(
            f"Maintenance windows per account and Region reached the quota of {MAX_WINDOWS}")
    window = Window(_new_window_id(), config, created=ctx.now, modified=ctx.now, effective_from=ctx.now,
                    due_checked_at=ctx.now, client_token=params.get("ClientToken"),
                    request_key=_request_key(params))
    state.windows[window.window_id] = window
    if tags:
        state.tags[("MaintenanceWindow", window.window_id)] = tags
    return {"WindowId": window.window_id}


@operation("GetMaintenanceWindow")
def get_maintenance_window(ctx: Context, params: dict) -> dict:
    window = _window(ctx.state, params["WindowId"])
    return _compact({**_window_fields(window), "NextExecutionTime": _next_execution_time(window, ctx.now),
                     "CreatedDate": window.created, "ModifiedDate": window.modified})


@operation("UpdateMaintenanceWindow")
def update_maintenance_window(ctx: Context, params: dict) -> dict:
    """Enabled is state, not configuration: Replace=true leaves it unchanged unless it is sent (a lab choice)."""
    window = _window(ctx.state, params["WindowId"])
    config = _updated(window.config, params, WINDOW_FIELDS, WINDOW_REQUIRED)
    _validate_window(config, ctx.now, sent=_pick(params, WINDOW_FIELDS))
    if any(config.get(member) != window.config.get(member) for member in TIMING_FIELDS):
        window.effective_from = window.due_checked_at = ctx.now
    window.config = config
    if params.get("Enabled") is not None:
        window.enabled = params["Enabled"]
    window.modified = ctx.now
    return _window_fields(window)


@operation("DeleteMaintenanceWindow")
def delete_maintenance_window(ctx: Context, params: dict) -> dict:
    window_id = params["WindowId"]
    ctx.state.windows.pop(window_id, None)
    nodes.forget_resource_tags(ctx.state, "MaintenanceWindow", window_id)
    return {"WindowId": window_id}


def _bool_filter(value: bool, values: list) -> bool:
    return str(value).lower() in {v.lower() for v in values}


WINDOW_FILTERS: dict[str, Matcher] = {
    # "Name=My" lists the windows whose names start with My (user guide, describe-maintenance-windows examples).
    "Name": lambda window, values: any(window.config["Name"].startswith(v) for v in values),
    "Enabled": lambda window, values: _bool_filter(window.enabled, values),
}


@operation("DescribeMaintenanceWindows")
def describe_maintenance_windows(ctx: Context, params: dict) -> dict:
    windows = _filtered(list(ctx.state.windows.values()), params.get("Filters"), WINDOW_FILTERS)
    identities = []
    for window in windows:
        identity = _window_fields(window)
        identity.pop("AllowUnassociatedTargets")  # not a member of MaintenanceWindowIdentity
        identity["NextExecutionTime"] = _next_execution_time(window, ctx.now)
        identities.append(_compact(identity))
    return paging.page(params, "DescribeMaintenanceWindows", "WindowIdentities", identities,
                       default_size=DEFAULT_PAGE_SIZE)


# ---------------------------------------------------------------------------------------------------------------
# Targets

INSTANCE_TARGET_KEY = re.compile(r"^(InstanceIds|tag:.+|tag-key)$")
RESOURCE_GROUP_TARGET_KEY = re.compile(r"^resource-groups:(Name|ResourceTypeFilters)$")


def _validate_window_targets(resource_type: str, targets: list[dict]) -> None:
    """RegisterTargetWithMaintenanceWindow: INSTANCE targets use InstanceIds, tag:<key> or tag-key; RESOURCE_GROUP
    targets use resource-groups:Name or resource-groups:ResourceTypeFilters (API reference, examples 1-5)."""
    if not targets:
        raise ValidationException("Targets must contain at least one target")
    pattern = INSTANCE_TARGET_KEY if resource_type == "INSTANCE" else RESOURCE_GROUP_TARGET_KEY
    for target in targets:
        key = target.get("Key") or ""
        if not pattern.match(key):
            raise ValidationException(f"Target key {key} is not valid for ResourceType {resource_type}")
        if not target.get("Values"):
            raise ValidationException(f"Target key {key} needs at least one value")


def _target_fields(window: Window, target: WindowTarget) -> dict:
    return {"WindowId": window.window_id, "WindowTargetId": target.target_id, **copy.deepcopy(target.config)}


@operation("RegisterTargetWithMaintenanceWindow")
def register_target_with_maintenance_window(ctx: Context, params: dict) -> dict:
    window = _window(ctx.state, params["WindowId"])
    existing = _idempotent_match(window.targets.values(), params)
    if existing is not None:
        return {"WindowTargetId": existing.target_id}
    _validate_window_targets(params["ResourceType"], params["Targets"])
    if len(window.targets) >= MAX_TARGETS_PER_WINDOW:
        raise ResourceLimitExceededException(
            f"Targets per maintenance window reached the quota of {MAX_TARGETS_PER_WINDOW}")
    target = WindowTarget(_new_uuid(), params["ResourceType"], _pick(params, TARGET_FIELDS),
                          params.get("ClientToken"), _request_key(params))
    window.targets[target.target_id] = target
    return {"WindowTargetId": target.target_id}


@operation("UpdateMaintenanceWindowTarget")
def update_maintenance_window_target(ctx: Context, params: dict) -> dict:
    window = _window(ctx.state, params["WindowId"])
    target = _target(window, params["WindowTargetId"])
    config = _updated(target.config, params, TARGET_FIELDS, TARGET_REQUIRED)
    _validate_window_targets(target.resource_type, config.get("Targets") or [])
    target.config = config
    return _target_fields(window, target)


def _tasks_using_target(window: Window, target_id: str) -> list[WindowTask]:
    return [task for task in window.tasks.values() if target_id in _task_window_target_ids(task.config)]


@operation("DeregisterTargetFromMaintenanceWindow")
def deregister_target_from_maintenance_window(ctx: Context, params: dict) -> dict:
    window = _window(ctx.state, params["WindowId"])
    target = _target(window, params["WindowTargetId"])
    # Safe: "If the target is being referenced, the system returns an error and doesn't deregister the target".
    if params.get("Safe") and _tasks_using_target(window, target.target_id):
        raise TargetInUseException(
            "You specified the Safe option for the DeregisterTargetFromMaintenanceWindow operation, but the "
            "target is still referenced in a task.")
    del window.targets[target.target_id]
    return {"WindowId": window.window_id, "WindowTargetId": target.target_id}


TARGET_FILTERS: dict[str, Matcher] = {
    # "The supported filter keys are Type, WindowTargetId and OwnerInformation" (Type is the ResourceType).
    "Type": lambda target, values: target.resource_type in values,
    "WindowTargetId": lambda target, values: target.target_id in values,
    "OwnerInformation": lambda target, values: target.config.get("OwnerInformation") in values,
}


@operation("DescribeMaintenanceWindowTargets")
def describe_maintenance_window_targets(ctx: Context, params: dict) -> dict:
    window = _window(ctx.state, params["WindowId"])
    targets = _filtered(list(window.targets.values()), params.get("Filters"), TARGET_FILTERS)
    rows = [{**_target_fields(window, target), "ResourceType": target.resource_type} for target in targets]
    return paging.page(params, "DescribeMaintenanceWindowTargets", "Targets", rows,
                       default_size=DEFAULT_PAGE_SIZE)


# ---------------------------------------------------------------------------------------------------------------
# Tasks

TASK_TARGET_KEYS = {"windowtargetids": "WindowTargetIds", "instanceids": "InstanceIds"}


def _canonical_key(key: str) -> str:
    """The API reference spells task target keys both `InstanceIds` and `instanceids`: both are accepted."""
    return TASK_TARGET_KEYS.get(key.lower(), key)


def _task_window_target_ids(config: dict) -> list[str]:
    return [value for target in config.get("Targets") or []
            if _canonical_key(target.get("Key", "")) == "WindowTargetIds" for value in target.get("Values") or []]


def _validate_task(window: Window, task_type: str, config: dict, sent: dict) -> None:
    """RegisterTaskWithMaintenanceWindow/UpdateMaintenanceWindowTask rules (API reference)."""
    targets = config.get("Targets") or []
    if task_type == "RUN_COMMAND" and not targets:
        raise ValidationException("Targets must be specified for maintenance window Run Command tasks")
    if targets:
        _validate_task_targets(window, targets)
        missing = [member for member in ("MaxConcurrency", "MaxErrors") if not config.get(member)]
        if missing:  # "a value can be omitted only when you are registering or updating a targetless task"
            raise ValidationException(f"{' and '.join(missing)} must be specified for a task with targets")
    else:
        given = [member for member in ("MaxConcurrency", "MaxErrors") if sent.get(member)]
        if given:  # "For maintenance window tasks without a target specified, you can't supply a value"
            raise ValidationException(f"{' and '.join(given)} can't be specified for a task without targets")
    other_types = set((config.get("TaskInvocationParameters") or {})) - {INVOCATION_PARAMETER_KEYS[task_type]}
    if other_types:  # "Populate only the fields that match the task type. All other fields should be empty."
        raise ValidationException(
            f"TaskInvocationParameters {', '.join(sorted(other_types))} do not match TaskType {task_type}")


def _validate_task_targets(window: Window, targets: list[dict]) -> None:
    """Task targets are registered window targets (WindowTargetIds) or, when the window allows unassociated
    targets, node ids (InstanceIds)."""
    referenced = 0
    for target in targets:
        key = _canonical_key(target.get("Key", ""))
        values = target.get("Values") or []
        if key == "WindowTargetIds":
            unknown = [value for value in values if value not in window.targets]
            if unknown:
                raise DoesNotExistException(
                    f"Maintenance window target {unknown[0]} does not exist in maintenance window "
                    f"{window.window_id}")
            referenced += len(values)
        elif key == "InstanceIds":
            if not window.config["AllowUnassociatedTargets"]:
                raise ValidationException(
                    f"Maintenance window {window.window_id} does not allow unassociated targets: use "
                    "WindowTargetIds of registered targets")
            referenced += 1
        else:
            raise ValidationException(f"Task target key {target.get('Key')} is not valid: use WindowTargetIds "
                                      "or InstanceIds")
    # "Targets per task: 10" (service quotas). The lab counts each window target and each InstanceIds entry.
    if referenced > MAX_TARGETS_PER_TASK:
        raise ResourceLimitExceededException(f"Targets per task exceed the quota of {MAX_TARGETS_PER_TASK}")


def _decoded_payload(config: dict) -> dict:
    """A Lambda Payload is a blob: JSON carries it base64-encoded; the lab keeps the bytes."""
    payload = (config.get("TaskInvocationParameters") or {}).get("Lambda", {}).get("Payload")
    if isinstance(payload, str):
        try:
            config["TaskInvocationParameters"]["Lambda"]["Payload"] = base64.b64decode(payload, validate=True)
        except binascii.Error:
            raise ValidationException("TaskInvocationParameters.Lambda.Payload is not valid base64") from None
    return config


def _task_config(params: dict, current: dict | None = None) -> dict:
    members = _updated(current, params, TASK_FIELDS, TASK_REQUIRED) if current is not None \
        else _pick(params, TASK_FIELDS)
    config = _decoded_payload(members)
    config.setdefault("Priority", DEFAULT_PRIORITY)
    if not config.get("Targets"):
        config.pop("MaxConcurrency", None)
        config.pop("MaxErrors", None)
    return config


def _service_role(config: dict, account: str) -> str:
    return config.get("ServiceRoleArn") or SERVICE_LINKED_ROLE.format(account=account)


def _task_fields(window: Window, task: WindowTask, account: str) -> dict:
    fields = {"WindowId": window.window_id, "WindowTaskId": task.task_id, **copy.deepcopy(task.config),
              "ServiceRoleArn": _service_role(task.config, account)}
    if not task.config.get("Targets"):  # targetless: "the system inserts a placeholder value of 1"
        fields.update(MaxConcurrency="1", MaxErrors="1")
    return fields


@operation("RegisterTaskWithMaintenanceWindow")
def register_task_with_maintenance_window(ctx: Context, params: dict) -> dict:
    window = _window(ctx.state, params["WindowId"])
    existing = _idempotent_match(window.tasks.values(), params)
    if existing is not None:
        return {"WindowTaskId": existing.task_id}
    config = _task_config(params)
    _validate_task(window, params["TaskType"], config, params)
    if len(window.tasks) >= MAX_TASKS_PER_WINDOW:
        raise ResourceLimitExceededException(f"Tasks per maintenance window reached the quota of "
                                             f"{MAX_TASKS_PER_WINDOW}")
    task = WindowTask(_new_uuid(), params["TaskType"], config, params.get("ClientToken"), _request_key(params))
    window.tasks[task.task_id] = task
    return {"WindowTaskId": task.task_id}


@operation("UpdateMaintenanceWindowTask")
def update_maintenance_window_task(ctx: Context, params: dict) -> dict:
    """The task type can't change; TaskInvocationParameters sent replace the stored ones as a whole ("The
    values you don't specify again are removed")."""
    window = _window(ctx.state, params["WindowId"])
    task = _task(window, params["WindowTaskId"])
    config = _task_config(params, current=task.config)
    _validate_task(window, task.task_type, config, params)
    task.config = config
    return _task_fields(window, task, ctx.account)


@operation("GetMaintenanceWindowTask")
def get_maintenance_window_task(ctx: Context, params: dict) -> dict:
    window = _window(ctx.state, params["WindowId"])
    task = _task(window, params["WindowTaskId"])
    return {**_task_fields(window, task, ctx.account), "TaskType": task.task_type}


@operation("DeregisterTaskFromMaintenanceWindow")
def deregister_task_from_maintenance_window(ctx: Context, params: dict) -> dict:
    window = _window(ctx.state, params["WindowId"])
    task = _task(window, params["WindowTaskId"])
    del window.tasks[task.task_id]
    return {"WindowId": window.window_id, "WindowTaskId": task.task_id}


TASK_FILTERS: dict[str, Matcher] = {
    # "The supported filter keys are WindowTaskId, TaskArn, Priority, and TaskType."
    "WindowTaskId": lambda task, values: task.task_id in values,
    "TaskArn": lambda task, values: task.config["TaskArn"] in values,
    "Priority": lambda task, values: str(task.config["Priority"]) in values,
    "TaskType": lambda task, values: task.task_type in values,
}


@operation("DescribeMaintenanceWindowTasks")
def describe_maintenance_window_tasks(ctx: Context, params: dict) -> dict:
    window = _window(ctx.state, params["WindowId"])
    tasks = _filtered(list(window.tasks.values()), params.get("Filters"), TASK_FILTERS)
    rows = []
    for task in tasks:
        row = {**_task_fields(window, task, ctx.account), "Type": task.task_type}
        row.pop("TaskInvocationParameters", None)  # not a member of MaintenanceWindowTask
        rows.append(row)
    return paging.page(params, "DescribeMaintenanceWindowTasks", "Tasks", rows,
                       default_size=DEFAULT_PAGE_SIZE)


# ---------------------------------------------------------------------------------------------------------------
# Which windows apply to a node, and when they run next


def _target_node_ids(state: RegionState, targets: list[dict]) -> set[str]:
    """Node ids a target list names or selects: InstanceIds values as given, tag targets resolved."""
    ids: set[str] = set()
    for target in targets:
        key = _canonical_key(target.get("Key", ""))
        if key == "InstanceIds":
            ids.update(target.get("Values") or [])
        elif not key.startswith("resource-groups:"):
            ids.update(node.node_id for node in resolve_targets(state, [target]))
    return ids


def _window_node_ids(state: RegionState, window: Window) -> set[str]:
    ids: set[str] = set()
    for target in window.targets.values():
        if target.resource_type == "INSTANCE":
            ids |= _target_node_ids(state, target.config["Targets"])
    for task in window.tasks.values():
        ids |= _target_node_ids(state, [t for t in task.config.get("Targets") or []
                                        if _canonical_key(t.get("Key", "")) == "InstanceIds"])
    return ids


def _window_resource_group_targets(window: Window) -> set[tuple[str, str]]:
    return {(target["Key"], value) for record in window.targets.values() if record.resource_type == "RESOURCE_GROUP"
            for target in record.config["Targets"] for value in target.get("Values") or []}


def _windows_for_target(state: RegionState, targets: list[dict], resource_type: str) -> list[Window]:
    """Windows whose targets or tasks include the nodes (INSTANCE) or resource groups (RESOURCE_GROUP) asked for."""
    if resource_type == "RESOURCE_GROUP":
        wanted = {(target.get("Key"), value) for target in targets for value in target.get("Values") or []}
        return [window for window in state.windows.values() if _window_resource_group_targets(window) & wanted]
    wanted_ids = _target_node_ids(state, targets)
    return [window for window in state.windows.values() if _window_node_ids(state, window) & wanted_ids]


@operation("DescribeMaintenanceWindowsForTarget")
def describe_maintenance_windows_for_target(ctx: Context, params: dict) -> dict:
    windows = _windows_for_target(ctx.state, params["Targets"], params["ResourceType"])
    rows = [{"WindowId": window.window_id, "Name": window.config["Name"]} for window in windows]
    return paging.page(params, "DescribeMaintenanceWindowsForTarget", "WindowIdentities", rows,
                       default_size=DEFAULT_PAGE_SIZE)


SCHEDULE_FILTERS: dict[str, Matcher] = {
    # describe-maintenance-window-schedule examples: ScheduledBefore / ScheduledAfter with ISO-8601 times.
    "ScheduledBefore": _time_filter("ScheduledBefore", True, lambda run: run[0]),
    "ScheduledAfter": _time_filter("ScheduledAfter", False, lambda run: run[0]),
}


@operation("DescribeMaintenanceWindowSchedule")
def describe_maintenance_window_schedule(ctx: Context, params: dict) -> dict:
    """Upcoming runs of one window (WindowId), of the windows of a target (Targets + ResourceType), or of every
    window when neither is given (a lab choice). At most SCHEDULE_RUNS_PER_WINDOW runs per window."""
    state = ctx.state
    if params.get("WindowId"):
        windows = [_window(state, params["WindowId"])]
    elif params.get("Targets"):
        windows = _windows_for_target(state, params["Targets"], params.get("ResourceType") or "INSTANCE")
    else:
        windows = list(state.windows.values())
    runs = []
    for window in windows:
        if not window.enabled:
            continue
        timing = _timing(window)
        far_future = datetime.datetime.max.replace(tzinfo=datetime.timezone.utc)
        for run in timing.runs_between(ctx.now, far_future, SCHEDULE_RUNS_PER_WINDOW):
            runs.append((run, window, timing.timezone))
    runs = _filtered(sorted(runs, key=lambda item: item[0]), params.get("Filters"), SCHEDULE_FILTERS)
    rows = [{"WindowId": window.window_id, "Name": window.config["Name"],
             "ExecutionTime": schedule.format_time(run, zone)} for run, window, zone in runs]
    return paging.page(params, "DescribeMaintenanceWindowSchedule", "ScheduledWindowExecutions", rows,
                       default_size=DEFAULT_PAGE_SIZE)


# ---------------------------------------------------------------------------------------------------------------
# Execution records as the API shows them


def _execution_identity(execution: WindowExecution) -> dict:
    return _compact({"WindowId": execution.window_id, "WindowExecutionId": execution.window_execution_id,
                     "Status": execution.status, "StatusDetails": execution.status_details,
                     "StartTime": execution.start, "EndTime": execution.end})


def _task_execution_identity(execution: WindowExecution, task_execution: TaskExecution) -> dict:
    task = task_execution.task
    return _compact({"WindowExecutionId": execution.window_execution_id,
                     "TaskExecutionId": task_execution.task_execution_id, "Status": task_execution.status,
                     "StatusDetails": task_execution.status_details, "StartTime": task_execution.start,
                     "EndTime": task_execution.end, "TaskArn": task.config["TaskArn"], "TaskType": task.task_type,
                     "AlarmConfiguration": copy.deepcopy(task.config.get("AlarmConfiguration"))})


def _invocation_identity(execution: WindowExecution, task_execution: TaskExecution, invocation: Invocation) -> dict:
    return _compact({"WindowExecutionId": execution.window_execution_id,
                     "TaskExecutionId": task_execution.task_execution_id, "InvocationId": invocation.invocation_id,
                     "ExecutionId": invocation.execution_id, "TaskType": invocation.task_type,
                     "Parameters": invocation.parameters, "Status": invocation.status,
                     "StatusDetails": invocation.status_details, "StartTime": invocation.start,
                     "EndTime": invocation.end, "OwnerInformation": invocation.owner_information,
                     "WindowTargetId": invocation.window_target_id})


EXECUTION_FILTERS: dict[str, Matcher] = {
    # "Supported keys include ExecutedBefore and ExecutedAfter" (ISO-8601 values), compared with StartTime.
    "ExecutedBefore": _time_filter("ExecutedBefore", True, lambda execution: execution.start),
    "ExecutedAfter": _time_filter("ExecutedAfter", False, lambda execution: execution.start),
}
# "The supported filter key is STATUS" (execution tasks and task invocations).
STATUS_FILTERS: dict[str, Matcher] = {"STATUS": lambda record, values: record.status in values}


@operation("DescribeMaintenanceWindowExecutions")
def describe_maintenance_window_executions(ctx: Context, params: dict) -> dict:
    """Most recent first. An unknown window has no executions (the model lists no DoesNotExistException)."""
    executions = [e for e in ctx.state.window_executions.values() if e.window_id == params["WindowId"]]
    executions = _filtered(executions, params.get("Filters"), EXECUTION_FILTERS)
    executions.sort(key=lambda e: e.start, reverse=True)
    rows = [_execution_identity(e) for e in executions]
    return paging.page(params, "DescribeMaintenanceWindowExecutions", "WindowExecutions", rows,
                       default_size=DEFAULT_PAGE_SIZE)


@operation("GetMaintenanceWindowExecution")
def get_maintenance_window_execution(ctx: Context, params: dict) -> dict:
    execution = _execution(ctx.state, params["WindowExecutionId"])
    identity = _execution_identity(execution)
    identity.pop("WindowId")
    return {**identity, "TaskIds": list(execution.tasks)}


@operation("CancelMaintenanceWindowExecution")
def cancel_maintenance_window_execution(ctx: Context, params: dict) -> dict:
    """"Cancels any tasks in the window that haven't already starting running. Tasks already in progress will
    continue to completion." Cancelling a finished execution changes nothing."""
    execution = _execution(ctx.state, params["WindowExecutionId"])
    if execution.status not in FINAL:
        execution.cancel_requested = True
        execution.status = "CANCELLING"
    return {"WindowExecutionId": execution.window_execution_id}


@operation("DescribeMaintenanceWindowExecutionTasks")
def describe_maintenance_window_execution_tasks(ctx: Context, params: dict) -> dict:
    execution = _execution(ctx.state, params["WindowExecutionId"])
    task_executions = _filtered(list(execution.tasks.values()), params.get("Filters"), STATUS_FILTERS)
    rows = [_task_execution_identity(execution, task_execution) for task_execution in task_executions]
    return paging.page(params, "DescribeMaintenanceWindowExecutionTasks", "WindowExecutionTaskIdentities", rows,
                       default_size=DEFAULT_PAGE_SIZE)


def _invocation_parameters_of(task: WindowTask) -> dict:
    """The TaskInvocationParameters of the task's type. A Run Command task without any TaskInvocationParameters
    uses the deprecated TaskParameters and LoggingInfo instead ("Systems Manager uses specified values for
    TaskParameters and LoggingInfo only if no values are specified for TaskInvocationParameters")."""
    by_type = task.config.get("TaskInvocationParameters") or {}
    if task.task_type == "RUN_COMMAND" and not by_type:
        return _deprecated_run_command(task.config)
    return copy.deepcopy(by_type.get(INVOCATION_PARAMETER_KEYS[task.task_type]) or {})


def _deprecated_run_command(config: dict) -> dict:
    run_command: dict[str, Any] = {}
    if config.get("TaskParameters"):
        run_command["Parameters"] = {name: list(value.get("Values") or [])
                                     for name, value in config["TaskParameters"].items()}
    logging_info = config.get("LoggingInfo")
    if logging_info:
        run_command.update(_compact({"OutputS3BucketName": logging_info["S3BucketName"],
                                     "OutputS3KeyPrefix": logging_info.get("S3KeyPrefix"),
                                     "OutputS3Region": logging_info["S3Region"]}))
    return run_command


@operation("GetMaintenanceWindowExecutionTask")
def get_maintenance_window_execution_task(ctx: Context, params: dict) -> dict:
    execution = _execution(ctx.state, params["WindowExecutionId"])
    task_execution = _task_execution(execution, params["TaskId"])
    task = task_execution.task
    identity = _task_execution_identity(execution, task_execution)
    identity["Type"] = identity.pop("TaskType")
    parameters = _invocation_parameters_of(task).get("Parameters") or {}
    return _compact({
        **identity,
        "ServiceRole": _service_role(task.config, execution.account),
        "TaskParameters": [{name: {"Values": values} for name, values in parameters.items()}] if parameters else [],
        "Priority": task.config["Priority"],
        "MaxConcurrency": task.config.get("MaxConcurrency", "1"),
        "MaxErrors": task.config.get("MaxErrors", "1"),
    })


@operation("DescribeMaintenanceWindowExecutionTaskInvocations")
def describe_maintenance_window_execution_task_invocations(ctx: Context, params: dict) -> dict:
    execution = _execution(ctx.state, params["WindowExecutionId"])
    task_execution = _task_execution(execution, params["TaskId"])
    invocations = _filtered(list(task_execution.invocations.values()), params.get("Filters"), STATUS_FILTERS)
    rows = [_invocation_identity(execution, task_execution, invocation) for invocation in invocations]
    return paging.page(params, "DescribeMaintenanceWindowExecutionTaskInvocations",
                       "WindowExecutionTaskInvocationIdentities", rows, default_size=DEFAULT_PAGE_SIZE)


@operation("GetMaintenanceWindowExecutionTaskInvocation")
def get_maintenance_window_execution_task_invocation(ctx: Context, params: dict) -> dict:
    execution = _execution(ctx.state, params["WindowExecutionId"])
    task_execution = _task_execution(execution, params["TaskId"])
    invocation = task_execution.invocations.get(params["InvocationId"])
    if invocation is None:
        raise DoesNotExistException(
            f"Maintenance window execution task invocation {params['InvocationId']} does not exist")
    return _invocation_identity(execution, task_execution, invocation)


# ---------------------------------------------------------------------------------------------------------------
# Running a window (the lab's stand-in for the Maintenance Windows scheduler)


class ExecutionQuotaReached(ControlError):
    """5 window executions already run in this account and Region ("Concurrent executions" quota)."""


@dataclass
class _Unit:
    """One invocation to make: a window target, an InstanceIds entry, one node, or nothing (targetless)."""

    targets: list[dict] | None = None
    window_target_id: str | None = None
    owner_information: str | None = None
    target_type: str | None = None
    node_id: str | None = None
    error: str | None = None


def _running(state: RegionState) -> list[WindowExecution]:
    return [e for e in state.window_executions.values() if e.status not in FINAL]


def start_execution(account: str, region: str, window_id: str) -> WindowExecution:
    """Run a window now, as its schedule would. A window that is still running gets a SKIPPED_OVERLAPPING
    record instead (AWS's status for an execution that overlaps the previous one)."""
    with LAB.lock:
        state = LAB.region(account, region)
        window = state.windows.get(window_id)
        if window is None:
            raise ControlError(f"maintenance window {window_id} does not exist in {account}/{region}")
        if not window.enabled:
            raise ControlError(f"maintenance window {window_id} is disabled: a disabled window does not run")
        now = LAB.clock.now()
        running = _running(state)
        if any(e.window_id == window_id for e in running):
            return _record_skipped(state, window, now)
        if len(running) >= MAX_CONCURRENT_EXECUTIONS:
            raise ExecutionQuotaReached(
                f"{MAX_CONCURRENT_EXECUTIONS} maintenance window executions are already running in "
                f"{account}/{region} (Concurrent executions quota)")
        execution = _new_execution(state, window, now)
    threading.Thread(target=_drive, args=(execution,), name=f"mw-{execution.window_execution_id}",
                     daemon=True).start()
    return execution


def _record_skipped(state: RegionState, window: Window, now: datetime.datetime) -> WindowExecution:
    execution = WindowExecution(_new_uuid(), window.window_id, state.account, state.region, start=now,
                                cutoff_at=now, window_targets={}, status="SKIPPED_OVERLAPPING", end=now,
                                status_details="The previous execution of this maintenance window is still running.")
    execution.done.set()
    state.window_executions[execution.window_execution_id] = execution
    return execution


def _new_execution(state: RegionState, window: Window, now: datetime.datetime) -> WindowExecution:
    """Tasks in Priority order, lower first ("Tasks in a maintenance window are scheduled in priority order");
    equal priorities run in parallel on AWS and one after the other here, which records the same results."""
    hours = window.config["Duration"] - window.config["Cutoff"]
    execution = WindowExecution(_new_uuid(), window.window_id, state.account, state.region, start=now,
                                cutoff_at=now + datetime.timedelta(hours=hours),
                                window_targets=copy.deepcopy(window.targets))
    for task in sorted(window.tasks.values(), key=lambda t: t.config["Priority"]):
        task_execution = TaskExecution(_new_uuid(), copy.deepcopy(task))
        execution.tasks[task_execution.task_execution_id] = task_execution
    state.window_executions[execution.window_execution_id] = execution
    return execution


def _drive(execution: WindowExecution) -> None:
    try:
        for task_execution in list(execution.tasks.values()):
            with LAB.lock:
                if not _may_start_task(execution, task_execution):
                    continue
                task_execution.status, task_execution.start = "IN_PROGRESS", LAB.clock.now()
            _run_task(execution, task_execution)
    except Exception:  # a lab bug: say so in the record and the log instead of leaving it IN_PROGRESS
        traceback.print_exc()
        with LAB.lock:
            for task_execution in execution.tasks.values():
                if task_execution.status not in FINAL:
                    _finish(task_execution, "FAILED", "The lab failed while running this task (see its log).")
    finally:
        with LAB.lock:
            _finish_execution(execution)
        execution.done.set()


def _may_start_task(execution: WindowExecution, task_execution: TaskExecution) -> bool:
    """Cancelling stops tasks that have not started; no task starts after the cutoff ("No maintenance window
    tasks are permitted to start after the resulting endtime minus the number of hours you specify for Cutoff")."""
    if execution.cancel_requested:
        _finish(task_execution, "CANCELLED", "The maintenance window execution was cancelled.")
        return False
    if LAB.clock.now() >= execution.cutoff_at:
        _finish(task_execution, "TIMED_OUT", NOT_STARTED_BEFORE_CUTOFF)
        return False
    return True


def _finish(record, status: str, details: str | None = None) -> None:
    record.status, record.status_details = status, _truncate(details)
    record.end = LAB.clock.now()


def _past_cutoff(execution: WindowExecution, task: WindowTask) -> bool:
    """CutoffBehavior CANCEL_TASK: no new invocation after the cutoff; CONTINUE_TASK (the default) runs on."""
    return task.config.get("CutoffBehavior") == "CANCEL_TASK" and LAB.clock.now() >= execution.cutoff_at


def _run_task(execution: WindowExecution, task_execution: TaskExecution) -> None:
    """Invocations one after the other ("If a single maintenance window task is registered with multiple
    targets, its task invocations occur sequentially and not in parallel"). A running task is not cancelled."""
    task = task_execution.task
    with LAB.lock:
        units = _units(LAB.region(execution.account, execution.region), execution, task)
    for unit in units:
        with LAB.lock:
            if _past_cutoff(execution, task):
                break
            invocation = _start_invocation(execution, task_execution, unit)
        if invocation.execution_id:
            _await_command(execution, task_execution, invocation)
    with LAB.lock:
        _finish(task_execution, *_task_outcome(task_execution, planned=len(units)))


def _task_outcome(task_execution: TaskExecution, planned: int) -> tuple[str, str | None]:
    invocations = list(task_execution.invocations.values())
    if not planned:
        return "SUCCESS", NO_INVOCATIONS
    for status in ("FAILED", "TIMED_OUT", "CANCELLED"):
        failed = [invocation for invocation in invocations if invocation.status == status]
        if failed:
            return status, failed[0].status_details
    if len(invocations) < planned:
        return "TIMED_OUT", "The maintenance window cutoff was reached before every target ran."
    return "SUCCESS", None


def _finish_execution(execution: WindowExecution) -> None:
    statuses = {task_execution.status for task_execution in execution.tasks.values()}
    if execution.cancel_requested:
        _finish(execution, "CANCELLED", "The maintenance window execution was cancelled.")
    elif "FAILED" in statuses:
        _finish(execution, "FAILED", ORCHESTRATION_FAILED)
    elif "TIMED_OUT" in statuses:
        _finish(execution, "TIMED_OUT", "One or more tasks in the orchestration timed out.")
    elif "CANCELLED" in statuses:
        _finish(execution, "CANCELLED", "One or more tasks in the orchestration were cancelled.")
    else:
        _finish(execution, "SUCCESS")


# Which invocations a task makes


def _units(state: RegionState, execution: WindowExecution, task: WindowTask) -> list[_Unit]:
    targets = task.config.get("Targets") or []
    if not targets:
        return [_Unit()]  # a targetless task runs once
    groups: list[_Unit] = []
    for target in targets:
        key = _canonical_key(target.get("Key", ""))
        if key == "InstanceIds":
            groups.append(_Unit(targets=[{"Key": "InstanceIds", "Values": list(target["Values"])}],
                                target_type="INSTANCE"))
            continue
        for target_id in target.get("Values") or []:
            window_target = execution.window_targets.get(target_id)
            if window_target is None:  # deregistered without Safe after the task was registered
                continue
            groups.append(_Unit(targets=_canonical_targets(window_target.config["Targets"]),
                                window_target_id=target_id,
                                owner_information=window_target.config.get("OwnerInformation"),
                                target_type=window_target.resource_type))
    per_node = task.task_type != "RUN_COMMAND" or _uses_per_node_values(task)
    units: list[_Unit] = []
    for group in groups:
        units.extend(_resolved(state, group, per_node))
    return units


def _canonical_targets(targets: list[dict]) -> list[dict]:
    return [{**target, "Key": _canonical_key(target.get("Key", ""))} for target in targets]


def _uses_per_node_values(task: WindowTask) -> bool:
    text = _json(_invocation_parameters_of(task))
    return any("{{" + name + "}}" in text for name in PER_NODE_PSEUDO_PARAMETERS)


def _resolved(state: RegionState, group: _Unit, per_node: bool) -> list[_Unit]:
    """A group selecting no node makes no invocation; `per_node` splits it into one unit per node."""
    try:
        nodes = resolve_targets(state, group.targets)
    except LabError as err:
        return [replace(group, error=err.message)]
    if not nodes:
        return []
    if not per_node:
        return [group]
    return [replace(group, targets=[{"Key": "InstanceIds", "Values": [node.node_id]}], node_id=node.node_id)
            for node in nodes]


# One invocation


def _start_invocation(execution: WindowExecution, task_execution: TaskExecution, unit: _Unit) -> Invocation:
    task = task_execution.task
    invocation = Invocation(_new_uuid(), task.task_type, owner_information=unit.owner_information,
                            window_target_id=unit.window_target_id, status="IN_PROGRESS", start=LAB.clock.now())
    task_execution.invocations[invocation.invocation_id] = invocation
    values = _pseudo_parameters(execution, task_execution, invocation, unit)
    if unit.error:
        _finish(invocation, "FAILED", unit.error)
    elif task.task_type == "RUN_COMMAND":
        _send_command(execution, invocation, _substituted(_send_command_request(task, unit), values))
    else:
        parameters = _substituted({INVOCATION_PARAMETER_KEYS[task.task_type]: _invocation_parameters_of(task)}, values)
        invocation.parameters = _json(parameters)
        _finish(invocation, "FAILED", f"Not simulated: the lab does not run {task.task_type} tasks, so "
                                      f"{task.config['TaskArn']} did not run.")
    return invocation


def _pseudo_parameters(execution: WindowExecution, task_execution: TaskExecution, invocation: Invocation,
                       unit: _Unit) -> dict[str, str]:
    """User guide, "About pseudo parameters". For INSTANCE targets TARGET_ID and RESOURCE_ID are the node id."""
    return _compact({
        "WINDOW_ID": execution.window_id,
        "WINDOW_TASK_ID": task_execution.task.task_id,
        "WINDOW_TARGET_ID": unit.window_target_id,
        "WINDOW_EXECUTION_ID": execution.window_execution_id,
        "TASK_EXECUTION_ID": task_execution.task_execution_id,
        "INVOCATION_ID": invocation.invocation_id,
        "TARGET_TYPE": unit.target_type,
        "TARGET_ID": unit.node_id,
        "RESOURCE_ID": unit.node_id,
    })


PSEUDO_PARAMETER = re.compile(r"\{\{([A-Z_]+)\}\}")


def _substituted(value, values: dict[str, str]):
    """Replace known {{PSEUDO_PARAMETERS}}; anything else (e.g. {{ssm:name}} references) is left alone."""
    if isinstance(value, str):
        return PSEUDO_PARAMETER.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, bytes):
        try:
            return _substituted(value.decode(), values).encode()
        except UnicodeDecodeError:
            return value
    if isinstance(value, list):
        return [_substituted(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _substituted(item, values) for key, item in value.items()}
    return value


def _send_command_request(task: WindowTask, unit: _Unit) -> dict:
    """SendCommand for one Run Command invocation."""
    config = task.config
    request = {"DocumentName": config["TaskArn"], "Targets": unit.targets,
               "MaxConcurrency": config["MaxConcurrency"], "MaxErrors": config["MaxErrors"]}
    request.update(_pick(_invocation_parameters_of(task), SEND_COMMAND_MEMBERS))
    return request


def _send_command(execution: WindowExecution, invocation: Invocation, request: dict) -> None:
    if "SendCommand" not in api.OPERATIONS:
        _finish(invocation, "FAILED", "SendCommand is not available in this lab")
        return
    try:
        result = api.call("SendCommand", Context(LAB, execution.account, execution.region), request)
    except LabError as err:
        _finish(invocation, "FAILED", err.message)
        return
    invocation.execution_id = result["Command"]["CommandId"]
    node_ids = sorted(getattr(_command(execution, invocation), "invocations", {}) or {})
    invocation.parameters = _reported_parameters(request, node_ids)


def _reported_parameters(request: dict, node_ids: list[str]) -> str:
    """The Parameters AWS reports for a Run Command invocation: the request in lowerCamel names, with the node
    ids it ran on (API reference example: {"documentName":..., "instanceIds":[...], "parameters":{...}})."""
    shown = {key[:1].lower() + key[1:]: value for key, value in request.items() if key != "Targets"}
    return _json({"documentName": shown.pop("documentName"), "instanceIds": node_ids, **shown})


def _command(execution: WindowExecution, invocation: Invocation):
    return LAB.region(execution.account, execution.region).commands.get(invocation.execution_id)


def _await_command(execution: WindowExecution, task_execution: TaskExecution, invocation: Invocation) -> None:
    """Follow the command until it ends; at the cutoff a CANCEL_TASK task cancels it ("the system sends a
    CancelCommand operation ... The status for tasks that are not completed is TIMED_OUT")."""
    cancel_sent = False
    while True:
        with LAB.lock:
            command = _command(execution, invocation)
            status = COMMAND_STATUS.get(getattr(command, "status", "Failed"), "FAILED")
            if status in FINAL:
                details = getattr(command, "status_details", None) or getattr(command, "status", None)
                final = "TIMED_OUT" if cancel_sent and status == "CANCELLED" else status
                _finish(invocation, final, details)
                return
            invocation.status = status
            if not cancel_sent and _past_cutoff(execution, task_execution.task):
                cancel_sent = True
                _cancel_command(execution, invocation)
        time.sleep(POLL_SECONDS)


def _cancel_command(execution: WindowExecution, invocation: Invocation) -> None:
    if "CancelCommand" not in api.OPERATIONS:
        return
    try:
        api.call("CancelCommand", Context(LAB, execution.account, execution.region),
                 {"CommandId": invocation.execution_id})
    except LabError:
        pass  # the command ended meanwhile; its own status stands


# ---------------------------------------------------------------------------------------------------------------
# Scheduler stand-in: run the windows that are due


def _due_windows(state: RegionState, now: datetime.datetime) -> list[Window]:
    """Enabled windows with a run in (last check, now]; every window's check mark moves to now, so occurrences
    that passed while a window was disabled never fire later."""
    due = []
    for window in state.windows.values():
        if window.enabled and _timing(window).runs_between(window.due_checked_at, now, 1):
            due.append(window)
        else:
            window.due_checked_at = now
    return due


def run_due(account: str | None = None, region: str | None = None) -> dict:
    """Start every due window (optionally of one account and/or region), once however many of its runs the lab
    clock jumped over. A window deferred by the concurrent executions quota stays due for the next call."""
    started, deferred = [], []
    with LAB.lock:
        now = LAB.clock.now()
        candidates = [(state, window) for state in LAB.regions()
                      if account in (None, state.account) and region in (None, state.region)
                      for window in _due_windows(state, now)]
    for state, window in candidates:
        try:
            execution = start_execution(state.account, state.region, window.window_id)
        except ExecutionQuotaReached as err:
            deferred.append({"account": state.account, "region": state.region, "window_id": window.window_id,
                             "reason": str(err)})
            continue
        with LAB.lock:
            window.due_checked_at = now
        started.append(execution)
    return {"started": started, "deferred": deferred}


def wait_for(executions: list[WindowExecution], timeout: float) -> bool:
    """Wait until every execution has finished; False when `timeout` seconds passed first."""
    deadline = time.monotonic() + timeout
    return all(execution.done.wait(max(0.0, deadline - time.monotonic())) for execution in executions)


def _execution_summary(execution: WindowExecution) -> dict:
    with LAB.lock:
        return _compact({"account": execution.account, "region": execution.region, "window_id": execution.window_id,
                         "window_execution_id": execution.window_execution_id, "status": execution.status,
                         "status_details": execution.status_details})


def _wait_options(body: dict) -> tuple[bool, float]:
    try:
        return bool(body.get("wait")), float(body.get("timeout", 60))
    except (TypeError, ValueError):
        raise ControlError("timeout must be a number of seconds") from None


@route("POST", "/windows/execute")
def _execute_route(body: dict, query: dict) -> dict:
    """Run a window now: {"account", "region", "window_id", "wait"?: bool, "timeout"?: seconds (default 60)}."""
    missing = [name for name in ("account", "region", "window_id") if not body.get(name)]
    if missing:
        raise ControlError(f"missing {', '.join(missing)}")
    wait, timeout = _wait_options(body)
    execution = start_execution(body["account"], body["region"], body["window_id"])
    finished = wait_for([execution], timeout) if wait else execution.done.is_set()
    return {**_execution_summary(execution), "finished": finished}


@route("POST", "/windows/run-due")
def _run_due_route(body: dict, query: dict) -> dict:
    """Run every window whose schedule had a run since it was last checked: {"account"?, "region"?, "wait"?,
    "timeout"?}. Advance the lab clock first (POST /clock/advance) to make weekly windows due."""
    wait, timeout = _wait_options(body)
    result = run_due(body.get("account"), body.get("region"))
    finished = wait_for(result["started"], timeout) if wait else all(e.done.is_set() for e in result["started"])
    return {"started": [_execution_summary(e) for e in result["started"]], "deferred": result["deferred"],
            "finished": finished}
