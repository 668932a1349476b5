"""Per-OS package catalogs: what a node has installed and which updates the OS vendor publishes, and when.

Each platform gets one deterministic catalog, built once and cached (seeding 5,000 nodes only draws from it).
Release dates are day offsets from `LAB_EPOCH` (the lab's start date), spread from -90 days (already published
when the lab starts) to +60 days (published later, so advancing the lab clock week by week reveals new updates).

The metadata follows what Patch Manager reads from each OS (SSM user guide, "How security patches are selected"
and "Patch baseline filters" per OS):
* Ubuntu: an update is a new version of a package uploaded to the `<codename>-security` or `<codename>-updates`
  pocket; packages carry the Debian PRIORITY and SECTION fields; security uploads list the CVEs they fix.
  Ubuntu publishes no classification or severity; AWS does not document what DescribeInstancePatches shows
  for them: the lab reports an empty Classification and the package's priority as Severity.
* Amazon Linux 2 / 2023: updates are published as ALAS advisories (ALAS2-YYYY-NNNN, ALAS2023-YYYY-NNN) listed in
  the repositories' updateinfo.xml, with a CLASSIFICATION (the lab uses Security, Bugfix, Enhancement) and, for
  security, a SEVERITY (AL2023 reports `None` for non-security advisories; AL2 reports none: empty string).
* Windows Server: updates are KBs with a Classification, an MSRC severity (`Unspecified` for non-security), a
  PRODUCT / PRODUCT_FAMILY and a PATCH_SET (OS or APPLICATION). A cumulative update supersedes the previous one
  of its series: the lab models each series as one "package" whose versions are KB ids.

Several successive updates of one package may exist; the newest one released by the evaluation time is the
candidate the package manager would install (apt's candidate, yum's newest; Windows' newest in a series).
"""
from __future__ import annotations

import datetime
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from .platforms import PLATFORMS, Platform
from .state import LAB

# The lab's start date (midnight UTC of the lab clock at import): day 0 of every catalog's release calendar.
LAB_EPOCH: datetime.datetime = LAB.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)

FIRST_RELEASE_DAY = -90
LAST_RELEASE_DAY = 60


@dataclass(frozen=True)
class Update:
    """One published version of a package (Linux) or one KB (Windows), with the metadata Patch Manager reads."""

    package: str                # binary package name (Linux) or update series (Windows, see module doc)
    version: str                # the version it installs; on Windows the KB id
    release_day: int            # days from LAB_EPOCH (< FIRST_RELEASE_DAY: published before the catalog window)
    title: str                  # DescribeInstancePatches Title: KB title, or name.arch:version (APT) /
                                # name.arch:epoch:version-release (YUM), the formats the user guide documents
    kb_id: str                  # DescribeInstancePatches KBId: the KB, or name.arch
    classification: str         # AL: Security/Bugfix/...; Windows: SecurityUpdates/...; Ubuntu: "" (none published)
    severity: str               # AL SEVERITY, Windows MSRC severity, Ubuntu: the Debian priority
    arch: str = ""              # x86_64/noarch (rpm), amd64/all (deb); "" on Windows
    cves: tuple[str, ...] = ()
    reboot_required: bool = False
    advisory_id: str = ""       # ALAS id (Amazon Linux); KB id (Windows); "" (Ubuntu)
    pocket: str = ""            # Ubuntu: "<codename>-security" or "<codename>-updates"
    priority: str = ""          # Ubuntu PRIORITY (Required, Important, Standard, Optional, Extra)
    section: str = ""           # Ubuntu SECTION, spelt as AWS's filter values (Libs, Net, Admin, ...)
    product: str = ""           # PRODUCT filter value (the OS release, or the application on Windows)
    product_family: str = ""    # Windows PRODUCT_FAMILY
    patch_set: str = ""         # Windows PATCH_SET: OS or APPLICATION
    # Packages this version needs at exactly these versions (binaries of the same source upload, a new kernel).
    requires: tuple[tuple[str, str], ...] = ()

    @property
    def released(self) -> datetime.datetime:
        return release_time(self.release_day)

    @property
    def is_security(self) -> bool:
        """Ubuntu: the version is in the -security pocket; AL and Windows: the vendor's security classification."""
        if self.pocket:
            return self.pocket.endswith("-security")
        return self.classification in ("Security", "SecurityUpdates")


@dataclass(frozen=True)
class Package:
    """A package (or Windows update series) and every version the catalog knows of it, oldest first.

    Versions released before the catalog window are what images ship; the others are the window's updates.
    """

    name: str
    versions: tuple[Update, ...]
    installed_share: float = 1.0      # share of nodes that have it (1.0 = part of every image, 0 = dependency only)

    @property
    def history(self) -> tuple[Update, ...]:
        return tuple(u for u in self.versions if u.release_day < FIRST_RELEASE_DAY)

    @property
    def updates(self) -> tuple[Update, ...]:
        return tuple(u for u in self.versions if u.release_day >= FIRST_RELEASE_DAY)

    def rank(self, version: str | None) -> int:
        """Position of `version` in the package's history (-1 when not installed or unknown)."""
        for index, update in enumerate(self.versions):
            if update.version == version:
                return index
        return -1

    def record(self, version: str | None) -> Update | None:
        rank = self.rank(version)
        return self.versions[rank] if rank >= 0 else None

    def newer(self, version: str | None, *, released_by: datetime.datetime) -> list[Update]:
        """Versions newer than `version` that are published at `released_by`, oldest first."""
        rank = self.rank(version)
        return [u for u in self.versions[rank + 1:] if u.released <= released_by]


@dataclass
class Catalog:
    platform: Platform
    packages: dict[str, Package] = field(default_factory=dict)
    source_of: dict[str, str] = field(default_factory=dict)  # binary package -> its source (shared versions)
    _by_kb: dict[str, Update] = field(default_factory=dict)  # Windows: KB id -> update

    def add(self, package: Package) -> None:
        self.packages[package.name] = package
        if self.platform.is_windows:
            self._by_kb.update({u.version: u for u in package.versions})

    def kb(self, kb_id: str) -> Update | None:
        """Windows: the catalog record of a KB."""
        return self._by_kb.get(kb_id)

    def current_versions(self, installed: dict[str, str]) -> dict[str, str]:
        """Package -> installed version. Windows: series -> newest installed KB of the series."""
        if not self.platform.is_windows:
            return {name: version for name, version in installed.items() if name in self.packages}
        current: dict[str, str] = {}
        for kb_id in installed:
            update = self._by_kb.get(kb_id)
            if update is None:
                continue
            package = self.packages[update.package]
            if package.rank(kb_id) > package.rank(current.get(update.package)):
                current[update.package] = kb_id
        return current

    def updates(self) -> list[Update]:
        """Every update published in the catalog window, in release order."""
        every = [u for p in self.packages.values() for u in p.updates]
        return sorted(every, key=lambda u: (u.release_day, u.package, u.version))


def release_time(day: int) -> datetime.datetime:
    return LAB_EPOCH + datetime.timedelta(days=day)


def catalog_for(platform: Platform) -> Catalog:
    return _build(platform.key)


def initial_installed(platform: Platform, rng: random.Random) -> dict[str, str]:
    """What a fresh node of `platform` has installed: package -> version (Linux); KB id -> "installed" (Windows).

    Every node has the image's core packages; optional ones (web server, database...) are picked by `rng`, as
    are the versions: most nodes run a version from before the catalog window, some already took an update
    released at least a month before the lab started. Binaries of one source share their version, and what a
    version requires (Ubuntu's versioned kernel image) is installed with it, as the package manager would.
    """
    catalog = catalog_for(platform)
    installed: dict[str, str] = {}
    by_source: dict[str, str | None] = {}
    for package in catalog.packages.values():
        source = catalog.source_of.get(package.name, package.name)
        if source not in by_source:
            present = package.installed_share > 0 and rng.random() < package.installed_share
            by_source[source] = _initial_version(package, rng) if present else None
        version = by_source[source]
        if version is None:
            continue
        if platform.is_windows:
            installed[version] = "installed"
            continue
        installed[package.name] = version
        for dependency, required in package.record(version).requires:
            installed.setdefault(dependency, required)
    return installed


def _initial_version(package: Package, rng: random.Random) -> str:
    """A version from before the window (most nodes) or an update published a month before the lab started."""
    early = [u.version for u in package.updates if u.release_day <= -30]
    if early and rng.random() < 0.3:
        return rng.choice(early)
    history = package.history
    return history[-1].version if rng.random() < 0.7 else rng.choice(history).version


# --------------------------------------------------------------------------------------------------------------
# Catalog data. A source (one upload) builds one or more binary packages that share every version.

@dataclass(frozen=True)
class _Source:
    name: str
    binaries: tuple[str, ...]
    version: Callable[[int], str]   # revision number -> version string
    first: int                      # revision of the oldest version the catalog knows
    step: int = 1                   # revision increment between versions
    reboot: bool = False
    installed_share: float = 1.0
    priority: str = "Optional"      # Ubuntu
    section: str = "Libs"           # Ubuntu
    security_share: float = 0.6     # share of updates that are security fixes
    kernel_image: Callable[[int], tuple[str, str]] | None = None  # Ubuntu meta: revision -> (image pkg, version)
    noarch: bool = False            # architecture-independent package (all / noarch)


def _ubuntu_sources(codename: str) -> list[_Source]:
    """Ubuntu's main packages per release, with realistic version strings."""
    per_release = {
        "focal": dict(ssl=("openssl", "libssl1.1"), openssl=lambda n: f"1.1.1f-1ubuntu2.{n}", openssl_first=19,
                      ssh=lambda n: f"1:8.2p1-4ubuntu0.{n}", curl=lambda n: f"7.68.0-1ubuntu2.{n}",
                      sudo=lambda n: f"1.8.31-1ubuntu1.{n}", bash=lambda n: f"5.0-6ubuntu1.{n}",
                      systemd=lambda n: f"245.4-4ubuntu3.{n}", libc=lambda n: f"2.31-0ubuntu9.{n}",
                      kernel="5.4.0", kfirst=190, python=("python3.8", "libpython3.8"),
                      py=lambda n: f"3.8.10-0ubuntu1~20.04.{n}", nginx=lambda n: f"1.18.0-0ubuntu1.{n}",
                      pg=("postgresql-12", "postgresql-client-12"), pgv=lambda n: f"12.{n}-0ubuntu0.20.04.1",
                      pgfirst=18, git=lambda n: f"1:2.25.1-1ubuntu3.{n}", vim=lambda n: f"2:8.1.2269-1ubuntu5.{n}",
                      tz=lambda n: f"2024a-0ubuntu0.20.04.{n}"),
        "jammy": dict(ssl=("openssl", "libssl3"), openssl=lambda n: f"3.0.2-0ubuntu1.{n}", openssl_first=12,
                      ssh=lambda n: f"1:8.9p1-3ubuntu0.{n}", curl=lambda n: f"7.81.0-1ubuntu1.{n}",
                      sudo=lambda n: f"1.9.9-1ubuntu2.{n}", bash=lambda n: f"5.1-6ubuntu1.{n}",
                      systemd=lambda n: f"249.11-0ubuntu3.{n}", libc=lambda n: f"2.35-0ubuntu3.{n}",
                      kernel="5.15.0", kfirst=118, python=("python3.10", "libpython3.10"),
                      py=lambda n: f"3.10.12-1~22.04.{n}", nginx=lambda n: f"1.18.0-6ubuntu14.{n}",
                      pg=("postgresql-14", "postgresql-client-14"), pgv=lambda n: f"14.{n}-0ubuntu0.22.04.1",
                      pgfirst=12, git=lambda n: f"1:2.34.1-1ubuntu1.{n}", vim=lambda n: f"2:8.2.3995-1ubuntu2.{n}",
                      tz=lambda n: f"2024a-0ubuntu0.22.04.{n}"),
        "noble": dict(ssl=("openssl", "libssl3t64"), openssl=lambda n: f"3.0.13-0ubuntu3.{n}", openssl_first=1,
                      ssh=lambda n: f"1:9.6p1-3ubuntu13.{n}", curl=lambda n: f"8.5.0-2ubuntu10.{n}",
                      sudo=lambda n: f"1.9.15p5-3ubuntu5.24.04.{n}", bash=lambda n: f"5.2.21-2ubuntu4.{n}",
                      systemd=lambda n: f"255.4-1ubuntu8.{n}", libc=lambda n: f"2.39-0ubuntu8.{n}",
                      kernel="6.8.0", kfirst=40, python=("python3.12", "libpython3.12t64"),
                      py=lambda n: f"3.12.3-1ubuntu0.{n}", nginx=lambda n: f"1.24.0-2ubuntu7.{n}",
                      pg=("postgresql-16", "postgresql-client-16"), pgv=lambda n: f"16.{n}-0ubuntu0.24.04.1",
                      pgfirst=4, git=lambda n: f"1:2.43.0-1ubuntu7.{n}", vim=lambda n: f"2:9.1.0016-1ubuntu7.{n}",
                      tz=lambda n: f"2024a-3ubuntu1.{n}"),
    }[codename]
    r = per_release
    kernel = r["kernel"]
    release = {"focal": "20.04", "jammy": "22.04", "noble": "24.04"}[codename]
    return [
        _Source("openssl", r["ssl"], r["openssl"], r["openssl_first"], section="Utils", security_share=0.8),
        _Source("openssh", ("openssh-server", "openssh-client", "openssh-sftp-server"), r["ssh"], 1,
                section="Net", security_share=0.7),
        _Source("curl", ("curl", "libcurl4" if codename != "noble" else "libcurl4t64"), r["curl"], 14,
                section="Web"),
        _Source("sudo", ("sudo",), r["sudo"], 1, priority="Important", section="Admin", security_share=0.7),
        _Source("bash", ("bash",), r["bash"], 1, priority="Required", section="Shells", security_share=0.3),
        _Source("systemd", ("systemd", "libsystemd0", "udev"), r["systemd"], 10, reboot=True,
                priority="Important", section="Admin", security_share=0.4),
        _Source("glibc", ("libc6", "libc-bin"), r["libc"], 4, reboot=True, priority="Required", security_share=0.6),
        _Source("linux-meta", ("linux-image-generic",), lambda n: f"{kernel}.{n}.{n}", r["kfirst"], step=5,
                reboot=True, section="Kernel", security_share=0.8,
                kernel_image=lambda n: (f"linux-image-{kernel}-{n}-generic", f"{kernel}-{n}.{n + 10}")),
        _Source(r["python"][0], r["python"], r["py"], 1, priority="Important", section="Python",
                security_share=0.6),
        _Source("nginx", ("nginx", "nginx-common"), r["nginx"], 1, installed_share=0.3, section="Httpd"),
        _Source(r["pg"][0], r["pg"], r["pgv"], r["pgfirst"], installed_share=0.2, section="Database",
                security_share=0.5),
        _Source("tzdata", ("tzdata",), r["tz"], 1, priority="Required", section="Localization", security_share=0.0,
                noarch=True),
        _Source("git", ("git",), r["git"], 1, installed_share=0.6, section="Vcs"),
        _Source("vim", ("vim", "vim-common"), r["vim"], 1, installed_share=0.7, section="Editors"),
        _Source("ca-certificates", ("ca-certificates",), lambda n: f"20240203~{release}.{n}", 1,
                priority="Important", section="Misc", security_share=0.2, noarch=True),
    ]


def _amazon_sources(release: str) -> list[_Source]:
    """Amazon Linux 2 / 2023 packages, with realistic version strings (dist tag amzn2 / amzn2023)."""
    if release == "2":
        d = "amzn2"
        return [
            _Source("kernel", ("kernel",), lambda n: f"5.10.{n}-{n - 12}.{n * 4}.{d}", 220, step=3, reboot=True,
                    security_share=0.8),
            _Source("glibc", ("glibc", "glibc-common", "glibc-minimal-langpack"), lambda n: f"2.26-{n}.{d}", 60,
                    reboot=True),
            _Source("openssl", ("openssl-libs", "openssl"), lambda n: f"1.0.2k-24.{d}.0.{n}", 7, security_share=0.9),
            _Source("curl", ("curl", "libcurl"), lambda n: f"8.3.0-1.{d}.0.{n}", 4),
            _Source("sudo", ("sudo",), lambda n: f"1.8.23-10.{d}.3.{n}", 1, security_share=0.7),
            _Source("systemd", ("systemd", "systemd-libs"), lambda n: f"219-78.{d}.0.{n}", 16, reboot=True,
                    security_share=0.4),
            _Source("python3", ("python3", "python3-libs"), lambda n: f"3.7.16-1.{d}.0.{n}", 4),
            _Source("amazon-ssm-agent", ("amazon-ssm-agent",), lambda n: f"3.3.{n}.0-1.{d}", 1380, step=100,
                    security_share=0.2),
            _Source("openssh", ("openssh-server", "openssh", "openssh-clients"), lambda n: f"7.4p1-22.{d}.0.{n}", 3),
            _Source("bash", ("bash",), lambda n: f"4.2.46-34.{d}.0.{n}", 1, security_share=0.3),
            _Source("tzdata", ("tzdata",), lambda n: f"2024{'abcdefghijkl'[n]}-1.{d}", 0, security_share=0.0,
                    noarch=True),
            _Source("git", ("git",), lambda n: f"2.40.{n}-1.{d}.0.1", 1, installed_share=0.6),
            _Source("httpd", ("httpd", "httpd-tools"), lambda n: f"2.4.{n}-1.{d}", 58, installed_share=0.3),
            _Source("vim", ("vim-minimal",), lambda n: f"9.0.{2100 + n * 50}-1.{d}.0.1", 0, installed_share=0.8),
        ]
    d = "amzn2023"
    return [
        _Source("kernel", ("kernel",), lambda n: f"6.1.{n}-{n + 30}.{n * 2 + 1}.{d}", 100, step=3, reboot=True,
                security_share=0.8),
        _Source("glibc", ("glibc", "glibc-common", "glibc-minimal-langpack"), lambda n: f"2.34-52.{d}.0.{n}", 8,
                reboot=True),
        _Source("openssl", ("openssl-libs", "openssl"), lambda n: f"3.0.8-1.{d}.0.{n}", 9, security_share=0.9),
        _Source("curl", ("curl-minimal", "libcurl-minimal"), lambda n: f"8.5.0-1.{d}.0.{n}", 2),
        _Source("sudo", ("sudo",), lambda n: f"1.9.15-1.p5.{d}.0.{n}", 1, security_share=0.7),
        _Source("systemd", ("systemd", "systemd-libs"), lambda n: f"252.{n}-2.{d}", 16, reboot=True,
                security_share=0.4),
        _Source("python3", ("python3", "python3-libs"), lambda n: f"3.9.{n}-1.{d}.0.1", 16),
        _Source("amazon-ssm-agent", ("amazon-ssm-agent",), lambda n: f"3.3.{n}.0-1.{d}", 1380, step=100,
                security_share=0.2),
        _Source("openssh", ("openssh-server", "openssh", "openssh-clients"), lambda n: f"8.7p1-8.{d}.0.{n}", 4),
        _Source("bash", ("bash",), lambda n: f"5.2.15-1.{d}.0.{n}", 1, security_share=0.3),
        _Source("tzdata", ("tzdata",), lambda n: f"2024{'abcdefghijkl'[n]}-1.{d}", 0, security_share=0.0,
                noarch=True),
        _Source("git", ("git",), lambda n: f"2.40.{n}-1.{d}.0.1", 1, installed_share=0.6),
        _Source("nginx", ("nginx", "nginx-core"), lambda n: f"1.24.0-1.{d}.0.{n}", 1, installed_share=0.3),
        _Source("postgresql15", ("postgresql15", "postgresql15-private-libs"), lambda n: f"15.{n}-1.{d}.0.1", 6,
                installed_share=0.2),
    ]


_AL_SEVERITIES = ("Critical", "Important", "Medium", "Low")
_AL_SEVERITY_WEIGHTS = (1, 4, 4, 2)
_AL_NON_SECURITY = ("Bugfix", "Enhancement")


def _weekly_uploads(rng: random.Random, sources: list[str]) -> dict[str, list[int]]:
    """Release days per source: every week of the window, one to three sources publish an update (USNs and
    ALAS advisories come out weekly), so advancing the lab clock by a week always reveals new updates."""
    days: dict[str, set[int]] = {name: set() for name in sources}
    for week_start in range(FIRST_RELEASE_DAY, LAST_RELEASE_DAY + 1, 7):
        for name in rng.sample(sources, rng.randint(1, 3)):
            days[name].add(min(week_start + rng.randrange(7), LAST_RELEASE_DAY))
    return {name: sorted(found) for name, found in days.items()}


def _cves(rng: random.Random, day: int) -> tuple[str, ...]:
    year = release_time(day).year
    return tuple(sorted({f"CVE-{year}-{rng.randrange(10000, 59999)}" for _ in range(rng.randint(1, 3))}))


def _linux_catalog(platform: Platform, sources: list[_Source]) -> Catalog:
    """Per source: 1-3 versions from before the window, then its uploads in it; every binary shares them."""
    rng = random.Random(f"fleetlab-catalog/{platform.key}")
    catalog = Catalog(platform)
    advisories = iter(range(rng.randrange(100, 900), 100_000))
    window = _weekly_uploads(rng, [source.name for source in sources])
    for source in sources:
        history_days = [FIRST_RELEASE_DAY - 1 - 45 * k for k in range(rng.randint(1, 3))][::-1]
        days = history_days + window[source.name]
        revisions = [source.first + i * source.step for i in range(len(days))]
        uploads = [(day, source.version(n), n, _linux_update_meta(platform, source, rng, day, next(advisories)))
                   for day, n in zip(days, revisions, strict=True)]
        images: dict[str, Update] = {}
        for binary in source.binaries:
            catalog.source_of[binary] = source.name
            versions = []
            for day, version, revision, meta in uploads:
                requires = tuple((b, version) for b in source.binaries if b != binary)
                if source.kernel_image:
                    image, image_version = source.kernel_image(revision)
                    requires += ((image, image_version),)
                    images[image] = _linux_update(platform, source, image, image_version, day, meta)
                versions.append(_linux_update(platform, source, binary, version, day, meta, requires))
            catalog.add(Package(binary, tuple(versions), source.installed_share))
        for image, update in images.items():
            # A versioned kernel image exists from its upload on; only the meta package pulls it in.
            catalog.add(Package(image, (update,), installed_share=0.0))
    return catalog


def _linux_update(platform: Platform, source: _Source, name: str, version: str, day: int, meta: dict,
                  requires: tuple[tuple[str, str], ...] = ()) -> Update:
    """One version of one binary package, titled the way Patch Manager reports it (APT vs YUM format)."""
    if platform.family == "UBUNTU":
        arch = "all" if source.noarch else "amd64"
        title = f"{name}.{arch}:{version}"
    else:
        arch = "noarch" if source.noarch else "x86_64"
        title = f"{name}.{arch}:{version if ':' in version else '0:' + version}"
    return Update(package=name, version=version, release_day=day, title=title, kb_id=f"{name}.{arch}", arch=arch,
                  requires=requires, **meta)


def _linux_update_meta(platform: Platform, source: _Source, rng: random.Random, day: int, seq: int) -> dict:
    """Metadata of one upload: pocket/priority/section (Ubuntu) or advisory/classification/severity (AL)."""
    security = rng.random() < source.security_share
    common = {"product": platform.product, "reboot_required": source.reboot,
              "cves": _cves(rng, day) if security else ()}
    if platform.family == "UBUNTU":
        # Ubuntu publishes no classification or severity; the row's Severity shows the Debian priority.
        pocket = f"{platform.codename}-{'security' if security else 'updates'}"
        return dict(common, classification="", severity=source.priority, pocket=pocket, priority=source.priority,
                    section=source.section)
    year = release_time(day).year
    if platform.family == "AMAZON_LINUX_2":
        advisory, no_severity = f"ALAS2-{year}-{2000 + seq:04d}", ""
    else:
        advisory, no_severity = f"ALAS2023-{year}-{seq:03d}", "None"
    if security:
        classification = "Security"
        severity = rng.choices(_AL_SEVERITIES, _AL_SEVERITY_WEIGHTS)[0]
    else:
        classification, severity = rng.choice(_AL_NON_SECURITY), no_severity
    return dict(common, classification=classification, severity=severity, advisory_id=advisory)


# Windows: one series per kind of update. Cumulative updates of a series supersede the previous ones.
@dataclass(frozen=True)
class _WindowsSeries:
    name: str
    title: str                 # "{month}" and "{kb}" placeholders
    classification: str
    msrc_severity: str
    reboot: bool
    week: int                  # the week of the month Microsoft releases it (2 = Patch Tuesday, 4 = preview)
    patch_set: str = "OS"
    product: str = ""          # "" = the OS product
    product_family: str = "Windows"
    installed_share: float = 1.0


def _windows_series(platform: Platform) -> list[_WindowsSeries]:
    os_name = ("Windows Server 2016" if platform.product == "WindowsServer2016"
               else "Microsoft server operating system version 21H2")
    series = [
        _WindowsSeries("cumulative", f"{{month}} Cumulative Update for {os_name} for x64-based Systems ({{kb}})",
                       "SecurityUpdates", "Critical", reboot=True, week=2),
        _WindowsSeries("dotnet", f"{{month}} Cumulative Update for .NET Framework 3.5, 4.8 and 4.8.1 for "
                       f"{os_name} for x64 ({{kb}})", "SecurityUpdates", "Important", reboot=False, week=2),
        _WindowsSeries("preview", f"{{month}} Cumulative Update Preview for {os_name} for x64-based Systems "
                       f"({{kb}})", "Updates", "Unspecified", reboot=True, week=4),
        _WindowsSeries("sqlserver", "Security Update for SQL Server 2019 RTM CU ({kb})", "SecurityUpdates",
                       "Important", reboot=False, week=2, patch_set="APPLICATION",
                       product="SQL Server 2019", product_family="SQL Server", installed_share=0.2),
    ]
    if platform.product == "WindowsServer2016":
        series.append(_WindowsSeries("servicing-stack", f"{{month}} Servicing Stack Update for {os_name} for "
                                     f"x64-based Systems ({{kb}})", "CriticalUpdates", "Unspecified",
                                     reboot=False, week=2))
    return series


def _nth_tuesday(year: int, month: int, week: int) -> datetime.date:
    first = datetime.date(year, month, 1)
    return first + datetime.timedelta(days=(1 - first.weekday()) % 7 + 7 * (week - 1))


def _months_in_window() -> list[tuple[int, int]]:
    """The months whose KBs the catalog holds: three before the window (history) to the window's end."""
    start, end = release_time(FIRST_RELEASE_DAY - 92).date(), release_time(LAST_RELEASE_DAY).date()
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _windows_catalog(platform: Platform) -> Catalog:
    """Monthly KBs on Microsoft's cadence (Patch Tuesday, fourth-week previews); KB numbers grow with time."""
    rng = random.Random(f"fleetlab-catalog/{platform.key}")
    catalog = Catalog(platform)
    all_series = _windows_series(platform)
    releases = sorted(
        ((_nth_tuesday(year, month, s.week) - LAB_EPOCH.date()).days, index, f"{year}-{month:02d}")
        for index, s in enumerate(all_series) for year, month in _months_in_window())
    kb_numbers = iter(range(5_040_000 + rng.randrange(0, 1000), 6_000_000, 1_237))
    by_series: dict[int, list[Update]] = {}
    for day, index, month in releases:
        if day > LAST_RELEASE_DAY:
            continue
        series = all_series[index]
        kb = f"KB{next(kb_numbers)}"
        by_series.setdefault(index, []).append(Update(
            package=series.name, version=kb, release_day=day, title=series.title.format(month=month, kb=kb),
            kb_id=kb, classification=series.classification, severity=series.msrc_severity,
            cves=_cves(rng, day) if series.classification == "SecurityUpdates" else (),
            reboot_required=series.reboot, advisory_id=kb, product=series.product or platform.product,
            product_family=series.product_family, patch_set=series.patch_set))
    for index, series in enumerate(all_series):
        catalog.add(Package(series.name, tuple(by_series.get(index, ())), series.installed_share))
    return catalog


@cache
def _build(platform_key: str) -> Catalog:
    platform = PLATFORMS[platform_key]
    if platform.is_windows:
        return _windows_catalog(platform)
    if platform.family == "UBUNTU":
        return _linux_catalog(platform, _ubuntu_sources(platform.codename))
    return _linux_catalog(platform, _amazon_sources(platform.version))
