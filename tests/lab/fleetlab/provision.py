"""Create managed nodes in the lab: EC2 instances with a running SSM agent, in a given account and region.

Instances are launched in moto's EC2 backend in-process (no HTTP round trip: seeding thousands takes seconds)
and get a Node record (OS, installed packages from the catalog). Hybrid (mi-) nodes are created by registering
with an activation (nodes.py), never here.
"""
from __future__ import annotations

import hashlib
import random

from moto.ec2 import ec2_backends

from .platforms import platform
from .state import LAB, Lab, Node

# AMI ids are not validated by moto unless MOTO_ENABLE_AMI_VALIDATION is set; one fake id per platform keeps
# describe_instances' ImageId meaningful.
_AMI = {
    "ubuntu-20.04": "ami-0f0c0a2e0b20e2004", "ubuntu-22.04": "ami-0f0c0a2e0b22e2204",
    "ubuntu-24.04": "ami-0f0c0a2e0b24e2404", "amzn-2": "ami-0a1b2c3d4e5f0a002",
    "amzn-2023": "ami-0a1b2c3d4e5f02023", "windows-2016": "ami-0c0d0e0f0a0b02016",
    "windows-2022": "ami-0c0d0e0f0a0b02022",
}


def _installed_for(platform_key: str, rng: random.Random) -> dict[str, str]:
    from . import catalog

    return catalog.initial_installed(platform(platform_key), rng)


def launch_nodes(account: str, region: str, platform_key: str, count: int = 1,
                 tags: dict[str, str] | None = None, *, lab: Lab = LAB,
                 instance_type: str = "t3.medium", rng: random.Random | None = None) -> list[Node]:
    """Launch `count` running instances of `platform_key` with `tags` and make each a managed node."""
    plat = platform(platform_key)
    rng = rng or random.Random(f"{account}/{region}/{platform_key}/{len(lab.region(account, region).nodes)}")
    backend = ec2_backends[account][region]
    kwargs = {"instance_type": instance_type, "is_instance_type_default": False, "region_name": region,
              "tags": {"instance": dict(tags or {})}}
    reservation = backend.run_instances(_AMI[platform_key], count, None, [], **kwargs)
    nodes = []
    with lab.lock:
        state = lab.region(account, region)
        now = lab.clock.now()
        for instance in reservation.instances:
            if plat.is_windows:
                instance.platform = "windows"  # moto takes it from the AMI, which the lab does not register
            node = Node(
                node_id=instance.id,
                account=account,
                region=region,
                platform=plat,
                computer_name=(instance.private_dns_name or instance.id),
                ip_address=instance.private_ip or "",
                installed=_installed_for(platform_key, rng),
                resource_type="EC2Instance",
                last_ping=now,
                last_boot=now,
                fingerprint=hashlib.sha256(instance.id.encode()).hexdigest()[:32],
            )
            state.nodes[node.node_id] = node
            nodes.append(node)
    return nodes
