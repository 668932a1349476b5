"""SSM Inventory of the software a managed node has: ListInventoryEntries for AWS:Application and
AWS:WindowsUpdate.

The lab has no inventory association (State Manager running AWS-GatherSoftwareInventory on a schedule): it
answers from the node's installed packages as they are at the request, as if inventory were gathered
continuously (lab choice). CaptureTime is therefore the request's time.

AWS rules followed:
* ListInventoryEntries (API reference): one managed node (InstanceId) and one TypeName per call; InvalidInstanceId
  for a node that is not a managed node of this account and region, InvalidTypeNameException for a type name that
  is not valid; pages of at most 50 (MaxResults 1-50); the answer carries TypeName, InstanceId, SchemaVersion,
  CaptureTime (`YYYY-MM-DDTHH:MM:SSZ`) and Entries (string -> string maps).
* The attributes of each type and their schema versions are the user guide's ("Metadata collected by
  inventory"): AWS:Application 1.1 (Name, ApplicationType, Publisher, Version, InstalledTime, Architecture, URL,
  Summary, PackageId, Release, Epoch), AWS:WindowsUpdate 1.0 (HotFixId, Description, InstalledTime,
  InstalledBy).
* How SSM Agent fills AWS:Application on Linux (its application gatherer, documented in the guide's note on
  Epoch): rpm reports %{NAME}, %{VERSION}, %{RELEASE}, %{EPOCH} (empty when none), %{ARCH}, %{GROUP} as
  ApplicationType, %{SOURCERPM} as PackageId and %{INSTALLTIME}; dpkg-query reports ${Package}, the whole
  ${Version} (its epoch included, no Release or Epoch), ${Section}, ${Architecture} and
  `<package>_<version>_<arch>.deb` as PackageId, and no InstalledTime. Architectures are reported as the agent
  normalises them: amd64 becomes x86_64; `all` and `noarch` stay as they are.
* Windows nodes report installed updates as AWS:WindowsUpdate (one entry per HotFixId); Linux nodes report none.

Filters: the API reference documents InventoryFilter (Key, Values, Type) without saying how ListInventoryEntries
names the key. The lab accepts an attribute of the type, alone (`Name`) or prefixed with the type name
(`AWS:Application.Name`, the form GetInventory uses); another key is InvalidFilter. Equal / NotEqual / BeginWith
compare text; LessThan / GreaterThan compare numbers when both sides are numbers, else text (AWS does not say);
Exists "must be used with aggregators" (API reference), which ListInventoryEntries has not: InvalidFilter.

Lab choices where AWS is silent: the lab models no applications on Windows nodes (AWS:Application answers no
entry there); other AWS: types (AWS:Network, AWS:File, ...) are not simulated and are refused with
InvalidTypeNameException saying so, never answered with made-up data; entries are in Name, Architecture order;
InstalledTime is when the lab installed the version, else the version's release date (the image shipped it), as
in agent.py.
"""
from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from . import catalog, paging
from .api import Context, operation
from .catalog import Update
from .errors import InvalidFilter, InvalidInstanceId, InvalidTypeNameException
from .state import LAB, Node

APPLICATION = "AWS:Application"
WINDOWS_UPDATE = "AWS:WindowsUpdate"
SCHEMA_VERSIONS = {APPLICATION: "1.1", WINDOWS_UPDATE: "1.0"}
ATTRIBUTES = {
    APPLICATION: ("Name", "ApplicationType", "Publisher", "Version", "InstalledTime", "Architecture", "URL",
                  "Summary", "PackageId", "Release", "Epoch"),
    WINDOWS_UPDATE: ("HotFixId", "Description", "InstalledTime", "InstalledBy"),
}
# The inventory types AWS documents (InventoryItemSchema TypeName and the user guide): valid, but not simulated.
NOT_SIMULATED = ("AWS:AWSComponent", "AWS:InstanceInformation", "AWS:Network", "AWS:File", "AWS:PatchSummary",
                 "AWS:ComplianceItem", "AWS:ComplianceSummary", "AWS:InstanceDetailedInformation", "AWS:Service",
                 "AWS:WindowsRegistry", "AWS:WindowsRole", "AWS:Tag", "AWS:ResourceGroup", "AWS:BillingInfo")
# SSM Agent's model.FormatArchitecture: dpkg's amd64 is reported as x86_64 like rpm's.
AGENT_ARCHITECTURES = {"amd64": "x86_64", "386": "i386"}
PUBLISHERS = {"UBUNTU": "Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>",
              "AMAZON_LINUX_2": "Amazon Linux", "AMAZON_LINUX_2023": "Amazon Linux"}
CAPTURE_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class _Filter:
    attribute: str
    values: tuple[str, ...]
    kind: str

    def accepts(self, entry: dict[str, str]) -> bool:
        value = entry.get(self.attribute)
        if self.kind == "NotEqual":
            return value not in self.values
        return value is not None and any(_COMPARISONS[self.kind](value, wanted) for wanted in self.values)


def _ordered(value: str, wanted: str) -> tuple:
    """Both sides as numbers when both are numbers, else as text (lab choice, see the module docstring)."""
    try:
        return float(value), float(wanted)
    except ValueError:
        return value, wanted


def _less(value: str, wanted: str) -> bool:
    left, right = _ordered(value, wanted)
    return left < right


def _greater(value: str, wanted: str) -> bool:
    left, right = _ordered(value, wanted)
    return left > right


_COMPARISONS: dict[str, Callable[[str, str], bool]] = {
    "Equal": lambda value, wanted: value == wanted,
    "BeginWith": lambda value, wanted: value.startswith(wanted),
    "LessThan": _less,
    "GreaterThan": _greater,
}


def _filter(type_name: str, item: dict) -> _Filter:
    key, kind = item["Key"], item.get("Type", "Equal")
    attribute = key.removeprefix(f"{type_name}.")
    if attribute not in ATTRIBUTES[type_name]:
        raise InvalidFilter(f"The filter key {key} is not valid for {type_name}. Valid keys: "
                            f"{', '.join(ATTRIBUTES[type_name])} (optionally prefixed with '{type_name}.')")
    if kind == "Exists":
        raise InvalidFilter("The Exists filter type must be used with aggregators (GetInventory).")
    return _Filter(attribute, tuple(item["Values"]), kind)


def _checked_type(type_name: str) -> str:
    if type_name in SCHEMA_VERSIONS:
        return type_name
    if type_name in NOT_SIMULATED:
        raise InvalidTypeNameException(f"The inventory type {type_name} is not simulated by the lab; it serves "
                                       f"{' and '.join(SCHEMA_VERSIONS)}.")
    raise InvalidTypeNameException(f"The type name {type_name} is not valid.")


def _installed_time(node: Node, package: str, update: Update) -> datetime.datetime:
    """When the lab installed this version on the node, else the version's release date (shipped with the image)."""
    for record in reversed(LAB.install_log):
        if (record["node_id"], record["package"], record["to_version"]) == (node.node_id, package, update.version):
            return record["installed_time"]
    return update.released


def _agent_time(value: datetime.datetime) -> str:
    return value.astimezone(datetime.timezone.utc).strftime(CAPTURE_TIME_FORMAT)


def _rpm_entry(node: Node, name: str, update: Update, source: str) -> dict[str, str]:
    epoch, _, rest = update.version.rpartition(":")
    version, _, release = rest.rpartition("-")
    return {
        "Name": name, "Version": version, "Release": release, "Epoch": epoch,
        "Architecture": update.arch, "ApplicationType": "System Environment/Base",
        "Publisher": PUBLISHERS[node.platform.family],
        "PackageId": f"{source}-{rest}.src.rpm",
        "InstalledTime": _agent_time(_installed_time(node, name, update)),
    }


def _deb_entry(name: str, update: Update) -> dict[str, str]:
    return {
        "Name": name, "Version": update.version, "Architecture": AGENT_ARCHITECTURES.get(update.arch, update.arch),
        "ApplicationType": update.section.lower(), "Publisher": PUBLISHERS["UBUNTU"],
        "PackageId": f"{name}_{update.version}_{update.arch}.deb",
    }


def application_entries(node: Node) -> list[dict[str, str]]:
    """AWS:Application entries of a Linux node's installed packages (none on Windows: see the module docstring)."""
    if node.platform.is_windows:
        return []
    cat = catalog.catalog_for(node.platform)
    entries = []
    for name, version in node.installed.items():
        update = cat.packages[name].record(version) if name in cat.packages else None
        if update is None:
            continue  # a version the catalog does not know: the lab cannot describe it
        if node.platform.family == "UBUNTU":
            entry = _deb_entry(name, update)
        else:
            entry = _rpm_entry(node, name, update, cat.source_of.get(name, name))
        entries.append({key: value for key, value in entry.items() if value})  # the agent omits empty fields
    return entries


def windows_update_entries(node: Node) -> list[dict[str, str]]:
    """AWS:WindowsUpdate entries: one per installed KB (Windows nodes only)."""
    if not node.platform.is_windows:
        return []
    cat = catalog.catalog_for(node.platform)
    entries = []
    for kb_id in node.installed:
        update = cat.kb(kb_id)
        entry = {"HotFixId": kb_id, "Description": "Security Update" if update and update.is_security else "Update",
                 "InstalledBy": "NT AUTHORITY\\SYSTEM"}
        if update is not None:
            entry["InstalledTime"] = _agent_time(_installed_time(node, kb_id, update))
        entries.append(entry)
    return entries


ENTRIES: dict[str, Callable[[Node], list[dict[str, str]]]] = {
    APPLICATION: application_entries, WINDOWS_UPDATE: windows_update_entries,
}


def _sort_key(entry: dict[str, str]) -> tuple[str, str]:
    return entry.get("Name") or entry.get("HotFixId", ""), entry.get("Architecture", "")


@operation("ListInventoryEntries")
def list_inventory_entries(ctx: Context, params: dict) -> dict:
    node = ctx.state.nodes.get(params["InstanceId"])
    if node is None:
        raise InvalidInstanceId(f"Instance {params['InstanceId']} is not a managed node of account {ctx.account} "
                                f"in {ctx.region}")
    type_name = _checked_type(params["TypeName"])
    tests = [_filter(type_name, item) for item in params.get("Filters") or []]
    entries = sorted((entry for entry in ENTRIES[type_name](node) if all(test.accepts(entry) for test in tests)),
                     key=_sort_key)
    page = paging.page(params, "ListInventoryEntries", "Entries", entries, key=_sort_key,
                       default_size=paging.MODEL_MAX)
    return {"TypeName": type_name, "InstanceId": node.node_id, "SchemaVersion": SCHEMA_VERSIONS[type_name],
            "CaptureTime": _agent_time(ctx.now), **page}
