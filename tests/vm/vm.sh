#!/usr/bin/env bash
# Boot stock Debian kernels under qemu (TCG) with a debootstrapped Debian
# root file system that Ansible can reach over ssh on a loopback port.
#
# Usage: vm.sh prepare [KERNEL]
#        vm.sh start   [KERNEL] [--port N]
#        vm.sh stop    [KERNEL]
#        vm.sh ssh     KERNEL [CMD...]
#        vm.sh status  [KERNEL]
#        vm.sh inventory KERNEL
#        vm.sh samples KERNEL [OUTDIR]
#
# KERNEL is a Debian kernel image package name such as
# linux-image-6.1.0-56-amd64, or one of the aliases 5.10, 6.1, 6.12 which
# resolve to the newest ABI of linux-image-amd64 in bullseye, bookworm and
# trixie respectively, or 6.18, the newest 6.18 ABI of trixie-backports
# (resolved once, then remembered in the cache).
# The default is 6.1.  See tests/vm/README.md.
set -euo pipefail

readonly DEFAULT_KERNEL="6.1"
readonly BASE_SUITE="${NFCT_VM_BASE_SUITE:-bookworm}"
readonly MIRROR="${NFCT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
readonly SECURITY_MIRROR="${NFCT_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
readonly KEYRING="/usr/share/keyrings/debian-archive-keyring.gpg"
readonly CACHE_DIR="${NFCT_CACHE_DIR:-$HOME/.cache/netfilter-conntrack}/vm"
readonly BOOT_TIMEOUT="${NFCT_VM_TIMEOUT:-180}"
readonly VM_MEM="${NFCT_VM_MEM:-1024}"
readonly VM_SMP="${NFCT_VM_SMP:-1}"
readonly FIRST_PORT="${NFCT_VM_FIRST_PORT:-10022}"
# Bump when the base root file system recipe changes (forces a rebuild).
readonly BASE_RECIPE="1"
readonly BASE_PACKAGES="python3,openssh-server,kmod,conntrack,nftables,iptables,iproute2,procps${NFCT_VM_EXTRA_PACKAGES:+,$NFCT_VM_EXTRA_PACKAGES}"
# Modules the initramfs loads (if they are modules, not built in) so that the
# kernel can mount an ext4 root on a virtio disk.  Dependencies are resolved
# from modules.dep.  Missing ones are ignored (built in or nonexistent).
readonly INITRD_MODULES="virtio_pci virtio_blk crc32c_generic crc32c_intel ext4"
# Bump when the initramfs / image recipe changes.
readonly IMAGE_RECIPE="2"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR

log() { printf '[vm.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
    sed -n '2,17s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit "${1:-2}"
}

need() {
    local cmd
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || die "missing command '$cmd' (apt-get install qemu-system-x86 qemu-utils debootstrap busybox-static kmod e2fsprogs openssh-client)"
    done
}

# --------------------------------------------------------------------------
# apt, with a private state directory per Debian suite
# --------------------------------------------------------------------------

suite_for_kernel() {
    # $1: alias or package name -> Debian suite shipping it
    if [[ -n "${NFCT_VM_KERNEL_SUITE:-}" ]]; then
        echo "$NFCT_VM_KERNEL_SUITE"
        return
    fi
    case "$1" in
        4.19|linux-image-4.19.*) echo buster ;;
        5.10|linux-image-5.10.*) echo bullseye ;;
        6.1|linux-image-6.1.*) echo bookworm ;;
        6.12|linux-image-6.12.*) echo trixie ;;
        6.18|linux-image-6.18.*) echo trixie-backports ;;
        *) die "cannot tell the Debian suite of '$1'; set NFCT_VM_KERNEL_SUITE" ;;
    esac
}

apt_prepare_suite() {
    local suite="$1" dir="$CACHE_DIR/apt/$1"
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
    # A backports suite has neither -updates nor -security.
    if [[ "$suite" == *-backports ]]; then
        printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
            "$MIRROR" "$suite" "$KEYRING" >"$dir/debian.sources"
        return
    fi
    cat >"$dir/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $suite $suite-updates
Components: main
Signed-By: $KEYRING

Types: deb
URIs: $SECURITY_MIRROR
Suites: $suite-security
Components: main
Signed-By: $KEYRING
EOF
}

apt_suite() {
    # $1: suite, $2: apt-get or apt-cache, rest: arguments
    local suite="$1" tool="$2" dir="$CACHE_DIR/apt/$1"
    shift 2
    "$tool" -q \
        -o Dir::Etc::SourceList="$dir/debian.sources" \
        -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::State::Lists="$dir/lists" \
        -o Dir::Cache="$dir/cache" \
        -o APT::Sandbox::User=root \
        "$@"
}

apt_update_suite() {
    local suite="$1" dir="$CACHE_DIR/apt/$1"
    apt_prepare_suite "$suite"
    if [[ -f "$dir/updated" && -z "${NFCT_VM_APT_UPDATE:-}" ]]; then
        return
    fi
    log "apt-get update for $suite (private state in $dir)"
    apt_suite "$suite" apt-get update >&2
    touch "$dir/updated"
}

resolve_kernel() {
    # Print the package name for an alias or package name.
    local arg="$1" suite alias_file pkg
    case "$arg" in
        linux-image-*) echo "$arg"; return ;;
        [0-9]*.[0-9]*) ;;
        *) die "unknown kernel '$arg' (use a linux-image-* package name or 5.10/6.1/6.12/6.18)" ;;
    esac
    alias_file="$CACHE_DIR/aliases/$arg"
    if [[ -s "$alias_file" && -z "${NFCT_VM_APT_UPDATE:-}" ]]; then
        cat "$alias_file"
        return
    fi
    suite="$(suite_for_kernel "$arg")"
    apt_update_suite "$suite"
    if [[ "$suite" == *-backports ]]; then
        # Backports carry several series at once and linux-image-amd64 follows the newest: the newest ABI of
        # this series instead (the generic flavour, not cloud or rt).
        pkg="$(apt_suite "$suite" apt-cache search --names-only "^linux-image-${arg//./\\.}\\.[0-9]+\\+[a-z0-9]+-amd64\$" \
            | cut -d' ' -f1 | sort -V | tail -n1)"
    else
        pkg="$(apt_suite "$suite" apt-cache depends linux-image-amd64 \
            | sed -n 's/^ *Depends: \(linux-image-[^ ]*-amd64\)$/\1/p' | head -n1)"
    fi
    [[ -n "$pkg" ]] || die "could not resolve alias $arg via linux-image-amd64 in $suite"
    case "$pkg" in
        linux-image-"$arg".*) ;;
        *) die "alias $arg resolved to $pkg in $suite, which is not a $arg kernel" ;;
    esac
    mkdir -p "$CACHE_DIR/aliases"
    echo "$pkg" >"$alias_file"
    log "kernel alias $arg -> $pkg"
    echo "$pkg"
}

short_name() {
    # linux-image-6.12.48+deb13-amd64 -> 6.12.48-deb13
    local s="${1#linux-image-}"
    s="${s%-amd64}"
    echo "${s//[^A-Za-z0-9.-]/-}"
}

# --------------------------------------------------------------------------
# prepare: ssh key, base root file system, kernel, initramfs, root image
# --------------------------------------------------------------------------

ensure_ssh_key() {
    local key="$CACHE_DIR/ssh/id_ed25519"
    if [[ ! -s "$key" ]]; then
        mkdir -p "$CACHE_DIR/ssh"
        chmod 700 "$CACHE_DIR/ssh"
        ssh-keygen -q -t ed25519 -N '' -C nfct-vm -f "$key" >&2
    fi
}

write_guest_init() {
    # PID 1 of the guest: no systemd, just enough to run sshd.
    local root="$1"
    cat >"$root/sbin/nfct-vm-init" <<'EOF'
#!/bin/sh
# PID 1 of the netfilter.conntrack test VM (written by tests/vm/vm.sh).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
msg() { echo "nfct-vm-init: $*" >/dev/console; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || msg "no debugfs"
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
mount -o remount,rw / 2>/dev/null
ln -sf /proc/self/fd /dev/fd
hostname nfct-vm
ip link set lo up
for m in virtio_net e1000 virtio_rng; do modprobe -q "$m" 2>/dev/null; done
dev=
for _ in 1 2 3 4 5 6 7 8 9 10; do
    for d in /sys/class/net/*; do
        d="${d##*/}"
        [ "$d" = lo ] || { dev="$d"; break; }
    done
    [ -n "$dev" ] && break
    sleep 0.5
done
if [ -n "$dev" ]; then
    ip link set "$dev" up
    ip addr add 10.0.2.15/24 dev "$dev"
    ip route add default via 10.0.2.2
else
    msg "no network interface found"
fi
mkdir -p /run/sshd
chmod 755 /run/sshd
/usr/sbin/sshd -E /var/log/sshd.log || msg "sshd failed"
msg "NFCT-VM-READY kernel=$(uname -r) if=$dev"
# Reap orphans forever.
exec /usr/bin/python3 -c '
import os, time
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(1)
'
EOF
    chmod 755 "$root/sbin/nfct-vm-init"
}

ensure_base_rootfs() {
    local base="$CACHE_DIR/base" stamp want tmp
    want="recipe=$BASE_RECIPE suite=$BASE_SUITE packages=$BASE_PACKAGES"
    stamp="$base/rootfs.stamp"
    if [[ -d "$base/rootfs" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return
    fi
    need debootstrap
    log "debootstrapping $BASE_SUITE (minbase + $BASE_PACKAGES); takes a few minutes"
    local start=$SECONDS
    mkdir -p "$base/debs"
    tmp="$base/rootfs.tmp"
    rm -rf "$tmp" "$base/rootfs" "$stamp"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" \
        --cache-dir="$base/debs" "$BASE_SUITE" "$tmp" "$MIRROR" >&2 \
        || die "debootstrap failed (see $tmp/debootstrap/debootstrap.log)"
    echo nfct-vm >"$tmp/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 nfct-vm\n::1 localhost\n' >"$tmp/etc/hosts"
    echo "nameserver 10.0.2.3" >"$tmp/etc/resolv.conf"
    printf '/dev/vda / ext4 rw 0 1\n' >"$tmp/etc/fstab"
    mkdir -p "$tmp/etc/ssh/sshd_config.d"
    cat >"$tmp/etc/ssh/sshd_config.d/nfct-vm.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF
    # Host keys are generated by the openssh-server postinst; make sure.
    chroot "$tmp" ssh-keygen -A >&2
    write_guest_init "$tmp"
    rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*_*
    mv "$tmp" "$base/rootfs"
    echo "$want" >"$stamp"
    log "base root file system ready in $((SECONDS - start)) s: $base/rootfs"
}

ensure_kernel() {
    # Download and unpack the kernel package; run depmod.
    local pkg="$1" kdir="$CACHE_DIR/kernels/$1" suite deb moddir ver
    if [[ -f "$kdir/version" && -d "$kdir/modroot" && -f "$kdir/vmlinuz" ]]; then
        return
    fi
    suite="$(suite_for_kernel "$pkg")"
    mkdir -p "$CACHE_DIR/debs"
    deb="$(find "$CACHE_DIR/debs" -maxdepth 1 -name "${pkg}_*_amd64.deb" | head -n1)"
    if [[ -z "$deb" ]]; then
        apt_update_suite "$suite"
        log "downloading $pkg from $suite"
        (cd "$CACHE_DIR/debs" && apt_suite "$suite" apt-get download "$pkg" >&2) \
            || die "apt-get download $pkg failed (try NFCT_VM_APT_UPDATE=1, or 'apt-cache search linux-image' for valid names)"
        deb="$(find "$CACHE_DIR/debs" -maxdepth 1 -name "${pkg}_*_amd64.deb" | head -n1)"
        [[ -n "$deb" ]] || die "downloaded .deb for $pkg not found"
    fi
    log "unpacking $deb"
    rm -rf "$kdir"
    mkdir -p "$kdir/pkg" "$kdir/modroot/lib/modules"
    dpkg-deb -x "$deb" "$kdir/pkg"
    moddir="$(find "$kdir/pkg/lib/modules" "$kdir/pkg/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -n1 || true)"
    [[ -n "$moddir" ]] || die "no lib/modules/<version> in $deb"
    ver="${moddir##*/}"
    mv "$moddir" "$kdir/modroot/lib/modules/$ver"
    cp "$kdir/pkg/boot/vmlinuz-$ver" "$kdir/vmlinuz"
    cp "$kdir/pkg/boot/config-$ver" "$kdir/config" 2>/dev/null || true
    rm -rf "$kdir/pkg"
    depmod -b "$kdir/modroot" "$ver"
    echo "$ver" >"$kdir/version"
}

module_line() {
    # Print the modules.dep line of module $2 (name with - or _).
    awk -v m="$2" '{
        p = $1; sub(/:$/, "", p); n = p; sub(/.*\//, "", n);
        sub(/\.ko(\.[a-z]+)?$/, "", n); gsub(/-/, "_", n);
        if (n == m) { print; exit }
    }' "$1"
}

ensure_initrd() {
    local pkg="$1" kdir="$CACHE_DIR/kernels/$1" ver mdir stage m line path f name
    local -a order=()
    local -A seen=()
    if [[ -f "$kdir/initrd.img" && "$(cat "$kdir/initrd.stamp" 2>/dev/null)" == "$IMAGE_RECIPE" ]]; then
        return
    fi
    need busybox
    ver="$(cat "$kdir/version")"
    mdir="$kdir/modroot/lib/modules/$ver"
    for m in $INITRD_MODULES; do
        line="$(module_line "$mdir/modules.dep" "$m")"
        [[ -n "$line" ]] || continue
        # Dependencies are listed so that the last one must be loaded first.
        local -a deps
        read -r -a deps <<<"${line#*:}"
        local i
        for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
            [[ -n "${seen[${deps[i]}]:-}" ]] || { seen[${deps[i]}]=1; order+=("${deps[i]}"); }
        done
        path="${line%%:*}"
        [[ -n "${seen[$path]:-}" ]] || { seen[$path]=1; order+=("$path"); }
    done
    stage="$kdir/initrd.tmp"
    rm -rf "$stage"
    mkdir -p "$stage"/{bin,dev,proc,sys,newroot,modules}
    cp "$(command -v busybox)" "$stage/bin/busybox"
    mknod -m 600 "$stage/dev/console" c 5 1
    mknod -m 666 "$stage/dev/null" c 1 3
    : >"$stage/modules/order"
    for path in "${order[@]}"; do
        f="$mdir/$path"
        name="${path##*/}"
        case "$name" in
            *.ko.xz) xz -dc "$f" >"$stage/modules/${name%.xz}"; name="${name%.xz}" ;;
            *.ko.zst) zstd -qdc "$f" >"$stage/modules/${name%.zst}"; name="${name%.zst}" ;;
            *.ko.gz) gzip -dc "$f" >"$stage/modules/${name%.gz}"; name="${name%.gz}" ;;
            *) cp "$f" "$stage/modules/$name" ;;
        esac
        echo "$name" >>"$stage/modules/order"
    done
    cat >"$stage/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do
    insmod "/modules/$m" || echo "initramfs: insmod $m failed"
done
for _ in $(seq 1 100); do
    [ -b /dev/vda ] && break
    sleep 0.1
done
if ! mount -t ext4 -o rw /dev/vda /newroot; then
    echo "initramfs: cannot mount /dev/vda; dropping to a shell"
    exec sh
fi
umount /sys /proc
umount /dev
exec switch_root /newroot /sbin/nfct-vm-init
EOF
    chmod 755 "$stage/init"
    (cd "$stage" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$kdir/initrd.img"
    echo "$IMAGE_RECIPE" >"$kdir/initrd.stamp"
    log "initramfs for $ver loads: $(tr '\n' ' ' <"$stage/modules/order")"
    rm -rf "$stage"
}

install_zipimport_cache() {
    # Every module task recompiles ansible.module_utils from its zip payload; under TCG that is a third of
    # the task.  guest/nfct_zipimport_cache.py caches the compiled code (see its docstring).
    local root="$1" site
    site="$(find "$root/usr/lib" -maxdepth 1 -name 'python3.*' -type d | sort -V | tail -n 1)"
    [[ -n "$site" ]] || die "no /usr/lib/python3.* in the base root file system"
    site="$root/usr/local/lib/${site##*/}/dist-packages"
    mkdir -p "$site"
    # The image is a hard-link copy of the base rootfs: write new files, never into linked ones.
    cp "$SCRIPT_DIR/guest/nfct_zipimport_cache.py" "$site/"
    echo "import nfct_zipimport_cache" >"$site/nfct-zipimport-cache.pth"
}

ensure_image() {
    # ext4 image = hard-link copy of the base rootfs + this kernel's modules
    # + the authorized ssh key.  Boots use a throw-away qcow2 overlay on it.
    local pkg="$1" kdir="$CACHE_DIR/kernels/$1" img stamp want ver stage size
    img="$CACHE_DIR/images/$pkg.ext4"
    stamp="$img.stamp"
    want="recipe=$IMAGE_RECIPE base=$(cat "$CACHE_DIR/base/rootfs.stamp") key=$(cut -d' ' -f2 "$CACHE_DIR/ssh/id_ed25519.pub")"
    want+=" zipimport-cache=$(sha256sum <"$SCRIPT_DIR/guest/nfct_zipimport_cache.py" | cut -c1-16)"
    if [[ -f "$img" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
        return
    fi
    ver="$(cat "$kdir/version")"
    mkdir -p "$CACHE_DIR/images"
    stage="$CACHE_DIR/images/$pkg.stage"
    rm -rf "$stage" "$img" "$stamp"
    cp -al "$CACHE_DIR/base/rootfs" "$stage"
    mkdir -p "$stage/usr/lib/modules"
    cp -al "$kdir/modroot/lib/modules/$ver" "$stage/usr/lib/modules/$ver"
    mkdir -p "$stage/root/.ssh"
    chmod 700 "$stage/root/.ssh"
    cp "$CACHE_DIR/ssh/id_ed25519.pub" "$stage/root/.ssh/authorized_keys"
    chmod 600 "$stage/root/.ssh/authorized_keys"
    install_zipimport_cache "$stage"
    size=$(( $(du -sm "$stage" | cut -f1) * 3 / 2 + 512 ))
    log "building ${size} MiB root image $img"
    # orphan_file is unknown to kernels < 5.15 and would make them mount ro.
    mkfs.ext4 -q -F -L nfct-root -O ^orphan_file -d "$stage" "$img" "${size}M" >&2 2>/dev/null \
        || mkfs.ext4 -q -F -L nfct-root -d "$stage" "$img" "${size}M" >&2
    rm -rf "$stage"
    echo "$want" >"$stamp"
}

cmd_prepare() {
    local pkg start=$SECONDS lock
    need qemu-system-x86_64 qemu-img ssh ssh-keygen mkfs.ext4 depmod dpkg-deb apt-get flock
    mkdir -p "$CACHE_DIR"
    pkg="$(resolve_kernel "$1")"
    # One prepare at a time per cache (they share the base rootfs).
    exec {lock}>"$CACHE_DIR/.prepare.lock"
    flock "$lock"
    ensure_ssh_key
    ensure_base_rootfs
    ensure_kernel "$pkg"
    ensure_initrd "$pkg"
    ensure_image "$pkg"
    exec {lock}>&-
    log "prepared $pkg (kernel $(cat "$CACHE_DIR/kernels/$pkg/version")) in $((SECONDS - start)) s"
    PREPARED_PKG="$pkg"
}

# --------------------------------------------------------------------------
# start / stop / ssh
# --------------------------------------------------------------------------

# NFCT_VM_INSTANCE lets several VMs of the same kernel share one cache.
instance_name() { echo "$(short_name "$1")${NFCT_VM_INSTANCE:+-$NFCT_VM_INSTANCE}"; }
run_dir() { echo "$CACHE_DIR/run/$(instance_name "$1")"; }

vm_pid() {
    # Print the qemu pid if the VM of package $1 is running.
    local rd pid
    rd="$(run_dir "$1")"
    [[ -s "$rd/qemu.pid" ]] || return 1
    pid="$(cat "$rd/qemu.pid")"
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against pid reuse.
    grep -qa qemu-system "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

port_in_use() {
    ss -Htln "sport = :$1" 2>/dev/null | grep -q . && return 0
    local f
    for f in "$CACHE_DIR"/run/*/port; do
        [[ -f "$f" && "$(cat "$f")" == "$1" ]] && return 0
    done
    return 1
}

ssh_opts() {
    local port="$1"
    printf '%s\n' -i "$CACHE_DIR/ssh/id_ed25519" -p "$port" \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=5 \
        -o IdentitiesOnly=yes
}

write_inventory() {
    local pkg="$1" rd port inv host
    rd="$(run_dir "$pkg")"
    port="$(cat "$rd/port")"
    host="vm-$(instance_name "$pkg")"
    inv="$rd/inventory.ini"
    cat >"$inv" <<EOF
# Written by tests/vm/vm.sh for $pkg (kernel $(cat "$CACHE_DIR/kernels/$pkg/version"))
[nfct_vms]
$host ansible_host=127.0.0.1 ansible_port=$port ansible_user=root ansible_ssh_private_key_file=$CACHE_DIR/ssh/id_ed25519 ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes' ansible_python_interpreter=/usr/bin/python3
EOF
    echo "$inv"
}

cmd_start() {
    local kernel="$1" port="$2" pkg rd kdir lock pid deadline start
    cmd_prepare "$kernel"
    pkg="$PREPARED_PKG"
    kdir="$CACHE_DIR/kernels/$pkg"
    rd="$(run_dir "$pkg")"
    if pid="$(vm_pid "$pkg")"; then
        die "$pkg is already running (pid $pid, port $(cat "$rd/port")); run '$0 stop $kernel' first"
    fi
    rm -rf "$rd"
    mkdir -p "$rd" "$CACHE_DIR/run"
    echo "${NFCT_VM_INSTANCE:-}" >"$rd/instance"
    # Serialise port selection + qemu launch between concurrent starts.
    # (qemu must not inherit the lock fd, or it would hold the lock.)
    exec {lock}>"$CACHE_DIR/run/.start.lock"
    flock "$lock"
    if [[ -z "$port" ]]; then
        port="$FIRST_PORT"
        while port_in_use "$port"; do port=$((port + 1)); done
    elif port_in_use "$port"; then
        die "port $port is in use"
    fi
    echo "$port" >"$rd/port"
    echo "$pkg" >"$rd/package"
    qemu-img create -q -f qcow2 -F raw -b "$CACHE_DIR/images/$pkg.ext4" "$rd/root.qcow2"
    log "booting $pkg (kernel $(cat "$kdir/version")) with ssh on 127.0.0.1:$port; console: $rd/console.log"
    start=$SECONDS
    qemu-system-x86_64 -accel tcg -cpu max -m "$VM_MEM" -smp "$VM_SMP" \
        -nodefaults -display none -vga none -no-reboot \
        -serial "file:$rd/console.log" -monitor none \
        -kernel "$kdir/vmlinuz" -initrd "$kdir/initrd.img" \
        -append "console=ttyS0 root=/dev/vda rw panic=-1 loglevel=4 net.ifnames=0" \
        -drive "file=$rd/root.qcow2,format=qcow2,if=virtio,cache=unsafe" \
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:22" \
        -device virtio-net-pci,netdev=n0 \
        -device virtio-rng-pci \
        -pidfile "$rd/qemu.pid" -daemonize {lock}>&- \
        || { rm -rf "$rd"; die "qemu failed to start"; }
    exec {lock}>&-
    deadline=$((SECONDS + BOOT_TIMEOUT))
    local -a opts
    mapfile -t opts < <(ssh_opts "$port")
    until ssh "${opts[@]}" root@127.0.0.1 true 2>/dev/null; do
        if ! vm_pid "$pkg" >/dev/null; then
            log "qemu exited during boot; console log tail:"
            tail -n 40 "$rd/console.log" >&2 || true
            rm -rf "$rd"
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            log "ssh did not answer within $BOOT_TIMEOUT s; console log tail:"
            tail -n 40 "$rd/console.log" >&2 || true
            cmd_stop "$pkg"
            exit 1
        fi
        sleep 2
    done
    log "ssh is up after $((SECONDS - start)) s"
    write_inventory "$pkg"
}

cmd_stop() {
    local pkg rd pid i
    pkg="$(resolve_kernel "$1")"
    rd="$(run_dir "$pkg")"
    if pid="$(vm_pid "$pkg")"; then
        log "stopping $pkg (qemu pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null || true
    else
        log "$pkg is not running"
    fi
    rm -rf "$rd"
}

running_port() {
    local pkg="$1"
    vm_pid "$pkg" >/dev/null || die "$pkg is not running; '$0 start ${2:-$pkg}' first"
    cat "$(run_dir "$pkg")/port"
}

cmd_ssh() {
    local pkg port
    pkg="$(resolve_kernel "$1")"
    shift
    port="$(running_port "$pkg")"
    local -a opts
    mapfile -t opts < <(ssh_opts "$port")
    if (($# == 0)); then
        exec ssh -t "${opts[@]}" root@127.0.0.1
    fi
    exec ssh "${opts[@]}" root@127.0.0.1 -- "$@"
}

cmd_status() {
    local rd pkg pid want=""
    [[ -z "${1:-}" ]] || want="$(resolve_kernel "$1")"
    for rd in "$CACHE_DIR"/run/*; do
        [[ -f "$rd/package" ]] || continue
        pkg="$(cat "$rd/package")"
        [[ -z "$want" || "$pkg" == "$want" ]] || continue
        pid="$(cat "$rd/qemu.pid" 2>/dev/null || true)"
        if [[ -n "$pid" ]] && grep -qa qemu-system "/proc/$pid/cmdline" 2>/dev/null; then
            echo "${rd##*/} $pkg running pid=$pid port=$(cat "$rd/port") inventory=$rd/inventory.ini"
        else
            echo "${rd##*/} $pkg not running (stale run dir $rd)"
        fi
    done
}

cmd_inventory() {
    local pkg inv
    pkg="$(resolve_kernel "$1")"
    running_port "$pkg" >/dev/null
    inv="$(run_dir "$pkg")/inventory.ini"
    [[ -f "$inv" ]] || die "no inventory for $pkg"
    echo "$inv"
}

cmd_samples() {
    # Capture dynamic debug / nf_log fixtures from a running VM.
    local pkg out ver port logger
    pkg="$(resolve_kernel "$1")"
    out="${2:-$SCRIPT_DIR/samples}"
    port="$(running_port "$pkg")"
    local -a opts
    mapfile -t opts < <(ssh_opts "$port")
    mkdir -p "$out"
    ver="$(ssh "${opts[@]}" root@127.0.0.1 uname -r)"
    if ssh "${opts[@]}" root@127.0.0.1 modinfo -n nf_log_syslog >/dev/null 2>&1; then
        logger="nf_log_syslog"
    else
        logger="nf_log_ipv4 nf_log_ipv6"
    fi
    ssh "${opts[@]}" root@127.0.0.1 cat /proc/net/netfilter/nf_log >"$out/nf_log-$ver-before.txt"
    # shellcheck disable=SC2086 # word splitting of $logger is intended
    ssh "${opts[@]}" root@127.0.0.1 modprobe -a nf_conntrack $logger
    ssh "${opts[@]}" root@127.0.0.1 cat /proc/net/netfilter/nf_log >"$out/nf_log-$ver-after.txt"
    ssh "${opts[@]}" root@127.0.0.1 \
        "head -n 1 /proc/dynamic_debug/control; grep netfilter /proc/dynamic_debug/control" \
        >"$out/dynamic-debug-control-$ver.txt"
    log "wrote $out/{dynamic-debug-control,nf_log}-$ver*.txt (modules loaded: nf_conntrack $logger)"
}

main() {
    local cmd="${1:-}" kernel="" port=""
    [[ -n "$cmd" ]] || usage
    shift
    case "$cmd" in
        -h|--help|help) usage 0 ;;
        prepare)
            cmd_prepare "${1:-$DEFAULT_KERNEL}"
            ;;
        start)
            while (($#)); do
                case "$1" in
                    --port) port="${2:?--port needs a value}"; shift 2 ;;
                    --port=*) port="${1#--port=}"; shift ;;
                    -*) die "unknown option $1" ;;
                    *) kernel="$1"; shift ;;
                esac
            done
            [[ -z "$port" || "$port" =~ ^[0-9]+$ ]] || die "bad port '$port'"
            cmd_start "${kernel:-$DEFAULT_KERNEL}" "$port"
            ;;
        stop) cmd_stop "${1:-$DEFAULT_KERNEL}" ;;
        ssh)
            (($# >= 1)) || die "usage: $0 ssh KERNEL [CMD...]"
            cmd_ssh "$@"
            ;;
        status) cmd_status "${1:-}" ;;
        inventory) cmd_inventory "${1:-$DEFAULT_KERNEL}" ;;
        samples) cmd_samples "${1:-$DEFAULT_KERNEL}" "${2:-}" ;;
        *) usage ;;
    esac
}

main "$@"
