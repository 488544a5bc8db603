# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Churn the conntrack table of this namespace: create entries fast and flush them often (test helper).

Usage: churn.py READY_FILE [SECONDS [BATCH]]. Sends empty UDP datagrams to 127.0.0.1 on port after port
(each a new conntrack entry) and flushes the whole table over ctnetlink (IPCTNL_MSG_CT_DELETE without a
tuple) after every BATCH datagrams, so the count swings between 0 and BATCH many times a second. Writes
READY_FILE after the first flush and exits by itself after SECONDS (default 60), so a failed cleanup
cannot leave it running for long.
"""
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_DELETE = 2
NLMSG_ERROR = 2


def flush(sock, seq):
    payload = struct.pack("=BBH", socket.AF_UNSPEC, 0, 0)
    header = struct.pack("=IHHII", 16 + len(payload), (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE, 0x1 | 0x4, seq, 0)
    sock.send(header + payload)
    reply = sock.recv(65536)
    _length, mtype = struct.unpack_from("=IH", reply)
    if mtype == NLMSG_ERROR:
        code = struct.unpack_from("=i", reply, 16)[0]
        if code:
            raise OSError(-code, "conntrack flush refused")


def main():
    ready = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
    deadline = time.time() + seconds
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    nl.bind((0, 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    port, seq = 1024, 0
    while time.time() < deadline:
        for dummy in range(batch):
            try:
                udp.sendto(b"", ("127.0.0.1", port))
            except OSError:  # ECONNREFUSED from the previous datagram's ICMP error
                pass
            port = port + 1 if port < 65535 else 1024
        seq += 1
        flush(nl, seq)
        if seq == 1:
            with open(ready, "w") as handle:
                handle.write("ready\n")


if __name__ == "__main__":
    main()
