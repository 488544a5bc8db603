# Send TCP segments with impossible flag combinations over the loopback interface, so that conntrack
# counts them as invalid and (with nf_conntrack_log_invalid set) logs "invalid tcp flag combination".
# Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
import socket
import struct

FLAGS = {"SYN|RST": 0x06, "SYN|FIN": 0x03, "SYN|FIN|RST|PSH|ACK|URG": 0x3F}


def segment(flags, sport, dport=80):
    return struct.pack("!HHIIBBHHH", sport, dport, 5000, 0, 5 << 4, flags, 8192, 0, 0)


sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
for index, flags in enumerate(FLAGS.values()):
    sock.sendto(segment(flags, 40000 + index), ("127.0.0.1", 0))
print(len(FLAGS))
