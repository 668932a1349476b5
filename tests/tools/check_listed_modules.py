# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make build` smoke check: ansible-doc, reading the installed artifact, lists every module of plugins/modules.

Usage: check_listed_modules.py LISTED_JSON MODULES_DIR, where LISTED_JSON is `ansible-doc -l fleetpatch.ssm --json`.
A module missing from the list did not make it into the artifact or has documentation ansible-doc cannot read.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

COLLECTION = "fleetpatch.ssm"


def main(listed_json: str, modules_dir: str) -> int:
    listed = {name.rsplit(".", 1)[-1] for name in json.loads(Path(listed_json).read_text())}
    expected = {path.stem for path in Path(modules_dir).glob("*.py") if path.stem != "__init__"}
    missing = sorted(expected - listed)
    if missing:
        print(f"build: ansible-doc does not list {', '.join(missing)} from the built {COLLECTION}", file=sys.stderr)
        return 1
    print(f"build: ansible-doc lists all {len(expected)} modules of the built {COLLECTION}: {', '.join(sorted(listed))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
