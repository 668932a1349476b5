"""Fleet specs (YAML) and seeding: a described fleet of EC2, hybrid and Azure machines -> a populated lab.

A spec file (see fleets/reference.yml) names accounts, their regions and groups of machines; `load()` checks it
and returns the normalised spec every other module reads:

    {"name": str, "seed": int,
     "accounts": [12-digit ids]      first = the management account (moto's default, 123456789012),
     "regions": [region names]       every region used, first = the default region,
     "fleet": {account: {region: {"ec2": [group], "hybrid": [group]}}},
     "account_names": {account: name},
     "offline_ratio": float, "failing_ratio": float,
     "azure": {"tenant_id": str, "subscriptions": [{"id", "name", "vms": [{"name", "resource_group", "location",
                                                                          "platform", "tags", "vm_id"}]}]}}

    group = {"platform", "count", "patch_group" (or None), "patch_group_key" ("PatchGroup" | "Patch Group"),
             "name_prefix", "tags" (extra tags)}

`seed(spec)` launches the EC2 groups in moto (fleetlab.provision, in-process), registers the hybrid groups with an
activation each (their tags travel on the activation, as AWS copies activation tags to nodes), then marks a
deterministic sample of nodes offline or failing. Azure VMs are fully expanded by `load()`: the Azure endpoint
(azure.py) serves that list as is. Everything random derives from the spec's `seed`.
"""
from __future__ import annotations

import datetime
import functools
import random
import time
import uuid
from collections import Counter
from pathlib import Path

import boto3
import yaml
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.serialize import AttributePicker
from moto.core.utils import MISSING, get_value
from moto.ec2 import ec2_backends
from moto.ec2.exceptions import InvalidInstanceIdError
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

from . import api, nodes, provision
from .platforms import PLATFORMS
from .state import LAB, Lab, Node
from .targets import PATCH_GROUP_KEYS

MANAGEMENT_ACCOUNT = DEFAULT_ACCOUNT_ID  # where the lab's default (non-assumed) credentials land
DEFAULT_REGION = "eu-west-1"
DEFAULT_SEED = 20261127
# Instances per run_instances call. moto's describe_instances MaxResults counts reservations, so small
# reservations keep EC2 paging meaningful for inventory clients.
LAUNCH_BATCH = 25
HYBRID_ROLE = "SSMServiceRole"  # the IAM role the seeded hybrid activations assign (not checked by SSM)
# What a failing install says, per OS family: the usual causes on each (dpkg/yum locks, repo, MSI errors).
FAILURE_MESSAGES = {
    "UBUNTU": "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 2113 (unattended-upgr)",
    "AMAZON_LINUX_2": "Existing lock /var/run/yum.pid: another copy is running as pid 3042.",
    "AMAZON_LINUX_2023": "Error: Failed to download metadata for repo 'amazonlinux': Cannot download repomd.xml",
    "WINDOWS": "Installation Failure: Windows failed to install the update with error 0x80070643",
}


class SpecError(ValueError):
    """A fleet spec that does not describe a valid fleet (the message names the offending entry)."""


# ---------------------------------------------------------------------------------------------------------------
# Loading and normalising
# ---------------------------------------------------------------------------------------------------------------

_GROUP_KEYS = {"platform", "count", "patch_group", "patch_group_key", "name_prefix", "tags"}
_VM_GROUP_KEYS = (_GROUP_KEYS - {"patch_group_key"}) | {"resource_group", "location"}  # Azure VMs: PatchGroup


def _mapping(value, where: str, allowed: set[str] | None = None) -> dict:
    if not isinstance(value, dict):
        raise SpecError(f"{where}: expected a mapping, got {type(value).__name__}")
    unknown = set(value) - allowed if allowed is not None else set()
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return value


def _string_map(value, where: str) -> dict[str, str]:
    tags = _mapping(value or {}, where)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise SpecError(f"{where}: tag keys and values must be strings")
    return dict(tags)


def _group(raw, where: str, allowed: set[str] = _GROUP_KEYS) -> dict:
    raw = _mapping(raw, where, allowed)
    if raw.get("platform") not in PLATFORMS:
        raise SpecError(f"{where}: platform {raw.get('platform')!r} is not one of {sorted(PLATFORMS)}")
    count = raw.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise SpecError(f"{where}: count must be a whole number >= 0")
    key = raw.get("patch_group_key", PATCH_GROUP_KEYS[0])
    if key not in PATCH_GROUP_KEYS:
        raise SpecError(f"{where}: patch_group_key must be one of {PATCH_GROUP_KEYS}")
    patch_group = raw.get("patch_group")
    if patch_group is not None and not (isinstance(patch_group, str) and patch_group):
        raise SpecError(f"{where}: patch_group must be a non-empty string (or absent: no patch group)")
    return {
        "platform": raw["platform"],
        "count": count,
        "patch_group": patch_group,
        "patch_group_key": key,
        "name_prefix": raw.get("name_prefix") or f"{patch_group or 'node'}-{raw['platform']}",
        "tags": _string_map(raw.get("tags"), f"{where}.tags"),
    }


def group_tags(group: dict) -> dict[str, str]:
    """The tags every machine of `group` carries: its extra tags plus the patch group under its tag key."""
    tags = dict(group["tags"])
    if group["patch_group"]:
        tags[group["patch_group_key"]] = group["patch_group"]
    return tags


def _account_id(raw, where: str) -> str:
    if not (isinstance(raw, str) and raw.isdigit() and len(raw) == 12):
        raise SpecError(f"{where}: account id must be a quoted 12-digit string, got {raw!r}")
    return raw


@functools.lru_cache(maxsize=1)
def _ssm_regions() -> frozenset[str]:
    return frozenset(boto3.session.Session().get_available_regions("ssm"))


def _regions(raw: dict, used: list[str]) -> list[str]:
    """The declared `regions` first (the first is the default), then any other region the accounts use."""
    declared = list(raw.get("regions") or [])
    ordered = list(dict.fromkeys(declared + used)) or [DEFAULT_REGION]
    unknown = [r for r in ordered if r not in _ssm_regions()]
    if unknown:
        raise SpecError(f"regions: {unknown} are not SSM regions")
    return ordered


def _account(raw, index: int) -> tuple[str, str, dict]:
    where = f"accounts[{index}]"
    raw = _mapping(raw, where, {"id", "name", "regions"})
    account = _account_id(raw.get("id"), f"{where}.id")
    regions = {}
    for region, layout in _mapping(raw.get("regions") or {}, f"{where}.regions").items():
        layout = _mapping(layout or {}, f"{where}.regions.{region}", {"ec2", "hybrid"})
        regions[region] = {
            kind: [_group(g, f"{where}.regions.{region}.{kind}[{i}]") for i, g in enumerate(layout.get(kind) or [])]
            for kind in ("ec2", "hybrid")
        }
        if sum(g["count"] for g in regions[region]["hybrid"]) > nodes.STANDARD_TIER_HYBRID_LIMIT:
            raise SpecError(f"{where}.regions.{region}.hybrid: at most {nodes.STANDARD_TIER_HYBRID_LIMIT} hybrid "
                            "nodes per account and region (the standard-instances tier the lab starts with)")
    return account, raw.get("name") or account, regions


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _azure(raw, seed: int) -> dict:
    """Azure subscriptions with their VM groups expanded into VMs (deterministic names and VM ids)."""
    # page_size / retry_after_seconds tune the endpoint (azure.py reads them as given).
    raw = _mapping(raw or {}, "azure", {"tenant_id", "subscriptions", "page_size", "retry_after_seconds"})
    rng = random.Random(f"{seed}/azure")
    subscriptions = []
    for i, sub in enumerate(raw.get("subscriptions") or []):
        where = f"azure.subscriptions[{i}]"
        sub = _mapping(sub, where, {"id", "name", "vms"})
        vms = []
        for j, raw_group in enumerate(sub.get("vms") or []):
            vm_where = f"{where}.vms[{j}]"
            group = _group(raw_group, vm_where, _VM_GROUP_KEYS)
            for name in _names(group["name_prefix"], group["count"]):
                vms.append({
                    "name": name,
                    "resource_group": raw_group.get("resource_group") or "rg-fleet",
                    "location": raw_group.get("location") or "westeurope",
                    "platform": group["platform"],
                    "tags": group_tags(group),
                    "vm_id": _uuid(rng),
                })
        subscriptions.append({"id": sub.get("id") or _uuid(rng), "name": sub.get("name") or f"subscription-{i}",
                              "vms": vms})
    tuning = {key: raw[key] for key in ("page_size", "retry_after_seconds") if key in raw}
    return {"tenant_id": raw.get("tenant_id") or _uuid(rng), "subscriptions": subscriptions, **tuning}


def _ratio(raw: dict, key: str) -> float:
    value = raw.get(key, 0)
    if not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise SpecError(f"{key}: must be a number between 0 and 1")
    return float(value)


def from_dict(raw: dict) -> dict:
    """Normalise a spec given as data (what `load` does after parsing the YAML)."""
    raw = _mapping(raw, "spec", {"name", "seed", "regions", "accounts", "offline_ratio", "failing_ratio", "azure"})
    seed = raw.get("seed", DEFAULT_SEED)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise SpecError("seed: must be a whole number")
    accounts = [_account(a, i) for i, a in enumerate(raw.get("accounts") or [{"id": MANAGEMENT_ACCOUNT}])]
    ids = [account for account, _, _ in accounts]
    if ids[0] != MANAGEMENT_ACCOUNT:
        raise SpecError(f"accounts: the first account must be the management account {MANAGEMENT_ACCOUNT} "
                        "(where the lab's default credentials land; other accounts are reached with AssumeRole)")
    if len(set(ids)) != len(ids):
        raise SpecError("accounts: an account id appears twice")
    used_regions = [region for _, _, regions in accounts for region in regions]
    return {
        "name": raw.get("name", "unnamed"),
        "seed": seed,
        "accounts": ids,
        "regions": _regions(raw, used_regions),
        "fleet": {account: regions for account, _, regions in accounts},
        "account_names": {account: name for account, name, _ in accounts},
        "offline_ratio": _ratio(raw, "offline_ratio"),
        "failing_ratio": _ratio(raw, "failing_ratio"),
        "azure": _azure(raw.get("azure"), seed),
    }


def load(path) -> dict:
    """Read and normalise a fleet spec file (raises SpecError on anything that does not describe a fleet)."""
    with open(Path(path), encoding="utf-8") as handle:
        raw = yaml.safe_load(handle) or {}
    return from_dict(raw)


def empty_spec() -> dict:
    """No machines: the management account in the default region (what `--fleet none` and the tests start)."""
    return from_dict({"name": "empty", "regions": [DEFAULT_REGION]})


# ---------------------------------------------------------------------------------------------------------------
# Seeding
# ---------------------------------------------------------------------------------------------------------------

def _names(prefix: str, count: int) -> list[str]:
    width = max(3, len(str(count)))
    return [f"{prefix}-{index:0{width}d}" for index in range(1, count + 1)]


def _launch_group(account: str, region: str, group: dict, lab: Lab) -> list[Node]:
    """EC2 instances with the group's tags and a Name tag each, in reservations of LAUNCH_BATCH."""
    launched: list[Node] = []
    names = _names(group["name_prefix"], group["count"])
    backend = ec2_backends[account][region]
    for start in range(0, len(names), LAUNCH_BATCH):
        batch = names[start:start + LAUNCH_BATCH]
        created = provision.launch_nodes(account, region, group["platform"], len(batch), group_tags(group), lab=lab)
        for node, name in zip(created, batch, strict=True):
            backend.create_tags([node.node_id], {"Name": name})
        launched += created
    return launched


def _register_group(account: str, region: str, group: dict, seed: int, lab: Lab) -> list[Node]:
    """Hybrid (mi-) nodes registered through one activation that carries the group's tags (copied to the nodes)."""
    if not group["count"]:
        return []
    ctx = api.Context(lab, account, region)
    tags = [{"Key": k, "Value": v} for k, v in group_tags(group).items()]
    activation = api.call("CreateActivation", ctx, {
        "IamRole": HYBRID_ROLE, "RegistrationLimit": group["count"], "DefaultInstanceName": group["name_prefix"],
        "Description": f"fleet seed: {group['name_prefix']}", "Tags": tags,
    })
    rng = random.Random(f"{seed}/{account}/{region}/{group['name_prefix']}")
    return [
        nodes.register_with_activation(
            activation["ActivationId"], activation["ActivationCode"], region,
            computer_name=f"{name}.corp.example", platform_key=group["platform"],
            ip_address=f"10.{rng.randrange(64, 128)}.{rng.randrange(256)}.{rng.randrange(1, 255)}", lab=lab,
        )
        for name in _names(group["name_prefix"], group["count"])
    ]


def _take_offline(candidates: list[Node], ratio: float, rng: random.Random, lab: Lab) -> list[Node]:
    """Agents that lost their connection some hours ago (PingStatus ConnectionLost)."""
    chosen = rng.sample(candidates, round(ratio * len(candidates)))
    now = lab.clock.now()
    for node in chosen:
        node.online = False
        node.last_ping = now - datetime.timedelta(hours=rng.uniform(1, 72))
    return chosen


def _inject_failures(candidates: list[Node], ratio: float, rng: random.Random) -> list[Node]:
    """Online nodes whose next Install fails with their OS's usual failure (read by the simulated agent)."""
    chosen = rng.sample(candidates, round(ratio * len(candidates)))
    for node in chosen:
        node.fail_install = FAILURE_MESSAGES[node.platform.family]
    return chosen


def _where(node: Node) -> dict:
    return {"account": node.account, "region": node.region, "node_id": node.node_id}


def _summary(spec: dict, seeded: list[tuple[Node, dict]], offline: list[Node], failing: list[Node],
             seconds: float) -> dict:
    per_region: dict = {}
    for node, _ in seeded:
        counts = per_region.setdefault(node.account, {}).setdefault(node.region, {"ec2": 0, "hybrid": 0})
        counts["hybrid" if node.is_hybrid else "ec2"] += 1
    vms = [vm for sub in spec["azure"]["subscriptions"] for vm in sub["vms"]]
    hybrid = sum(1 for node, _ in seeded if node.is_hybrid)
    return {
        "name": spec["name"],
        "seed": spec["seed"],
        "seconds": round(seconds, 2),
        "totals": {
            "accounts": len(spec["accounts"]), "regions": len(spec["regions"]),
            "ec2": len(seeded) - hybrid, "hybrid": hybrid, "nodes": len(seeded),
            "offline": len(offline), "failing": len(failing),
            "azure_subscriptions": len(spec["azure"]["subscriptions"]), "azure_vms": len(vms),
        },
        "accounts": per_region,
        "patch_groups": dict(Counter(group["patch_group"] or "(none)" for _, group in seeded)),
        "platforms": dict(Counter(node.platform.key for node, _ in seeded)),
        "offline": [_where(node) for node in offline],
        "failing": [_where(node) for node in failing],
    }


def seed(spec: dict, *, lab: Lab = LAB) -> dict:
    """Populate the lab with `spec` (normalised) and return a summary whose "totals" the server prints.

    At scale call `apply_moto_fixes()` first (the server does): stock moto's EC2 tag lookup is quadratic.
    """
    started = time.perf_counter()
    seeded: list[tuple[Node, dict]] = []
    for account, regions in spec["fleet"].items():
        for region, layout in regions.items():
            for group in layout["ec2"]:
                seeded += [(node, group) for node in _launch_group(account, region, group, lab)]
            for group in layout["hybrid"]:
                seeded += [(node, group) for node in _register_group(account, region, group, spec["seed"], lab)]
    rng = random.Random(spec["seed"])
    with lab.lock:
        offline = _take_offline([node for node, _ in seeded], spec["offline_ratio"], rng, lab)
        failing = _inject_failures([node for node, _ in seeded if node.online], spec["failing_ratio"], rng)
    return _summary(spec, seeded, offline, failing, time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------------------------
# moto at scale
# ---------------------------------------------------------------------------------------------------------------

def _own_tags(self: TaggedEC2Resource) -> list[dict[str, str]]:
    """TaggedEC2Resource.get_tags reading this resource's own tag dict. Stock moto filters every tag of the
    region by resource id for each resource, which makes describe_instances quadratic (5,000 tagged instances:
    tens of seconds). Same records, same order."""
    if not self.id:  # type: ignore[attr-defined]
        return []
    resource_id = self.id  # type: ignore[attr-defined]
    resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
    own = self.ec2_backend.tags.get(resource_id, {})  # type: ignore[attr-defined]
    return [{"resource_id": resource_id, "key": k, "value": v, "resource_type": resource_type}
            for k, v in own.items()]


def _get_instance(self: InstanceBackend, instance_id: str):
    """InstanceBackend.get_instance without copying every reservation first, newest reservation first. Stock
    moto copies all reservations for each lookup, and every launched instance looks itself up (to attach its root
    volume): launching N instances costs O(N^2) copies. Ids are unique, so the search order changes nothing."""
    for reservation in reversed(self.reservations.values()):
        for instance in reservation.instances:
            if instance.id == instance_id:
                return instance
    raise InvalidInstanceIdError(instance_id)


_STOCK_PICK = AttributePicker.__call__
_ALIASES: dict[tuple, tuple[str, ...]] = {}


def _pick(self: AttributePicker, context) -> object:
    """AttributePicker.__call__ with the attribute names to try worked out once per kind of member. Stock moto asks
    its alias providers again for every member of every object it serializes (a 5,000-instance DescribeInstances
    asks millions of times). What they answer depends only on the picker, the object's class (and its Meta), the
    member, and the member's and its parent's shapes in the service model: that is the memo's key. Same values
    tried in the same order, so the same bytes (tests/lab/tests/test_fleet.py)."""
    obj, shape = context.obj, context.shape
    parent = getattr(shape, "parent", None)
    memo = (type(self), tuple(self.alias_providers), type(obj), getattr(obj, "Meta", None), context.key,
            context.service_model.service_name, getattr(shape, "name", None), getattr(parent, "name", None))
    keys = _ALIASES.get(memo)
    if keys is None:
        keys = _ALIASES[memo] = tuple(self.get_possible_keys(context))
    value = None
    for key in keys:
        found = get_value(obj, key, MISSING)
        if found is not MISSING:
            value = found
            break
    key_path = f"{context.key_path}.{context.key}"
    for transform_path, transform in self.response_transformers.items():
        if key_path.endswith(transform_path):
            return transform(value)
    return value


def apply_moto_fixes() -> list[str]:
    """Patch stock moto where it does not scale to a fleet; idempotent. Returns the fixes in effect."""
    TaggedEC2Resource.get_tags = _own_tags
    InstanceBackend.get_instance = _get_instance
    AttributePicker.__call__ = _pick
    return ["ec2: instance tags read from the resource's own tag dict (no region-wide scan)",
            "ec2: get_instance searches reservations in place, newest first (no copy of every reservation)",
            "serializer: the attribute names to try for a member are worked out once per kind of member"]
