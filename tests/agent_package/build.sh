#!/usr/bin/env bash
# Build the STAND-IN amazon-ssm-agent packages (see ./amazon-ssm-agent) and sign them the way AWS signs the real
# ones: a detached GPG signature `<package>.sig` next to each package, made with a test key generated here.
#
#   tests/agent_package/build.sh OUT_DIR
#
# OUT_DIR afterwards (rebuilt only when a source here is newer than the stamp):
#   latest/debian_amd64/amazon-ssm-agent.deb{,.sig}   the layout of AWS's regional bucket below .../latest/
#   latest/linux_amd64/amazon-ssm-agent.rpm{,.sig}
#   amazon-ssm-agent.gpg      the test public key (ASCII armor), what the role is given as the agent's key
#   fingerprint               its fingerprint (40 hex digits), what the role is given as ssm_agent_gpg_fingerprint
#   other-key.gpg             a second public key: the role must refuse the packages with it
# Needs dpkg-deb, rpmbuild and gpg.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: $0 OUT_DIR}
version=3.3.0.0
mkdir -p "$out"
out=$(cd "$out" && pwd)
stamp=$out/.built

if [ -f "$stamp" ] && [ -z "$(find "$here" -newer "$stamp" -type f -print -quit)" ]; then
    exit 0
fi

export GNUPGHOME=$out/gnupg
rm -rf "$GNUPGHOME" && install -d -m 700 "$GNUPGHOME"
gen_key() {  # gen_key <name>: an unprotected signing key (test only)
    gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
        --quick-generate-key "$1 <$2>" ed25519 sign 1y
}
gen_key "fleetpatch test agent signing key" agent-signing@fleetpatch.test
gen_key "fleetpatch unrelated key" other@fleetpatch.test
gpg --batch --armor --export agent-signing@fleetpatch.test > "$out/amazon-ssm-agent.gpg"
gpg --batch --armor --export other@fleetpatch.test > "$out/other-key.gpg"
gpg --batch --with-colons --fingerprint agent-signing@fleetpatch.test | awk -F: '$1 == "fpr" { print $10; exit }' \
    > "$out/fingerprint"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The payload both packages carry.
stage_payload() {  # stage_payload <root> <unit dir>
    install -D -m 755 "$here/amazon-ssm-agent" "$1/usr/bin/amazon-ssm-agent"
    install -D -m 644 "$here/amazon-ssm-agent.service" "$1$2/amazon-ssm-agent.service"
    install -d -m 755 "$1/etc/amazon/ssm"
}

build_deb() {
    local root=$work/deb
    stage_payload "$root" /lib/systemd/system
    install -d "$root/DEBIAN"
    install -m 755 "$here/postinst" "$here/prerm" "$root/DEBIAN/"
    cat > "$root/DEBIAN/control" <<EOF
Package: amazon-ssm-agent
Version: $version-1
Architecture: all
Maintainer: fleetpatch tests <tests@fleetpatch.test>
Depends: python3
Description: STAND-IN for the AWS Systems Manager agent (fleetpatch.ssm tests only)
 Registers with the fleetpatch lab instead of AWS. Not the real agent.
EOF
    install -d "$out/latest/debian_amd64"
    dpkg-deb --root-owner-group -Zxz --build "$root" "$out/latest/debian_amd64/amazon-ssm-agent.deb" >/dev/null
}

build_rpm() {
    local top=$work/rpmbuild
    install -d "$top"/{BUILD,RPMS,SOURCES,SPECS,SRPMS}
    cp "$here/amazon-ssm-agent" "$here/amazon-ssm-agent.service" "$top/SOURCES/"
    cat > "$top/SPECS/amazon-ssm-agent.spec" <<EOF
Name: amazon-ssm-agent
Version: $version
Release: 1
Summary: STAND-IN for the AWS Systems Manager agent (fleetpatch.ssm tests only)
License: Apache-2.0
BuildArch: noarch
AutoReqProv: no
%description
Registers with the fleetpatch lab instead of AWS. Not the real agent.
%install
install -D -m 755 %{_sourcedir}/amazon-ssm-agent %{buildroot}/usr/bin/amazon-ssm-agent
install -D -m 644 %{_sourcedir}/amazon-ssm-agent.service %{buildroot}/usr/lib/systemd/system/amazon-ssm-agent.service
install -d %{buildroot}/etc/amazon/ssm
%files
/usr/bin/amazon-ssm-agent
/usr/lib/systemd/system/amazon-ssm-agent.service
%dir /etc/amazon/ssm
%post
$(cat "$here/postinst")
%preun
$(cat "$here/prerm")
EOF
    rpmbuild --quiet --define "_topdir $top" -bb "$top/SPECS/amazon-ssm-agent.spec" >/dev/null 2>&1 \
        || rpmbuild --define "_topdir $top" -bb "$top/SPECS/amazon-ssm-agent.spec"
    install -d "$out/latest/linux_amd64"
    cp "$top"/RPMS/noarch/amazon-ssm-agent-*.rpm "$out/latest/linux_amd64/amazon-ssm-agent.rpm"
}

sign() {  # detached binary signature, as AWS publishes `<package>.sig`
    gpg --batch --yes --quiet --local-user agent-signing@fleetpatch.test --detach-sign --output "$1.sig" "$1"
}

build_deb
build_rpm
sign "$out/latest/debian_amd64/amazon-ssm-agent.deb"
sign "$out/latest/linux_amd64/amazon-ssm-agent.rpm"
touch "$stamp"
