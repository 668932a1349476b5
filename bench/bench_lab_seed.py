"""Bench (not a test): seeding a 5,000-instance fleet into the lab, stock moto vs fleetlab's moto fixes.

Scenario: tests/lab/fleets/bench-5000.yml (5,000 EC2 instances with 4-5 tags each, one account and region).
Anchor: stock moto. Ours: the same after `fleet.apply_moto_fixes()` (EC2 tag lookup by resource, in-place
instance lookup). Each run is a fresh subprocess, because moto's state is process-wide:
  1. seed the fleet in-process (fleet.seed)                          -> seconds, instances/s
  2. start the lab's moto server in that process and page through
     describe_instances with boto3 (MaxResults 1000)                  -> seconds, API calls
  3. page through DescribeInstanceInformation (50 per page)           -> seconds, API calls (lab code, same
     on both sides apart from the EC2 fixes it relies on)
Runs alternate anchor and ours (A B A B ...); the report gives the median and spread of each and ours/anchor.
Both sides must describe the same instances with the same tags (a digest is compared) before ratios are shown.

    .venv/bin/python bench/bench_lab_seed.py [--runs 3] [--fleet tests/lab/fleets/bench-5000.yml]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB_DIR = ROOT / "tests" / "lab"
DEFAULT_FLEET = LAB_DIR / "fleets" / "bench-5000.yml"
VARIANTS = ("stock", "fixed")


def _timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def _describe_all(client) -> tuple[list[dict], int]:
    instances, calls = [], 0
    for page in client.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 1000}):
        calls += 1
        instances += [i for r in page["Reservations"] for i in r["Instances"]]
    return instances, calls


def _instance_information(client) -> tuple[int, int]:
    nodes, calls = 0, 0
    for page in client.get_paginator("describe_instance_information").paginate(PaginationConfig={"PageSize": 50}):
        calls += 1
        nodes += len(page["InstanceInformationList"])
    return nodes, calls


def _tag_digest(instances: list[dict]) -> str:
    """What both sides must agree on: every instance's tags (instance ids are random per run)."""
    tag_sets = sorted(json.dumps(sorted((t["Key"], t["Value"]) for t in i.get("Tags", []))) for i in instances)
    return hashlib.sha256("\n".join(tag_sets).encode()).hexdigest()[:16]


def run_once(variant: str, fleet_path: Path) -> dict:
    """One measurement in this (fresh) process; printed as JSON for the parent."""
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # as the lab server does
    sys.path.insert(0, str(LAB_DIR))
    import boto3
    from moto.server import ThreadedMotoServer

    from fleetlab import api, fleet

    api.install()
    if variant == "fixed":
        fleet.apply_moto_fixes()
    spec = fleet.load(fleet_path)
    summary, seed_seconds = _timed(lambda: fleet.seed(spec))

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        session = boto3.Session(aws_access_key_id="fleetlab", aws_secret_access_key="fleetlab",
                                region_name=spec["regions"][0])
        endpoint = f"http://{host}:{port}"
        (instances, describe_calls), describe_seconds = _timed(
            lambda: _describe_all(session.client("ec2", endpoint_url=endpoint)))
        (nodes, dii_calls), dii_seconds = _timed(
            lambda: _instance_information(session.client("ssm", endpoint_url=endpoint)))
    finally:
        server.stop()
    return {
        "variant": variant, "instances": summary["totals"]["ec2"], "seed_seconds": seed_seconds,
        "described": len(instances), "describe_seconds": describe_seconds, "describe_calls": describe_calls,
        "nodes": nodes, "dii_seconds": dii_seconds, "dii_calls": dii_calls, "digest": _tag_digest(instances),
    }


def _measure(variant: str, fleet_path: Path) -> dict:
    command = [sys.executable, __file__, "--child", variant, "--fleet", str(fleet_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env={**os.environ, "NO_PROXY": "*"})
    if done.returncode != 0:
        raise SystemExit(f"{variant} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _stat(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} s  (spread {min(values):.2f}-{max(values):.2f})"


def _report(results: dict[str, list[dict]]) -> None:
    stock, fixed = results["stock"], results["fixed"]
    digests = {r["digest"] for r in stock + fixed}
    counts = {(r["described"], r["nodes"]) for r in stock + fixed}
    if len(digests) != 1 or len(counts) != 1:
        raise SystemExit(f"the two sides disagree: digests {digests}, (described, nodes) {counts}")
    size = stock[0]["instances"]
    print(f"{'':22}{'stock moto (anchor)':34}{'fleetlab fixes (ours)':34}ours/anchor")
    for key, label in (("seed_seconds", "seed in-process"), ("describe_seconds", "describe_instances"),
                       ("dii_seconds", "DescribeInstanceInfo")):
        a, b = [r[key] for r in stock], [r[key] for r in fixed]
        print(f"{label:22}{_stat(a):34}{_stat(b):34}{statistics.median(b) / statistics.median(a):.3f}")
    for label, result in (("stock", stock), ("fixed", fixed)):
        rate = size / statistics.median(r["seed_seconds"] for r in result)
        print(f"seed rate, {label}: {rate:,.0f} instances/s")
    print(f"API calls per run (both sides): describe_instances {stock[0]['describe_calls']}, "
          f"DescribeInstanceInformation {stock[0]['dii_calls']}; answers identical (tag digest {digests.pop()})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each side (median and spread reported)")
    parser.add_argument("--fleet", type=Path, default=DEFAULT_FLEET)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_once(args.child, args.fleet)))
        return 0

    import boto3
    import moto

    print(f"bench lab_seed: fleet {args.fleet.name}, {args.runs} run(s) per side, alternating; "
          f"python {sys.version.split()[0]}, moto {moto.__version__}, boto3 {boto3.__version__}")
    results: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    for run in range(args.runs):
        for variant in VARIANTS:
            result = _measure(variant, args.fleet)
            results[variant].append(result)
            print(f"  run {run + 1} {variant:5}: seed {result['seed_seconds']:.2f} s, describe_instances "
                  f"{result['describe_seconds']:.2f} s, DescribeInstanceInformation {result['dii_seconds']:.2f} s",
                  flush=True)
    _report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
