# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""execution-environment.yml makes a complete build context offline (`ansible-builder create`).

The image itself needs a container engine and the network; what can go wrong in this repository is checked
here: the context carries this collection's tarball under the name `make build` gives it, amazon.aws, the
plugins' Python requirements, and every collection the roles and playbooks call.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
# Configures AWX itself from an administrator's machine (docs/awx.md): not run inside the EE.
NOT_RUN_IN_THE_EE = {"playbooks/awx_setup.yml"}
BUILDER = shutil.which("ansible-builder", path=str(Path(sys.executable).parent)) or shutil.which("ansible-builder")

pytestmark = pytest.mark.skipif(BUILDER is None, reason="ansible-builder is not installed (requirements/test.txt)")


def galaxy_version() -> str:
    return yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]


def requirement_lines(text: str) -> list:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """The build context, made from a copy of the files the definition names (and a stand-in tarball)."""
    work = tmp_path_factory.mktemp("ee")
    shutil.copy(REPO / "execution-environment.yml", work)
    (work / "requirements").mkdir()
    shutil.copy(REPO / "requirements" / "runtime.txt", work / "requirements")
    (work / "build").mkdir()
    (work / "build" / f"fleetpatch-ssm-{galaxy_version()}.tar.gz").write_bytes(b"stand-in for `make build`")
    result = subprocess.run([BUILDER, "create", "-f", "execution-environment.yml", "-c", "context",
                             "--output-filename", "Containerfile"],
                            cwd=work, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No matches" not in result.stdout + result.stderr  # additional_build_files found the tarball
    return work / "context"


def collections_in(context: Path) -> dict:
    return {entry["name"]: entry for entry in yaml.safe_load((context / "_build/requirements.yml").read_text())[
        "collections"]}


def test_the_containerfile_builds_on_the_base_image_with_the_tested_ansible_core(context):
    containerfile = (context / "Containerfile").read_text()
    tested_core = re.search(r"^ansible-core==\S+", (REPO / "requirements/test.txt").read_text(), re.M).group(0)
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in containerfile
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    assert f'ARG ANSIBLE_INSTALL_REFS="{tested_core} ansible-runner==' in containerfile
    assert "ansible-galaxy collection install" in containerfile and "-r requirements.yml" in containerfile


def test_the_collection_is_the_tarball_make_build_produces(context):
    tarball = f"collections/fleetpatch-ssm-{galaxy_version()}.tar.gz"
    assert collections_in(context)[tarball]["type"] == "file"
    assert (context / "_build" / tarball).read_bytes() == b"stand-in for `make build`"


def test_amazon_aws_satisfies_the_collection_dependency(context):
    wanted = yaml.safe_load((REPO / "galaxy.yml").read_text())["dependencies"]["amazon.aws"]
    minimum = tuple(int(part) for part in re.fullmatch(r">=(\d+)\.(\d+)\.(\d+)", wanted).groups())
    version = str(collections_in(context)["amazon.aws"]["version"])
    assert tuple(int(part) for part in version.split(".")) >= minimum


def test_the_python_requirements_are_the_plugins_runtime_requirements(context):
    built = requirement_lines((context / "_build/requirements.txt").read_text())
    assert built == requirement_lines((REPO / "requirements/runtime.txt").read_text())
    assert any(line.startswith("boto3==") for line in built)


def test_every_collection_the_roles_and_playbooks_call_is_in_the_image(context):
    files = [*REPO.glob("roles/*/tasks/*.yml"), *REPO.glob("roles/*/handlers/*.yml"), *REPO.glob("playbooks/*.yml"),
             REPO / "site.yml"]
    used = set()
    for path in files:
        if path.relative_to(REPO).as_posix() in NOT_RUN_IN_THE_EE:
            continue
        used |= set(re.findall(r"^\s*(?:- )?([a-z_0-9]+\.[a-z_0-9]+)\.[a-z_0-9]+:", path.read_text(), re.M))
    provided = {"ansible.builtin", "fleetpatch.ssm"} | set(collections_in(context))
    assert "amazon.aws" in used
    assert used - provided == set()
