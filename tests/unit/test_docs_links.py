# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every relative link of the documentation leads somewhere: README.md, docs/**/*.md and roles/*/README.md.

A link must name an existing file or directory of the checkout and, with `#anchor`, a heading of the target page
(GitHub's anchor for it) or an element with that id. Links with a scheme (https:, mailto:) are not followed.
The Markdown is parsed with markdown-it-py (CommonMark + tables), so links in code are not links.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

import pytest

markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py parses the Markdown (requirements/test.txt)")

CHECKOUT = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", "docs/**/*.md", "roles/*/README.md")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
HTML_ATTRIBUTE = re.compile(r"""\b(href|id|name)\s*=\s*["']([^"']*)["']""")
PARSER = markdown_it.MarkdownIt("commonmark").enable("table")


def documents(root: Path) -> list[Path]:
    return sorted({path for pattern in DOCUMENTS for path in root.glob(pattern)})


def tokens(path: Path) -> list:
    """Block tokens and, flattened after each inline token, its children."""
    flat = []
    for token in PARSER.parse(path.read_text(encoding="utf-8")):
        flat.append(token)
        flat.extend(token.children or ())
    return flat


def html_attributes(token, wanted: str) -> list[str]:
    if token.type not in ("html_inline", "html_block"):
        return []
    return [value for name, value in HTML_ATTRIBUTE.findall(token.content) if name == wanted]


def links(path: Path) -> list[str]:
    found = []
    for token in tokens(path):
        if token.type == "link_open":
            found.append(token.attrs["href"])
        elif token.type == "image":
            found.append(token.attrs["src"])
        found.extend(html_attributes(token, "href"))
    return found


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = unicodedata.normalize("NFC", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@lru_cache(maxsize=None)
def anchors(path: Path) -> frozenset[str]:
    """The headings' anchors (a repeated heading gets -1, -2, ...) and the ids and names of HTML elements."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    all_tokens = tokens(path)
    for index, token in enumerate(all_tokens):
        if token.type == "heading_open":
            inline = all_tokens[index + 1]
            text = "".join(child.content for child in inline.children if child.type in ("text", "code_inline"))
            slug = github_slug(text)
            found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
        found.update(html_attributes(token, "id") + html_attributes(token, "name"))
    return frozenset(found)


def resolve(link: str, page: Path, root: Path) -> tuple[Path, str]:
    """The file a relative link names (a path from / starts at the checkout, as on GitHub) and its anchor."""
    target, anchor = link.split("#", 1) if "#" in link else (link, "")
    target = unquote(target.split("?", 1)[0])
    if not target:
        return page, unquote(anchor)
    return (root / target.lstrip("/") if target.startswith("/") else page.parent / target), unquote(anchor)


def broken_links(page: Path, root: Path) -> list[str]:
    """What is wrong with each relative link of one Markdown file."""
    problems = []
    for link in links(page):
        if SCHEME.match(link):
            continue
        target, anchor = resolve(link, page, root)
        if not target.exists():
            shown = target.resolve().relative_to(root) if target.resolve().is_relative_to(root) else target
            problems.append(f"{link}: {shown} does not exist")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target.resolve()):
            problems.append(f"{link}: {target.name} has no heading or element for #{anchor}")
    return list(dict.fromkeys(problems))  # a link used twice is one problem


@pytest.mark.parametrize("path", documents(CHECKOUT), ids=lambda path: path.relative_to(CHECKOUT).as_posix())
def test_relative_links_lead_to_existing_files_and_headings(path):
    problems = broken_links(path, CHECKOUT)
    assert not problems, f"{path.relative_to(CHECKOUT)} has broken links:\n" + "\n".join(problems)


def test_the_documents_include_the_readme_the_guides_and_the_generated_reference():
    found = {path.relative_to(CHECKOUT).as_posix() for path in documents(CHECKOUT)}
    assert {"README.md", "docs/README.md", "docs/reference/README.md"} <= found


def test_a_missing_file_a_missing_heading_and_a_link_in_code_are_told_apart(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text(
        "# Weekly cycle\n\n## Reboots\n\n## Reboots\n\n<a id=\"parameter-state\"></a>\n", encoding="utf-8"
    )
    (tmp_path / "README.md").write_text(
        "| page | what |\n|---|---|\n| [guide](docs/guide.md#weekly-cycle) | ok |\n"
        "[second heading](docs/guide.md#reboots-1), [id](docs/guide.md#parameter-state), [web](https://example.com/x)\n"
        "[gone](docs/missing.md), [no heading](docs/guide.md#install), [third](docs/guide.md#reboots-2)\n"
        "`[in code](docs/missing.md)`\n",
        encoding="utf-8",
    )
    assert broken_links(tmp_path / "README.md", tmp_path) == [
        "docs/missing.md: docs/missing.md does not exist",
        "docs/guide.md#install: guide.md has no heading or element for #install",
        "docs/guide.md#reboots-2: guide.md has no heading or element for #reboots-2",
    ]
