# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fill the conntrack table of the current network namespace with established TCP connections over lo.
Evidence for tests/vm/matrix.sh (run it with `ip netns exec` in a scratch namespace, after lowering
net.netfilter.nf_conntrack_max).

usage: mx_fill.py COUNT

Established connections are ASSURED, so early_drop() cannot evict them to make room: once the namespace
holds nf_conntrack_max of them, the kernel drops the next SYN and prints "table full, dropping packet".
Connections that cannot be opened time out after a short wait. Prints {"opened": N, "failed": M} as JSON.
"""
import json
import socket
import sys


def main():
    count = int(sys.argv[1])
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(count + 10)
    address = server.getsockname()
    opened, failed, held = 0, 0, []
    try:
        for dummy in range(count):
            client = socket.socket()
            client.settimeout(0.3)
            try:
                client.connect(address)
                held.append(client)
                opened += 1
            except OSError:
                client.close()
                failed += 1
    finally:
        for client in held:
            client.close()
        server.close()
    print(json.dumps({"opened": opened, "failed": failed}))


if __name__ == "__main__":
    main()
