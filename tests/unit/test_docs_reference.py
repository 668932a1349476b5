# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/reference is exactly what tools/docs_reference.py makes from the current code, so it cannot drift.

The generator reads ansible-doc (fleetpatch.ssm found through ANSIBLE_COLLECTIONS_PATH, or .cache/collections) and
renders in memory: nothing is written. The other tests render made-up documentation, to pin what a page says.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("antsibull_docs_parser", reason="the generator renders Ansible markup with antsibull-docs-parser")

CHECKOUT = Path(__file__).resolve().parents[2]
REFERENCE = CHECKOUT / "docs" / "reference"


def load_generator():
    spec = importlib.util.spec_from_file_location("docs_reference", CHECKOUT / "tools" / "docs_reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


docs_reference = load_generator()


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return docs_reference.generate()


def test_docs_reference_is_what_the_generator_makes_from_the_code(generated):
    on_disk = {path.name: path.read_text(encoding="utf-8") for path in REFERENCE.glob("*.md")}
    differing = sorted(name for name in on_disk.keys() | generated.keys() if on_disk.get(name) != generated.get(name))
    assert not differing, (
        f"docs/reference is not what the code documents ({', '.join(differing)}): "
        "run `make docs` (tools/docs_reference.py) and commit docs/reference"
    )


def test_every_module_inventory_plugin_and_role_of_the_tree_has_a_page(generated):
    expected = {"README.md"}
    expected |= {f"{path.stem}_module.md" for path in (CHECKOUT / "plugins" / "modules").glob("[!_]*.py")}
    expected |= {f"{path.stem}_inventory.md" for path in (CHECKOUT / "plugins" / "inventory").glob("[!_]*.py")}
    expected |= {f"{path.name}_role.md" for path in (CHECKOUT / "roles").iterdir() if (path / "tasks").is_dir()}
    assert set(generated) == expected


# --- what a page says, from made-up documentation ----------------------------------------------------------------

MODULE = {
    "doc": {
        "short_description": "Manage widgets",
        "version_added": "0.1.0",
        "description": ["Makes a widget. See O(rules[].key) and M(fleetpatch.ssm.other)."],
        "options": {
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"], "description": "What."},
            "rules": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "description": ["The rules.", "A | in C(a|b) stays in its cell."],
                "suboptions": {"key": {"type": "str", "description": "Its key, see RV(widget.id)."}},
            },
        },
        "seealso": [{"module": "amazon.aws.ec2_instance"}],
        "author": ["someone (@someone)"],
    },
    "examples": "\n- name: Make one\n  fleetpatch.ssm.widget:\n    rules: []\n",
    "return": {
        "widget": {
            "type": "dict",
            "returned": "always",
            "description": "It.",
            "contains": {"id": {"type": "str", "description": "ID.", "sample": "w-1"}},
        }
    },
}
OTHER = {"doc": {"short_description": "Other", "description": "O(fleetpatch.ssm.widget#module:state=absent) removes."}}
ROLE = {
    "entry_points": {
        "main": {
            "short_description": "Do the thing",
            "description": ["Uses O(widget_accounts[].role_arn)."],
            "options": {
                "widget_accounts": {
                    "type": "list",
                    "elements": "dict",
                    "default": [],
                    "description": "Accounts.",
                    "options": {"role_arn": {"type": "str", "description": "Role."}},
                }
            },
        },
        "install": {"short_description": "Install", "description": "Installs.", "options": {}},
    }
}


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return docs_reference.render({"module": {"widget": MODULE, "other": OTHER}, "inventory": {}, "role": {"thing": ROLE}})


def row(page: str, anchor: str) -> str:
    return next(line for line in page.splitlines() if f'<a id="{anchor}"></a>' in line)


def test_an_option_row_has_its_type_default_choices_and_description(pages):
    assert row(pages["widget_module.md"], "parameter-state") == (
        '| <a id="parameter-state"></a>`state` | str | `"present"` | What.<br><br>Choices: `"present"`, `"absent"` |'
    )


def test_nested_options_are_named_as_a_playbook_writes_them_and_required_ones_are_marked(pages):
    assert row(pages["widget_module.md"], "parameter-rules").startswith(
        '| <a id="parameter-rules"></a>`rules`<br>**required** | list of dict |  | The rules.<br><br>A \\| in `a\\|b` stays'
    )
    assert '&nbsp;&nbsp;`rules[].key` | str |' in row(pages["widget_module.md"], "parameter-rules/key")


def test_markup_links_to_options_return_values_and_other_pages(pages):
    widget = pages["widget_module.md"]
    assert "See [`rules[].key`](#parameter-rules/key) and [`fleetpatch.ssm.other`](other_module.md)." in widget
    assert "see [`widget.id`](#return-widget/id)" in widget
    assert "(https://docs.ansible.com/ansible/latest/collections/amazon/aws/ec2_instance_module.html)" in widget
    assert "[`state=absent`](widget_module.md#parameter-state) removes." in pages["other_module.md"]


def test_examples_and_return_values_are_on_the_module_page(pages):
    widget = pages["widget_module.md"]
    assert "```yaml\n- name: Make one\n  fleetpatch.ssm.widget:\n    rules: []\n```" in widget
    assert '`widget.id` |  | str | ID.<br><br>Sample: `"w-1"` |' in row(widget, "return-widget/id")


def test_a_role_page_has_every_entry_point_with_its_options(pages):
    role = pages["thing_role.md"]
    assert "## Entry point `install`" in role and "## Entry point `main`" in role
    assert "tasks_from: install" in role
    assert "Uses [`widget_accounts[].role_arn`](#main--parameter-widget_accounts/role_arn)." in role
    assert "| list of dict | `[]` | Accounts. |" in row(role, "main--parameter-widget_accounts")


def test_the_index_links_every_page(pages):
    index = pages["README.md"]
    for link in ("(widget_module.md)", "(other_module.md)", "(thing_role.md)", "(thing_role.md#entry-point-install)"):
        assert link in index


def test_bad_markup_names_the_plugin():
    broken = {"doc": {"short_description": "Broken", "description": "C(unclosed"}}
    with pytest.raises(docs_reference.ReferenceError, match=r"fleetpatch\.ssm\.broken: bad markup"):
        docs_reference.render({"module": {"broken": broken}, "inventory": {}, "role": {}})
