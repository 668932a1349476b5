# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Approvals of a sensitive-server review, what they let the install do, and the proof afterwards.

The review (review.py, written as YAML by the sensitive_patching role) lists per server each package Patch
Manager offers, with its installed and candidate version. An approval is a file a person edits (or the role
generates from the review) naming the review's run, who approves, when, why, until when, and the exact packages
and versions, optionally per server:

    kind: fleetpatch.sensitive-approval
    approval_id: CHG-4711               # 1-64 of A-Z a-z 0-9 . _ - (a file name and a tag value)
    review_run_id: 20261127T011500Z-8b8f2d4e
    reviewer: jane.doe@example.com
    approved_at: "2026-11-27T09:30:00Z"
    reason: Monthly database patching
    ticket: CHG-4711                    # optional
    expires_at: "2026-12-04T09:30:00Z"
    packages:
      - package: openssl.amd64          # the review's package (DescribeInstancePatches KBId)
        version: 3.0.2-0ubuntu1.15      # exactly the review's candidate version
        servers: [i-0123456789abcdef0]  # optional; default: every server the review offers this version to
    new_packages:                       # what approved packages bring new (the review's new_packages)
      - package: linux-image-5.15.0-100-generic.amd64
        servers: [i-0123456789abcdef0]  # optional; default: every server whose approved packages bring it

`check_approval` refuses (ApprovalRefused, every problem named) an approval of another run, a package or a
version the review does not offer, a server the review does not know, an expired or not-yet-valid approval,
one without reviewer or reason, and one that approves a package the review says brings new packages (Ubuntu's
kernel meta packages and their new kernel image, review.py) without naming them in `new_packages`, or names a
new package no approved package brings. New packages are approved by name: their versions are whatever the
approved version needs, which no AWS API tells before the install.

Install (AWS-RunPatchBaseline InstallOverrideList, user guide): a YAML `patches:` list of `id` (Linux
`name.arch`, Windows the KB) and an optional `title`, which on Linux filters by version in the package
manager's format (APT `name.arch:version`, YUM `name.arch:epoch:version-release`); the list "overrides the
patches specified by the baseline". Each approved package is listed with its exact title, so a version
published after the review is never installed. On Linux every other package the review offers the server is
listed too, at its installed version: the guide's apt / apt-utils example shows that a listed package whose
dependency is listed at another version is blocked ("Failed"), so an approved package that needs an unapproved
upgrade fails loudly instead of upgrading it. Servers with the same list share one file and one command.

Verification compares SSM Inventory before and after the install: every approved package at its approved
version, no other installed package changed or disappeared, and no package appeared that the approval does not
name in `new_packages` (the verification's `allow_new_packages` relaxes the last rule; the role's default keeps
it).

Ubuntu soak (ours, not AWS's: AWS supports no approval delay on Ubuntu): the first time each candidate version
is seen by a review is kept in a small YAML file; a soak approval approves the candidates first seen at least N
days ago. It takes the candidate as it is now: Ubuntu's archive serves only the newest version of a package in
each pocket, so an older, soaked version cannot be installed once a newer one is published; the newer one
starts its own soak.
"""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass

from .review import WINDOWS
from .review import package_key
from .review import split_kb_id

REVIEW_KIND = "fleetpatch.sensitive-review"
APPROVAL_KIND = "fleetpatch.sensitive-approval"
FIRST_SEEN_KIND = "fleetpatch.first-seen"
APPROVAL_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
# A review run: its UTC start and the first 8 hex digits of its snapshot (the role names runs so; a path part).
RUN_ID_PATTERN = r"\d{8}T\d{6}Z-[0-9a-f]{8}"
# An approval may be signed a little ahead of the controller's clock; beyond this it is refused.
CLOCK_SKEW = datetime.timedelta(minutes=5)

# Tags on the sensitive baselines naming the last approval ([model] TagKey 1-128, TagValue 0-256; both
# ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$).
TAG_PREFIX = "fleetpatch:last-approval"
TAG_VALUE_LENGTH = 256
_TAG_SYMBOLS = set("_.:/=+-@")


class ApprovalRefused(Exception):
    """An approval (or the request to generate one) that the install must not act on; `problems` names each."""

    def __init__(self, problems: list) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class NothingToApprove(ApprovalRefused):
    """A generated approval would approve nothing (an error when asked for, a normal end for the soak)."""


@dataclass(frozen=True)
class Approved:
    """One approved package on one server, with the review's title of that version."""

    instance_id: str
    package: str
    version: str
    title: str
    new: bool = False   # a new package an approved one brings (approved by name: version and title are "")


# ---------------------------------------------------------------------------------------------- times

def utc_text(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value) -> datetime.datetime:
    """An ISO 8601 date-time with a time zone (`Z` or an offset); ValueError otherwise."""
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        text = str(value).strip()
        moment = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment


# ---------------------------------------------------------------------------------------------- the review

class ReviewIndex:
    """Lookups into a review document: its servers, and what it offers each of them."""

    def __init__(self, review: dict) -> None:
        self.review = review
        self.run_id = review.get("run_id")
        self.servers = {server["instance_id"]: server for server in review.get("servers") or []}
        self.offers = {}  # package -> {instance_id: review entry}
        for server in self.servers.values():
            for entry in server.get("missing") or []:
                self.offers.setdefault(entry["package"], {})[server["instance_id"]] = entry

    @property
    def created_at(self):
        return parse_time(self.review["created_at"]) if self.review.get("created_at") else None


def check_review(review) -> ReviewIndex:
    if not isinstance(review, dict) or review.get("kind") != REVIEW_KIND \
            or not re.fullmatch(RUN_ID_PATTERN, str(review.get("run_id"))):
        raise ApprovalRefused([f"the review file is not a review ({REVIEW_KIND} with a run_id)"])
    return ReviewIndex(review)


# ---------------------------------------------------------------------------------------------- checking

def _text(approval: dict, field: str, problems: list, required: bool = True):
    value = approval.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.append(f"{field}: missing; an approval names it")
        return None
    if not isinstance(value, str):
        problems.append(f"{field}: {value!r} is not text")
        return None
    return value.strip()


def _time(approval: dict, field: str, problems: list):
    if approval.get(field) is None:
        problems.append(f"{field}: missing; allowed: an ISO 8601 date-time with a time zone, e.g. "
                        "2026-12-04T09:30:00Z")
        return None
    try:
        return parse_time(approval[field])
    except ValueError:
        problems.append(f"{field}: {approval[field]!r} is not an ISO 8601 date-time with a time zone")
        return None


def _check_header(approval: dict, index: ReviewIndex, now: datetime.datetime, problems: list) -> None:
    """Who, why, which run, when and until when."""
    if approval.get("kind", APPROVAL_KIND) != APPROVAL_KIND:
        problems.append(f"kind: {approval['kind']!r} is not {APPROVAL_KIND}")
    approval_id = _text(approval, "approval_id", problems)
    if approval_id and not re.fullmatch(APPROVAL_ID_PATTERN, approval_id):
        problems.append(f"approval_id: {approval_id!r} is not valid; allowed: 1 to 64 letters, digits, '.', '_' or "
                        "'-', starting with a letter or digit")
    run_id = _text(approval, "review_run_id", problems)
    if run_id and run_id != index.run_id:
        problems.append(f"review_run_id: {run_id!r} is not the run of this review ({index.run_id}): the approval "
                        "approves an unknown run")
    _text(approval, "reviewer", problems)
    _text(approval, "reason", problems)
    _text(approval, "ticket", problems, required=False)
    approved_at, expires_at = _time(approval, "approved_at", problems), _time(approval, "expires_at", problems)
    if approved_at and approved_at > now + CLOCK_SKEW:
        problems.append(f"approved_at: {utc_text(approved_at)} is in the future (now {utc_text(now)})")
    if approved_at and index.created_at and approved_at < index.created_at:
        problems.append(f"approved_at: {utc_text(approved_at)} is before the review was written "
                        f"({utc_text(index.created_at)})")
    if expires_at and approved_at and expires_at <= approved_at:
        problems.append(f"expires_at: {utc_text(expires_at)} is not after approved_at")
    if expires_at and expires_at <= now:
        problems.append(f"expires_at: the approval expired at {utc_text(expires_at)} (now {utc_text(now)})")


def _entry_servers(field: str, entry: dict, index: ReviewIndex, problems: list) -> list:
    """The servers an entry approves its package on, each checked against the review."""
    package, version = entry["package"], entry["version"]
    offered = index.offers.get(package, {})
    if not offered:
        problems.append(f"{field}: {package} is not in review {index.run_id}: no server is offered it")
        return []
    named = entry.get("servers")
    if named is None:
        matching = sorted(server for server, offer in offered.items() if offer["candidate_version"] == version)
        if not matching:
            versions = sorted({offer["candidate_version"] for offer in offered.values()})
            problems.append(f"{field}: {package} version {version} is not in review {index.run_id} "
                            f"(it offers {', '.join(versions)})")
        return matching
    if not isinstance(named, list) or not named or not all(isinstance(server, str) for server in named):
        problems.append(f"{field}.servers: allowed: a non-empty list of instance IDs, or no servers key")
        return []
    for server in named:
        if server not in index.servers:
            problems.append(f"{field}.servers: {server} is not a server of review {index.run_id}")
        elif server not in offered:
            problems.append(f"{field}: the review offers {package} to no such server as {server}")
        elif offered[server]["candidate_version"] != version:
            problems.append(f"{field}: {package} version {version} is not what the review offers {server} "
                            f"({offered[server]['candidate_version']})")
    return [server for server in named if offered.get(server, {}).get("candidate_version") == version]


def _resolve(approval: dict, index: ReviewIndex, problems: list) -> dict:
    """{instance_id: [Approved]} of the packages list; every entry is checked against the review."""
    packages = approval.get("packages")
    if not isinstance(packages, list) or not packages:
        problems.append("packages: missing or empty; an approval lists the exact packages and versions")
        return {}
    resolved, seen = {}, set()
    for position, entry in enumerate(packages):
        field = f"packages[{position}]"
        if not isinstance(entry, dict) or not all(isinstance(entry.get(key), str) and entry.get(key)
                                                  for key in ("package", "version")):
            problems.append(f"{field}: allowed: a mapping with package and version (text) and optional servers")
            continue
        for server in _entry_servers(field, entry, index, problems):
            if (server, entry["package"]) in seen:
                problems.append(f"{field}: {entry['package']} is approved twice for {server}")
                continue
            seen.add((server, entry["package"]))
            offer = index.offers[entry["package"]][server]
            resolved.setdefault(server, []).append(Approved(server, entry["package"], entry["version"],
                                                            offer["title"]))
    return resolved


def brought(approved, index: ReviewIndex) -> dict:
    """{instance_id: {new package: the approved package that brings it}} of (instance_id, package) pairs, from
    the review's new_packages."""
    found = {}
    for server, approved_package in approved:
        for package in index.offers[approved_package][server].get("new_packages") or []:
            found.setdefault(server, {}).setdefault(package, approved_package)
    return found


def _resolve_new(approval: dict, index: ReviewIndex, resolved: dict, problems: list) -> dict:
    """{instance_id: [Approved(new=True)]} of the new_packages list, which must name exactly what the approved
    packages bring (a server's list: every one of them, none other)."""
    expected = brought(((server, item.package) for server, items in resolved.items() for item in items), index)
    entries = approval.get("new_packages") or []
    if not isinstance(entries, list):
        problems.append("new_packages: allowed: a list of mappings with package and optional servers")
        return {}
    named = {}
    for position, entry in enumerate(entries):
        field = f"new_packages[{position}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("package"), str) or not entry["package"]:
            problems.append(f"{field}: allowed: a mapping with package (text) and optional servers")
            continue
        package = entry["package"]
        bringing = sorted(server for server, packages in expected.items() if package in packages)
        servers = entry.get("servers")
        if servers is None:
            servers = bringing
        if not bringing or not isinstance(servers, list):
            problems.append(f"{field}: {package} is not a new package that the approved packages bring "
                            f"(review {index.run_id})")
            continue
        for server in servers:
            if server not in bringing:
                problems.append(f"{field}: no approved package brings {package} to {server}")
            else:
                named.setdefault(server, set()).add(package)
    for server, packages in sorted(expected.items()):
        for package, by in sorted(packages.items()):
            if package not in named.get(server, set()):
                problems.append(f"new_packages: {by} brings the new package {package} to {server} (review "
                                f"{index.run_id}); name it in new_packages, or leave {by} out")
    return {server: [Approved(server, package, "", "", new=True) for package in sorted(packages)]
            for server, packages in named.items()}


def check_approval(approval, review_index: ReviewIndex, now: datetime.datetime) -> dict:
    """{instance_id: [Approved]} (the new packages last on each server), or ApprovalRefused naming every
    problem."""
    if not isinstance(approval, dict):
        raise ApprovalRefused(["the approval file is not a mapping (see the approval format)"])
    problems = []
    _check_header(approval, review_index, now, problems)
    resolved = _resolve(approval, review_index, problems)
    for server, items in _resolve_new(approval, review_index, resolved, problems).items():
        resolved[server] += items
    if problems:
        raise ApprovalRefused(problems)
    return {server: sorted(items, key=lambda item: (item.new, item.package))
            for server, items in sorted(resolved.items())}


def split_source_warnings(resolved: dict, index: ReviewIndex) -> list:
    """Approved packages whose same-version siblings (see review.py) are not approved on the same server: the
    package manager needs them together, so with the others pinned the install of that package fails."""
    warnings = []
    for server, items in resolved.items():
        approved = {item.package for item in items}
        for item in items:
            if item.new:
                continue
            left_out = [name for name in index.offers[item.package][server].get("same_version_as") or []
                        if name not in approved]
            if left_out:
                warnings.append(f"{server}: {item.package} is approved without {', '.join(left_out)}, which move "
                                "to the same version (one source package); the install of it will fail unless "
                                "they are approved too")
    return warnings


# ---------------------------------------------------------------------------------------------- generating

def _selected(names, candidates, what: str, problems: list) -> list:
    """`candidates` matching any of `names` (glob patterns); every name must match something."""
    if not names:
        return list(candidates)
    for name in names:
        if not any(fnmatch.fnmatchcase(candidate, name) for candidate in candidates):
            problems.append(f"{what}: {name!r} matches nothing in the review")
    return [candidate for candidate in candidates if any(fnmatch.fnmatchcase(candidate, name) for name in names)]


def generate_approval(index: ReviewIndex, *, approval_id: str, reviewer: str, reason: str, now: datetime.datetime,
                      valid_days: int, ticket=None, servers=None, packages=None, accept=None) -> dict:
    """An approval of `packages` (names or glob patterns; default all) on `servers` (default all), at the review's
    candidate versions. `accept(server, entry)` may narrow the selection further (the Ubuntu soak)."""
    problems = []
    chosen_servers = _selected(servers, sorted(index.servers), "servers", problems)
    offered = sorted({entry["package"] for server in chosen_servers
                      for entry in index.servers[server].get("missing") or []})
    chosen_packages = set(_selected(packages, offered, "packages", problems))
    by_version = {}
    for server in chosen_servers:
        for entry in index.servers[server].get("missing") or []:
            if entry["package"] in chosen_packages and (accept is None or accept(index.servers[server], entry)):
                by_version.setdefault((entry["package"], entry["candidate_version"]), []).append(server)
    if problems:
        raise ApprovalRefused(problems)
    if not by_version:
        raise NothingToApprove(["nothing to approve: the selection matches no package the review offers"])
    approval = {"kind": APPROVAL_KIND, "approval_id": approval_id, "review_run_id": index.run_id,
                "reviewer": reviewer, "approved_at": utc_text(now), "reason": reason}
    if ticket:
        approval["ticket"] = ticket
    approval["expires_at"] = utc_text(now + datetime.timedelta(days=valid_days))
    approval["packages"] = [{"package": package, "version": version, "servers": sorted(names)}
                            for (package, version), names in sorted(by_version.items())]
    new = {}
    for server, packages in brought(((server, package) for (package, _version), names in by_version.items()
                                     for server in names), index).items():
        for package in packages:
            new.setdefault(package, set()).add(server)
    if new:
        approval["new_packages"] = [{"package": package, "servers": sorted(names)}
                                    for package, names in sorted(new.items())]
    return approval


# ---------------------------------------------------------------------------------------------- recording

def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_paths(history_dir: str, run_id: str, approval_id: str) -> tuple:
    """(<history>/approvals/<run id>/<approval id>.yml, the same + .sha256)."""
    path = os.path.join(history_dir, "approvals", run_id, f"{approval_id}.yml")
    return path, path + ".sha256"


def write_once(path: str, data: bytes) -> bool:
    """Write `path` read-only (0444) unless it exists; True when written. An existing file with other content is
    refused: a record is never replaced."""
    if os.path.exists(path):
        with open(path, "rb") as existing:
            if existing.read() == data:
                return False
        raise ApprovalRefused([f"{path} already records different content: a recorded approval is never "
                               "replaced (give the new approval another approval_id)"])
    os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    with os.fdopen(descriptor, "wb") as target:
        target.write(data)
    return True


def record_approval(history_dir: str, run_id: str, approval_id: str, data: bytes) -> dict:
    """The immutable copy of the approval file and its SHA-256 (sha256sum format) next to it."""
    path, digest_path = record_paths(history_dir, run_id, approval_id)
    sha256 = digest(data)
    changed = write_once(path, data)
    changed = write_once(digest_path, f"{sha256}  {os.path.basename(path)}\n".encode()) or changed
    return {"path": path, "sha256": sha256, "written": changed}


def recorded_digest(history_dir: str, run_id: str, approval_id: str):
    """The SHA-256 recorded for this approval, or None when it was never recorded."""
    digest_path = record_paths(history_dir, run_id, approval_id)[1]
    if not os.path.exists(digest_path):
        return None
    with open(digest_path, encoding="utf-8") as recorded:
        return recorded.read().split()[0]


def tag_value(text: str) -> str:
    """`text` as a tag value: characters AWS does not allow in tags become '_', at most 256 characters."""
    allowed = "".join(char if char in _TAG_SYMBOLS or unicodedata.category(char).startswith(("L", "Z", "N"))
                      else "_" for char in str(text))
    return allowed[:TAG_VALUE_LENGTH]


def approval_tags(approval: dict, sha256: str) -> dict:
    """The tags naming the last approval on the sensitive baselines."""
    return {
        TAG_PREFIX: tag_value(approval["approval_id"]),
        f"{TAG_PREFIX}-by": tag_value(approval["reviewer"]),
        f"{TAG_PREFIX}-at": tag_value(utc_text(parse_time(approval["approved_at"]))),
        f"{TAG_PREFIX}-run": tag_value(approval["review_run_id"]),
        f"{TAG_PREFIX}-sha256": sha256,
    }


def report_entries(approval: dict, resolved: dict, index: ReviewIndex) -> list:
    """The approval in the `approvals` form of fleetpatch.ssm.patch_history_info (the patch_report role), which
    checks every change on a sensitive server against them: versions as the report history writes them (no `0:`
    epoch; Windows KBs carry none, so none is given)."""
    servers_by_version = {}
    for server, items in resolved.items():
        windows = index.servers[server].get("os_family") == WINDOWS
        for item in items:
            if windows or item.new:
                version = None  # any version: Windows KBs carry none; a new package's is what the approved needs
            else:
                version = item.version[2:] if item.version.startswith("0:") else item.version
            servers_by_version.setdefault((item.package, version), []).append(server)
    entries = []
    for (package, version), servers in sorted(servers_by_version.items(), key=lambda pair: str(pair[0])):
        entry = {"package": package, "instance_ids": sorted(servers), "approved_by": approval["reviewer"],
                 "approved_at": approval["approved_at"], "ticket": approval.get("ticket") or approval["reason"]}
        if version is not None:
            entry["version"] = version
        entries.append(entry)
    return entries


# ---------------------------------------------------------------------------------------------- install lists

def _quoted(text: str) -> str:
    """A YAML single-quoted scalar (the form the user guide's examples use)."""
    return "'" + text.replace("'", "''") + "'"


def override_entries(server: dict, approved: list, pin: bool = True) -> list:
    """(id, title) pairs of a server's InstallOverrideList: the approved packages at their exact titles, and on
    Linux (with `pin`) every other package the review offers the server at its installed version."""
    approved = [item for item in approved if not item.new]  # brought by the package manager, never listed
    entries = [(item.package, item.title) for item in approved]
    if pin and server.get("os_family") != WINDOWS:
        chosen = {item.package for item in approved}
        entries += [(entry["package"], f"{entry['package']}:{entry['installed_version']}")
                    for entry in server.get("missing") or []
                    if entry["package"] not in chosen and entry.get("installed_version")]
    return sorted(entries)


def override_document(entries: list, comment: str) -> str:
    """The InstallOverrideList YAML: `patches:` with `id` and `title` (user guide, "Valid YAML content formats")."""
    lines = [f"# {comment}", "patches:"]
    for patch_id, title in entries:
        lines += [f"  - id: {_quoted(patch_id)}", f"    title: {_quoted(title)}"]
    return "\n".join(lines) + "\n"


def install_batches(index: ReviewIndex, resolved: dict, approval_id: str, pin: bool = True) -> list:
    """One batch per account, region and InstallOverrideList: the servers that get exactly that list."""
    comment = f"fleetpatch.ssm approval {approval_id} of review {index.run_id}"
    batches = {}
    for server_id, approved in resolved.items():
        server = index.servers[server_id]
        content = override_document(override_entries(server, approved, pin), comment)
        key = (server.get("account_id") or "", server.get("region") or "", content)
        batches.setdefault(key, []).append(server_id)
    result = []
    for (account_id, region, content), servers in sorted(batches.items()):
        sha256 = digest(content.encode())
        result.append({"account_id": account_id, "region": region, "instance_ids": sorted(servers),
                       "content": content, "sha256": sha256,
                       "key": f"{index.run_id}/{approval_id}/{sha256[:16]}.yaml"})
    return result


# ---------------------------------------------------------------------------------------------- verification

def verify_server(instance_id: str, family, approved: list, before: dict, after: dict,
                  allow_new_packages: bool = False) -> dict:
    """Every approved package at its approved version, and no other package changed (SSM Inventory before and
    after). `approved`: [{package, version, new?}] (`new`: a new package the approval names, any version);
    `before` / `after`: {package key: version} (review.py).

    A package that was not installed before and is now is listed in `new_packages`, `approved` when the approval
    names it (matched by name: dpkg and the review may spell an architecture-independent package's arch
    differently). An unapproved one fails the verification unless `allow_new_packages`. A package that was
    installed and changed or disappeared always fails it."""
    new_approved = {split_kb_id(item["package"])[0] for item in approved if item.get("new")}
    expected = {package_key(item["package"], family): item for item in approved if not item.get("new")}
    results, wrong = [], []
    for key, item in sorted(expected.items()):
        found = after.get(key)
        ok = found == item["version"]
        results.append({"package": item["package"], "version": item["version"], "found": found, "ok": ok})
        if not ok:
            wrong.append(item["package"])
    changed = [{"package": key, "before": before.get(key), "after": after.get(key)}
               for key in sorted(set(before) | set(after))
               if key not in expected and before.get(key) != after.get(key)]
    new = [dict(change, approved=split_kb_id(change["package"])[0] in new_approved)
           for change in changed if change["before"] is None]
    unapproved = [change for change in changed if change["before"] is not None]
    unapproved_new = [change["package"] for change in new if not change["approved"]]
    verified = not wrong and not unapproved and (allow_new_packages or not unapproved_new)
    return {"instance_id": instance_id, "status": "verified" if verified else "mismatch", "approved": results,
            "not_at_approved_version": wrong, "unapproved_changes": unapproved, "new_packages": new,
            "unapproved_new_packages": unapproved_new}


# ---------------------------------------------------------------------------------------------- Ubuntu soak

def platform_label(server: dict) -> str:
    return f"{server.get('platform_name') or '?'} {server.get('platform_version') or '?'}"


def scan_time(server: dict, index: ReviewIndex) -> datetime.datetime:
    """When AWS scanned the server for the review (its report's end), else when the review was written."""
    return parse_time(server.get("operation_end_time") or index.review["created_at"])


def record_first_seen(first_seen: dict, index: ReviewIndex) -> dict:
    """The first-seen document with every candidate of the review added at its scan time (known ones keep theirs).
    Times are AWS's (the scans'), so that the soak counts days on the clock that dates the releases."""
    versions = {platform: {package: dict(seen) for package, seen in packages.items()}
                for platform, packages in ((first_seen or {}).get("versions") or {}).items()}
    for server in index.servers.values():
        packages, seen_at = versions.setdefault(platform_label(server), {}), utc_text(scan_time(server, index))
        for entry in server.get("missing") or []:
            known = packages.setdefault(entry["package"], {})
            earlier = known.get(entry["candidate_version"])
            if earlier is None or parse_time(earlier) > parse_time(seen_at):
                known[entry["candidate_version"]] = seen_at
    return {"kind": FIRST_SEEN_KIND, "versions": versions}


def soaked(first_seen: dict, index: ReviewIndex, days: int, families=("UBUNTU",)):
    """accept(server, entry) for generate_approval: a server of `families` whose candidate was first seen at least
    `days` days before this review's scan of the server."""
    versions = first_seen.get("versions") or {}
    soak = datetime.timedelta(days=days)

    def accept(server: dict, entry: dict) -> bool:
        if server.get("os_family") not in families:
            return False
        seen = versions.get(platform_label(server), {}).get(entry["package"], {}).get(entry["candidate_version"])
        return seen is not None and parse_time(seen) + soak <= scan_time(server, index)

    return accept
