"""Fleet specs and seeding (fleetlab.fleet): loading, validation, the seeded lab, the reference fleet."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import botocore.exceptions
import pytest
import yaml

from fleetlab import fleet

FLEETS = Path(__file__).resolve().parent.parent / "fleets"
MANAGEMENT = "123456789012"

# Regions no other lab test uses, so the seeded machines stay out of their way in the shared lab.
SMALL_SPEC = {
    "name": "small",
    "seed": 7,
    "regions": ["ap-southeast-2"],
    "offline_ratio": 0.25,
    "failing_ratio": 0.25,
    "accounts": [
        {"id": MANAGEMENT, "name": "mgmt", "regions": {"ap-southeast-2": {
            "ec2": [
                {"platform": "ubuntu-22.04", "count": 3, "patch_group": "prod-auto", "name_prefix": "app",
                 "tags": {"Tier": "app"}},
                {"platform": "amzn-2", "count": 2, "patch_group": "nonprod", "patch_group_key": "Patch Group"},
            ],
            "hybrid": [{"platform": "windows-2022", "count": 2, "patch_group": "prod-sensitive",
                        "name_prefix": "dc1-sql", "tags": {"Site": "dc1"}}],
        }}},
        {"id": "299900000001", "regions": {"ca-central-1": {
            "ec2": [{"platform": "amzn-2023", "count": 1, "patch_group": "jump-log", "name_prefix": "bastion"}],
        }}},
    ],
    "azure": {"subscriptions": [{"name": "sub-a", "vms": [
        {"platform": "ubuntu-24.04", "count": 2, "patch_group": "nonprod", "name_prefix": "az-dev",
         "resource_group": "rg-dev", "location": "northeurope"},
    ]}]},
}


def _write(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / "fleet.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def test_load_normalises_a_spec(tmp_path):
    spec = fleet.load(_write(tmp_path, SMALL_SPEC))
    assert spec["accounts"] == [MANAGEMENT, "299900000001"]
    assert spec["regions"] == ["ap-southeast-2", "ca-central-1"]  # declared first, then the others used
    assert spec["account_names"] == {MANAGEMENT: "mgmt", "299900000001": "299900000001"}
    amzn = spec["fleet"][MANAGEMENT]["ap-southeast-2"]["ec2"][1]
    assert amzn == {"platform": "amzn-2", "count": 2, "patch_group": "nonprod", "patch_group_key": "Patch Group",
                    "name_prefix": "nonprod-amzn-2", "tags": {}}
    assert spec["fleet"]["299900000001"]["ca-central-1"]["hybrid"] == []
    vms = spec["azure"]["subscriptions"][0]["vms"]
    assert [vm["name"] for vm in vms] == ["az-dev-001", "az-dev-002"]
    assert vms[0]["tags"] == {"PatchGroup": "nonprod"}
    assert (vms[0]["resource_group"], vms[0]["location"], vms[0]["platform"]) == ("rg-dev", "northeurope",
                                                                                   "ubuntu-24.04")
    assert len({vm["vm_id"] for vm in vms}) == 2
    again = fleet.load(_write(tmp_path, SMALL_SPEC))
    assert again["azure"] == spec["azure"]  # ids derive from the seed: the Azure endpoint serves the same VMs


def _with(change: dict) -> dict:
    spec = json.loads(json.dumps(SMALL_SPEC))
    for path, value in change.items():
        target = spec
        *parents, last = path
        for key in parents:
            target = target[key]
        target[last] = value
    return spec


@pytest.mark.parametrize("change, where", [
    ({("accounts", 0, "id"): "210987654321"}, "management account"),
    ({("accounts", 0, "id"): 123456789012}, "quoted 12-digit"),
    ({("accounts", 1, "id"): MANAGEMENT}, "appears twice"),
    ({("accounts", 0, "regions", "ap-southeast-2", "ec2", 0, "platform"): "debian-12"}, "platform 'debian-12'"),
    ({("accounts", 0, "regions", "ap-southeast-2", "ec2", 0, "count"): -1}, "count"),
    ({("accounts", 0, "regions", "ap-southeast-2", "ec2", 0, "patch_group_key"): "patchgroup"}, "patch_group_key"),
    ({("accounts", 0, "regions", "ap-southeast-2", "ec2", 0, "patchgroup"): "x"}, "unknown key(s) ['patchgroup']"),
    ({("accounts", 0, "regions", "ap-southeast-2", "hybrid", 0, "count"): 1001}, "at most 1000"),
    ({("regions",): ["eu-west-9"]}, "not SSM regions"),
    ({("offline_ratio",): 2}, "offline_ratio"),
])
def test_load_rejects_specs_that_describe_no_fleet(tmp_path, change, where):
    with pytest.raises(fleet.SpecError, match=re.escape(where)):
        fleet.load(_write(tmp_path, _with(change)))


def test_empty_spec_is_the_management_account_in_the_default_region():
    spec = fleet.empty_spec()
    assert (spec["accounts"], spec["regions"]) == ([MANAGEMENT], ["eu-west-1"])
    assert spec["azure"]["subscriptions"] == [] and spec["azure"]["tenant_id"]
    assert fleet.seed(spec)["totals"]["nodes"] == 0


def test_seeded_fleet_is_what_the_spec_says(lab_server, lab):
    from conftest import make_session

    endpoint = lab_server.env["AWS_ENDPOINT_URL"]
    summary = fleet.seed(fleet.from_dict(SMALL_SPEC))
    totals = summary["totals"]
    assert [totals[k] for k in ("ec2", "hybrid", "nodes", "offline", "failing", "azure_vms")] == [6, 2, 8, 2, 2, 2]
    assert summary["accounts"] == {MANAGEMENT: {"ap-southeast-2": {"ec2": 5, "hybrid": 2}},
                                   "299900000001": {"ca-central-1": {"ec2": 1, "hybrid": 0}}}

    mgmt = make_session(endpoint, region="ap-southeast-2")
    instances = [i for r in mgmt.client("ec2", endpoint_url=endpoint).describe_instances()["Reservations"]
                 for i in r["Instances"]]
    by_name = {_tags(i)["Name"]: _tags(i) for i in instances}
    assert by_name["app-001"] == {"Name": "app-001", "PatchGroup": "prod-auto", "Tier": "app"}
    assert by_name["nonprod-amzn-2-002"] == {"Name": "nonprod-amzn-2-002", "Patch Group": "nonprod"}

    ssm = mgmt.client("ssm", endpoint_url=endpoint)
    infos = [i for p in ssm.get_paginator("describe_instance_information").paginate()
             for i in p["InstanceInformationList"]]
    hybrid = [i for i in infos if i["ResourceType"] == "ManagedInstance"]
    assert sorted(i["ComputerName"] for i in hybrid) == ["dc1-sql-001.corp.example", "dc1-sql-002.corp.example"]
    tags = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=hybrid[0]["InstanceId"])
    assert _tags({"Tags": tags["TagList"]}) == {"PatchGroup": "prod-sensitive", "Site": "dc1"}

    lost = {i["InstanceId"] for i in infos if i["PingStatus"] == "ConnectionLost"}
    assert lost == {n["node_id"] for n in summary["offline"] if n["account"] == MANAGEMENT}
    for where in summary["failing"]:
        node = lab.region(where["account"], where["region"]).nodes[where["node_id"]]
        assert node.online and node.fail_install == fleet.FAILURE_MESSAGES[node.platform.family]

    other = make_session(endpoint, "299900000001", region="ca-central-1").client("ssm", endpoint_url=endpoint)
    bastion = other.describe_instance_information()["InstanceInformationList"]
    assert [i["PlatformName"] for i in bastion] == ["Amazon Linux"]


def test_moto_fixes_keep_ec2_answers(aws):
    assert fleet.apply_moto_fixes() == fleet.apply_moto_fixes()  # idempotent
    tagged = aws.launch("ubuntu-22.04", 3, {"PatchGroup": "nonprod"})
    aws.launch("amzn-2023", 2, {"PatchGroup": "prod-auto"})
    aws.ec2.create_tags(Resources=[tagged[0].node_id], Tags=[{"Key": "Name", "Value": "web-001"}])
    found = aws.ec2.describe_instances(Filters=[{"Name": "tag:PatchGroup", "Values": ["nonprod"]}])
    instances = {i["InstanceId"]: _tags(i) for r in found["Reservations"] for i in r["Instances"]}
    assert set(instances) == {n.node_id for n in tagged}
    assert instances[tagged[0].node_id] == {"PatchGroup": "nonprod", "Name": "web-001"}
    aws.ec2.stop_instances(InstanceIds=[tagged[1].node_id])  # moto looks the instance up by id
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        aws.ec2.stop_instances(InstanceIds=["i-0000000000000000f"])
    assert excinfo.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"


def _raw_bodies(client, call) -> list:
    bodies = []

    def keep(response_dict, **_):
        bodies.append(response_dict["body"])

    client.meta.events.register("before-parse", keep)
    try:
        call()
    finally:
        client.meta.events.unregister("before-parse", keep)
    return bodies


def test_memoized_attribute_picking_serializes_the_same_bytes_as_stock_moto(aws, monkeypatch):
    """The serializer fix may only make answers faster: XML (EC2) and JSON (SSM) bodies, byte for byte."""
    fleet.apply_moto_fixes()
    aws.launch("ubuntu-22.04", 3, {"PatchGroup": "nonprod", "Name": "web"})
    aws.launch("windows-2022", 2, {"Patch Group": "prod-auto"})
    ec2, ssm = aws.ec2, aws.ssm
    calls = [(ec2, lambda: ec2.describe_instances(MaxResults=5)), (ssm, ssm.describe_patch_baselines),
             (ssm, lambda: ssm.get_default_patch_baseline(OperatingSystem="UBUNTU"))]
    fixed = [_raw_bodies(client, call) for client, call in calls]
    monkeypatch.setattr(fleet.AttributePicker, "__call__", fleet._STOCK_PICK)  # pylint: disable=protected-access
    stock = [_raw_bodies(client, call) for client, call in calls]
    assert all(bodies for bodies in fixed)
    assert [[re.sub(rb"<requestId>[^<]*</requestId>", b"", body) for body in bodies] for bodies in fixed] == \
        [[re.sub(rb"<requestId>[^<]*</requestId>", b"", body) for body in bodies] for bodies in stock]


# --- the reference fleet ---------------------------------------------------------------------------------------

def _groups(spec: dict):
    for account, regions in spec["fleet"].items():
        for region, layout in regions.items():
            for kind in ("ec2", "hybrid"):
                for group in layout[kind]:
                    yield account, region, kind, group


def test_reference_fleet_has_the_documented_shape():
    spec = fleet.load(FLEETS / "reference.yml")
    assert spec["accounts"][0] == MANAGEMENT and len(spec["accounts"]) == 3
    assert spec["regions"] == ["eu-west-1", "us-east-1"]
    assert {(a, r) for a, r, _, _ in _groups(spec)} == {(a, r) for a in spec["accounts"] for r in spec["regions"]}

    groups = list(_groups(spec))
    servers = sum(g["count"] for *_, g in groups)
    assert 1100 <= servers <= 1300
    by_group = Counter()
    by_os = Counter()
    for *_, group in groups:
        by_group[group["patch_group"]] += group["count"]
        by_os[group["platform"]] += group["count"]
    assert set(by_group) - {None} == {"prod-sensitive", "prod-auto", "jump-log", "nonprod"}
    assert 0 < by_group[None] < 10  # a few nodes without a patch group (the OS default baseline applies)
    windows = by_os["windows-2016"] + by_os["windows-2022"]
    assert by_os["windows-2016"] and by_os["windows-2022"] and windows < 0.05 * servers
    assert sum(by_os[k] for k in ("ubuntu-20.04", "ubuntu-22.04", "ubuntu-24.04", "amzn-2", "amzn-2023")) \
        > 0.9 * servers
    assert all(by_os[k] for k in ("ubuntu-20.04", "ubuntu-22.04", "ubuntu-24.04", "amzn-2", "amzn-2023"))
    assert any(g["patch_group_key"] == "Patch Group" for *_, g in groups)
    assert any(kind == "hybrid" for _, _, kind, _ in groups)
    assert 0 < spec["offline_ratio"] <= 0.05 and 0 < spec["failing_ratio"] <= 0.05

    subscriptions = spec["azure"]["subscriptions"]
    vms = [vm for sub in subscriptions for vm in sub["vms"]]
    assert len(subscriptions) == 2 and len(vms) == 150
    assert len({vm["vm_id"] for vm in vms}) == 150
    assert all(len({vm["name"] for vm in sub["vms"]}) == len(sub["vms"]) for sub in subscriptions)
    assert {vm["platform"].split("-")[0] for vm in vms} == {"ubuntu", "windows"}


def test_reference_fleet_seeds_in_a_fresh_lab():
    """What `make lab-up` does, in its own process (the seeded accounts would crowd the shared test lab)."""
    script = textwrap.dedent("""
        import json, os, sys
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        sys.path.insert(0, sys.argv[1])
        from fleetlab import fleet
        fleet.apply_moto_fixes()
        print(json.dumps(fleet.seed(fleet.load(sys.argv[2]))))
    """)
    done = subprocess.run([sys.executable, "-c", script, str(FLEETS.parent), str(FLEETS / "reference.yml")],
                          capture_output=True, text=True, env={**os.environ}, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    spec = fleet.load(FLEETS / "reference.yml")
    assert summary["totals"]["nodes"] == sum(g["count"] for *_, g in _groups(spec))
    assert summary["totals"]["hybrid"] == sum(g["count"] for _, _, kind, g in _groups(spec) if kind == "hybrid")
    assert summary["totals"]["offline"] == round(spec["offline_ratio"] * summary["totals"]["nodes"])
    assert summary["totals"]["failing"] > 0
