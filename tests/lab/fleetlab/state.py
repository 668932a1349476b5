"""The lab's state: one clock, one lock, and the SSM state of every account and region.

AWS keeps Systems Manager resources per account and region; so does the lab (`Lab.region(account, region)`).
Requests are served by several threads (werkzeug) and commands run in a background worker: every handler runs
under `Lab.lock`, which keeps each API call atomic like a single AWS request.
"""
from __future__ import annotations

import datetime
import random
import threading
from dataclasses import dataclass, field
from typing import Any

from .platforms import Platform

UTC = datetime.timezone.utc


class Clock:
    """Lab time = wall-clock time + an offset the control API advances (days), so weeks pass in seconds."""

    def __init__(self) -> None:
        self.offset = datetime.timedelta()

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(UTC) + self.offset

    def advance(self, days: float = 0, hours: float = 0) -> datetime.datetime:
        self.offset += datetime.timedelta(days=days, hours=hours)
        return self.now()


@dataclass
class Node:
    """A managed node: an EC2 instance with the agent, or a hybrid (mi-) node registered with an activation.

    `installed` maps package name (Linux) or KB id (Windows) to the installed version; the simulated agent
    (agent.py) changes it on Install. EC2 nodes take their tags from moto's EC2 backend, like Patch Manager
    reads the instance's tags; hybrid nodes keep theirs in SSM (AddTagsToResource, ResourceType=ManagedInstance).
    """

    node_id: str
    account: str
    region: str
    platform: Platform
    computer_name: str
    ip_address: str
    installed: dict[str, str]
    resource_type: str = "EC2Instance"  # or "ManagedInstance"
    registration_date: datetime.datetime | None = None
    activation_id: str | None = None
    iam_role: str | None = None
    name: str | None = None
    agent_version: str = "3.3.1957.0"
    online: bool = True
    last_ping: datetime.datetime | None = None
    last_boot: datetime.datetime | None = None
    # Failure injection (control API): the next Install fails on this node with this message.
    fail_install: str | None = None
    # Packages installed with NoReboot whose update needs a reboot.
    pending_reboot: set[str] = field(default_factory=set)
    # The last AWS-RunPatchBaseline result: DescribeInstancePatchStates record and DescribeInstancePatches rows.
    patch_state: dict[str, Any] | None = None
    patch_rows: list[dict[str, Any]] = field(default_factory=list)
    # Where the node came from outside AWS (Azure VM id for nodes registered from Azure).
    source_vm_id: str | None = None
    # Per-node simulated hardware fingerprint (the agent's similarity check on re-registration).
    fingerprint: str = ""

    @property
    def is_hybrid(self) -> bool:
        return self.node_id.startswith("mi-")


@dataclass
class RegionState:
    """SSM resources of one account in one region."""

    account: str
    region: str
    baselines: dict[str, Any] = field(default_factory=dict)
    patch_groups: dict[tuple[str, str], str] = field(default_factory=dict)  # (group, OS) -> baseline id
    # OS -> baseline registered as default when it is not AWS's predefined one (custom pb- id or another AWS ARN)
    default_baselines: dict[str, str] = field(default_factory=dict)
    windows: dict[str, Any] = field(default_factory=dict)
    window_executions: dict[str, Any] = field(default_factory=dict)
    activations: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    commands: dict[str, Any] = field(default_factory=dict)
    tags: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # (type, id) -> tags
    service_settings: dict[str, Any] = field(default_factory=dict)  # setting id -> nodes.ServiceSettingRecord
    # AWS-RunPatchBaseline SnapshotId -> the evaluation time its first use fixed (same approved set for all nodes).
    snapshots: dict[str, datetime.datetime] = field(default_factory=dict)
    # ClientToken -> resource id, for the idempotent Create* calls that take one.
    client_tokens: dict[str, str] = field(default_factory=dict)


class Lab:
    """Process-wide lab state. `LAB` below is the one instance the server and handlers share."""

    def __init__(self, seed: int = 20261127) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.random = random.Random(seed)
        self._regions: dict[tuple[str, str], RegionState] = {}
        # What the simulated agents really did, for tests that compare reports with the lab's own records.
        self.install_log: list[dict[str, Any]] = []
        # Free-form settings the control API changes (agent delays, etc.).
        self.settings: dict[str, Any] = {"agent_seconds_per_node": 0.0}

    def region(self, account: str, region: str) -> RegionState:
        key = (account, region)
        state = self._regions.get(key)
        if state is None:
            state = self._regions[key] = RegionState(account, region)
        return state

    def regions(self) -> list[RegionState]:
        return list(self._regions.values())

    def find_node(self, node_id: str) -> Node | None:
        for state in self._regions.values():
            node = state.nodes.get(node_id)
            if node is not None:
                return node
        return None

    def reset(self) -> None:
        with self.lock:
            self._regions.clear()
            self.install_log.clear()
            self.clock = Clock()


LAB = Lab()
