# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Open a pcapng file of the netlink capture two ways, for the kernel matrix (tests/vm/playbooks/capture.yml):
with tshark where it is installed, and with a block walker written from the pcapng specification (independent
of the collection's writer). Run on the controller, on the file collect fetched.

usage: mx_pcapng.py FILE

Prints JSON: {"exists", "size", "blocks": {type: count}, "packets", "comments": {comment: count}, "error",
"tshark": null (not installed) or {"rc", "packets", "comments": {comment: count}, "stderr"}}.
"""
import collections
import json
import os
import shutil
import struct
import subprocess
import sys

SHB, IDB, EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_COMMENT = 1


def options(data):
    """(code, value) of an options area."""
    offset = 0
    while offset + 4 <= len(data):
        code, length = struct.unpack_from("<HH", data, offset)
        if code == 0:
            return
        yield code, data[offset + 4:offset + 4 + length]
        offset += 4 + length + (-length % 4)


def walk(data):
    """The blocks' types and the packets' comments; raises ValueError on a malformed file."""
    if len(data) < 28 or struct.unpack_from("<I", data, 0)[0] != SHB:
        raise ValueError("no section header block at the start")
    if struct.unpack_from("<I", data, 8)[0] != BYTE_ORDER_MAGIC:
        raise ValueError("not little-endian pcapng (byte-order magic %#x)" % struct.unpack_from("<I", data, 8)[0])
    blocks, comments, offset = collections.Counter(), collections.Counter(), 0
    while offset < len(data):
        if offset + 12 > len(data):
            raise ValueError("truncated block at offset %d" % offset)
        kind, total = struct.unpack_from("<II", data, offset)
        if total < 12 or total % 4 or offset + total > len(data) or struct.unpack_from("<I", data, offset + total - 4)[0] != total:
            raise ValueError("bad block length %d at offset %d" % (total, offset))
        blocks["%#x" % kind] += 1
        if kind == EPB:
            captured = struct.unpack_from("<I", data, offset + 20)[0]
            start = offset + 28 + captured + (-captured % 4)
            text = [value.decode("utf-8", "replace") for code, value in options(data[start:offset + total - 4])
                    if code == OPT_COMMENT]
            comments[text[0] if text else ""] += 1
        offset += total
    return blocks, comments


def tshark(path):
    if not shutil.which("tshark"):
        return None
    proc = subprocess.run(["tshark", "-r", path, "-T", "fields", "-e", "frame.comment"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False)
    lines = proc.stdout.splitlines()
    return {"rc": proc.returncode, "packets": len(lines), "comments": dict(collections.Counter(lines)),
            "stderr": proc.stderr.strip()[-500:]}


def main():
    path = sys.argv[1]
    result = {"exists": os.path.isfile(path), "size": None, "blocks": {}, "packets": 0, "comments": {},
              "error": None, "tshark": None}
    if result["exists"]:
        with open(path, "rb") as handle:
            data = handle.read()
        result["size"] = len(data)
        try:
            blocks, comments = walk(data)
            result.update(blocks=dict(blocks), packets=sum(comments.values()), comments=dict(comments))
        except ValueError as exc:
            result["error"] = str(exc)
        result["tshark"] = tshark(path)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
