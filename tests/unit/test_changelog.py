# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The changelog can be released: antsibull-changelog accepts every fragment and changelogs/changelog.yaml.

`make changelog RELEASE=1` (antsibull-changelog release) turns the fragments into CHANGELOG.md and changelog.yaml;
a fragment it rejects would stop the release, so it is rejected here first, naming the file.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
ANTSIBULL_CHANGELOG = shutil.which("antsibull-changelog", path=str(Path(sys.executable).parent)) or shutil.which(
    "antsibull-changelog"
)

pytestmark = pytest.mark.skipif(not ANTSIBULL_CHANGELOG, reason="antsibull-changelog is in requirements/test.txt")


def lint(*args: str, cwd: Path = CHECKOUT) -> subprocess.CompletedProcess:
    return subprocess.run([ANTSIBULL_CHANGELOG, *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_every_fragment_is_valid():
    result = lint("lint")
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_released_changes_are_valid():
    result = lint("lint-changelog-yaml", "changelogs/changelog.yaml")
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_a_fragment_in_an_unknown_section_is_reported(tmp_path):
    shutil.copytree(CHECKOUT / "changelogs", tmp_path / "changelogs")
    shutil.copy(CHECKOUT / "galaxy.yml", tmp_path)
    (tmp_path / "changelogs" / "fragments" / "typo.yml").write_text("minor_change:\n  - Wrong section name.\n")
    result = lint("lint", cwd=tmp_path)
    assert "typo.yml" in result.stdout and "minor_change" in result.stdout
