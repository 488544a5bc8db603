# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Packets for the diagnosis target (needs root; run inside the sending namespace with ip netns exec).

usage:
  send.py flags SRC DST DPORT COUNT          TCP SYN+RST (invalid tcp flag combination), COUNT times
  send.py oow SRC DST DPORT COUNT PEER_NETNS connect to a listener this script starts in PEER_NETNS, then send
                                             COUNT ACKs of that connection far outside the TCP window
  send.py fill NETNS MAX PORT CONNECTIONS    lower the global nf_conntrack_max to MAX (from the initial namespace),
                                             open CONNECTIONS TCP connections to a listener on 127.0.0.1:PORT inside
                                             NETNS (each one conntrack entry), put nf_conntrack_max back (unless
                                             someone else changed it meanwhile) and print how many were established
                                             before the table refused new ones; the lowered value lasts about a second
  send.py restore KEY EXPECTED ORIGINAL      write ORIGINAL to the sysctl KEY only if it still holds EXPECTED
"""
import ctypes
import os
import random
import select
import socket
import struct
import sys
import time

SYN, RST, ACK = 0x02, 0x04, 0x10
CLONE_NEWNET = 0x40000000


def csum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp(src, dst, sport, dport, flags, seq, ack):
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 8192, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(header))
    return header[:16] + struct.pack("!H", csum(pseudo + header)) + header[18:]


def send_raw(src, dst, packets):
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP) as sock:
        sock.bind((src, 0))
        for packet in packets:
            sock.sendto(packet, (dst, 0))
            time.sleep(0.01)


def setns(path):
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")
    os.close(fd)


def out_of_window(src, dst, dport, count, peer):
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:  # the listener, in the peer namespace
        setns(f"/run/netns/{peer}")
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((dst, dport))
        server.listen(1)
        os.write(ready_w, b"1")
        conn, _addr = server.accept()
        select.select([conn], [], [], 10)
        os._exit(0)
    os.read(ready_r, 1)
    client = socket.create_connection((dst, dport), timeout=5)
    sport = client.getsockname()[1]
    time.sleep(0.2)
    # Far outside any window: the receiver's window is at most a few MiB of the 4 GiB sequence space.
    packets = [tcp(src, dst, sport, dport, ACK, random.getrandbits(32), random.getrandbits(32)) for dummy in range(count)]
    send_raw(src, dst, packets)
    time.sleep(0.2)
    client.close()
    os.waitpid(child, 0)


MAX = "/proc/sys/net/netfilter/nf_conntrack_max"


def restore(key, expected, original):
    """Compare-and-restore: a value someone else wrote since is left alone (and said so)."""
    path = "/proc/sys/" + key.replace(".", "/")
    with open(path, encoding="ascii") as handle:
        current = handle.read().strip()
    if current != expected:
        print(f"{key}={current}: changed by someone else, left alone")
        return
    with open(path, "w", encoding="ascii") as handle:
        handle.write(original)
    print(f"{key} restored to {original}")


def fill_lowered(netns, maximum, port, connections):
    with open(MAX, encoding="ascii") as handle:
        original = handle.read().strip()
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        with open(MAX, "w", encoding="ascii") as handle:
            handle.write(str(maximum))
        setns(f"/run/netns/{netns}")
        fill(port, connections)
    finally:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.setns(home, CLONE_NEWNET)
        os.close(home)
        restore("net.netfilter.nf_conntrack_max", str(maximum), original)


def fill(port, connections):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(connections + 16)
    opened, refused = [], 0
    for dummy in range(connections):
        client = socket.socket()
        client.settimeout(0.3)
        try:
            client.connect(("127.0.0.1", port))
            opened.append(client)
        except OSError:  # the SYN was dropped: table full
            refused += 1
            client.close()
    print(f"established={len(opened)} refused={refused}")
    for client in opened:
        client.close()
    server.close()


def main():
    mode = sys.argv[1]
    if mode == "flags":
        src, dst, dport, count = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        send_raw(src, dst, [tcp(src, dst, 41000 + i, dport, SYN | RST, 5000, 0) for i in range(count)])
    elif mode == "oow":
        out_of_window(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    elif mode == "fill":
        fill_lowered(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "restore":
        restore(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
