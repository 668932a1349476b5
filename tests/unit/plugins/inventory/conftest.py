# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory plugin tests load fleetpatch.ssm.fleet through Ansible's plugin loader: its options come from its
DOCUMENTATION (and amazon.aws's doc fragments) that way.

ansible-test units installs Ansible's collection loader before any test runs. Plain pytest (make test-unit) gets
it here, when this conftest is imported: before the test modules of this directory import the collection, because
a collection package imported around the loader lacks the metadata the plugin loader needs.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from ansible.plugins.loader import init_plugin_loader
from ansible.utils.collection_loader import AnsibleCollectionConfig

COLLECTIONS = Path(__file__).resolve().parents[4] / ".cache" / "collections"

if AnsibleCollectionConfig.collection_finder is None:
    init_plugin_loader([str(COLLECTIONS)])


@pytest.fixture(scope="session")
def inventory_plugins():
    from ansible.plugins.loader import inventory_loader

    return inventory_loader
