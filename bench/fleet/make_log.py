#!/usr/bin/env python
# Write N conntrack invalid-packet kernel log lines (dmesg format) to a file, for the collect payload benchmark
# of bench/fleet/run.sh. The lines are real 6.18 kernel lines (tests/unit/.../fixtures/invalid_log) with the
# timestamp, source address and ports varied: timestamps start just after the current uptime (so they fall in
# the debug window opened before), sources spread over 500 addresses. Standard library only; runs on the target
# (bench/fleet/run.sh pipes it into python3 inside a container).
#   make_log.py COUNT DEST
# Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
import os
import sys

TEMPLATES = [
    "nf_ct_proto_6: invalid tcp flag combination IN=eth0 OUT= MAC=3a:d5:c1:86:1b:6b:d2:f2:82:67:2d:53:08:00 "
    "SRC={src} DST=10.99.0.2 LEN=40 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=TCP SPT={sport} DPT=80 SEQ=5000 ACK=0 "
    "WINDOW=8192 RES=0x00 RST SYN URGP=0 ",
    "nf_ct_proto_6: ACK is over upper bound 147360949 (ACKed data not seen yet) IN=eth0 OUT= "
    "MAC=3a:d5:c1:86:1b:6b:d2:f2:82:67:2d:53:08:00 SRC={src} DST=10.99.0.2 LEN=40 TOS=0x00 PREC=0x00 TTL=64 ID=1 "
    "PROTO=TCP SPT={sport} DPT=80 SEQ=1101 ACK=152360948 WINDOW=64240 RES=0x00 ACK URGP=0 ",
    "nf_ct_proto_6: SEQ is over upper bound 65242 (over the window of the receiver) IN=eth0 OUT= "
    "MAC=3a:d5:c1:86:1b:6b:d2:f2:82:67:2d:53:08:00 SRC={src} DST=10.99.0.2 LEN=50 TOS=0x00 PREC=0x00 TTL=64 ID=1 "
    "PROTO=TCP SPT={sport} DPT=80 SEQ=50001101 ACK=147360948 WINDOW=64240 RES=0x00 ACK PSH URGP=0 ",
    "nf_ct_proto_17: truncated/malformed packet IN=eth0 OUT= MAC=3a:d5:c1:86:1b:6b:d2:f2:82:67:2d:53:08:00 "
    "SRC={src} DST=10.99.0.2 LEN=38 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=UDP SPT={sport} DPT=53 LEN=200 ",
    "nf_ct_proto_1: invalid icmp type IN=eth0 OUT= MAC=3a:d5:c1:86:1b:6b:d2:f2:82:67:2d:53:08:00 SRC={src} "
    "DST=10.99.0.2 LEN=28 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=ICMP TYPE=200 CODE=0 ",
]


def main():
    count, dest = int(sys.argv[1]), sys.argv[2]
    with open("/proc/uptime", encoding="ascii") as handle:
        start = float(handle.read().split()[0]) + 1.0
    tmp = dest + ".tmp"
    with open(tmp, "w", encoding="ascii") as out:
        for index in range(count):
            line = TEMPLATES[index % len(TEMPLATES)].format(
                src="198.51.100.%d" % (index % 250 + 1) if index % 4 else "203.0.113.%d" % (index % 250 + 1),
                sport=30000 + index % 30000)
            out.write("[%12.6f] %s\n" % (start + index * 0.0001, line))
    os.replace(tmp, dest)
    print(os.path.getsize(dest))


if __name__ == "__main__":
    main()
