# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain `pytest tests/unit` (make test-unit) imports the plugins as ansible_collections.fleetpatch.ssm.

`make collections` puts this checkout (as fleetpatch.ssm) and amazon.aws under .cache/collections. Under
`ansible-test units` that directory is not there and ansible-test sets the import path itself.
"""
from __future__ import annotations

import sys
from pathlib import Path

COLLECTIONS = Path(__file__).resolve().parents[2] / ".cache" / "collections"

if COLLECTIONS.is_dir() and str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
