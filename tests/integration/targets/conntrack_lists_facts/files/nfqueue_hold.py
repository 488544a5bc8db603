# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bind an NFQUEUE queue over nfnetlink and never issue a verdict (test helper).

Usage: nfqueue_hold.py QUEUE_NUM READY_FILE. Packets sent to the queue stay there, and so do their
unconfirmed conntrack entries, until this process exits. Writes READY_FILE once bound.
"""
import socket
import struct
import sys
import time

NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_CONFIG = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NLMSG_ERROR = 2


def request(sock, queue, attrs, seq):
    payload = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + attrs
    header = struct.pack("=IHHII", 16 + len(payload), (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_CONFIG, 0x1 | 0x4, seq, 0)
    sock.send(header + payload)
    reply = sock.recv(65536)
    _length, mtype = struct.unpack_from("=IH", reply)
    if mtype == NLMSG_ERROR:
        code = struct.unpack_from("=i", reply, 16)[0]
        if code:
            raise OSError(-code, f"NFQUEUE config request {seq} failed")


def main():
    queue, ready = int(sys.argv[1]), sys.argv[2]
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
    sock.bind((0, 0))
    cmd = struct.pack("=HHBBH", 8, NFQA_CFG_CMD, NFQNL_CFG_CMD_BIND, 0, 0)
    params = struct.pack("=HH", 9, NFQA_CFG_PARAMS) + struct.pack(">IB", 0, NFQNL_COPY_META) + b"\0" * 3
    request(sock, queue, cmd, 1)
    request(sock, queue, params, 2)
    with open(ready, "w", encoding="ascii") as handle:
        handle.write("bound\n")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
