#!/usr/bin/env bash
# Real Linux test hosts without Docker: a systemd-nspawn container (systemd as PID 1) booted from a cached rootfs
# tarball (build-rootfs.sh), in its own network namespace that has only loopback. Ansible reaches it over SSH with
#   ProxyCommand: ip netns exec <namespace> socat STDIO TCP:127.0.0.1:22
# Inside the namespace, on 127.0.0.1, two services stand in for the outside world:
#   :8080  the agent packages (an HTTP server over a directory of the controller; AWS's bucket layout)
#   :4571  the lab's control API (forwarded through a unix socket to the lab on the controller), which the
#          stand-in agent's registration calls
#
#   host.sh up NAME FLAVOUR PLATFORM_KEY   FLAVOUR: debian|rpm; PLATFORM_KEY: what the lab records (ubuntu-22.04...)
#   host.sh down NAME
#   host.sh ssh NAME [command...]          a shell on the host (root)
# Environment: FLEETLAB_CONTROL_URL (the lab, for :4571), FLEETPATCH_AGENT_DIR (served on :8080),
# FLEETPATCH_HOSTS_STATE (where hosts live; default /tmp/fleetpatch-hosts), FLEETPATCH_HOSTS_CACHE (the tarballs).
# Needs root, systemd-container, socat, zstd, iproute2, python3.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${FLEETPATCH_HOSTS_CACHE:-$here/../../.cache/hosts}
state=${FLEETPATCH_HOSTS_STATE:-/tmp/fleetpatch-hosts}
download_port=8080
lab_port=4571

namespace() { echo "fph-$1"; }  # short: network namespace names end up in ProxyCommand lines and process lists

start_daemon() {  # start_daemon <pid file> <log file> <command...>: detached from this shell and its terminal
    local pidfile=$1 log=$2
    shift 2
    setsid "$@" </dev/null >>"$log" 2>&1 &
    echo $! > "$pidfile"
}

wait_for_ssh() {  # wait_for_ssh <namespace>: sshd greets within ~1 s of boot; give it 60 s on a loaded machine
    local ns=$1
    for _ in $(seq 1 120); do
        if ip netns exec "$ns" timeout 2 socat -T2 STDIO TCP:127.0.0.1:22 </dev/null 2>/dev/null | grep -q '^SSH-'; then
            return 0
        fi
        sleep 0.5
    done
    echo "host $ns: sshd did not answer within 60 s" >&2
    return 1
}

up() {
    local name=$1 flavour=$2 platform_key=$3 ns dir
    ns=$(namespace "$name")
    dir=$state/$name
    local tarball=$cache/debian-bookworm.tar.zst
    [ "$flavour" = rpm ] && tarball=$cache/rpm-dnf.tar.zst
    [ -f "$tarball" ] || "$here/build-rootfs.sh" "$flavour"
    : "${FLEETLAB_CONTROL_URL:?the lab must be running (FLEETLAB_CONTROL_URL)}"
    : "${FLEETPATCH_AGENT_DIR:?FLEETPATCH_AGENT_DIR: the directory of agent packages to serve}"
    down "$name" 2>/dev/null || true
    mkdir -p "$dir/root"
    zstd -q -dc "$tarball" | tar -C "$dir/root" -xf -
    echo "$name" > "$dir/root/etc/hostname"
    : > "$dir/root/etc/machine-id"  # a fresh machine id per host, made by systemd at boot
    # Where the stand-in agent registers, and the platform the lab records for the host (the lab simulates
    # Ubuntu and Amazon Linux; a Debian rootfs stands in for Ubuntu).
    install -d "$dir/root/etc/amazon/ssm"
    printf '{"register_url": "http://127.0.0.1:%s/agent/register", "platform_key": "%s"}\n' \
        "$lab_port" "$platform_key" > "$dir/root/etc/amazon/ssm/fleetlab.json"

    ip netns add "$ns"
    ip -n "$ns" link set lo up
    local lab_hostport=${FLEETLAB_CONTROL_URL#http://}
    lab_hostport=${lab_hostport%%/*}
    start_daemon "$dir/lab-bridge.pid" "$dir/bridge.log" \
        socat "UNIX-LISTEN:$dir/lab.sock,fork,unlink-early" "TCP:$lab_hostport"
    start_daemon "$dir/lab-forward.pid" "$dir/bridge.log" ip netns exec "$ns" \
        socat "TCP-LISTEN:$lab_port,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$dir/lab.sock"
    start_daemon "$dir/download.pid" "$dir/download.log" ip netns exec "$ns" \
        python3 -m http.server "$download_port" --bind 127.0.0.1 --directory "$FLEETPATCH_AGENT_DIR"
    start_daemon "$dir/nspawn.pid" "$dir/console.log" systemd-nspawn --quiet --boot --directory "$dir/root" \
        --machine "$name" --register=no --keep-unit --console=passive --network-namespace-path="/run/netns/$ns"
    wait_for_ssh "$ns"
}

stop_pid() {  # stop_pid <pid file> [signal]
    local pidfile=$1 signal=${2:-TERM} pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -"$signal" -- "-$pid" 2>/dev/null || kill -"$signal" "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

down() {
    local name=$1 ns dir
    ns=$(namespace "$name")
    dir=$state/$name
    # nspawn turns SIGTERM into a clean shutdown of the container's systemd.
    stop_pid "$dir/nspawn.pid"
    stop_pid "$dir/download.pid"
    stop_pid "$dir/lab-forward.pid"
    stop_pid "$dir/lab-bridge.pid"
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$dir"
}

ssh_to() {
    local name=$1
    shift
    ssh -q -i "$cache/id_ed25519" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o "ProxyCommand=ip netns exec $(namespace "$name") socat STDIO TCP:127.0.0.1:22" "root@$name" "$@"
}

case ${1:-} in
    up) up "$2" "$3" "$4" ;;
    down) down "$2" ;;
    ssh) shift; ssh_to "$@" ;;
    *) echo "usage: $0 up NAME debian|rpm PLATFORM_KEY | down NAME | ssh NAME [command...]" >&2; exit 2 ;;
esac
