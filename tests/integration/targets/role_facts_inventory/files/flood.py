# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Send one UDP datagram to each of COUNT ports of ADDRESS from one socket (test helper): COUNT new flows.

Usage: flood.py ADDRESS COUNT. Prints how many sends the kernel refused (a full conntrack table drops the
packet in the output hook, which sendto() reports as EPERM).
"""
import socket
import sys


def main():
    address, count = sys.argv[1], int(sys.argv[2])
    refused = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for port in range(count):
            try:
                sock.sendto(b"x", (address, 1024 + port))
            except OSError:
                refused += 1
    print(refused)


if __name__ == "__main__":
    main()
