# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""One machine per server: EC2 instances joined with their SSM record, Azure VMs joined with their hybrid node.

EC2 + SSM. An EC2 node's InstanceInformation has the instance id as InstanceId: joined by (account, region, id).
An instance id that SSM lists and EC2 did not (excluded by the EC2 filters or states) is dropped where EC2 was
listed, and stands alone where the ec2 source is off. Where the EC2 listing failed it is dropped too, and the
failure says so: SSM returns no tags for EC2 nodes, and a host missing its patch group could be picked by a play
that excludes that group (`all:!prod_sensitive`).

Hybrid node whose tags could not be read: dropped for the same reason (its failure is reported where it happened).

Azure VM + hybrid node, by the rules of `match_rules`, in their order, each on what the previous ones left:
  source_id      SSM sets SourceType "Microsoft.Compute/virtualMachines" for Azure VMs (API reference,
                 InstanceInformation). AWS does not say which Azure id SourceId holds; its pattern
                 ([a-zA-Z0-9:_-]*, at most 128) excludes the ARM resource id ("/") and fits the VM's vmId, which is
                 compared case-insensitively.
  tag            a tag of the managed node (keys `id_tag_keys`) whose value is the VM's vmId or resource id: what an
                 onboarding play records for nodes whose SourceId does not name the VM.
  computer_name  the node's ComputerName (the guest's FQDN) and the VM's computer name agree on their first label,
                 case-insensitively, and the name is unique on both sides.
For source_id and tag, several nodes naming one VM are registrations of one machine (a re-registration that kept
the old node): the node that pinged last is the machine's, the others stay hosts of their own and are reported.
A computer name shared by several nodes or several VMs merges nothing and is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable
from typing import Iterable
from typing import Optional

MATCH_RULES = ("source_id", "tag", "computer_name")
AZURE_SOURCE_TYPE = "Microsoft.Compute/virtualMachines"
_EXAMPLES = 5


@dataclass
class Machine:
    """A server as one or more sources see it; `matched_by` is the rule that joined an Azure VM and a node."""

    ec2: Optional[dict] = None
    ssm: Optional[dict] = None
    azure: Optional[dict] = None
    matched_by: Optional[str] = None


def _short_name(name: Optional[str]) -> Optional[str]:
    return name.split(".", 1)[0].lower() if name else None


def _ping_order(record: dict) -> str:
    return record.get("last_ping") or ""


def _examples(items: Iterable[str]) -> str:
    items = sorted(items)
    more = f" and {len(items) - _EXAMPLES} more" if len(items) > _EXAMPLES else ""
    return ", ".join(items[:_EXAMPLES]) + more


# ---------------------------------------------------------------------------------------------------------------
# Azure VM <-> hybrid node
# ---------------------------------------------------------------------------------------------------------------

def _vm_keys_by_source_id(node: dict, _tag_keys) -> set:
    if node.get("source_type") == AZURE_SOURCE_TYPE and node.get("source_id"):
        return {node["source_id"].lower()}
    return set()


def _vm_keys_by_tag(node: dict, tag_keys) -> set:
    tags = node.get("tags") or {}
    return {tags[key].lower() for key in tag_keys if tags.get(key)}


def _vm_keys_by_computer_name(node: dict, _tag_keys) -> set:
    short = _short_name(node.get("computer_name"))
    return {short} if short else set()


# rule -> (the keys a node names, the keys a VM answers to, several nodes per VM allowed)
_RULES: dict = {
    "source_id": (_vm_keys_by_source_id, lambda vm: {(vm.get("vm_id") or "").lower()} - {""}, True),
    "tag": (_vm_keys_by_tag, lambda vm: {(vm.get("vm_id") or "").lower(), vm["id"].lower()} - {""}, True),
    "computer_name": (_vm_keys_by_computer_name, lambda vm: {_short_name(vm.get("computer_name"))} - {None}, False),
}


class _Pairing:
    """Pairs hybrid nodes with VMs rule by rule; `pairs` maps node id -> (vm, rule); `notes` are for warnings."""

    def __init__(self, nodes: list[dict], vms: list[dict], tag_keys: Iterable[str]) -> None:
        self.nodes = {node["instance_id"]: node for node in nodes}
        self.vms = {vm["id"]: vm for vm in vms}
        self.tag_keys = tuple(tag_keys)
        self.pairs: dict[str, tuple[dict, str]] = {}
        self.notes: list[str] = []

    def apply(self, rule: str) -> None:
        node_keys, vm_keys, several_nodes = _RULES[rule]
        vm_by_key: dict[str, list[str]] = {}
        for vm_id, vm in self.vms.items():
            for key in vm_keys(vm):
                vm_by_key.setdefault(key, []).append(vm_id)
        claims: dict[str, list[str]] = {}  # vm resource id -> node ids naming it
        ambiguous_nodes = []
        for node_id, node in self.nodes.items():
            named = {vm_id for key in node_keys(node, self.tag_keys) for vm_id in vm_by_key.get(key, [])}
            if len(named) == 1:
                claims.setdefault(named.pop(), []).append(node_id)
            elif named:
                ambiguous_nodes.append(node_id)
        if ambiguous_nodes:
            self.notes.append(f"{len(ambiguous_nodes)} hybrid node(s) match several Azure VMs by {rule} and were "
                              f"not merged: {_examples(ambiguous_nodes)}")
        for vm_id, node_ids in sorted(claims.items()):
            self._settle(rule, vm_id, node_ids, several_nodes)

    def _settle(self, rule: str, vm_id: str, node_ids: list[str], several_nodes: bool) -> None:
        if len(node_ids) > 1 and not several_nodes:
            self.notes.append(f"Azure VM {vm_id} matches {len(node_ids)} hybrid nodes by {rule} and was not "
                              f"merged: {_examples(node_ids)}")
            return
        live = max(node_ids, key=lambda node_id: (_ping_order(self.nodes[node_id]), node_id))
        stale = sorted(set(node_ids) - {live})
        if stale:
            self.notes.append(f"Azure VM {vm_id} is registered as {len(node_ids)} hybrid nodes; {live} (last ping) "
                              f"is the VM's, the others stay separate hosts: {_examples(stale)}")
        self.pairs[live] = (self.vms.pop(vm_id), rule)
        for node_id in node_ids:
            self.nodes.pop(node_id)


def pair_hybrid_nodes(nodes: list[dict], vms: list[dict], rules: Iterable[str],
                      tag_keys: Iterable[str]) -> tuple[dict, list[str]]:
    """node id -> (Azure VM record, rule) for the hybrid `nodes` that are `vms`, and notes for warnings."""
    pairing = _Pairing(nodes, vms, tag_keys)
    for rule in rules:
        pairing.apply(rule)
    return pairing.pairs, pairing.notes


# ---------------------------------------------------------------------------------------------------------------
# Everything together
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Sources:
    """What the collectors read. `ec2_listed`: (account, region) pairs whose EC2 listing succeeded;
    `ec2_enabled`: whether the ec2 source was on at all."""

    ec2: list
    ssm: list
    azure: list
    ec2_listed: set
    ec2_enabled: bool


def _ec2_join(sources: Sources) -> tuple[list[Machine], list[dict]]:
    """EC2 machines with their SSM record, and the SSM records left (hybrid nodes; lone EC2 records where allowed)."""
    machines = {(r["account_id"], r["region"], r["instance_id"]): Machine(ec2=r) for r in sources.ec2}
    left: list[dict] = []
    for record in sources.ssm:
        key = (record["account_id"], record["region"], record["instance_id"])
        if key in machines:
            machines[key].ssm = record
        elif record.get("resource_type") == "ManagedInstance" or not sources.ec2_enabled:
            left.append(record)
        # else: an EC2 node EC2 did not list (filtered out, or its listing failed): see the module docstring
    return list(machines.values()), left


def merge(sources: Sources, match_rules: Iterable[str], id_tag_keys: Iterable[str],
          on_note: Callable[[str], None]) -> list[Machine]:
    """Every machine once; `on_note` receives what a user should know about the merge (ambiguities)."""
    machines, nodes = _ec2_join(sources)
    readable = [n for n in nodes if n.get("resource_type") != "ManagedInstance" or n.get("tags") is not None]
    hybrid = [n for n in readable if n.get("resource_type") == "ManagedInstance"]
    pairs, notes = pair_hybrid_nodes(hybrid, list(sources.azure), match_rules, id_tag_keys)
    for note in notes:
        on_note(note)
    paired_vms = {vm["id"] for vm, _rule in pairs.values()}
    for node in readable:
        vm, rule = pairs.get(node["instance_id"], (None, None))
        machines.append(Machine(ssm=node, azure=vm, matched_by=rule))
    machines += [Machine(azure=vm) for vm in sources.azure if vm["id"] not in paired_vms]
    return machines
