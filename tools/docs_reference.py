# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generate docs/reference: one Markdown page per module, inventory plugin and role of fleetpatch.ssm, and an index.

Usage: tools/docs_reference.py [--output DIR]     (`make docs`; DIR defaults to docs/reference of this checkout)

The pages are made from what `ansible-doc --json` reads (modules' DOCUMENTATION/EXAMPLES/RETURN, the inventory
plugin's DOCUMENTATION, roles' meta/argument_specs.yml), so they say exactly what `ansible-doc` says. Ansible markup
(C(), O(), M(), ...) is rendered by antsibull-docs-parser, the pages by the Jinja2 templates in
tools/docs_reference_templates. The output is deterministic (sorted, no timestamps): tests/unit/test_docs_reference.py
fails when docs/reference is not what this script makes from the current code.

ansible-doc must find this checkout as fleetpatch.ssm: ANSIBLE_COLLECTIONS_PATH as set by the Makefile, or, when it
is unset, the checkout's .cache/collections (`make collections`).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2
from antsibull_docs_parser import dom
from antsibull_docs_parser.format import LinkProvider
from antsibull_docs_parser.md import MDFormatter, to_md
from antsibull_docs_parser.parser import Context, Whitespace, parse

COLLECTION = "fleetpatch.ssm"
CHECKOUT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = CHECKOUT / "docs" / "reference"
TEMPLATES = Path(__file__).resolve().parent / "docs_reference_templates"
INDEX_PAGE = "README.md"
# Where each kind of content lives in the checkout, to check that ansible-doc listed all of it.
SOURCES = {
    "module": lambda: sorted(p.stem for p in (CHECKOUT / "plugins" / "modules").glob("*.py") if p.stem != "__init__"),
    "inventory": lambda: sorted(p.stem for p in (CHECKOUT / "plugins" / "inventory").glob("*.py") if p.stem != "__init__"),
    "role": lambda: sorted(p.name for p in (CHECKOUT / "roles").iterdir() if (p / "tasks").is_dir()),
}
TEMPLATE = {"module": "plugin.md.j2", "inventory": "plugin.md.j2", "role": "role.md.j2"}
ANSIBLE_DOCS = "https://docs.ansible.com/ansible/latest/collections"


class ReferenceError(Exception):
    """The reference cannot be generated; the message says why."""


# --- reading the documentation ---------------------------------------------------------------------------------


def ansible_doc(*args: str) -> dict:
    """`ansible-doc --json ARGS`, parsed."""
    command = [ansible_doc_executable(), "--json", *args]
    result = subprocess.run(command, env=ansible_environment(), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ReferenceError(f"ansible-doc {' '.join(command[1:])} failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def ansible_doc_executable() -> str:
    # The interpreter's own ansible-doc first: the venv's when run as .venv/bin/python, whatever PATH says.
    found = shutil.which("ansible-doc", path=str(Path(sys.executable).parent)) or shutil.which("ansible-doc")
    if not found:
        raise ReferenceError("ansible-doc is not installed (it comes with ansible-core)")
    return found


def ansible_environment() -> dict[str, str]:
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    local_collections = CHECKOUT / ".cache" / "collections"
    if not env.get("ANSIBLE_COLLECTIONS_PATH") and local_collections.is_dir():
        env["ANSIBLE_COLLECTIONS_PATH"] = str(local_collections)
    return env


def read_docs(plugin_type: str) -> dict[str, dict]:
    """Every documented `plugin_type` of the collection: short name -> ansible-doc's JSON for it."""
    listed = sorted(ansible_doc("-t", plugin_type, "-l", COLLECTION))
    docs = {short_name(fqcn): doc for fqcn, doc in (ansible_doc("-t", plugin_type, *listed) if listed else {}).items()}
    undocumented = sorted(set(SOURCES[plugin_type]()) - set(docs))
    if undocumented:
        raise ReferenceError(
            f"ansible-doc has no documentation for the {plugin_type} {', '.join(undocumented)} of {COLLECTION}: "
            f"{'meta/argument_specs.yml' if plugin_type == 'role' else 'DOCUMENTATION'} is missing or unreadable "
            f"(`ansible-doc -t {plugin_type} {COLLECTION}.{undocumented[0]}` says why)"
        )
    for name, doc in docs.items():
        ensure_from_checkout(f"{COLLECTION}.{name}", doc)
    return docs


def ensure_from_checkout(fqcn: str, doc: dict) -> None:
    """Refuse to document another copy of the collection than this checkout (an installed one, say)."""
    source = doc.get("path") or doc.get("doc", {}).get("filename")
    if source and not Path(source).resolve().is_relative_to(CHECKOUT):
        raise ReferenceError(
            f"ansible-doc reads {fqcn} from {source}, not from this checkout ({CHECKOUT}): "
            f"put the checkout first on ANSIBLE_COLLECTIONS_PATH (`make collections` links it into .cache/collections)"
        )


def short_name(fqcn: str) -> str:
    return fqcn.rsplit(".", 1)[-1]


# --- the model the templates render ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Field:
    """One option or return value, with nested ones flattened into the table after their parent."""

    path: tuple[str, ...]
    label: str  # how a playbook writes it: rules[].filters[].key
    anchor: str
    spec: dict

    @property
    def depth(self) -> int:
        return len(self.path) - 1


def flatten(specs: dict | None, kind: str, anchor_prefix: str, nested_key: str) -> list[Field]:
    """Options (kind "parameter") or return values (kind "return") depth first, each level sorted by name."""
    fields: list[Field] = []

    def walk(level: dict, path: tuple[str, ...], label: str) -> None:
        for name in sorted(level):
            spec = level[name]
            field_path = path + (name,)
            field_label = f"{label}.{name}" if label else name
            fields.append(Field(field_path, field_label, f"{anchor_prefix}{kind}-{'/'.join(field_path)}", spec))
            children = spec.get(nested_key)
            if children:
                walk(children, field_path, field_label + ("[]" if spec.get("type") == "list" else ""))

    walk(specs or {}, (), "")
    return fields


@dataclasses.dataclass
class Page:
    """A page: its file name, what it documents and the anchors its options and return values get."""

    filename: str
    plugin: dom.PluginIdentifier
    doc: dict
    anchors: dict[tuple[str | None, str, tuple[str, ...]], str] = dataclasses.field(default_factory=dict)

    def fields(self, specs: dict | None, kind: str, entry_point: str | None = None) -> list[Field]:
        nested_key = {"parameter": "options" if self.plugin.type == "role" else "suboptions", "return": "contains"}[kind]
        fields = flatten(specs, kind, f"{entry_point}--" if entry_point else "", nested_key)
        for field in fields:
            self.anchors[(entry_point, kind, field.path)] = field.anchor
        return fields


def page_filename(plugin_type: str, name: str) -> str:
    return f"{name}_{plugin_type}.md"


def build_pages(docs_by_type: dict[str, dict[str, dict]]) -> list[Page]:
    pages = [
        Page(page_filename(plugin_type, name), dom.PluginIdentifier(f"{COLLECTION}.{name}", plugin_type), doc)
        for plugin_type, docs in sorted(docs_by_type.items())
        for name, doc in sorted(docs.items())
    ]
    for page in pages:  # every anchor is known before any page links to another
        register_anchors(page)
    return pages


def register_anchors(page: Page) -> None:
    if page.plugin.type == "role":
        for entry_point, spec in page.doc.get("entry_points", {}).items():
            page.fields(spec.get("options"), "parameter", entry_point)
    else:
        page.fields(page.doc["doc"].get("options"), "parameter")
        page.fields(page.doc.get("return"), "return")


# --- Ansible markup to Markdown ----------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"[\\`*\[\]<]|(?<!\w)_|_(?!\w)")  # an intra-word _ is no emphasis in CommonMark
_BLOCK_START = re.compile(r"^(?=[#>+-]\s|\d+[.)]\s)")  # would start a heading, quote or list


def escape(text: str) -> str:
    return _MD_SPECIAL.sub(lambda match: "\\" + match.group(0), text)


def code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    padding = " " if fence == "``" else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def linked(text: str, url: str | None) -> str:
    return f"[{text}]({url})" if url else text


class MarkdownFormatter(MDFormatter):
    """antsibull-docs-parser's Markdown, with code spans and Markdown links instead of HTML and lighter escaping."""

    def format_error(self, part: dom.ErrorPart) -> str:
        raise ReferenceError(part.message)

    def format_bold(self, part: dom.BoldPart) -> str:
        return f"**{escape(part.text)}**"

    def format_code(self, part: dom.CodePart) -> str:
        return code(part.text)

    def format_italic(self, part: dom.ItalicPart) -> str:
        return f"*{escape(part.text)}*"

    def format_link(self, part: dom.LinkPart) -> str:
        return f"[{escape(part.text)}]({part.url})"

    def format_module(self, part: dom.ModulePart, url: str | None) -> str:
        return linked(code(part.fqcn), url)

    def format_plugin(self, part: dom.PluginPart, url: str | None) -> str:
        return linked(code(part.plugin.fqcn), url)

    def format_rst_ref(self, part: dom.RSTRefPart) -> str:
        return escape(part.text)

    def format_url(self, part: dom.URLPart) -> str:
        return f"<{part.url}>"

    def format_text(self, part: dom.TextPart) -> str:
        return escape(part.text)

    def format_env_variable(self, part: dom.EnvVariablePart) -> str:
        return code(part.name)

    def format_option_name(self, part: dom.OptionNamePart, url: str | None) -> str:
        return linked(code(part.name if part.value is None else f"{part.name}={part.value}"), url)

    def format_option_value(self, part: dom.OptionValuePart) -> str:
        return code(part.value)

    def format_return_value(self, part: dom.ReturnValuePart, url: str | None) -> str:
        return self.format_option_name(part, url)


class ReferenceLinks(LinkProvider):
    """Links to the reference's own pages and anchors; other collections' plugins go to docs.ansible.com."""

    def __init__(self, pages: list[Page], current: Page | None):
        self.pages = {page.plugin: page for page in pages}
        self.current = current

    def plugin_link(self, plugin: dom.PluginIdentifier) -> str | None:
        if plugin in self.pages:
            page = self.pages[plugin]
            return None if page is self.current else page.filename
        namespace, name, short = plugin.fqcn.split(".", 2)
        return f"{ANSIBLE_DOCS}/{namespace}/{name}/{short}_{plugin.type}.html"

    def plugin_option_like_link(self, plugin, entrypoint, what, name, current_plugin) -> str | None:
        page = self.pages.get(plugin)
        kind = "parameter" if what == "option" else "return"
        anchor = page and page.anchors.get((entrypoint, kind, tuple(name)))
        if not anchor:  # another collection's option, or one the documentation does not have: no broken link
            return None
        return f"#{anchor}" if page is self.current else f"{page.filename}#{anchor}"


class MarkupRenderer:
    """Renders the Ansible markup (a string or a list of paragraphs) of one page, or of the index, as Markdown."""

    def __init__(self, pages: list[Page], page: Page | None):
        self.plugin = page.plugin if page else None
        self.links = ReferenceLinks(pages, page)

    def __call__(self, text: str | list[str] | None, entry_point: str | None = None) -> str:
        if not text:
            return ""
        where = self.plugin.fqcn if self.plugin else "the index"
        if not all(isinstance(paragraph, str) for paragraph in ([text] if isinstance(text, str) else text)):
            # YAML makes a dict of a description line with ": " in it; ansible-doc's text output refuses it too
            raise ReferenceError(f"{where}: a description must be a text or a list of texts, not {text!r}")
        context = Context(current_plugin=self.plugin, role_entrypoint=entry_point)
        try:
            paragraphs = parse(text, context, errors="exception", whitespace=Whitespace.STRIP)
            markdown = to_md(paragraphs, MarkdownFormatter(), self.links, current_plugin=self.plugin)
        except (ValueError, ReferenceError) as error:
            raise ReferenceError(f"{where}: bad markup in {text!r}: {error}") from error
        return "\n\n".join(_BLOCK_START.sub("\\\\", paragraph) for paragraph in markdown.split("\n\n"))


# --- rendering ---------------------------------------------------------------------------------------------------


def table_cell(markdown: str) -> str:
    """Markdown paragraphs as one table cell: paragraphs joined by line breaks, pipes escaped (code spans too)."""
    return "<br><br>".join(markdown.split("\n\n")).replace("\n", " ").replace("|", "\\|")


def value(data: object) -> str:
    """A default, choice or sample as an inline code span, in JSON (what YAML reads back as the same value)."""
    return code(json.dumps(data, sort_keys=True))


def field_details(spec: dict) -> list[str]:
    """What a table cell says about a field after its description: choices, where else it is set, a sample."""
    details = []
    choices = spec.get("choices")
    if isinstance(choices, dict):  # ansible-core 2.17+: a description per choice
        described = (f"{value(choice)} - {escape(str(text))}" for choice, text in choices.items())
        details.append("Choices:<br>" + "<br>".join(described))
    elif choices:
        details.append("Choices: " + ", ".join(value(choice) for choice in choices))
    if spec.get("env"):
        details.append("Environment: " + ", ".join(code(env["name"]) for env in spec["env"]))
    if spec.get("ini"):
        details.append("ini: " + ", ".join(code(f"[{ini['section']}] {ini['key']}") for ini in spec["ini"]))
    if spec.get("vars"):
        details.append("Variable: " + ", ".join(code(var["name"]) for var in spec["vars"]))
    if "sample" in spec:
        details.append("Sample: " + value(spec["sample"]))
    return details


def type_of(spec: dict) -> str:
    kind = spec.get("type", "")
    return f"{kind} of {spec['elements']}" if spec.get("elements") else kind


class OptionalUndefined(jinja2.StrictUndefined):
    """A missing key is false in `{% if %}` (most documentation keys are optional) but an error anywhere else."""

    def __bool__(self) -> bool:
        return False


def template_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=OptionalUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown, not HTML: the markup renderer escapes what it must
    )
    env.filters.update(cell=table_cell, value=value, type_of=type_of, code=code, details=field_details)
    env.globals.update(collection=COLLECTION, generator=Path(__file__).resolve().relative_to(CHECKOUT).as_posix())
    return env


def render(docs_by_type: dict[str, dict[str, dict]]) -> dict[str, str]:
    """The reference, file name -> Markdown."""
    env = template_environment()
    pages = build_pages(docs_by_type)
    rendered = {
        page.filename: env.get_template(TEMPLATE[page.plugin.type]).render(
            page=page, doc=page.doc, md=MarkupRenderer(pages, page)
        )
        for page in pages
    }
    by_type = {plugin_type: [page for page in pages if page.plugin.type == plugin_type] for plugin_type in SOURCES}
    index = env.get_template("index.md.j2").render(pages=by_type, md=MarkupRenderer(pages, None))
    return {INDEX_PAGE: index, **rendered}


def generate() -> dict[str, str]:
    return render({plugin_type: read_docs(plugin_type) for plugin_type in SOURCES})


def write(reference: dict[str, str], output: Path) -> None:
    """Writes the pages and removes the pages of content that no longer exists."""
    output.mkdir(parents=True, exist_ok=True)
    for stale in sorted(set(p.name for p in output.glob("*.md")) - set(reference)):
        (output / stale).unlink()
    for filename, text in reference.items():
        (output / filename).write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="default: %(default)s")
    args = parser.parse_args(argv)
    try:
        reference = generate()
    except ReferenceError as error:
        print(f"docs_reference: {error}", file=sys.stderr)
        return 1
    write(reference, args.output)
    print(f"docs_reference: {len(reference)} pages in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
