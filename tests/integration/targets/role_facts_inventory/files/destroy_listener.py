# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Subscribe to conntrack destroy events with a tiny receive buffer and never read (test helper).

Usage: destroy_listener.py READY_FILE. With NETLINK_BROADCAST_ERROR set, the kernel learns that
event delivery failed and keeps destroyed entries on the dying list for redelivery, so they stay
counted until this process exits. Writes READY_FILE once subscribed.
"""
import socket
import sys
import time

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_BROADCAST_ERROR = 4
NFNLGRP_CONNTRACK_DESTROY = 3


def main():
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    sock.setsockopt(SOL_NETLINK, NETLINK_BROADCAST_ERROR, 1)
    sock.bind((0, 1 << (NFNLGRP_CONNTRACK_DESTROY - 1)))
    with open(sys.argv[1], "w", encoding="ascii") as handle:
        handle.write("subscribed\n")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
