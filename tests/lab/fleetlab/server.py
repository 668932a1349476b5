"""`python -m fleetlab.server`: the lab in one foreground process.

Starts moto's server with the lab's SSM operations installed, the Azure compute endpoint and the control API,
seeds a fleet from a YAML spec, then writes `<state-dir>/env.sh` (the exports a shell, ansible-playbook or AWX
needs) and `<state-dir>/ready`. SIGTERM/SIGINT stop everything and remove env.sh and ready.
`labctl.py` runs this in the background for `make lab-up` / `make lab-down`.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent.parent
DEFAULT_FLEET = LAB_DIR / "fleets" / "reference.yml"
LAB_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "fleetlab", "AWS_SECRET_ACCESS_KEY": "fleetlab"}


def _env_file_text(env: dict[str, str]) -> str:
    lines = ["# fleetlab exports: `. .lab/env.sh` (written by fleetlab.server; removed by make lab-down)"]
    lines += [f"export {key}={shlex.quote(str(value))}" for key, value in env.items()]
    return "\n".join(lines) + "\n"


def _write_atomically(path: Path, text: str, mode: int = 0o600) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    tmp.replace(path)


class LabServer:
    """The running lab; also used in-process by tests (start() / stop())."""

    def __init__(self, state_dir: Path, fleet: Path | None, azure: bool = True, aws_port: int = 0) -> None:
        self.state_dir = state_dir
        self.fleet_path = fleet
        self.with_azure = azure
        self.aws_port = aws_port
        self.env: dict[str, str] = {}
        self.summary: dict = {}
        self._stoppers: list = []

    def start(self) -> dict[str, str]:
        # MOTO_EC2_LOAD_DEFAULT_AMIS=false: every launch would otherwise scan ~1,300 AMIs (see notes/testing.md).
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in the lab log
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from moto.server import ThreadedMotoServer

        # Every response would otherwise wait ~40 ms for a delayed ACK (Nagle); the lab's other endpoints do this too.
        MotoRequestHandler.disable_nagle_algorithm = True

        from . import api, control, fleet

        api.install()
        fleet.apply_moto_fixes()
        self.state_dir.mkdir(parents=True, exist_ok=True)

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.aws_port, verbose=False)
        moto.start()
        self._stoppers.append(moto.stop)
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"

        ctl = control.start()
        self._stoppers += [ctl.server_close, ctl.shutdown]  # run in reverse: stop serving, then close the socket

        spec = fleet.load(self.fleet_path) if self.fleet_path else fleet.empty_spec()
        self.env = {
            "AWS_ENDPOINT_URL": endpoint,  # boto3/botocore (all services)
            "AWS_URL": endpoint,  # amazon.aws modules' endpoint_url fallback
            **LAB_CREDENTIALS,
            "AWS_DEFAULT_REGION": spec["regions"][0],
            "AWS_REGION": spec["regions"][0],
            "FLEETLAB_CONTROL_URL": f"http://127.0.0.1:{ctl.server_address[1]}",
            "FLEETLAB_ACCOUNTS": " ".join(spec["accounts"]),
            "FLEETLAB_REGIONS": " ".join(spec["regions"]),
            "FLEETLAB_STATE_DIR": str(self.state_dir),
        }
        if self.with_azure:
            from . import azure

            endpoint_server, azure_env = azure.start(self.state_dir, spec)
            self._stoppers.append(endpoint_server.shutdown)
            self.env.update(azure_env)
        self.summary = fleet.seed(spec)
        _write_atomically(self.state_dir / "fleet-summary.json", json.dumps(self.summary, indent=2))
        _write_atomically(self.state_dir / "env.sh", _env_file_text(self.env))
        _write_atomically(self.state_dir / "ready", str(os.getpid()))
        return self.env

    def stop(self) -> None:
        for stop in reversed(self._stoppers):
            try:
                stop()
            except Exception:  # stopping is best effort; the process exits next
                pass
        self._stoppers.clear()
        for name in ("env.sh", "ready"):
            (self.state_dir / name).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fleetlab.server", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, default=Path(".lab"))
    parser.add_argument("--fleet", default=str(DEFAULT_FLEET), help="fleet spec YAML, or 'none'")
    parser.add_argument("--no-azure", action="store_true")
    parser.add_argument("--aws-port", type=int, default=0)
    args = parser.parse_args(argv)

    fleet_path = None if args.fleet == "none" else Path(args.fleet)
    server = LabServer(args.state_dir.resolve(), fleet_path, azure=not args.no_azure, aws_port=args.aws_port)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        env = server.start()
    except Exception:
        server.stop()
        raise
    print(f"fleetlab ready: AWS {env['AWS_ENDPOINT_URL']}, control {env['FLEETLAB_CONTROL_URL']}", flush=True)
    print(json.dumps(server.summary.get("totals", {})), flush=True)
    done.wait()
    server.stop()
    print("fleetlab stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
