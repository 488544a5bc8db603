# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test helper of role_debug_faults: kernel-log evidence, real and forged, and namespace names Ansible cannot pass.

Usage: evidence.py COMMAND JSON, prints a JSON answer.
  forge {"src": A}                 write an invalid-packet line to /dev/kmsg as a program can (facility user)
  send-invalid {"src": A}          send one TCP SYN+FIN from A to A over a raw socket (run inside a namespace)
  netns-add {"hex": H}             ip netns add, the name given as hex bytes (not valid UTF-8, say)
  netns-delete {"hex": H}          ip netns delete, same
  netns-list {}                    the names under /run/netns, as hex
  plant-temp-links {"dir": D, "names": [N], "victim": V, "count": C}
                                   symlinks D/N.PID.tmp -> V for the next C process ids: the temporary names
                                   a writer using f"{path}.{os.getpid()}.tmp" would open
  release-fifo {"path": P}         open the FIFO P for writing and close it, so that a reader stuck on it ends
  inspect-tree {"root": R, "dir": D, "victim": V}
                                   what is under R: paths outside D, the names in D apart from the planted
                                   temporary links, and whether every planted link still points at V
"""
import errno
import json
import os
import stat
import socket
import struct
import subprocess
import sys

FORGED = ("<12>nf_ct_proto_6: invalid tcp flag combination IN=lo OUT= MAC=00:00:00:00:00:00:00:00:00:00:00:00:08:00"
          " SRC={src} DST={src} LEN=40 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=TCP SPT=4242 DPT=80 WINDOW=0 RES=0x00"
          " SYN FIN URGP=0\n")


def forge(spec):
    with open("/dev/kmsg", "w", encoding="ascii") as kmsg:
        kmsg.write(FORGED.format(src=spec["src"]))
    return {"forged": spec["src"]}


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def send_invalid(spec):
    """A SYN+FIN segment: conntrack's TCP tracker calls it an invalid flag combination and logs it."""
    address = socket.inet_aton(spec["src"])
    flags = 0x03  # FIN | SYN
    tcp = struct.pack("!HHIIBBHHH", 4242, 80, 1, 0, 5 << 4, flags, 1024, 0, 0)
    pseudo = address + address + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP) as sock:
        sock.sendto(tcp, (spec["src"], 0))
    return {"sent": spec["src"]}


def netns(verb, spec):
    """The name as JSON can carry it: undecodable bytes as \\xNN."""
    name = bytes.fromhex(spec["hex"])
    done = subprocess.run([b"ip", b"netns", verb.encode(), name], capture_output=True, check=False)
    return {"rc": done.returncode, "stderr": done.stderr.decode("utf-8", "replace"),
            "name": name.decode("utf-8", "backslashreplace")}


def netns_list(dummy):
    try:
        return {"names": sorted(name.hex() for name in os.listdir(b"/run/netns"))}
    except FileNotFoundError:
        return {"names": []}


def plant_temp_links(spec):
    with open("/proc/sys/kernel/ns_last_pid", encoding="ascii") as handle:
        first = int(handle.read()) + 1
    planted = 0
    for pid in range(first, first + spec["count"]):
        for name in spec["names"]:
            os.symlink(spec["victim"], os.path.join(spec["dir"], f"{name}.{pid}.tmp"))
            planted += 1
    return {"first_pid": first, "planted": planted}


def release_fifo(spec):
    try:
        if not stat.S_ISFIFO(os.lstat(spec["path"]).st_mode):
            return {"released": False}
        os.close(os.open(spec["path"], os.O_WRONLY | os.O_NONBLOCK))
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENXIO):  # gone, or nobody waiting on it
            return {"released": False}
        raise
    return {"released": True}


def inspect_tree(spec):
    outside, names, planted, planted_elsewhere = [], [], 0, []
    for top, dirs, files in os.walk(spec["root"]):
        for name in dirs + files:
            path = os.path.join(top, name)
            if top != spec["dir"]:
                outside.append(path)
                continue
            is_link = os.path.islink(path)
            if name.endswith(".tmp") and is_link:
                planted += 1
                if os.readlink(path) != spec["victim"]:
                    planted_elsewhere.append(name)
                continue
            names.append({"name": name, "link": is_link})
    return {"outside": sorted(outside), "names": sorted(names, key=lambda one: one["name"]), "planted": planted,
            "planted_elsewhere": planted_elsewhere}


COMMANDS = {
    "forge": forge,
    "send-invalid": send_invalid,
    "netns-add": lambda spec: netns("add", spec),
    "netns-delete": lambda spec: netns("delete", spec),
    "netns-list": netns_list,
    "plant-temp-links": plant_temp_links,
    "release-fifo": release_fifo,
    "inspect-tree": inspect_tree,
}

if __name__ == "__main__":
    print(json.dumps(COMMANDS[sys.argv[1]](json.loads(sys.argv[2])), sort_keys=True))
