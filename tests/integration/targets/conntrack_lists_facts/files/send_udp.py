# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Send one UDP datagram from each of COUNT fresh source ports to ADDRESS:PORT (test helper)."""
import socket
import sys


def main():
    address, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for dummy in range(count):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"x", (address, port))


if __name__ == "__main__":
    main()
