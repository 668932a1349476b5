"""Patch baselines, patch groups, default baselines and patch properties, the way Patch Manager keeps them.

State (per account and region, `RegionState`): `baselines` holds each custom baseline as a dict in
GetPatchBaseline's output shape (without the computed `PatchGroups`); `patch_groups` maps (group, OS) to a
baseline id; `default_baselines` maps an OS to the baseline registered as its default when that is not AWS's
predefined default (a custom `pb-` id, or the ARN of another AWS-owned baseline). Tags given at creation go to
`tags[("PatchBaseline", id)]`.

AWS rules followed (SSM API reference and user guide, "Patch baselines", "Patch groups"):
* CreatePatchBaseline: OperatingSystem defaults to WINDOWS; names need not be unique (the API reference's
  describe-patch-baselines example lists two "Production-Baseline"s); ClientToken makes a retry idempotent.
* Filter keys depend on the OS (DescribePatchProperties lists them per OS); values are the OS's property values
  or `*`. Each approval rule needs exactly one of ApproveAfterDays / ApproveUntilDate (`YYYY-MM-DD`), except on
  Debian and Ubuntu Server, which support neither (PatchRule reference).
* Sources apply to Linux only; AvailableSecurityUpdatesComplianceStatus to Windows Server only.
* UpdatePatchBaseline leaves members it is not sent unchanged; with Replace=true the members CreatePatchBaseline
  requires are required and optional members not sent are reset.
* Quotas (Systems Manager service quotas): 50 patch baselines per account and region, 25 patch groups per
  baseline. A patch group has one baseline per OS (RegisterPatchBaselineForPatchGroup: AlreadyExistsException).
* AWS-owned (predefined) baselines are addressed by their full ARN (GetPatchBaseline and
  RegisterDefaultPatchBaseline references); a bare `pb-` id only finds the account's own baselines.
* A node uses the baseline registered for its patch group and OS, else the OS's default baseline ("Patch groups":
  a node whose group has no baseline for its OS gets the default).
Model constraints (counts, lengths, ranges, enums) are enforced by `model.py` before a handler runs.
"""
from __future__ import annotations

import copy
import datetime
import hashlib
import json
import operator
import re
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from . import model, nodes, paging, targets
from .api import Context, operation
from .errors import (
    AlreadyExistsException,
    DoesNotExistException,
    IdempotentParameterMismatch,
    InvalidResourceId,
    ResourceInUseException,
    ResourceLimitExceededException,
    ValidationException,
)
from .state import UTC, Node, RegionState

MAX_BASELINES = 50
MAX_PATCH_GROUPS_PER_BASELINE = 25
# AWS does not document the default page size of these Describe calls; the lab uses 50 (or the model's maximum
# when lower), so a client that ignores NextToken misses results here as it would at scale on AWS.

WILDCARD = "*"
OPERATING_SYSTEMS: tuple[str, ...] = tuple(model.service_model().shape_for("OperatingSystem").enum)

# --------------------------------------------------------------------------------------------------------------
# Patch properties: ONE table, used to validate baseline filters and to answer DescribePatchProperties.
# PATCH_PROPERTIES[os][filter key] -> the values Patch Manager knows, or ANY_VALUE where the lab does not simulate
# that OS's catalogue (the keys are AWS's; any value is accepted rather than guessed).
# --------------------------------------------------------------------------------------------------------------
ANY_VALUE: tuple[str, ...] = ()

_YUM_CLASSIFICATIONS = ("Security", "Bugfix", "Enhancement", "Recommended", "Newpackage")
_AL2_SEVERITIES = ("Critical", "Important", "Medium", "Low")
_APT_PRIORITIES = ("Required", "Important", "Standard", "Optional", "Extra")
# Debian archive sections as AWS's PatchFilter reference listed them for the SECTION key.
_APT_SECTIONS = (
    "Admin", "Base", "Cli-mono", "Comm", "Database", "Devel", "Debug", "Doc", "Editors", "Electronics", "Embedded",
    "Fonts", "Gamedev", "Gnome", "GNU-R", "Gnustep", "Graphics", "Hamradio", "Haskell", "Httpd", "Interpreters",
    "Java", "Kde", "Kernel", "Libdevel", "Libs", "Lisp", "Localization", "Mail", "Math", "Misc", "Net", "News",
    "Ocaml", "Oldlibs", "Otherosfs", "Perl", "Php", "Python", "Ruby", "Science", "Shells", "Sound", "Tex", "Text",
    "Utils", "Vcs", "Video", "Web", "X11", "Xfce", "Zope",
)
_WINDOWS_OS_PRODUCTS = (
    "WindowsServer2008", "WindowsServer2008R2", "WindowsServer2012", "WindowsServer2012R2", "WindowsServer2016",
    "WindowsServer2019", "WindowsServer2022", "WindowsServer2025",
)
# Microsoft applications (PatchSet APPLICATION): a representative subset, product -> product family.
_WINDOWS_APPLICATIONS = {
    "Office 2013": "Office", "Office 2016": "Office", "Office 2019": "Office", "Microsoft 365 Apps": "Office",
    "SQL Server 2016": "SQL Server", "SQL Server 2017": "SQL Server", "SQL Server 2019": "SQL Server",
    "SQL Server 2022": "SQL Server", "Exchange Server 2016": "Exchange Server",
    "Exchange Server 2019": "Exchange Server", "Visual Studio 2019": "Visual Studio",
    "Visual Studio 2022": "Visual Studio",
}
_WINDOWS_OS_FAMILIES = ("Windows",)
_WINDOWS_APPLICATION_FAMILIES = tuple(dict.fromkeys(_WINDOWS_APPLICATIONS.values()))

_YUM_KEYS = {"PRODUCT": ANY_VALUE, "CLASSIFICATION": ANY_VALUE, "SEVERITY": ANY_VALUE}
_APT_KEYS = {"PRODUCT": ANY_VALUE, "PRIORITY": _APT_PRIORITIES, "SECTION": _APT_SECTIONS}

PATCH_PROPERTIES: dict[str, dict[str, tuple[str, ...]]] = {
    "WINDOWS": {
        "PATCH_SET": ("OS", "APPLICATION"),
        "PRODUCT": _WINDOWS_OS_PRODUCTS + tuple(_WINDOWS_APPLICATIONS),
        "PRODUCT_FAMILY": _WINDOWS_OS_FAMILIES + _WINDOWS_APPLICATION_FAMILIES,
        "CLASSIFICATION": (
            "CriticalUpdates", "DefinitionUpdates", "Drivers", "FeaturePacks", "SecurityUpdates", "ServicePacks",
            "Tools", "UpdateRollups", "Updates", "Upgrades",
        ),
        "MSRC_SEVERITY": ("Critical", "Important", "Moderate", "Low", "Unspecified"),
    },
    "AMAZON_LINUX_2": {
        "PRODUCT": ("AmazonLinux2", "AmazonLinux2.0"),
        "CLASSIFICATION": _YUM_CLASSIFICATIONS,
        "SEVERITY": _AL2_SEVERITIES,
    },
    "AMAZON_LINUX_2023": {
        "PRODUCT": ("AmazonLinux2023",),
        "CLASSIFICATION": _YUM_CLASSIFICATIONS,
        "SEVERITY": _AL2_SEVERITIES + ("None",),
    },
    "UBUNTU": {
        "PRODUCT": ("Ubuntu14.04", "Ubuntu16.04", "Ubuntu18.04", "Ubuntu20.04", "Ubuntu22.04", "Ubuntu24.04"),
        "PRIORITY": _APT_PRIORITIES,
        "SECTION": _APT_SECTIONS,
    },
    # Operating systems the lab does not simulate: AWS's keys (DescribePatchProperties), values not modelled.
    "DEBIAN": _APT_KEYS,
    "RASPBIAN": _APT_KEYS,
    "MACOS": {"PRODUCT": ANY_VALUE, "CLASSIFICATION": ANY_VALUE},
    **dict.fromkeys((
        "AMAZON_LINUX", "AMAZON_LINUX_2022", "REDHAT_ENTERPRISE_LINUX", "CENTOS", "ORACLE_LINUX", "ROCKY_LINUX",
        "ALMA_LINUX", "SUSE",
    ), _YUM_KEYS),
}

# PatchRule: ApproveAfterDays and ApproveUntilDate are "Not supported for Debian Server or Ubuntu Server".
# Raspberry Pi OS is not named there; it uses Debian's repositories (no reliable release dates), so the lab treats
# it like Debian.
_NO_APPROVAL_DELAY = {"UBUNTU", "DEBIAN", "RASPBIAN"}

# --------------------------------------------------------------------------------------------------------------
# Approved/rejected patch syntax per OS (user guide, "Package name formats for approved and rejected patch lists").
# --------------------------------------------------------------------------------------------------------------
_YUM_FAMILY = {
    "AMAZON_LINUX", "AMAZON_LINUX_2", "AMAZON_LINUX_2022", "AMAZON_LINUX_2023", "REDHAT_ENTERPRISE_LINUX", "CENTOS",
    "ORACLE_LINUX", "ROCKY_LINUX", "ALMA_LINUX", "SUSE",
}


class _PatchNameFormat(NamedTuple):
    pattern: re.Pattern
    rule: str


# yum/dnf/zypper: Bugzilla, CVE and advisory ids and package names built from name, arch, epoch, version and
# release, "with a single wildcard". The lab checks the character set and the one-wildcard rule.
_RPM_NAME = _PatchNameFormat(
    re.compile(r"^(?!(?:[^*]*\*){2})[A-Za-z0-9._+:~^*-]+$"),
    "package names, NEVRA forms or Bugzilla/CVE/advisory ids with at most one '*' wildcard, "
    "e.g. kernel*, dbus-1:1.12.28-1.amzn2023.0.1.x86_64, ALAS-2023-123",
)
# apt: "package names only": no version, architecture or wildcard (name=version, name:arch, name_version_arch).
_APT_NAME = _PatchNameFormat(
    re.compile(r"^[A-Za-z0-9][A-Za-z0-9+.-]*$"),
    "package names only, without version, architecture or wildcard, e.g. openssl",
)
# Windows: Microsoft Knowledge Base ids and security bulletin ids (their case is not documented: either is taken).
_WINDOWS_ID = _PatchNameFormat(
    re.compile(r"^(KB\d+|MS\d{2}-\d{3})$", re.IGNORECASE),
    "Microsoft Knowledge Base or security bulletin ids, e.g. KB4565511, MS17-010",
)
_PATCH_NAME_FORMATS = {
    **dict.fromkeys(_YUM_FAMILY, _RPM_NAME),
    "UBUNTU": _APT_NAME, "DEBIAN": _APT_NAME, "RASPBIAN": _APT_NAME,
    "WINDOWS": _WINDOWS_ID,
}  # macOS names are not modelled: any model-valid string is accepted.

_BARE_ID = re.compile(r"^pb-[0-9a-f]{17}$")
_ARN = re.compile(r"^arn:aws:ssm:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):patchbaseline/(?P<id>pb-[0-9a-f]{17})$")


# --------------------------------------------------------------------------------------------------------------
# AWS-owned (predefined) baselines, user guide "Predefined baselines".
# --------------------------------------------------------------------------------------------------------------
def _filter(key: str, *values: str) -> dict:
    return {"Key": key, "Values": list(values)}


def _rule(*filters: dict, days: int | None = None, non_security: bool = False) -> dict:
    rule = {"PatchFilterGroup": {"PatchFilters": list(filters)}, "ComplianceLevel": "UNSPECIFIED"}
    if days is not None:
        rule["ApproveAfterDays"] = days
    rule["EnableNonSecurity"] = non_security
    return rule


def _security_and_bugfix(*severities: str) -> list[dict]:
    """'Security' with the given severities, and 'Bugfix', seven days after release."""
    return [
        _rule(_filter("PRODUCT", WILDCARD), _filter("CLASSIFICATION", "Security"),
              _filter("SEVERITY", *severities), days=7),
        _rule(_filter("PRODUCT", WILDCARD), _filter("CLASSIFICATION", "Bugfix"), days=7),
    ]


def _windows_os_rule() -> dict:
    """CriticalUpdates/SecurityUpdates with MSRC severity Critical or Important, seven days after release."""
    return _rule(_filter("PATCH_SET", "OS"), _filter("PRODUCT", WILDCARD),
                 _filter("CLASSIFICATION", "CriticalUpdates", "SecurityUpdates"),
                 _filter("MSRC_SEVERITY", "Critical", "Important"), days=7)


# Debian-family: security updates of every priority, immediately (release dates are not reliable in the repos).
_APT_SECURITY = [_rule(_filter("PRODUCT", WILDCARD), _filter("PRIORITY", *_APT_PRIORITIES))]


class _Predefined(NamedTuple):
    name: str
    operating_system: str
    description: str
    rules: list[dict]
    default: bool = True


_PREDEFINED = (
    _Predefined("AWS-DefaultPatchBaseline", "WINDOWS", "Default Patch Baseline Provided by AWS.",
                [_windows_os_rule()]),
    _Predefined("AWS-WindowsPredefinedPatchBaseline-OS", "WINDOWS",
                "Windows Server operating system Patch Baseline Provided by AWS.", [_windows_os_rule()], False),
    _Predefined("AWS-WindowsPredefinedPatchBaseline-OS-Applications", "WINDOWS",
                "Windows Server operating system and Microsoft applications Patch Baseline Provided by AWS.",
                [_windows_os_rule(),
                 _rule(_filter("PATCH_SET", "APPLICATION"), _filter("PRODUCT_FAMILY", WILDCARD),
                       _filter("PRODUCT", WILDCARD), _filter("CLASSIFICATION", WILDCARD),
                       _filter("MSRC_SEVERITY", WILDCARD), days=7)], False),
    _Predefined("AWS-AmazonLinuxDefaultPatchBaseline", "AMAZON_LINUX",
                "Default Patch Baseline for Amazon Linux Provided by AWS.",
                _security_and_bugfix("Critical", "Important")),
    _Predefined("AWS-AmazonLinux2DefaultPatchBaseline", "AMAZON_LINUX_2",
                "Default Patch Baseline for Amazon Linux 2 Provided by AWS.",
                _security_and_bugfix("Critical", "Important")),
    _Predefined("AWS-AmazonLinux2022DefaultPatchBaseline", "AMAZON_LINUX_2022",
                "Default Patch Baseline for Amazon Linux 2022 Provided by AWS.",
                _security_and_bugfix("Critical", "Important")),
    _Predefined("AWS-AmazonLinux2023DefaultPatchBaseline", "AMAZON_LINUX_2023",
                "Default Patch Baseline for Amazon Linux 2023 Provided by AWS.",
                _security_and_bugfix("Critical", "Important")),
    _Predefined("AWS-RedHatDefaultPatchBaseline", "REDHAT_ENTERPRISE_LINUX",
                "Default Patch Baseline for Redhat Enterprise Linux Provided by AWS.",
                _security_and_bugfix("Critical", "Important")),
    _Predefined("AWS-RockyLinuxDefaultPatchBaseline", "ROCKY_LINUX",
                "Default Patch Baseline for Rocky Linux Provided by AWS.",
                _security_and_bugfix("Critical", "Important")),
    _Predefined("AWS-AlmaLinuxDefaultPatchBaseline", "ALMA_LINUX",
                "Default Patch Baseline for Alma Linux Provided by AWS.",
                _security_and_bugfix("Critical", "Important")),
    _Predefined("AWS-OracleLinuxDefaultPatchBaseline", "ORACLE_LINUX",
                "Default Patch Baseline for Oracle Linux Provided by AWS.",
                _security_and_bugfix("Important", "Moderate")),
    _Predefined("AWS-SuseDefaultPatchBaseline", "SUSE", "Default Patch Baseline for Suse Provided by AWS.",
                [_rule(_filter("PRODUCT", WILDCARD), _filter("CLASSIFICATION", "Security"),
                       _filter("SEVERITY", "Critical", "Important"), days=7)]),
    _Predefined("AWS-CentOSDefaultPatchBaseline", "CENTOS", "Default Patch Baseline for CentOS Provided by AWS.",
                [_rule(_filter("PRODUCT", WILDCARD), _filter("CLASSIFICATION", WILDCARD),
                       _filter("SEVERITY", WILDCARD), days=7, non_security=True)]),
    _Predefined("AWS-UbuntuDefaultPatchBaseline", "UBUNTU", "Default Patch Baseline for Ubuntu Provided by AWS.",
                _APT_SECURITY),
    _Predefined("AWS-DebianDefaultPatchBaseline", "DEBIAN", "Default Patch Baseline for Debian Provided by AWS.",
                _APT_SECURITY),
    _Predefined("AWS-DefaultRaspbianPatchBaseline", "RASPBIAN",
                "Default Patch Baseline for Raspbian Provided by AWS.", _APT_SECURITY),
    _Predefined("AWS-MacOSDefaultPatchBaseline", "MACOS", "Default Patch Baseline for MacOS Provided by AWS.",
                [_rule(_filter("PRODUCT", WILDCARD), _filter("CLASSIFICATION", WILDCARD), days=0,
                       non_security=True)]),
)
# Not documented: when AWS created its predefined baselines. A fixed date keeps the records reproducible.
_PREDEFINED_DATE = datetime.datetime(2018, 1, 1, tzinfo=UTC)


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def _aws_owner_account(region: str) -> str:
    """AWS owns its predefined baselines from a service account per region; the lab derives a stable one."""
    return str(int(_digest("owner", region), 16) % 10**12).zfill(12)


def _predefined_record(region: str, spec: _Predefined) -> dict:
    baseline_id = f"pb-{_digest(region, spec.name)[:17]}"
    return {
        "BaselineId": f"arn:aws:ssm:{region}:{_aws_owner_account(region)}:patchbaseline/{baseline_id}",
        "Name": spec.name,
        "OperatingSystem": spec.operating_system,
        "GlobalFilters": {"PatchFilters": []},
        "ApprovalRules": {"PatchRules": copy.deepcopy(spec.rules)},
        "ApprovedPatches": [],
        "ApprovedPatchesComplianceLevel": "UNSPECIFIED",
        "ApprovedPatchesEnableNonSecurity": False,
        "RejectedPatches": [],
        "RejectedPatchesAction": "ALLOW_AS_DEPENDENCY",
        "Sources": [],
        "Description": spec.description,
        "CreatedDate": _PREDEFINED_DATE,
        "ModifiedDate": _PREDEFINED_DATE,
    }


def _predefined(region: str) -> dict[str, dict]:
    """Every AWS-owned baseline of `region` by ARN (fresh copies: callers may not change AWS's records)."""
    return {record["BaselineId"]: record for record in (_predefined_record(region, s) for s in _PREDEFINED)}


def aws_owned_baseline(region: str, operating_system: str) -> dict:
    """AWS's predefined default baseline of `operating_system` in `region`, in GetPatchBaseline's shape."""
    spec = next(s for s in _PREDEFINED if s.operating_system == operating_system and s.default)
    return _predefined_record(region, spec)


def _is_aws_owned(record: dict) -> bool:
    return record["BaselineId"].startswith("arn:")


# --------------------------------------------------------------------------------------------------------------
# Lookups shared by the handlers and the simulated agent.
# --------------------------------------------------------------------------------------------------------------
def _lookup(state: RegionState, baseline_id: str) -> dict | None:
    """The account's own baseline by `pb-` id or ARN, or an AWS-owned one by ARN; None when there is none.

    An id that is neither form is InvalidResourceId (the error GetPatchBaseline and the patch group operations
    document for a malformed id).
    """
    if _BARE_ID.match(baseline_id):
        return state.baselines.get(baseline_id)
    arn = _ARN.match(baseline_id)
    if arn is None:
        raise InvalidResourceId(f"The resource ID {baseline_id} isn't valid. A patch baseline ID is pb- followed "
                                "by 17 hexadecimal characters, or a patch baseline ARN.")
    if arn["region"] != state.region:
        return None
    if arn["account"] == state.account:
        return state.baselines.get(arn["id"])
    return _predefined(state.region).get(baseline_id)


def _require(state: RegionState, baseline_id: str, action: str) -> dict:
    record = _lookup(state, baseline_id)
    if record is None:
        raise DoesNotExistException(f"Patch Baseline to be {action} does not exist.")
    return record


def _default_baseline_id(state: RegionState, operating_system: str) -> str:
    return state.default_baselines.get(operating_system) or aws_owned_baseline(
        state.region, operating_system)["BaselineId"]


def _default_baseline(state: RegionState, operating_system: str) -> dict:
    return _lookup(state, _default_baseline_id(state, operating_system))


def _patch_groups_of(state: RegionState, baseline_id: str) -> list[str]:
    return sorted(group for (group, _), registered in state.patch_groups.items() if registered == baseline_id)


def effective_baseline(state: RegionState, node: Node) -> tuple[dict, str | None]:
    """The baseline Patch Manager applies to `node` and the node's patch group (None without one).

    The baseline registered for (patch group, OS), else the OS's default baseline (the custom default when one is
    registered, else AWS's predefined one). A group with no baseline for the node's OS falls back to the default
    ("Patch groups" in the user guide); its name is returned all the same.
    """
    group = targets.patch_group_of(state, node)
    operating_system = node.platform.family
    registered = state.patch_groups.get((group, operating_system)) if group else None
    record = _lookup(state, registered) if registered else _default_baseline(state, operating_system)
    return copy.deepcopy(record), group


# --------------------------------------------------------------------------------------------------------------
# Validation: each check yields AWS-style problems ("Value 'x' at 'path' failed to satisfy constraint: ...").
# --------------------------------------------------------------------------------------------------------------
def _problem(value, path: str, constraint: str) -> str:
    shown = "null" if value is None else f"'{value}'"
    return f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}"


def _reject(problems: Iterable[str]) -> None:
    problems = list(problems)
    if problems:
        noun = "error" if len(problems) == 1 else "errors"
        raise ValidationException(f"{len(problems)} validation {noun} detected: " + "; ".join(problems))


def _filter_group_problems(operating_system: str, group: dict, path: str) -> Iterator[str]:
    properties = PATCH_PROPERTIES[operating_system]
    seen: set[str] = set()
    for index, patch_filter in enumerate(group.get("PatchFilters") or [], start=1):
        key, values = patch_filter["Key"], patch_filter["Values"]
        here = f"{path}.patchFilters.{index}.member"
        if key not in properties:
            yield _problem(key, f"{here}.key",
                           f"Key {key} is not valid for operating system {operating_system}; "
                           f"valid keys: {', '.join(properties)}")
            continue
        if key in seen:
            yield _problem(key, f"{here}.key", f"Key {key} may appear only once in a patch filter group")
        seen.add(key)
        allowed = properties[key]
        for value_index, value in enumerate(values, start=1):
            if allowed and value != WILDCARD and value not in allowed:
                yield _problem(value, f"{here}.values.{value_index}.member",
                               f"Value is not valid for {key} on {operating_system}; "
                               f"valid values: {WILDCARD}, {', '.join(allowed)}")


def _rule_problems(operating_system: str, rule: dict, path: str) -> Iterator[str]:
    yield from _filter_group_problems(operating_system, rule["PatchFilterGroup"], f"{path}.patchFilterGroup")
    has_days, until = "ApproveAfterDays" in rule, rule.get("ApproveUntilDate")
    if operating_system in _NO_APPROVAL_DELAY:
        for member in ("ApproveAfterDays", "ApproveUntilDate"):
            if member in rule:
                yield _problem(rule[member], f"{path}.{member[0].lower()}{member[1:]}",
                               f"{member} is not supported for operating system {operating_system}")
        return
    if has_days == (until is not None):
        yield _problem(None, path,
                       f"Each approval rule for {operating_system} needs exactly one of ApproveAfterDays or "
                       "ApproveUntilDate")
    if until is not None and not _is_calendar_date(until):
        yield _problem(until, f"{path}.approveUntilDate", "Member must be a date in the format YYYY-MM-DD")


def _is_calendar_date(text: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _patch_list_problems(operating_system: str, record: dict) -> Iterator[str]:
    name_format = _PATCH_NAME_FORMATS.get(operating_system)
    if name_format is None:
        return
    for member in ("ApprovedPatches", "RejectedPatches"):
        for index, patch in enumerate(record[member], start=1):
            if not name_format.pattern.match(patch):
                yield _problem(patch, f"{member[0].lower()}{member[1:]}.{index}.member",
                               f"{operating_system} patch lists take {name_format.rule}")


def _record_problems(record: dict) -> Iterator[str]:
    """Everything AWS checks beyond the model, on the baseline as it would be stored."""
    operating_system = record["OperatingSystem"]
    yield from _filter_group_problems(operating_system, record["GlobalFilters"], "globalFilters")
    for index, rule in enumerate(record["ApprovalRules"]["PatchRules"], start=1):
        yield from _rule_problems(operating_system, rule, f"approvalRules.patchRules.{index}.member")
    yield from _patch_list_problems(operating_system, record)
    if record["Sources"] and operating_system == "WINDOWS":
        yield _problem(", ".join(s["Name"] for s in record["Sources"]), "sources",
                       "Sources apply to Linux managed nodes only, not to WINDOWS")
    status = record.get("AvailableSecurityUpdatesComplianceStatus")
    if status and operating_system != "WINDOWS":
        yield _problem(status, "availableSecurityUpdatesComplianceStatus",
                       f"Supported for Windows Server only, not for {operating_system}")


# --------------------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------------------
# Members of CreatePatchBaseline/UpdatePatchBaseline that are stored, with the value GetPatchBaseline shows when
# the member was never set (Description and AvailableSecurityUpdatesComplianceStatus are then absent).
_STORED_DEFAULTS: dict[str, Callable[[], object]] = {
    "Name": lambda: None,
    "GlobalFilters": lambda: {"PatchFilters": []},
    "ApprovalRules": lambda: {"PatchRules": []},
    "ApprovedPatches": list,
    "ApprovedPatchesComplianceLevel": lambda: "UNSPECIFIED",
    "ApprovedPatchesEnableNonSecurity": lambda: False,
    "RejectedPatches": list,
    "RejectedPatchesAction": lambda: "ALLOW_AS_DEPENDENCY",
    "Sources": list,
    "Description": lambda: None,
    "AvailableSecurityUpdatesComplianceStatus": lambda: None,
}


def _normalized_rules(rules: dict) -> dict:
    """A rule shows ComplianceLevel UNSPECIFIED and EnableNonSecurity false when they were not given."""
    return {"PatchRules": [
        {"ComplianceLevel": "UNSPECIFIED", "EnableNonSecurity": False, **copy.deepcopy(rule)}
        for rule in rules.get("PatchRules") or []
    ]}


def _apply_members(record: dict, params: dict, reset_missing: bool) -> dict:
    """`record` with the members of `params` applied; members not sent are kept, or reset when `reset_missing`."""
    updated = dict(record)
    for member, default in _STORED_DEFAULTS.items():
        if member in params:
            value = copy.deepcopy(params[member])
            updated[member] = _normalized_rules(value) if member == "ApprovalRules" else value
        elif reset_missing or member not in updated:
            updated[member] = default()
        if updated[member] is None:
            del updated[member]
    return updated


def _identity(state: RegionState, record: dict) -> dict:
    identity = {
        "BaselineId": record["BaselineId"],
        "BaselineName": record["Name"],
        "OperatingSystem": record["OperatingSystem"],
        "DefaultBaseline": _default_baseline_id(state, record["OperatingSystem"]) == record["BaselineId"],
    }
    if "Description" in record:
        identity["BaselineDescription"] = record["Description"]
    return identity


def _new_baseline_id(ctx: Context) -> str:
    while True:
        baseline_id = f"pb-{ctx.lab.random.getrandbits(68):017x}"
        if baseline_id not in ctx.state.baselines:
            return baseline_id


# CreatePatchBaseline ClientToken -> (request fingerprint, baseline id), per account and region. Kept beside the
# region state (RegionState has no slot for it); an entry whose baseline is gone no longer counts.
_CLIENT_TOKENS: dict[tuple[str, str, str], tuple[str, str]] = {}


def _request_fingerprint(params: dict) -> str:
    return json.dumps({k: v for k, v in params.items() if k != "ClientToken"}, sort_keys=True)


def _earlier_create(ctx: Context, params: dict) -> str | None:
    """The baseline an earlier CreatePatchBaseline with this ClientToken created: an identical retry gets it back,
    a different request with the same token is IdempotentParameterMismatch."""
    if "ClientToken" not in params:
        return None
    earlier = _CLIENT_TOKENS.get((ctx.account, ctx.region, params["ClientToken"]))
    if earlier is None or earlier[1] not in ctx.state.baselines:
        return None
    if earlier[0] != _request_fingerprint(params):
        raise IdempotentParameterMismatch(f"ClientToken {params['ClientToken']} was already used by a "
                                          "CreatePatchBaseline request with different parameters.")
    return earlier[1]


def _remember_create(ctx: Context, params: dict, baseline_id: str) -> None:
    if "ClientToken" in params:
        key = (ctx.account, ctx.region, params["ClientToken"])
        _CLIENT_TOKENS[key] = (_request_fingerprint(params), baseline_id)


# --------------------------------------------------------------------------------------------------------------
# Paging and Describe filters
# --------------------------------------------------------------------------------------------------------------
def _describe_filters(params: dict, allowed: tuple[str, ...]) -> dict[str, list[str]]:
    """PatchOrchestratorFilter list -> {key: values}. Keys are the ones the operation documents."""
    wanted: dict[str, list[str]] = {}
    for index, item in enumerate(params.get("Filters") or [], start=1):
        key = item.get("Key")
        if key not in allowed:
            _reject([_problem(key, f"filters.{index}.member.key", f"Valid keys: {', '.join(allowed)}")])
        wanted.setdefault(key, []).extend(item.get("Values") or [])
    for value in wanted.get("OPERATING_SYSTEM", []):
        if value not in OPERATING_SYSTEMS:
            _reject([_problem(value, "filters.OPERATING_SYSTEM.values",
                              f"Member must satisfy enum value set: [{', '.join(OPERATING_SYSTEMS)}]")])
    return wanted


def _prefix_matches(name: str, prefixes: list[str] | None) -> bool:
    return prefixes is None or any(name.startswith(prefix) for prefix in prefixes)


def _value_matches(value: str, values: list[str] | None) -> bool:
    return values is None or value in values


# --------------------------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------------------------
@operation("CreatePatchBaseline")
def create_patch_baseline(ctx: Context, params: dict) -> dict:
    earlier = _earlier_create(ctx, params)
    if earlier:
        return {"BaselineId": earlier}
    record = _apply_members({"OperatingSystem": params.get("OperatingSystem", "WINDOWS")}, params,
                            reset_missing=True)
    _reject(_record_problems(record))
    tags = nodes.merged_tags({}, params.get("Tags"), "the new patch baseline")  # AWS's tag rules, before writing
    if len(ctx.state.baselines) >= MAX_BASELINES:
        raise ResourceLimitExceededException(
            f"Maximum number of patch baselines ({MAX_BASELINES}) reached for this account and region.")
    baseline_id = _new_baseline_id(ctx)
    record = {"BaselineId": baseline_id, **record, "CreatedDate": ctx.now, "ModifiedDate": ctx.now}
    ctx.state.baselines[baseline_id] = record
    if tags:
        ctx.state.tags[("PatchBaseline", baseline_id)] = tags
    _remember_create(ctx, params, baseline_id)
    return {"BaselineId": baseline_id}


@operation("GetPatchBaseline")
def get_patch_baseline(ctx: Context, params: dict) -> dict:
    record = _require(ctx.state, params["BaselineId"], "retrieved")
    return {**copy.deepcopy(record), "PatchGroups": _patch_groups_of(ctx.state, record["BaselineId"])}


def _own_baseline(ctx: Context, baseline_id: str, action: str) -> dict:
    """The account's own baseline: AWS-owned baselines cannot be changed ("you can't customize them", user guide).
    AWS does not document the error code for trying; the lab answers ValidationException."""
    record = _require(ctx.state, baseline_id, action)
    if _is_aws_owned(record):
        raise ValidationException(f"Patch baseline {record['Name']} is owned by AWS and cannot be {action}.")
    return record


@operation("UpdatePatchBaseline")
def update_patch_baseline(ctx: Context, params: dict) -> dict:
    record = _own_baseline(ctx, params["BaselineId"], "updated")
    replace = bool(params.get("Replace"))
    if replace and "Name" not in params:
        _reject([_problem(None, "name", "Name is required when Replace is true (as for CreatePatchBaseline)")])
    updated = _apply_members(record, params, reset_missing=replace)
    _reject(_record_problems(updated))
    updated["ModifiedDate"] = ctx.now
    ctx.state.baselines[record["BaselineId"]] = updated
    return copy.deepcopy(updated)


@operation("DeletePatchBaseline")
def delete_patch_baseline(ctx: Context, params: dict) -> dict:
    """AWS lists no DoesNotExistException for this operation: deleting an id that is already gone succeeds
    (the lab's reading of the error list; idempotent like DeleteMaintenanceWindow)."""
    baseline_id = params["BaselineId"]
    if _lookup(ctx.state, baseline_id) is None:
        return {"BaselineId": baseline_id}
    record = _own_baseline(ctx, baseline_id, "deleted")
    own_id = record["BaselineId"]
    groups = _patch_groups_of(ctx.state, own_id)
    if groups:
        raise ResourceInUseException(f"PatchBaseline to be deleted is used for Patch Group: {', '.join(groups)}")
    if ctx.state.default_baselines.get(record["OperatingSystem"]) == own_id:
        # AWS answers ResourceInUseException (clients such as Terraform reset the default, then retry).
        raise ResourceInUseException(
            f"PatchBaseline to be deleted is the default patch baseline for {record['OperatingSystem']}; "
            "register another default baseline first.")
    del ctx.state.baselines[own_id]
    nodes.forget_resource_tags(ctx.state, "PatchBaseline", own_id)
    return {"BaselineId": baseline_id}


@operation("DescribePatchBaselines")
def describe_patch_baselines(ctx: Context, params: dict) -> dict:
    """Filters NAME_PREFIX (prefix of the name), OWNER (Self | AWS | All; All when absent), OPERATING_SYSTEM."""
    wanted = _describe_filters(params, ("NAME_PREFIX", "OWNER", "OPERATING_SYSTEM"))
    owners = set(wanted.get("OWNER", ["All"]))
    if not owners <= {"Self", "AWS", "All"}:
        _reject([_problem(", ".join(sorted(owners)), "filters.OWNER.values", "Valid values: Self, AWS, All")])
    records = []
    if owners & {"AWS", "All"}:
        records += _predefined(ctx.region).values()
    if owners & {"Self", "All"}:
        records += ctx.state.baselines.values()
    identities = [
        _identity(ctx.state, r) for r in records
        if _prefix_matches(r["Name"], wanted.get("NAME_PREFIX"))
        and _value_matches(r["OperatingSystem"], wanted.get("OPERATING_SYSTEM"))
    ]
    # AWS does not document the order; the lab lists by name, then id.
    key = operator.itemgetter("BaselineName", "BaselineId")
    return paging.page(params, "DescribePatchBaselines", "BaselineIdentities", sorted(identities, key=key), key)


# --------------------------------------------------------------------------------------------------------------
# Patch groups
# --------------------------------------------------------------------------------------------------------------
@operation("RegisterPatchBaselineForPatchGroup")
def register_patch_baseline_for_patch_group(ctx: Context, params: dict) -> dict:
    """AlreadyExistsException is for a group "already registered with a different patch baseline" (API
    reference) for that OS; registering the same pair again changes nothing."""
    baseline_id, group = params["BaselineId"], params["PatchGroup"]
    record = _require(ctx.state, baseline_id, "registered")
    key = (group, record["OperatingSystem"])
    existing = ctx.state.patch_groups.get(key)
    if existing == record["BaselineId"]:
        return {"BaselineId": baseline_id, "PatchGroup": group}
    if existing is not None:
        raise AlreadyExistsException(
            f"Patch Group {group} already has patch baseline {existing} registered for operating system "
            f"{record['OperatingSystem']}; deregister it first.")
    if len(_patch_groups_of(ctx.state, record["BaselineId"])) >= MAX_PATCH_GROUPS_PER_BASELINE:
        raise ResourceLimitExceededException(
            f"Patch baseline {baseline_id} already has the maximum of {MAX_PATCH_GROUPS_PER_BASELINE} patch "
            "groups.")
    ctx.state.patch_groups[key] = record["BaselineId"]
    return {"BaselineId": baseline_id, "PatchGroup": group}


@operation("DeregisterPatchBaselineForPatchGroup")
def deregister_patch_baseline_for_patch_group(ctx: Context, params: dict) -> dict:
    """Removes the registration. AWS does not document the error for a group the baseline does not serve; the
    lab answers DoesNotExistException and leaves any other baseline's registration alone."""
    baseline_id, group = params["BaselineId"], params["PatchGroup"]
    record = _require(ctx.state, baseline_id, "deregistered")
    key = (group, record["OperatingSystem"])
    if ctx.state.patch_groups.get(key) != record["BaselineId"]:
        raise DoesNotExistException(f"Patch Group {group} is not registered with patch baseline {baseline_id}.")
    del ctx.state.patch_groups[key]
    return {"BaselineId": baseline_id, "PatchGroup": group}


@operation("GetPatchBaselineForPatchGroup")
def get_patch_baseline_for_patch_group(ctx: Context, params: dict) -> dict:
    """The baseline nodes of the group on that OS use: the registered one, else the OS's default baseline."""
    group, operating_system = params["PatchGroup"], params.get("OperatingSystem", "WINDOWS")
    baseline_id = ctx.state.patch_groups.get((group, operating_system)) or _default_baseline_id(
        ctx.state, operating_system)
    return {"BaselineId": baseline_id, "PatchGroup": group, "OperatingSystem": operating_system}


@operation("DescribePatchGroups")
def describe_patch_groups(ctx: Context, params: dict) -> dict:
    """Filters NAME_PREFIX (of the patch group) and OPERATING_SYSTEM (of the registered baseline)."""
    wanted = _describe_filters(params, ("NAME_PREFIX", "OPERATING_SYSTEM"))
    mappings = [
        {"PatchGroup": group, "BaselineIdentity": _identity(ctx.state, _lookup(ctx.state, baseline_id))}
        for (group, operating_system), baseline_id in ctx.state.patch_groups.items()
        if _prefix_matches(group, wanted.get("NAME_PREFIX"))
        and _value_matches(operating_system, wanted.get("OPERATING_SYSTEM"))
    ]
    def key(mapping: dict) -> tuple[str, str]:
        return mapping["PatchGroup"], mapping["BaselineIdentity"]["OperatingSystem"]

    return paging.page(params, "DescribePatchGroups", "Mappings", sorted(mappings, key=key), key)


# DescribePatchGroupState member -> the InstancePatchState count that puts a node in it (count > 0).
_GROUP_STATE_COUNTS = {
    "InstancesWithInstalledPatches": "InstalledCount",
    "InstancesWithInstalledOtherPatches": "InstalledOtherCount",
    "InstancesWithInstalledPendingRebootPatches": "InstalledPendingRebootCount",
    "InstancesWithInstalledRejectedPatches": "InstalledRejectedCount",
    "InstancesWithMissingPatches": "MissingCount",
    "InstancesWithFailedPatches": "FailedCount",
    "InstancesWithNotApplicablePatches": "NotApplicableCount",
    "InstancesWithUnreportedNotApplicablePatches": "UnreportedNotApplicableCount",
    "InstancesWithCriticalNonCompliantPatches": "CriticalNonCompliantCount",
    "InstancesWithSecurityNonCompliantPatches": "SecurityNonCompliantCount",
    "InstancesWithOtherNonCompliantPatches": "OtherNonCompliantCount",
    "InstancesWithAvailableSecurityUpdates": "AvailableSecurityUpdateCount",
}


@operation("DescribePatchGroupState")
def describe_patch_group_state(ctx: Context, params: dict) -> dict:
    """Counts over the nodes whose patch group tag is the group, from each node's last patch state.

    `Instances` counts every node of the group, scanned or not; the others count nodes whose last
    AWS-RunPatchBaseline reported at least one patch in that state. AWS does not document whether a node is
    placed by its current tag or the tag at its last scan; the lab uses the current tag.
    """
    nodes = [n for n in ctx.state.nodes.values() if targets.patch_group_of(ctx.state, n) == params["PatchGroup"]]
    states = [n.patch_state for n in nodes if n.patch_state]
    result = {"Instances": len(nodes)}
    for member, count in _GROUP_STATE_COUNTS.items():
        result[member] = sum(1 for s in states if (s.get(count) or 0) > 0)
    return result


# --------------------------------------------------------------------------------------------------------------
# Default baselines
# --------------------------------------------------------------------------------------------------------------
@operation("RegisterDefaultPatchBaseline")
def register_default_patch_baseline(ctx: Context, params: dict) -> dict:
    """An AWS-owned baseline is registered (or reset) by its full ARN; its bare id is not found."""
    baseline_id = params["BaselineId"]
    record = _require(ctx.state, baseline_id, "registered as default")
    operating_system = record["OperatingSystem"]
    if record["BaselineId"] == aws_owned_baseline(ctx.region, operating_system)["BaselineId"]:
        ctx.state.default_baselines.pop(operating_system, None)
    else:
        ctx.state.default_baselines[operating_system] = record["BaselineId"]
    return {"BaselineId": baseline_id}


@operation("GetDefaultPatchBaseline")
def get_default_patch_baseline(ctx: Context, params: dict) -> dict:
    """Without OperatingSystem, the Windows default (API reference)."""
    operating_system = params.get("OperatingSystem", "WINDOWS")
    return {"BaselineId": _default_baseline_id(ctx.state, operating_system), "OperatingSystem": operating_system}


# --------------------------------------------------------------------------------------------------------------
# Patch properties
# --------------------------------------------------------------------------------------------------------------
def _property_entries(operating_system: str, prop: str, patch_set: str) -> list[dict]:
    """DescribePatchProperties rows. On Windows, PRODUCT and PRODUCT_FAMILY depend on the patch set (OS by
    default): Windows itself or applications released by Microsoft."""
    if operating_system == "WINDOWS" and prop == "PRODUCT":
        products = dict.fromkeys(_WINDOWS_OS_PRODUCTS, "Windows") if patch_set == "OS" else _WINDOWS_APPLICATIONS
        return [{"Name": name, "ProductFamily": family} for name, family in products.items()]
    if operating_system == "WINDOWS" and prop == "PRODUCT_FAMILY":
        families = _WINDOWS_OS_FAMILIES if patch_set == "OS" else _WINDOWS_APPLICATION_FAMILIES
        return [{"Name": name} for name in families]
    return [{"Name": value} for value in PATCH_PROPERTIES[operating_system][prop]]


@operation("DescribePatchProperties")
def describe_patch_properties(ctx: Context, params: dict) -> dict:
    """Properties valid for the OS (DescribePatchProperties reference lists them per OS). PatchSet applies to
    Windows only; for other systems it is ignored. Operating systems the lab does not simulate list no values."""
    operating_system, prop = params["OperatingSystem"], params["Property"]
    properties = PATCH_PROPERTIES[operating_system]
    if prop not in properties:
        valid = [key for key in properties if key not in ("PATCH_SET", "SECTION")]
        _reject([_problem(prop, "property", f"Property is not valid for {operating_system}; valid properties: "
                                            f"{', '.join(valid)}")])
    entries = _property_entries(operating_system, prop, params.get("PatchSet", "OS"))
    return paging.page(params, "DescribePatchProperties", "Properties", entries)
