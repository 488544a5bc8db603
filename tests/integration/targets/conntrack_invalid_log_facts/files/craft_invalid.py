# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Send packets that conntrack classifies as invalid, over raw sockets (needs CAP_NET_RAW).

usage: craft_invalid.py SRC4 DST4 SRC6 DST6 DPORT

Sends, to DST:DPORT:
  IPv4 TCP SYN+RST from port 40001, SYN+FIN from 40002 -> "invalid tcp flag combination"
  IPv4 UDP from 40003 whose length field (200) exceeds the datagram -> "truncated/malformed packet"
  IPv4 ICMP type 200 -> "invalid icmp type"
  IPv6 TCP SYN+FIN from 40006 -> "invalid tcp flag combination" with an IPv6 packet dump
Checksums are correct, so the packets are rejected for the flags/length/type only.
"""
import socket
import struct
import sys


def csum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo4(src, dst, proto, length):
    return socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst) + struct.pack("!BBH", 0, proto, length)


def pseudo6(src, dst, proto, length):
    return socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + struct.pack("!IxxxB", length, proto)


SYN, RST, FIN = 0x02, 0x04, 0x01


def tcp(pseudo, sport, dport, flags):
    header = struct.pack("!HHIIBBHHH", sport, dport, 5000, 0, 5 << 4, flags, 8192, 0, 0)
    check = csum(pseudo(socket.IPPROTO_TCP, len(header)) + header)
    return header[:16] + struct.pack("!H", check) + header[18:]


def main():
    src4, dst4, src6, dst6, dport = sys.argv[1:6]
    dport = int(dport)

    def p4(proto, length):
        return pseudo4(src4, dst4, proto, length)

    def p6(proto, length):
        return pseudo6(src6, dst6, proto, length)

    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP) as sock:
        sock.bind((src4, 0))
        sock.sendto(tcp(p4, 40001, dport, SYN | RST), (dst4, 0))
        sock.sendto(tcp(p4, 40002, dport, SYN | FIN), (dst4, 0))

    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP) as sock:
        sock.bind((src4, 0))
        payload = b"x" * 10
        header = struct.pack("!HHHH", 40003, dport, 200, 0)
        sock.sendto(header + payload, (dst4, 0))

    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        sock.bind((src4, 0))
        body = struct.pack("!BBHI", 200, 0, 0, 0)
        body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
        sock.sendto(body, (dst4, 0))

    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_TCP) as sock:
        sock.bind((src6, 0))
        sock.sendto(tcp(p6, 40006, dport, SYN | FIN), (dst6, 0))


if __name__ == "__main__":
    main()
