# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What each operating system accepts in a patch baseline: one table, checked before anything is written.

Sources (AWS's own words; the comments below point at them):
  [model]   botocore's SSM model (service-2.json): list sizes, lengths, ranges, name patterns.
  [filter]  API reference, PatchFilter and DescribePatchProperties: filter keys per OS, "*" matches all values.
  [rule]    API reference, PatchRule: ApproveAfterDays 0-360, ApproveUntilDate YYYY-MM-DD, "a value for either
            is required", "Not supported on Debian Server or Ubuntu Server"; EnableNonSecurity Linux only.
  [create]  API reference, CreatePatchBaseline: Sources and ApprovedPatchesEnableNonSecurity "Linux managed
            nodes only", AvailableSecurityUpdatesComplianceStatus "Windows Server managed nodes only".
  [names]   User guide, "Package name formats for approved and rejected patch lists".
Where AWS documents values (classification, severity, priority...) the table lists them and the module accepts
them in any case, sending AWS's spelling. Where values are open-ended (PRODUCT, SECTION, other distributions'
classifications) the table says None and AWS validates them.
"""

from __future__ import annotations

import re
from collections import namedtuple

from .validation import ParameterError
from .validation import canonical_choice
from .validation import check_count
from .validation import check_date
from .validation import check_length
from .validation import check_pattern
from .validation import check_range
from .validation import check_unique
from .validation import field_path
from .validation import reject
from .validation import spelling

WILDCARD = "*"  # [filter]: "a wildcard (*), which matches all values"; the console's "All" is not an API value

# [model] list sizes and lengths of CreatePatchBaseline/UpdatePatchBaseline.
MAX_GLOBAL_FILTERS = 4
MAX_RULES = 10
MAX_RULE_FILTERS = 4
MAX_FILTER_VALUES = 20
FILTER_VALUE_LENGTH = (1, 64)
MAX_PATCHES = 50
PATCH_ID_LENGTH = (1, 100)
MAX_SOURCES = 20
MAX_SOURCE_PRODUCTS = 20
SOURCE_PRODUCT_LENGTH = (1, 128)
SOURCE_CONFIGURATION_LENGTH = (1, 1024)
DESCRIPTION_LENGTH = (1, 1024)
APPROVE_AFTER_DAYS = (0, 360)
BASELINE_NAME = (r"[a-zA-Z0-9_\-.]{3,128}", "3 to 128 letters, digits, '_', '-' or '.'")
SOURCE_NAME = (r"[a-zA-Z0-9_\-.]{3,50}", "3 to 50 letters, digits, '_', '-' or '.'")

# [filter] the documented value vocabularies.
AMAZON_LINUX_CLASSIFICATIONS = ("Security", "Bugfix", "Enhancement", "Recommended", "Newpackage")
AMAZON_LINUX_2_SEVERITIES = ("Critical", "Important", "Medium", "Low")
AMAZON_LINUX_2023_SEVERITIES = AMAZON_LINUX_2_SEVERITIES + ("None",)
DEBIAN_PRIORITIES = ("Required", "Important", "Standard", "Optional", "Extra")
# The Debian archive sections the PatchFilter reference lists for the SECTION key.
DEBIAN_SECTIONS = (
    "Admin", "Base", "Cli-mono", "Comm", "Database", "Devel", "Debug", "Doc", "Editors", "Electronics", "Embedded",
    "Fonts", "Gamedev", "Gnome", "GNU-R", "Gnustep", "Graphics", "Hamradio", "Haskell", "Httpd", "Interpreters",
    "Java", "Kde", "Kernel", "Libdevel", "Libs", "Lisp", "Localization", "Mail", "Math", "Misc", "Net", "News",
    "Ocaml", "Oldlibs", "Otherosfs", "Perl", "Php", "Python", "Ruby", "Science", "Shells", "Sound", "Tex", "Text",
    "Utils", "Vcs", "Video", "Web", "X11", "Xfce", "Zope",
)
WINDOWS_CLASSIFICATIONS = (
    "CriticalUpdates", "DefinitionUpdates", "Drivers", "FeaturePacks", "SecurityUpdates", "ServicePacks", "Tools",
    "UpdateRollups", "Updates", "Upgrades",
)
WINDOWS_MSRC_SEVERITIES = ("Critical", "Important", "Moderate", "Low", "Unspecified")
WINDOWS_PATCH_SETS = ("OS", "APPLICATION")

# [names] approved/rejected patch formats per package manager.
PatchNames = namedtuple("PatchNames", "pattern meaning max_wildcards uppercase")
RPM_NAMES = PatchNames(
    r"\S+", "package names (name, name.arch, name-version-release...), CVE, advisory or Bugzilla IDs; one '*' at most",
    1, False,
)
APT_NAMES = PatchNames(
    r"[A-Za-z0-9][A-Za-z0-9+.\-]*",
    "package names only (letters, digits, '+', '-', '.'), without version, architecture or wildcard; "
    "pin exact versions with an InstallOverrideList instead",
    0, False,
)
WINDOWS_NAMES = PatchNames(r"KB\d+|MS\d{2}-\d{3}", "KB IDs (KB2032276) or MSRC bulletin IDs (MS10-012)", 0, True)
OTHER_NAMES = PatchNames(r"\S+", "package names without spaces", None, False)

OsRules = namedtuple("OsRules", "label filters approval_delay windows names")
"""filters: key -> documented values (None: open-ended); approval_delay: the OS takes (and needs) one of
approve_after_days / approve_until_date per rule; windows: Windows-only vs Linux-only features."""

_RPM_FILTERS = {"PRODUCT": None, "CLASSIFICATION": None, "SEVERITY": None}
_DEBIAN_FILTERS = {"PRODUCT": None, "PRIORITY": DEBIAN_PRIORITIES, "SECTION": DEBIAN_SECTIONS}

OS_RULES = {
    "AMAZON_LINUX_2": OsRules(
        "Amazon Linux 2",
        {"PRODUCT": None, "CLASSIFICATION": AMAZON_LINUX_CLASSIFICATIONS, "SEVERITY": AMAZON_LINUX_2_SEVERITIES},
        True, False, RPM_NAMES,
    ),
    "AMAZON_LINUX_2023": OsRules(
        "Amazon Linux 2023",
        {"PRODUCT": None, "CLASSIFICATION": AMAZON_LINUX_CLASSIFICATIONS, "SEVERITY": AMAZON_LINUX_2023_SEVERITIES},
        True, False, RPM_NAMES,
    ),
    "AMAZON_LINUX": OsRules(
        "Amazon Linux",
        {"PRODUCT": None, "CLASSIFICATION": AMAZON_LINUX_CLASSIFICATIONS, "SEVERITY": AMAZON_LINUX_2_SEVERITIES},
        True, False, RPM_NAMES,
    ),
    "AMAZON_LINUX_2022": OsRules("Amazon Linux 2022", _RPM_FILTERS, True, False, RPM_NAMES),
    # [rule] "Not supported on Debian Server or Ubuntu Server"; the user guide describes Raspberry Pi OS together
    # with Debian Server ("How patch baseline rules work on Debian Server and Raspberry Pi OS"), so it is treated
    # like Debian. [filter] lists PRODUCT, PRIORITY and SECTION for these APT systems.
    "UBUNTU": OsRules("Ubuntu Server", _DEBIAN_FILTERS, False, False, APT_NAMES),
    "DEBIAN": OsRules("Debian Server", _DEBIAN_FILTERS, False, False, APT_NAMES),
    "RASPBIAN": OsRules("Raspberry Pi OS", _DEBIAN_FILTERS, False, False, APT_NAMES),
    "WINDOWS": OsRules(
        "Windows Server",
        {
            "PATCH_SET": WINDOWS_PATCH_SETS, "PRODUCT": None, "PRODUCT_FAMILY": None,
            "CLASSIFICATION": WINDOWS_CLASSIFICATIONS, "MSRC_SEVERITY": WINDOWS_MSRC_SEVERITIES,
        },
        True, True, WINDOWS_NAMES,
    ),
    "REDHAT_ENTERPRISE_LINUX": OsRules("Red Hat Enterprise Linux", _RPM_FILTERS, True, False, RPM_NAMES),
    "CENTOS": OsRules("CentOS", _RPM_FILTERS, True, False, RPM_NAMES),
    "ORACLE_LINUX": OsRules("Oracle Linux", _RPM_FILTERS, True, False, RPM_NAMES),
    "ALMA_LINUX": OsRules("AlmaLinux", _RPM_FILTERS, True, False, RPM_NAMES),
    "ROCKY_LINUX": OsRules("Rocky Linux", _RPM_FILTERS, True, False, RPM_NAMES),
    "SUSE": OsRules("SUSE Linux Enterprise Server", _RPM_FILTERS, True, False, OTHER_NAMES),
    "MACOS": OsRules("macOS", {"PRODUCT": None, "CLASSIFICATION": None}, True, False, OTHER_NAMES),
}
OPERATING_SYSTEMS = tuple(sorted(OS_RULES))


def rules_for(operating_system: str) -> OsRules:
    return OS_RULES[operating_system]


def has_approval_delay(operating_system: str) -> bool:
    """Whether rules of this OS take approve_after_days / approve_until_date (an OS newer than the table: yes)."""
    return OS_RULES[operating_system].approval_delay if operating_system in OS_RULES else True


def canonical_filters(field: str, filters, operating_system: str) -> list:
    """Check one filter group for `operating_system`; return it as AWS will store it, in a stable order.

    Keys are upper-cased, documented values take AWS's spelling, values are de-duplicated and sorted and filters
    sorted by key: AWS ANDs the filters of a group and ORs the values of a filter, so order carries no meaning.
    """
    os_rules = rules_for(operating_system)
    group = []
    for index, patch_filter in enumerate(filters or ()):
        key_field = field_path(field, index, "key")
        key = patch_filter["key"].upper()
        if key not in os_rules.filters:
            reject(key_field, patch_filter["key"], f"is not a filter key for {os_rules.label}; allowed: "
                   + ", ".join(os_rules.filters))
        values = _canonical_values(field_path(field, index, "values"), patch_filter["values"], os_rules.filters[key])
        group.append({"key": key, "values": values})
    check_unique(field_path(field, "key"), [patch_filter["key"] for patch_filter in group])
    return sorted(group, key=lambda patch_filter: patch_filter["key"])


def _canonical_values(field: str, values, documented) -> list:
    canonical = set()
    for index, value in enumerate(values or ()):
        value_field = field_path(field, index)
        check_length(value_field, value, *FILTER_VALUE_LENGTH)
        if value == WILDCARD:
            canonical.add(value)
        elif documented is not None:
            canonical.add(canonical_choice(value_field, value, documented + (WILDCARD,)))
        elif value.lower() == "all":
            reject(value_field, value, "is the console's label, not an API value; allowed: '*' for all values")
        else:
            canonical.add(value)
    check_count(field, canonical, MAX_FILTER_VALUES, low=1)
    return sorted(canonical)


def normalize_filters(filters, operating_system: str) -> list:
    """A filter group as AWS returned it, in the same canonical form as `canonical_filters` (no validation:
    AWS accepted it already, and a value the table does not know must not break reading the baseline)."""
    known = OS_RULES[operating_system].filters if operating_system in OS_RULES else {}
    group = []
    for patch_filter in filters or ():
        key = patch_filter["key"].upper()
        values = {spelling(value, known.get(key)) or value for value in patch_filter["values"]}
        group.append({"key": key, "values": sorted(values)})
    return sorted(group, key=lambda patch_filter: patch_filter["key"])


def check_approval_delay(field: str, rule: dict, operating_system: str) -> None:
    """[rule] one of approve_after_days / approve_until_date per rule, or neither on Ubuntu and Debian."""
    os_rules = rules_for(operating_system)
    after_days, until_date = rule.get("approve_after_days"), rule.get("approve_until_date")
    check_range(field_path(field, "approve_after_days"), after_days, *APPROVE_AFTER_DAYS)
    check_date(field_path(field, "approve_until_date"), until_date)
    given = [name for name in ("approve_after_days", "approve_until_date") if rule.get(name) is not None]
    if not os_rules.approval_delay and given:
        reject(field_path(field, given[0]), rule[given[0]],
               f"is not supported for {os_rules.label}: AWS has no approval delay there (approval is immediate); "
               "allowed: leave approve_after_days and approve_until_date unset")
    if os_rules.approval_delay and len(given) != 1:
        raise ParameterError(
            f"{field}: {os_rules.label} needs exactly one of approve_after_days (0 to 360) or approve_until_date "
            f"(YYYY-MM-DD) per rule; given: {', '.join(given) or 'neither'}"
        )


def canonical_patch_names(field: str, names, operating_system: str) -> list:
    """[names] check approved/rejected patch names for the OS; return them de-duplicated and sorted (a set)."""
    fmt = rules_for(operating_system).names
    canonical = set()
    for index, name in enumerate(names or ()):
        name_field = field_path(field, index)
        check_length(name_field, name, *PATCH_ID_LENGTH)
        value = name.upper() if fmt.uppercase else name
        if not re.fullmatch(fmt.pattern, value):
            reject(name_field, name, f"is not valid; allowed: {fmt.meaning}")
        if fmt.max_wildcards is not None and value.count(WILDCARD) > fmt.max_wildcards:
            reject(name_field, name, f"has {value.count(WILDCARD)} wildcards; allowed: {fmt.meaning}")
        canonical.add(value)
    check_count(field, canonical, MAX_PATCHES)
    return sorted(canonical)


def check_os_features(params: dict) -> None:
    """[create] features that exist on one side only: Linux (sources, non-security updates) or Windows."""
    os_rules = rules_for(params["operating_system"])
    if os_rules.windows:
        linux_only = {"sources": [source["name"] for source in params.get("sources") or ()] or None,
                      "approved_patches_enable_non_security": params.get("approved_patches_enable_non_security")}
        for index, rule in enumerate(params.get("approval_rules") or ()):
            linux_only[field_path("approval_rules", index, "enable_non_security")] = rule.get("enable_non_security")
        for field, value in linux_only.items():
            if value:
                reject(field, value, f"applies to Linux only, not {os_rules.label}; allowed: leave it unset")
    elif params.get("available_security_updates_compliance_status") is not None:
        reject("available_security_updates_compliance_status",
               params["available_security_updates_compliance_status"],
               f"applies to Windows Server only, not {os_rules.label}; allowed: leave it unset")


def check_sources(sources) -> None:
    check_count("sources", sources, MAX_SOURCES)
    for index, source in enumerate(sources or ()):
        check_pattern(field_path("sources", index, "name"), source["name"], *SOURCE_NAME)
        check_count(field_path("sources", index, "products"), source["products"], MAX_SOURCE_PRODUCTS, low=1)
        for product_index, product in enumerate(source["products"]):
            check_length(field_path("sources", index, "products", product_index), product, *SOURCE_PRODUCT_LENGTH)
        # The configuration is a repository file (sensitive in the model): name the field, never echo the value.
        configuration = source["configuration"]
        if not SOURCE_CONFIGURATION_LENGTH[0] <= len(configuration) <= SOURCE_CONFIGURATION_LENGTH[1]:
            raise ParameterError(
                f"{field_path('sources', index, 'configuration')}: {len(configuration)} characters; allowed: 1 to 1024"
            )
    check_unique("sources[].name", [source["name"] for source in sources or ()])


def check_baseline_scalars(params: dict) -> None:
    check_pattern("name", params["name"], *BASELINE_NAME)
    check_length("description", params.get("description"), *DESCRIPTION_LENGTH)
    check_count("global_filters", params.get("global_filters"), MAX_GLOBAL_FILTERS)
    check_count("approval_rules", params.get("approval_rules"), MAX_RULES)
    for index, rule in enumerate(params.get("approval_rules") or ()):
        check_count(field_path("approval_rules", index, "filters"), rule.get("filters"), MAX_RULE_FILTERS)
