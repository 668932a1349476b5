"""Which managed nodes a `Targets` list or instance-id list selects, and a node's tags.

Shared by SendCommand (commands.py) and maintenance windows (windows.py), like the one targeting service AWS uses
for both. Documented rules followed (SSM API reference, `Target`):
* `InstanceIds` selects by id; `tag:<key>` selects nodes whose tag <key> has one of the values; `tag-key`
  selects nodes that have one of the keys. Values within one entry are ORed; entries are ANDed.
* `resource-groups:*` keys are accepted by AWS but need Resource Groups, which the lab does not simulate:
  it answers InvalidTarget rather than guessing.
Patch groups: Patch Manager reads the `PatchGroup` or `Patch Group` tag (user guide, "Patch groups"). The guide
does not say which wins when a node has both; the lab takes `PatchGroup`.
"""
from __future__ import annotations

from moto.ec2 import ec2_backends

from .errors import InvalidTarget
from .state import Node, RegionState

PATCH_GROUP_KEYS = ("PatchGroup", "Patch Group")


def node_tags(state: RegionState, node: Node) -> dict[str, str]:
    """EC2 instances: the instance's EC2 tags. Hybrid nodes: the tags SSM keeps for the managed instance."""
    if node.is_hybrid:
        return dict(state.tags.get(("ManagedInstance", node.node_id), {}))
    return dict(ec2_backends[node.account][node.region].tags.get(node.node_id, {}))


def patch_group_of(state: RegionState, node: Node) -> str | None:
    tags = node_tags(state, node)
    for key in PATCH_GROUP_KEYS:
        if tags.get(key):
            return tags[key]
    return None


def ec2_state(node: Node) -> str | None:
    """The EC2 instance state name ('running', 'stopped', ...) or None for hybrid or unknown instances."""
    if node.is_hybrid:
        return None
    backend = ec2_backends[node.account][node.region]
    for reservation in backend.reservations.values():
        for instance in reservation.instances:
            if instance.id == node.node_id:
                return instance.state
    return None


def _matches(state: RegionState, node: Node, target: dict) -> bool:
    key, values = target.get("Key", ""), target.get("Values") or []
    if key == "InstanceIds":
        return node.node_id in values
    if key.startswith("tag:"):
        return node_tags(state, node).get(key[4:]) in values
    if key == "tag-key":
        return any(k in values for k in node_tags(state, node))
    if key.startswith("resource-groups:"):
        raise InvalidTarget(f"Target key {key} (AWS Resource Groups) is not simulated by the lab")
    raise InvalidTarget(f"Target key {key} is not valid. Valid keys: InstanceIds, tag:<key>, tag-key")


def resolve_targets(state: RegionState, targets: list[dict] | None = None,
                    instance_ids: list[str] | None = None) -> list[Node]:
    """Nodes of this account-region selected by `targets` (ANDed) or by `instance_ids`, in id order."""
    if instance_ids:
        return [state.nodes[i] for i in sorted(set(instance_ids)) if i in state.nodes]
    if not targets:
        return []
    return [n for _, n in sorted(state.nodes.items()) if all(_matches(state, n, t) for t in targets)]
