# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Send COUNT IPv4 TCP SYN+FIN packets, which conntrack always classifies as invalid ("invalid tcp flag
combination"), over a raw socket (needs CAP_NET_RAW). Evidence for tests/vm/matrix.sh.

usage: mx_flood.py SRC DST DPORT COUNT

Each packet comes from its own source port (so no entry is ever created) and has a correct checksum, so it
is rejected for its flags only. Prints {"sent": N, "seconds": S} as JSON.
"""
import json
import socket
import struct
import sys
import time


def csum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def main():
    src, dst, dport, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    pseudo = socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst)
    start = time.monotonic()
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP) as sock:
        sock.bind((src, 0))
        for number in range(count):
            sport = 20000 + number % 40000
            header = struct.pack("!HHIIBBHHH", sport, dport, 5000, 0, 5 << 4, 0x03, 8192, 0, 0)  # SYN|FIN
            check = csum(pseudo + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(header)) + header)
            sock.sendto(header[:16] + struct.pack("!H", check) + header[18:], (dst, 0))
            sent += 1
    print(json.dumps({"sent": sent, "seconds": round(time.monotonic() - start, 3)}))


if __name__ == "__main__":
    main()
