# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The built artifact is usable: `ansible-galaxy collection build`, an install into a clean collections path, then
ansible-doc lists and renders every module, inventory plugin and role the checkout has.

The same steps as `make build`: an offline install without dependencies into a temporary path that is the only
collections path, and amazon.aws (the one dependency) linked beside it from .cache/collections (`make collections`).
The expected names come from the tree (plugins/modules, plugins/inventory, roles), so new content is covered
without a change here. No lab is needed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
COLLECTION = "fleetpatch.ssm"
AMAZON_AWS = CHECKOUT / ".cache" / "collections" / "ansible_collections" / "amazon" / "aws"
BIN = Path(sys.executable).parent
# What ansible-doc calls each kind of content in its text output: "> MODULE fleetpatch.ssm.patch_group (...)".
HEADERS = {"module": "MODULE", "inventory": "INVENTORY", "role": "ROLE:"}


def names_in_tree(plugin_type: str) -> set[str]:
    if plugin_type == "role":
        return {path.name for path in (CHECKOUT / "roles").iterdir() if (path / "tasks").is_dir()}
    folder = CHECKOUT / "plugins" / ("modules" if plugin_type == "module" else plugin_type)
    return {path.stem for path in folder.glob("*.py") if path.stem != "__init__"}


def run(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """The environment of an ansible-doc that sees only the installed artifact (and amazon.aws)."""
    if not (AMAZON_AWS / "MANIFEST.json").is_file():
        pytest.fail(f"amazon.aws is missing from {AMAZON_AWS}: run `make collections`")
    work = tmp_path_factory.mktemp("build")
    collections = work / "collections"
    # No ANSIBLE_* from the caller (`make` exports ANSIBLE_COLLECTIONS_PATH=.cache/collections, where fleetpatch.ssm
    # is the checkout: ansible-galaxy would find it "already installed" there and install nothing).
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1", PATH=f"{BIN}:{env['PATH']}")
    run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(work / "dist"), str(CHECKOUT)], env=env)
    (artifact,) = (work / "dist").glob("fleetpatch-ssm-*.tar.gz")
    # Never the checkout's .cache/collections here: an install there would replace the symlink to the checkout.
    run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "-p", str(collections), str(artifact)],
        env=env)
    (collections / "ansible_collections" / "amazon").mkdir(parents=True)
    (collections / "ansible_collections" / "amazon" / "aws").symlink_to(AMAZON_AWS)
    return env


def ansible_doc(env: dict[str, str], plugin_type: str, *args: str) -> str:
    # Run from the temporary directory: from the checkout, ansible-doc would also find roles/ next to it.
    return run([str(BIN / "ansible-doc"), "-t", plugin_type, *args], env=env, cwd=Path(env["ANSIBLE_COLLECTIONS_PATH"]))


def test_the_artifact_is_installed_from_the_built_tarball(installed):
    manifest = Path(installed["ANSIBLE_COLLECTIONS_PATH"]) / "ansible_collections" / "fleetpatch" / "ssm" / "MANIFEST.json"
    assert not manifest.parent.is_symlink()
    assert json.loads(manifest.read_text())["collection_info"]["name"] == "ssm"


@pytest.mark.parametrize("plugin_type", sorted(HEADERS))
def test_ansible_doc_lists_everything_the_checkout_has(installed, plugin_type):
    listed = json.loads(ansible_doc(installed, plugin_type, "-l", COLLECTION, "--json"))
    assert {fqcn.removeprefix(f"{COLLECTION}.") for fqcn in listed} == names_in_tree(plugin_type)


@pytest.mark.parametrize("plugin_type", sorted(HEADERS))
def test_ansible_doc_renders_each_from_the_installed_artifact(installed, plugin_type):
    names = sorted(names_in_tree(plugin_type))
    text = ansible_doc(installed, plugin_type, *(f"{COLLECTION}.{name}" for name in names))
    installed_root = Path(installed["ANSIBLE_COLLECTIONS_PATH"]) / "ansible_collections" / "fleetpatch" / "ssm"
    headers = [line for line in text.splitlines() if line.startswith(f"> {HEADERS[plugin_type]} ")]
    # Without colours ansible-doc marks the name as *bold*.
    assert sorted(header.split()[-2].strip("*") for header in headers) == [f"{COLLECTION}.{name}" for name in names]
    assert all(f"({installed_root}" in header for header in headers), headers
