"""Bench (not a test): fleet-wide report collection under throttling, against the floor AWS's rate allows.

Scenario: 5,000 managed nodes (EC2 and hybrid; Ubuntu 20.04/22.04/24.04, Amazon Linux 2/2023, Windows Server
2022) over 4 accounts x 3 regions, every node scanned once, collected by fleetpatch.ssm.patch_report_info's
collection (`patch_report_info.collect`, the module's own code path, without Ansible's process around it).

The lab runs in its own process (`fleetlab.labctl up` with a fleet spec this script writes): the lab's CPU and
memory are not the collection's, and each collection runs in a fresh child process whose peak RSS is its own.
The lab throttles every SSM operation with a token bucket per account, region and operation (`--tps`, `--burst`:
AWS applies its SSM rate limits per account, region and API and publishes no figures, so the rate is the
bench's choice). EC2 DescribeInstances (Name tags, 1,000 per page) is not throttled by the lab.

Runs, in order:
  1. cold, unthrottled   empty history; every node's patches are read. Counts the calls the design needs per
                         account-region and operation (the lab's /calls), and shows the cost without throttling.
  2. cold, throttled     the same with the rate limit: the figure that matters.
  3. warm, throttled     history from run 2, nothing changed since: no DescribeInstancePatches is needed.
Floor of a throttled run: the longest account-region's time at the allowed rate, with the design's calls, for
its busiest operation ((calls - burst) / tps; operations are pipelined, so the busiest one bounds the run).
The "sequential" floor adds the operations of an account-region instead; both are printed. Targets
(issue 5): wall time <= 1.2 x floor, peak RSS <= 256 MB, 0 nodes lost (every listed node reported, once).

    .venv/bin/python bench/bench_report.py [--nodes 5000] [--tps 5] [--burst 5]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB_DIR = ROOT / "tests" / "lab"
ACCOUNTS = ("123456789012", "210987654321", "310987654321", "410987654321")
REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-2")
# Share of each account-region's nodes per platform (the fleet of MISSION.md: mostly Ubuntu and Amazon Linux).
PLATFORMS = (("ubuntu-22.04", 0.33), ("ubuntu-20.04", 0.10), ("ubuntu-24.04", 0.15), ("amzn-2023", 0.24),
             ("amzn-2", 0.10), ("windows-2022", 0.04))
HYBRID_SHARE = 0.04  # registered on-premises / Azure machines (mi- nodes), Ubuntu 22.04
THROTTLED_OPERATIONS = ("DescribeInstanceInformation", "DescribeInstancePatchStates", "DescribeInstancePatches")


# ---------------------------------------------------------------------------------------------- the lab

def fleet_spec(nodes: int) -> dict:
    scopes = [(a, r) for a in ACCOUNTS for r in REGIONS]
    per_scope = [nodes // len(scopes) + (1 if i < nodes % len(scopes) else 0) for i in range(len(scopes))]
    accounts = {}
    for (account, region), count in zip(scopes, per_scope):
        hybrid = round(count * HYBRID_SHARE)
        ec2, left = [], count - hybrid
        for index, (platform, share) in enumerate(PLATFORMS):
            size = left - sum(g["count"] for g in ec2) if index == len(PLATFORMS) - 1 else round((count - hybrid) * share)
            ec2.append({"platform": platform, "count": size, "patch_group": "prod-auto",
                        "name_prefix": f"{platform.replace('.', '')}-{region}"})
        layout = {"ec2": ec2, "hybrid": [{"platform": "ubuntu-22.04", "count": hybrid, "patch_group": "prod-auto",
                                          "name_prefix": f"dc-{region}"}]}
        accounts.setdefault(account, {})[region] = layout
    return {"name": f"report-bench-{nodes}", "seed": 5005, "regions": list(REGIONS),
            "accounts": [{"id": account, "regions": regions} for account, regions in accounts.items()]}


def _labctl(*args: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(LAB_DIR))
    done = subprocess.run([sys.executable, "-m", "fleetlab.labctl", *args], env=env, capture_output=True, text=True,
                          check=False, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"labctl {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def _env(state_dir: Path) -> dict:
    env = {}
    for line in (state_dir / "env.sh").read_text().splitlines():
        if line.startswith("export "):
            key, value = line[len("export "):].split("=", 1)
            env[key] = shlex.split(value)[0] if value else ""
    return env


def _control(env: dict, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(env["FLEETLAB_CONTROL_URL"] + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=900) as response:
        return json.loads(response.read())


def _sessions(env: dict):
    import boto3

    base = boto3.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    for account in ACCOUNTS:
        session = base
        if account != ACCOUNTS[0]:
            credentials = base.client("sts", region_name=REGIONS[0], endpoint_url=env["AWS_ENDPOINT_URL"]).assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/bench", RoleSessionName="bench")["Credentials"]
            session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                                    aws_secret_access_key=credentials["SecretAccessKey"],
                                    aws_session_token=credentials["SessionToken"])
        yield account, session


def scan_everything(env: dict) -> None:
    """AWS-RunPatchBaseline Scan on every node (one command per account-region), then wait for all."""
    for account, session in _sessions(env):
        for region in REGIONS:
            session.client("ssm", region_name=region, endpoint_url=env["AWS_ENDPOINT_URL"]).send_command(
                DocumentName="AWS-RunPatchBaseline", Targets=[{"Key": "tag:PatchGroup", "Values": ["prod-auto"]}],
                Parameters={"Operation": ["Scan"]}, MaxConcurrency="100%")
    for account in ACCOUNTS:
        for region in REGIONS:
            if not _control(env, "POST", "/commands/wait", {"account": account, "region": region, "timeout": 900})["done"]:
                raise SystemExit(f"the scan of {account}/{region} did not finish")


# ---------------------------------------------------------------------------------------------- one collection

def collect_once(env: dict, history_path: str) -> dict:
    """Run in a fresh process: the module's collection over every account and region; timings and peak RSS."""
    sys.path.insert(0, str(ROOT / ".cache" / "collections"))
    from ansible_collections.fleetpatch.ssm.plugins.module_utils import accounts
    from ansible_collections.fleetpatch.ssm.plugins.module_utils.history import History
    from ansible_collections.fleetpatch.ssm.plugins.module_utils.report_collect import Options
    from ansible_collections.fleetpatch.ssm.plugins.modules.patch_report_info import collect

    connection = accounts.Connection(REGIONS[0], env["AWS_ENDPOINT_URL"], {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]})
    targets = accounts.targets_from_params(
        [{"regions": list(REGIONS)}] + [{"role_arn": f"arn:aws:iam::{a}:role/fleetpatch-report",
                                         "regions": list(REGIONS)} for a in ACCOUNTS[1:]], REGIONS[0])
    started = time.perf_counter()
    with History.open(history_path) as history:
        result = collect(history, accounts.Sessions(connection), targets, Options(), max_workers=16,
                         with_changes=False)
    wall = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"wall": wall, "rss_mb": rss_mb, "totals": result["totals"], "failures": result["failures"],
            "status": result["run"]["status"]}


def _run_collection(env: dict, history_path: Path) -> dict:
    command = [sys.executable, __file__, "--collect", json.dumps(env), str(history_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "NO_PROXY": "*", "AWS_ENDPOINT_URL": env["AWS_ENDPOINT_URL"]})
    if done.returncode != 0:
        raise SystemExit(f"collection failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _calls(env: dict) -> dict:
    """(account, region) -> operation -> calls, from the lab's counter (throttled attempts included)."""
    counts: dict = collections.defaultdict(dict)
    for row in _control(env, "GET", "/calls")["calls"]:
        counts[(row["account"], row["region"])][row["operation"]] = row["count"]
    return counts


def _floors(needed: dict, tps: float, burst: float) -> tuple:
    """(pipelined floor, sequential floor) in seconds: the slowest account-region at `tps` per operation."""
    def seconds(calls: int) -> float:
        return max(0.0, calls - burst) / tps

    pipelined = max(max(seconds(calls) for op, calls in ops.items() if op in THROTTLED_OPERATIONS)
                    for ops in needed.values())
    sequential = max(sum(seconds(calls) for op, calls in ops.items() if op in THROTTLED_OPERATIONS)
                     for ops in needed.values())
    return pipelined, sequential


def _line(label: str, run: dict, floor: tuple | None, nodes: int) -> str:
    lost = nodes - run["totals"]["reported"]
    text = (f"{label:20} wall {run['wall']:7.2f} s   peak RSS {run['rss_mb']:6.1f} MB   reported "
            f"{run['totals']['reported']}/{nodes} (lost {lost}, duplicates {run['totals']['duplicates']})   "
            f"rows read {run['totals']['rows_read']}")
    if floor and floor[0]:
        text += f"\n{'':20} floor {floor[0]:6.2f} s (sequential {floor[1]:.2f} s)   wall/floor {run['wall'] / floor[0]:.3f}" \
                f" (vs sequential {run['wall'] / floor[1]:.3f})"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--tps", type=float, default=5.0, help="allowed calls/s per account, region and operation")
    parser.add_argument("--burst", type=float, default=5.0, help="token bucket size of the lab's throttling")
    parser.add_argument("--collect", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.collect:
        print(json.dumps(collect_once(json.loads(args.collect[0]), args.collect[1])))
        return 0

    import ansible
    import boto3
    import botocore

    print(f"bench report: {args.nodes} nodes over {len(ACCOUNTS)} accounts x {len(REGIONS)} regions; lab throttling "
          f"{args.tps:g} calls/s per account, region and operation (burst {args.burst:g}) on "
          f"{', '.join(THROTTLED_OPERATIONS)}")
    print(f"python {sys.version.split()[0]}, ansible-core {ansible.__version__}, boto3 {boto3.__version__}, "
          f"botocore {botocore.__version__}; lab in its own process, each collection in a fresh process")
    work = Path(tempfile.mkdtemp(prefix="fleetpatch-report-bench-"))
    spec = work / "fleet.yml"
    spec.write_text(json.dumps(fleet_spec(args.nodes)))  # JSON is YAML
    state = work / "lab"
    started = time.perf_counter()
    _labctl("up", "--state-dir", str(state), "--fleet", str(spec), "--timeout", "900")
    try:
        env = _env(state)
        scan_everything(env)
        print(f"lab seeded and scanned in {time.perf_counter() - started:.1f} s")

        _control(env, "POST", "/calls/reset")
        cold = _run_collection(env, work / "unthrottled.sqlite")
        needed = _calls(env)
        per_op = collections.Counter()
        for ops in needed.values():
            per_op.update(ops)
        print(f"calls the design needs (cold): {dict(sorted(per_op.items()))}; busiest account-region "
              f"{max(sum(o.get(op, 0) for op in THROTTLED_OPERATIONS) for o in needed.values())} throttled calls")
        print(_line("cold, unthrottled", cold, None, args.nodes))

        _control(env, "POST", "/throttle", {"rates": {op: args.tps for op in THROTTLED_OPERATIONS},
                                            "burst": args.burst})
        _control(env, "POST", "/calls/reset")
        throttled = _run_collection(env, work / "history.sqlite")
        counts = _control(env, "GET", "/throttle")["counts"]
        print(_line("cold, throttled", throttled, _floors(needed, args.tps, args.burst), args.nodes))
        print(f"{'':20} lab answered {counts['allowed']} calls, throttled {counts['throttled']}")

        _control(env, "POST", "/throttle", {"rates": {op: args.tps for op in THROTTLED_OPERATIONS},
                                            "burst": args.burst})
        _control(env, "POST", "/calls/reset")
        warm = _run_collection(env, work / "history.sqlite")
        patches = sum(ops.get("DescribeInstancePatches", 0) for ops in _calls(env).values())
        counts = _control(env, "GET", "/throttle")["counts"]
        # Nothing changed: the same listing and states calls as the cold run, and no DescribeInstancePatches.
        warm_needed = {scope: {op: n for op, n in ops.items() if op != "DescribeInstancePatches"}
                       for scope, ops in needed.items()}
        print(_line("warm, throttled", warm, _floors(warm_needed, args.tps, args.burst), args.nodes))
        print(f"{'':20} lab answered {counts['allowed']} calls, throttled {counts['throttled']}; "
              f"DescribeInstancePatches calls: {patches}")
        failures = [run["failures"] for run in (cold, throttled, warm) if run["failures"]]
        if failures:
            raise SystemExit(f"account-regions failed: {failures}")
    finally:
        _labctl("down", "--state-dir", str(state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
