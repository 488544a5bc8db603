# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Send packets conntrack judges invalid, over raw sockets, as fast as Python allows (needs CAP_NET_RAW).

usage: send_invalid.py synfin COUNT SRC DST     COUNT TCP SYN+FIN packets (IPv4 or IPv6 by address)
       send_invalid.py mix SRC4 DST4 SRC6 DST6   one of each kind below

The mix: IPv4 TCP SYN+RST and SYN+FIN ("invalid tcp flag combination"), IPv4 UDP whose length
field exceeds the datagram ("truncated/malformed packet"), ICMP type 200 ("invalid icmp type"),
IPv6 TCP SYN+FIN. Checksums are right, so only the flags, length or type make them invalid.
Prints the number of packets sent.
"""
import socket
import struct
import sys

SYN, RST, FIN = 0x02, 0x04, 0x01
DPORT = 80


def csum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def family_of(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def pseudo(src, dst, proto, length):
    family = family_of(src)
    addresses = socket.inet_pton(family, src) + socket.inet_pton(family, dst)
    if family == socket.AF_INET:
        return addresses + struct.pack("!BBH", 0, proto, length)
    return addresses + struct.pack("!IxxxB", length, proto)


def tcp(src, dst, sport, flags):
    header = struct.pack("!HHIIBBHHH", sport, DPORT, 5000, 0, 5 << 4, flags, 8192, 0, 0)
    check = csum(pseudo(src, dst, socket.IPPROTO_TCP, len(header)) + header)
    return header[:16] + struct.pack("!H", check) + header[18:]


def send(src, dst, proto, packets):
    with socket.socket(family_of(src), socket.SOCK_RAW, proto) as sock:
        sock.bind((src, 0))
        for packet in packets:
            while True:
                try:
                    sock.sendto(packet, (dst, 0))
                    break
                except BlockingIOError:
                    continue
    return len(packets)


def synfin(count, src, dst):
    packet = tcp(src, dst, 40002, SYN | FIN)
    with socket.socket(family_of(src), socket.SOCK_RAW, socket.IPPROTO_TCP) as sock:
        sock.bind((src, 0))
        sent = 0
        while sent < count:
            try:
                sock.sendto(packet, (dst, 0))
            except OSError:  # ENOBUFS from a full qdisc: the packet was not sent, try again
                continue
            sent += 1
    return sent


def mix(src4, dst4, src6, dst6):
    sent = send(src4, dst4, socket.IPPROTO_TCP, [tcp(src4, dst4, 40001, SYN | RST), tcp(src4, dst4, 40002, SYN | FIN)])
    sent += send(src4, dst4, socket.IPPROTO_UDP, [struct.pack("!HHHH", 40003, DPORT, 200, 0) + b"x" * 10])
    icmp = struct.pack("!BBHI", 200, 0, 0, 0)
    sent += send(src4, dst4, socket.IPPROTO_ICMP, [icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]])
    sent += send(src6, dst6, socket.IPPROTO_TCP, [tcp(src6, dst6, 40006, SYN | FIN)])
    return sent


def main():
    if sys.argv[1] == "synfin":
        print(synfin(int(sys.argv[2]), sys.argv[3], sys.argv[4]))
    else:
        print(mix(*sys.argv[2:6]))


if __name__ == "__main__":
    main()
