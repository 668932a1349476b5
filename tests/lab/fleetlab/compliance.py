"""Patch compliance as Patch Manager reports it: DescribeInstancePatchStates, DescribeInstancePatchStatesForPatchGroup
and DescribeInstancePatches.

The simulated agent (agent.py) writes each node's last AWS-RunPatchBaseline result: `node.patch_state` (an
InstancePatchState) and `node.patch_rows` (PatchComplianceData). Every Scan or Install replaces both, as on AWS,
where "every scan overwrites the node's previous compliance". A node that never ran the document has no state:
AWS returns nothing for it, and neither does the lab.

AWS rules followed (SSM API reference):
* DescribeInstancePatchStates: up to 50 InstanceIds (the model's limit); ids without state are simply absent.
* DescribeInstancePatchStatesForPatchGroup: the nodes whose last report named that patch group; filters on the
  count members (InstalledCount ... NotApplicableCount) with Equal, NotEqual, LessThan or GreaterThan and one
  integer value (>= 0); anything else is InvalidFilter.
* DescribeInstancePatches: one node (InvalidInstanceId when it is not a managed node of this account and region);
  filters Classification, KBId, Severity and State only (InvalidFilter otherwise). State takes the documented
  names (Installed, InstalledOther, InstalledPendingReboot, ...); values of one filter are ORed, filters ANDed.
Lab choices: results are in instance id order (DescribeInstancePatches: in the agent's row order); pages default
to the model's maximum size (AWS documents no default). ListComplianceItems/Summaries are not simulated.
"""
from __future__ import annotations

import operator
from typing import Callable

from . import model, paging
from .api import Context, operation
from .errors import InvalidFilter, InvalidInstanceId
from .state import Node

# DescribeInstancePatchStatesForPatchGroup filter keys (InstancePatchStateFilter.Key) and comparisons.
COUNT_FILTER_KEYS = ("InstalledCount", "InstalledOtherCount", "InstalledPendingRebootCount",
                     "InstalledRejectedCount", "MissingCount", "FailedCount", "UnreportedNotApplicableCount",
                     "NotApplicableCount")
COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "Equal": operator.eq, "NotEqual": operator.ne, "LessThan": operator.lt, "GreaterThan": operator.gt,
}
# DescribeInstancePatches filter keys -> PatchComplianceData member.
PATCH_FILTER_MEMBERS = {"Classification": "Classification", "KBId": "KBId", "Severity": "Severity",
                        "State": "State"}


def _state_names() -> dict[str, str]:
    """The State filter's names (InstalledPendingReboot) -> PatchComplianceDataState (INSTALLED_PENDING_REBOOT)."""
    states = model.service_model().shape_for("PatchComplianceDataState").enum
    return {"".join(word.capitalize() for word in state.split("_")): state for state in states}


STATE_FILTER_VALUES = _state_names()


def _reported_state(node: Node) -> dict:
    """A copy, taken under the lab lock: the agent may replace the state while the response is serialized."""
    return dict(node.patch_state)


@operation("DescribeInstancePatchStates")
def describe_instance_patch_states(ctx: Context, params: dict) -> dict:
    wanted = set(params["InstanceIds"])
    states = [_reported_state(node) for node_id, node in sorted(ctx.state.nodes.items())
              if node_id in wanted and node.patch_state is not None]
    return paging.page(params, "DescribeInstancePatchStates", "InstancePatchStates", states,
                       lambda s: s["InstanceId"], default_size=paging.MODEL_MAX)


def _count_filter(item: dict) -> Callable[[dict], bool]:
    """One InstancePatchStateFilter as a test of an InstancePatchState."""
    key, values, comparison = item["Key"], item["Values"], item["Type"]
    if key not in COUNT_FILTER_KEYS:
        raise InvalidFilter(f"Filter key {key} is not supported. Supported keys: {', '.join(COUNT_FILTER_KEYS)}")
    if len(values) != 1 or not values[0].isdigit():
        raise InvalidFilter(f"Filter {key} takes one value, an integer greater than or equal to 0")
    threshold = int(values[0])
    return lambda state: COMPARISONS[comparison](state.get(key, 0), threshold)


@operation("DescribeInstancePatchStatesForPatchGroup")
def describe_instance_patch_states_for_patch_group(ctx: Context, params: dict) -> dict:
    group = params["PatchGroup"]
    tests = [_count_filter(item) for item in params.get("Filters") or []]
    states = [_reported_state(node) for _, node in sorted(ctx.state.nodes.items())
              if node.patch_state is not None and node.patch_state.get("PatchGroup") == group]
    selected = [state for state in states if all(test(state) for test in tests)]
    return paging.page(params, "DescribeInstancePatchStatesForPatchGroup", "InstancePatchStates", selected,
                       lambda s: s["InstanceId"], default_size=paging.MODEL_MAX)


def _patch_filter(item: dict) -> Callable[[dict], bool]:
    """One PatchOrchestratorFilter of DescribeInstancePatches as a test of a PatchComplianceData row.

    Lab choice: a filter without values, or a State value that is not a documented state name, is InvalidFilter.
    """
    key, values = item.get("Key"), item.get("Values") or []
    if key not in PATCH_FILTER_MEMBERS:
        raise InvalidFilter(f"Filter key {key} is not supported by DescribeInstancePatches. "
                            f"Supported keys: {', '.join(PATCH_FILTER_MEMBERS)}")
    if not values:
        raise InvalidFilter(f"Filter {key} needs at least one value")
    if key == "State":
        unknown = [v for v in values if v not in STATE_FILTER_VALUES]
        if unknown:
            raise InvalidFilter(f"State values {unknown} are not patch states. "
                                f"Valid values: {', '.join(STATE_FILTER_VALUES)}")
        values = [STATE_FILTER_VALUES[v] for v in values]
    member, accepted = PATCH_FILTER_MEMBERS[key], set(values)
    return lambda row: row.get(member) in accepted


@operation("DescribeInstancePatches")
def describe_instance_patches(ctx: Context, params: dict) -> dict:
    node = ctx.state.nodes.get(params["InstanceId"])
    if node is None:
        raise InvalidInstanceId(f"Instance {params['InstanceId']} is not a managed node of account "
                                f"{ctx.account} in {ctx.region}")
    tests = [_patch_filter(item) for item in params.get("Filters") or []]
    rows = [dict(row) for row in node.patch_rows if all(test(row) for test in tests)]
    return paging.page(params, "DescribeInstancePatches", "Patches", rows, default_size=paging.MODEL_MAX)
