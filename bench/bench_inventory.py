"""Bench (not a test): fleetpatch.ssm.fleet against amazon.aws.aws_ec2 + azure.azcollection.azure_rm, one lab fleet.

Fleet (generated in-process by `fleet_spec`, seeded by fleetlab in a child process that hosts the lab): 4 AWS
accounts x 3 regions with 5,000 EC2 instances; 300 hybrid nodes (100 on-premises servers, and 200 of the Azure VMs
registered in SSM the way the agent registers them: SourceType Microsoft.Compute/virtualMachines, SourceId vmId);
1,000 Azure VMs in 3 subscriptions. Patch groups under both tag keys, Ubuntu, Amazon Linux and Windows.

Anchor: what a user runs today for the same machines: one `ansible-inventory --list` over 4 amazon.aws.aws_ec2 sources
(one per account, regions listed, assume_role_arn for the member accounts, hostnames: instance-id so that no two
instances share a name) and 3 azure_rm sources (one per subscription). azure_rm runs through the BENCH-ONLY shim
bench/azure_rm_shim (lab credentials and endpoint; see its docstring) with batch_fetch off, as the lab has no /batch
API (on 127.0.0.1 the round trips batching saves are cheap; the work per VM is the same).
Ours: one fleetpatch.ssm.fleet source with its defaults: cold, then with a warm jsonfile cache.

Per run: wall time, peak RSS of the ansible-inventory process, hosts, and the API calls the lab saw (EC2, STS, SSM
and the Resource Groups Tagging API, `tagging`, on the moto server; Azure on the lab's Azure endpoint). Runs
alternate anchor and ours; the report gives medians and spreads. Both sides must describe the same machines (EC2
instance ids, Azure VM names) or the benchmark fails; ours also lists the on-premises hybrid nodes no anchor sees.
Last, ours alone on a fleet of the same shape with 20,000 hosts, to show how time grows with hosts.

    .venv/bin/python bench/bench_inventory.py [--runs 3] [--large-runs 1] [--large-hosts 20000] [--no-large]
(about 10 minutes on 2 cores: the anchor alone takes 1-1.5 minutes a run)
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
LAB_DIR = ROOT / "tests" / "lab"
BIN = Path(sys.executable).parent
COLLECTIONS = ROOT / ".cache" / "collections"
BENCH_COLLECTIONS = ROOT / ".cache" / "bench-collections"  # azure.azcollection, for the anchor only
SHIM = Path(__file__).resolve().parent / "azure_rm_shim"
ACCOUNTS = ("123456789012", "234567890123", "345678901234", "456789012345")
REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-2")
SUBSCRIPTIONS = ("1f6b2c8e-3a4d-4e5f-8a9b-0c1d2e3f4a5b", "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                 "5c4b3a29-1807-4f6e-9d5c-4b3a29180706")
BASE_SHAPE = {"ec2": 5000, "onprem": 100, "azure": 1000, "registered": 200}  # 6,100 machines
# EC2 group mix per account-region: (platform, patch group, tag key, share)
EC2_MIX = (("ubuntu-22.04", "prod-auto", "PatchGroup", 0.40), ("amzn-2023", "nonprod", "PatchGroup", 0.25),
           ("ubuntu-24.04", "prod-sensitive", "PatchGroup", 0.15), ("amzn-2", "jump-log", "Patch Group", 0.10),
           ("windows-2022", "prod-auto", "PatchGroup", 0.10))
# harness.inventory_listing reads ansible-inventory --list output, as the integration tests do.
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import harness  # noqa: E402  pylint: disable=wrong-import-position

AZURE_MIX = (("ubuntu-22.04", "prod-auto", 0.5), ("ubuntu-24.04", "nonprod", 0.3), ("windows-2022", "prod-sensitive", 0.2))


# ---------------------------------------------------------------------------------------------------------------
# The fleet
# ---------------------------------------------------------------------------------------------------------------

def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _shares(total: int, mix) -> list[int]:
    """`total` split by the last field (share) of each `mix` entry, rounding left over to the first."""
    counts = [round(total * entry[-1]) for entry in mix]
    counts[0] += total - sum(counts)
    return counts


def fleet_spec(scale: float) -> tuple[dict, int]:
    """A fleetlab spec of BASE_SHAPE x scale, and how many of its Azure VMs to register as hybrid nodes."""
    shape = {kind: round(count * scale) for kind, count in BASE_SHAPE.items()}
    ec2 = iter(_split(shape["ec2"], len(ACCOUNTS) * len(REGIONS)))
    onprem = iter(_split(shape["onprem"], len(ACCOUNTS)))
    accounts = []
    for a, account in enumerate(ACCOUNTS):
        regions = {}
        for r, region in enumerate(REGIONS):
            layout = {"ec2": [{"platform": platform, "count": count, "patch_group": group, "patch_group_key": key,
                               "name_prefix": f"a{a}r{r}-{platform.replace('.', '')}"}
                              for (platform, group, key, _share), count in zip(EC2_MIX, _shares(next(ec2), EC2_MIX))]}
            if r == 0:  # the on-premises servers register in each account's first region
                layout["hybrid"] = [{"platform": "ubuntu-22.04", "count": next(onprem), "patch_group": "prod-sensitive",
                                     "name_prefix": f"dc-a{a}-db"}]
            regions[region] = layout
        accounts.append({"id": account, "name": f"account-{a}", "regions": regions})
    subscriptions = []
    for s, (subscription, count) in enumerate(zip(SUBSCRIPTIONS, _split(shape["azure"], len(SUBSCRIPTIONS)))):
        vms = [{"platform": platform, "count": c, "patch_group": group, "name_prefix": f"az{s}-{platform.replace('.', '')}",
                "resource_group": f"rg-{s}", "location": "westeurope"}
               for (platform, group, _share), c in zip(AZURE_MIX, _shares(count, AZURE_MIX))]
        subscriptions.append({"id": subscription, "name": f"subscription-{s}", "vms": vms})
    spec = {"name": f"inventory-bench-x{scale:g}", "seed": 6100, "regions": list(REGIONS), "accounts": accounts,
            "azure": {"subscriptions": subscriptions}}
    return spec, shape["registered"]


def register_azure_vms(spec_path: Path, count: int) -> int:
    """Register `count` Azure VMs as hybrid nodes in-process, as the SSM agent does on an Azure VM (SourceId vmId),
    tagged with their VM's patch group through the activation, spread over the accounts' first region."""
    from fleetlab import api, fleet, nodes
    from fleetlab.state import LAB

    spec = fleet.load(spec_path)  # the lab's own reading: VM ids come from the spec's seed
    vms = [vm for sub in spec["azure"]["subscriptions"] for vm in sub["vms"]][:count]
    for index, vm in enumerate(vms):
        ctx = api.Context(LAB, ACCOUNTS[index % len(ACCOUNTS)], REGIONS[0])
        activation = api.call("CreateActivation", ctx, {
            "IamRole": "SSMServiceRole", "Tags": [{"Key": "PatchGroup", "Value": vm["tags"]["PatchGroup"]}]})
        nodes.register_with_activation(activation["ActivationId"], activation["ActivationCode"], REGIONS[0],
                                       computer_name=vm["name"], platform_key=vm["platform"], ip_address="10.90.0.1",
                                       source_vm_id=vm["vm_id"])
    return len(vms)


# ---------------------------------------------------------------------------------------------------------------
# Counting the lab's requests (bench instrumentation, in the process that hosts the lab)
# ---------------------------------------------------------------------------------------------------------------

class RequestCounter:
    """Requests the lab served, per service: moto's WSGI app (service from the SigV4 scope) and the Azure endpoint."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: collections.Counter = collections.Counter()

    def add(self, service: str) -> None:
        with self._lock:
            self.counts[service] += 1

    def take(self) -> dict:
        with self._lock:
            counts, self.counts = dict(self.counts), collections.Counter()
        return counts

    def install(self) -> None:
        from fleetlab import azure
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        counter, aws_call, azure_serve = self, DomainDispatcherApplication.__call__, azure._Handler._serve

        def counted_aws(app, environ, start_response):
            scope = environ.get("HTTP_AUTHORIZATION", "").split("Credential=", 1)[-1].split(",")[0].split("/")
            counter.add(scope[3] if len(scope) > 3 else "aws")
            return aws_call(app, environ, start_response)

        def counted_azure(handler, method):
            counter.add("azure")
            return azure_serve(handler, method)

        DomainDispatcherApplication.__call__ = counted_aws
        azure._Handler._serve = counted_azure


# ---------------------------------------------------------------------------------------------------------------
# Inventory sources
# ---------------------------------------------------------------------------------------------------------------

def write_sources(directory: Path, cache_dir: Path) -> dict[str, Path]:
    """anchor/ (4 aws_ec2 + 3 azure_rm files), ours.fleet.yml (cold) and warm/ours.fleet.yml (cached)."""
    anchor = directory / "anchor"
    anchor.mkdir()
    for index, account in enumerate(ACCOUNTS):
        config = {"plugin": "amazon.aws.aws_ec2", "regions": list(REGIONS), "hostnames": ["instance-id"]}
        if index:
            config.update(assume_role_arn=f"arn:aws:iam::{account}:role/Inventory", region=REGIONS[0])
        (anchor / f"{account}.aws_ec2.yml").write_text(yaml.safe_dump(config))
    for subscription in SUBSCRIPTIONS:
        (anchor / f"{subscription}.azure_rm.yml").write_text(yaml.safe_dump(
            {"plugin": "azure_rm_lab", "subscription_id": subscription, "batch_fetch": False}))
    ours = {"plugin": "fleetpatch.ssm.fleet", "regions": list(REGIONS), "azure_subscriptions": list(SUBSCRIPTIONS),
            "accounts": [f"arn:aws:iam::{account}:role/Inventory" for account in ACCOUNTS[1:]]}
    (directory / "ours.fleet.yml").write_text(yaml.safe_dump(ours))
    (directory / "warm").mkdir()
    (directory / "warm" / "ours.fleet.yml").write_text(yaml.safe_dump(dict(
        ours, cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(cache_dir))))
    return {"anchor": anchor, "ours": directory / "ours.fleet.yml", "warm": directory / "warm" / "ours.fleet.yml"}


def azure_collection() -> Path:
    """azure.azcollection from the ansible wheel `make collections` downloaded (bench only, never on the tests'
    collections path)."""
    if not (BENCH_COLLECTIONS / "ansible_collections" / "azure" / "azcollection").is_dir():
        wheels = sorted((ROOT / ".cache" / "wheels").glob("ansible-*.whl"))
        if not wheels:
            raise SystemExit("bench: no ansible wheel in .cache/wheels: run `make collections` first")
        with zipfile.ZipFile(wheels[-1]) as wheel:
            wheel.extractall(BENCH_COLLECTIONS, [n for n in wheel.namelist()
                                                 if n.startswith("ansible_collections/azure/azcollection/")])
    return BENCH_COLLECTIONS


# Runs a command and writes its peak RSS (KiB) and CPU seconds to argv[1]. The bench process hosts the lab (hundreds
# of MB): a child forked from it would count that memory in its own peak, so ansible-inventory starts from here.
_LAUNCHER = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
             "usage = resource.getrusage(resource.RUSAGE_CHILDREN); "
             "open(sys.argv[1], 'w').write(f'{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}'); sys.exit(code)")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_inventory(source: Path, env: dict, counter: RequestCounter, mode: tuple = ("--list",)) -> dict:
    """One `ansible-inventory -i source <mode>`: wall time, peak RSS, CPU seconds of ansible-inventory and of the lab
    (this process, which does nothing else meanwhile), lab calls, and the listing (--list)."""
    counter.take()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as usage:
        lab_cpu, started = _own_cpu(), time.perf_counter()
        returncode = subprocess.call([sys.executable, "-c", _LAUNCHER, usage.name, str(BIN / "ansible-inventory"),
                                      "-i", str(source), *mode], stdout=out, stderr=err, env=env,
                                     stdin=subprocess.DEVNULL)
        seconds, lab_cpu = time.perf_counter() - started, _own_cpu() - lab_cpu
        out.seek(0)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
        if returncode != 0:
            raise SystemExit(f"ansible-inventory -i {source} failed:\n{stderr[-3000:]}")
        listing = harness.inventory_listing(out.read()) if "--list" in mode else {}
        rss_kb, cpu = usage.read().split()
    failures = [line for line in stderr.splitlines() if "could not be read" in line or "Failed to parse" in line]
    if failures:
        raise SystemExit(f"ansible-inventory -i {source} reported failures:\n{stderr[-3000:]}")
    return {"seconds": seconds, "rss_mb": int(rss_kb) / 1024, "cpu": float(cpu), "lab_cpu": lab_cpu,
            "calls": counter.take(),
            "listing": listing}


def machines(hostvars: dict) -> dict:
    """What each side says the fleet is: EC2 instance ids, Azure VM names, other machines (hybrid on-premises)."""
    ec2, azure, other = set(), set(), set()
    for name, host in hostvars.items():
        if "fleet_cloud" in host:  # ours
            {"aws": ec2, "azure": azure}.get(host["fleet_cloud"], other).add(
                host["fleet_id"] if host["fleet_cloud"] == "aws" else name)
        elif "instance_id" in host:  # aws_ec2
            ec2.add(host["instance_id"])
        else:  # azure_rm
            azure.add(host["name"])
    return {"ec2": ec2, "azure": azure, "other": other}


# ---------------------------------------------------------------------------------------------------------------
# One fleet, measured in a child process that hosts the lab
# ---------------------------------------------------------------------------------------------------------------

def measure_fleet(scale: float, runs: int, with_anchor: bool) -> dict:
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    sys.path.insert(0, str(LAB_DIR))
    from fleetlab.server import LabServer

    spec, registered = fleet_spec(scale)
    with tempfile.TemporaryDirectory(prefix="inventory-bench-") as tmp:
        tmp_path = Path(tmp)
        spec_path = tmp_path / "fleet.yml"
        spec_path.write_text(yaml.safe_dump(spec))
        server = LabServer(tmp_path / "lab", spec_path, azure=True)
        seeded = time.perf_counter()
        lab_env = server.start()
        try:
            registered = register_azure_vms(spec_path, registered)
            seed_seconds = time.perf_counter() - seeded
            counter = RequestCounter()
            counter.install()
            return _measure_runs(lab_env, write_sources(tmp_path, tmp_path / "cache"), counter, runs, with_anchor,
                                 server.summary["totals"], registered, seed_seconds)
        finally:
            server.stop()


def _env(lab_env: dict, anchor: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_")) and "proxy" not in k.lower()}
    env.update(lab_env, NO_PROXY="127.0.0.1,localhost", ANSIBLE_DEPRECATION_WARNINGS="false")
    paths = [str(COLLECTIONS)] + ([str(azure_collection())] if anchor else [])
    env["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join(paths)
    if anchor:
        env["ANSIBLE_INVENTORY_PLUGINS"] = str(SHIM)
    return env


# Side -> (source, ansible-inventory arguments, label). --graph builds the inventory as ansible-playbook does (host
# variables are read when a task needs them); --list also writes every host's variables; --list --export is what AWX
# runs to import an inventory source. "static" is ours' own listing served by a script: what ansible-inventory itself
# costs for these hosts, groups and variables, whatever the source.
SIDES = {
    "anchor": ("anchor", ("--list",), "anchor: aws_ec2 x4 + azure_rm x3"),
    "ours": ("ours", ("--list",), "ours, cold"),
    "warm_graph": ("warm", ("--graph",), "ours, warm cache, --graph"),
    "warm_export": ("warm", ("--list", "--export"), "ours, warm cache, --list --export"),
    "warm": ("warm", ("--list",), "ours, warm cache, --list"),
    "static_export": ("static", ("--list", "--export"), "static script, --list --export"),
}


def write_static_source(directory: Path, listing: dict) -> Path:
    """A script inventory that prints `listing` (hosts, groups and variables as ours gave them)."""
    listing = dict(listing, _meta={"hostvars": listing["_meta"]["hostvars"]})
    (directory / "static.json").write_text(json.dumps(listing))
    script = directory / "static.sh"
    script.write_text(f"#!/bin/sh\n[ \"$1\" = --list ] && exec cat {directory / 'static.json'}\necho '{{}}'\n")
    script.chmod(0o755)
    return script


def _measure_runs(lab_env, sources, counter, runs, with_anchor, totals, registered, seed_seconds) -> dict:
    """Alternating runs of each side; checks that every side describes the same machines."""
    sides = [side for side in SIDES if with_anchor or side != "anchor"]
    results: dict[str, list] = {side: [] for side in sides}
    envs = {side: _env(lab_env, anchor=side == "anchor") for side in sides}
    answers = {}
    filled = run_inventory(sources["warm"], envs["warm"], counter)  # fills the cache of the warm runs
    sources["static"] = write_static_source(sources["warm"].parent, filled["listing"])
    for _run in range(runs):
        for side in sides:
            source, mode, _label = SIDES[side]
            result = run_inventory(sources[source], envs[side], counter, mode)
            listing = result.pop("listing")
            if listing:
                answers.setdefault(side, machines(listing["_meta"]["hostvars"]))
                result["hosts"] = sum(len(v) for v in answers[side].values())
            results[side].append(result)
            print(f"  {side:13} {result['seconds']:6.2f} s  {result['rss_mb']:5.0f} MB  cpu {result['cpu']:5.1f} s "
                  f"+ lab {result['lab_cpu']:5.1f} s  calls {result['calls']}", file=sys.stderr, flush=True)
    _check_answers(answers, totals["hybrid"])  # seeded on-premises nodes; registered Azure VMs come on top
    return {"totals": totals, "registered": registered, "seed_seconds": seed_seconds, "results": results,
            "machines": {side: {k: len(v) for k, v in a.items()} for side, a in answers.items()}}


def _check_answers(answers: dict, onprem: int) -> None:
    if len(answers["ours"]["other"]) != onprem:
        raise SystemExit(f"ours: {len(answers['ours']['other'])} on-premises hosts, the fleet has {onprem}")
    for side in answers.keys() - {"anchor", "ours"}:
        if answers[side] != answers["ours"]:
            raise SystemExit(f"{side}: the cached inventory differs from the fresh one")
    for kind in ("ec2", "azure") if "anchor" in answers else ():
        if answers["anchor"][kind] != answers["ours"][kind]:
            raise SystemExit(f"anchor and ours disagree on {kind}: {len(answers['anchor'][kind])} vs "
                             f"{len(answers['ours'][kind])}, {len(answers['anchor'][kind] ^ answers['ours'][kind])} differ")


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------

def _median(rows: list, key: str) -> float:
    return statistics.median(row[key] for row in rows)


def _stat(rows: list, key: str, unit: str) -> str:
    values = [row[key] for row in rows]
    return f"{statistics.median(values):6.1f} {unit} ({min(values):.1f}-{max(values):.1f})"


def _work(rows: list) -> float:
    """CPU seconds of ansible-inventory plus the lab's on its behalf (median): the work, whatever the machine's load."""
    return statistics.median(row["cpu"] + row["lab_cpu"] for row in rows)


def _pairs(anchor_rows: list, our_rows: list) -> list:
    """(anchor, ours) wall times of the same round: runs alternate, so round i of both shared the machine's state."""
    return [(a["seconds"], o["seconds"]) for a, o in zip(anchor_rows, our_rows)]


def _calls(rows: list) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(rows[0]["calls"].items())) or "none"


def report(base: dict, large: dict | None) -> None:
    results, totals = base["results"], base["totals"]
    print(f"fleet: {totals['ec2']} EC2 in {totals['accounts']} accounts x {totals['regions']} regions, "
          f"{totals['hybrid'] + base['registered']} hybrid nodes ({base['registered']} of them Azure VMs), "
          f"{totals['azure_vms']} Azure VMs in {totals['azure_subscriptions']} subscriptions; seeded in "
          f"{base['seed_seconds']:.1f} s; machines described: {base['machines']}")
    print(f"{'':36}{'wall: median (spread)':24}{'CPU, client + lab':20}{'peak RSS':22}{'hosts':>6}  API calls (lab)")
    for side, rows in results.items():
        hosts = rows[0].get("hosts", "")
        print(f"{SIDES[side][2]:36}{_stat(rows, 'seconds', 's'):24}{_work(rows):7.1f} s{'':12}"
              f"{_stat(rows, 'rss_mb', 'MB'):22}{hosts:>6}  {_calls(rows)}")
    if "anchor" in results:
        anchor, cold = _median(results["anchor"], "seconds"), _median(results["ours"], "seconds")
        print(f"ours / anchor, wall: cold {cold / anchor:.3f} (anchor / ours {anchor / cold:.1f}x; per run: "
              f"{', '.join(f'{a / o:.1f}x' for a, o in _pairs(results['anchor'], results['ours']))}), warm --list "
              f"{_median(results['warm'], 'seconds') / anchor:.3f}; CPU work, cold: "
              f"{_work(results['ours']) / _work(results['anchor']):.3f} ({_work(results['anchor']) / _work(results['ours']):.1f}x)")
    export, static = _median(results["warm_export"], "seconds"), _median(results["static_export"], "seconds")
    print(f"cached: {_calls(results['warm'])} API calls; --graph {_median(results['warm_graph'], 'seconds'):.2f} s; "
          f"--list --export {export:.2f} s = {export / static:.2f} x the same listing from a static script "
          f"({static:.2f} s: ansible-inventory's own cost for these hosts and variables)")
    if large:
        small_rows, large_rows = results["ours"], large["results"]["ours"]
        small_hosts, large_hosts = small_rows[0]["hosts"], large_rows[0]["hosts"]
        print(f"ours at {large_hosts} hosts: cold {_stat(large_rows, 'seconds', 's')}, CPU {_work(large_rows):.1f} s, "
              f"peak RSS {_stat(large_rows, 'rss_mb', 'MB')}; warm --graph "
              f"{_stat(large['results']['warm_graph'], 'seconds', 's')}, --list --export "
              f"{_stat(large['results']['warm_export'], 'seconds', 's')}, --list {_stat(large['results']['warm'], 'seconds', 's')}")
        print(f"growth, {large_hosts / small_hosts:.2f}x hosts: wall {_median(large_rows, 'seconds') / _median(small_rows, 'seconds'):.2f}x, "
              f"CPU work {_work(large_rows) / _work(small_rows):.2f}x (ansible-inventory alone "
              f"{_median(large_rows, 'cpu') / _median(small_rows, 'cpu'):.2f}x, the lab alone "
              f"{_median(large_rows, 'lab_cpu') / _median(small_rows, 'lab_cpu'):.2f}x)")


def _child(scale: float, runs: int, with_anchor: bool) -> dict:
    command = [sys.executable, __file__, "--child", str(scale), "--runs", str(runs)] + ([] if with_anchor else ["--no-anchor"])
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench child (scale {scale}) failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def versions() -> str:
    import ansible
    import azure.mgmt.compute
    import boto3

    amazon = json.loads((COLLECTIONS / "ansible_collections" / "amazon" / "aws" / "MANIFEST.json").read_text())
    azcollection = json.loads((azure_collection() / "ansible_collections" / "azure" / "azcollection" /
                               "MANIFEST.json").read_text())
    return (f"ansible-core {ansible.__version__}, amazon.aws {amazon['collection_info']['version']}, "
            f"azure.azcollection {azcollection['collection_info']['version']} (bench shim), boto3 {boto3.__version__}, "
            f"azure-mgmt-compute {azure.mgmt.compute.__version__}, python {sys.version.split()[0]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each side (median and spread reported)")
    parser.add_argument("--large-runs", type=int, default=1, help="runs of ours on the growth fleet")
    parser.add_argument("--large-hosts", type=int, default=20000, help="hosts of the growth fleet (ours only)")
    parser.add_argument("--no-large", action="store_true", help="skip the growth fleet")
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--no-anchor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure_fleet(args.child, args.runs, not args.no_anchor)))
        return 0
    print(f"bench inventory: fleetpatch.ssm.fleet vs aws_ec2 (one source per account) + azure_rm (one per "
          f"subscription, bench/azure_rm_shim); {args.runs} run(s) per side, alternating; {versions()}")
    base = _child(1.0, args.runs, True)
    large = None
    if not args.no_large:
        large = _child(args.large_hosts / sum(v for k, v in BASE_SHAPE.items() if k != "registered"),
                       args.large_runs, False)
    report(base, large)
    return 0


if __name__ == "__main__":
    sys.exit(main())
