"""`python -m fleetlab.labctl up|down|status`: the lab in the background (make lab-up / make lab-down).

up: starts `fleetlab.server` in its own session, waits for `<state-dir>/ready`, prints where env.sh is.
    Already running: says so and does nothing.
down: stops the whole process group (SIGTERM, then SIGKILL after a grace period). Not running: says so.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent.parent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False


def _pid(state_dir: Path) -> int | None:
    try:
        pid = int((state_dir / "lab.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def up(state_dir: Path, fleet: str, timeout: float) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    pid = _pid(state_dir)
    if pid and (state_dir / "ready").exists():
        print(f"fleetlab already running (pid {pid}); exports in {state_dir / 'env.sh'}")
        return 0
    if pid:
        down(state_dir, grace=10)
    for stale in ("ready", "env.sh"):
        (state_dir / stale).unlink(missing_ok=True)
    log = open(state_dir / "lab.log", "w")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(LAB_DIR), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetlab.server", "--state-dir", str(state_dir), "--fleet", fleet],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
    )
    (state_dir / "lab.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (state_dir / "ready").exists():
            print(f"fleetlab up (pid {proc.pid}); exports: . {state_dir / 'env.sh'}; log: {state_dir / 'lab.log'}")
            return 0
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    print("fleetlab failed to start; last lines of its log:", file=sys.stderr)
    print("\n".join((state_dir / "lab.log").read_text().splitlines()[-30:]), file=sys.stderr)
    down(state_dir, grace=5)
    return 1


def down(state_dir: Path, grace: float = 15) -> int:
    pid = _pid(state_dir)
    if pid is None:
        (state_dir / "lab.pid").unlink(missing_ok=True)
        print("fleetlab is not running")
        return 0
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
    for name in ("lab.pid", "ready", "env.sh"):
        (state_dir / name).unlink(missing_ok=True)
    print(f"fleetlab stopped (pid {pid})")
    return 0


def status(state_dir: Path) -> int:
    pid = _pid(state_dir)
    if pid and (state_dir / "ready").exists():
        print(f"fleetlab running (pid {pid})")
        return 0
    print("fleetlab is not running")
    return 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fleetlab.labctl")
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--state-dir", type=Path, default=Path(".lab"))
    parser.add_argument("--fleet", default=str(LAB_DIR / "fleets" / "reference.yml"))
    parser.add_argument("--timeout", type=float, default=240)
    args = parser.parse_args(argv)
    state_dir = args.state_dir.resolve()
    if args.action == "up":
        return up(state_dir, args.fleet, args.timeout)
    if args.action == "down":
        return down(state_dir)
    return status(state_dir)


if __name__ == "__main__":
    sys.exit(main())
