# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A minimal pcapng writer for IP packets, each with a comment (the conntrack reason).

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

One section header block, one interface description block with LINKTYPE_RAW (101: the packet
starts with its IPv4 or IPv6 header, as nfnetlink_log delivers it) and microsecond timestamps,
then one enhanced packet block per packet with an ``opt_comment``. Every block is written with a
single write(2), so a collector killed between two packets leaves a file Wireshark and tshark read
to the last whole block. Opening an existing file appends a new section (a restarted collector), which
pcapng allows and tshark reads as one capture.
"""

from __future__ import annotations

import os
import struct
import time
import typing as t

LINKTYPE_RAW = 101
BLOCK_SHB = 0x0A0D0D0A
BLOCK_IDB = 0x00000001
BLOCK_EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_ENDOFOPT, OPT_COMMENT = 0, 1
IF_NAME = 2
SHB_USERAPPL = 4


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


def _options(items: t.Sequence[tuple[int, bytes]]) -> bytes:
    if not items:
        return b""
    return b"".join(option(code, value) for code, value in items) + struct.pack("<HH", OPT_ENDOFOPT, 0)


def block(block_type: int, body: bytes) -> bytes:
    """Type, total length, body (padded), total length again."""
    body = _pad(body)
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def section_header(application: str) -> bytes:
    body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + _options([(SHB_USERAPPL, application.encode())])
    return block(BLOCK_SHB, body)


def interface_description(name: str, snaplen: int) -> bytes:
    body = struct.pack("<HHI", LINKTYPE_RAW, 0, snaplen) + _options([(IF_NAME, name.encode())])
    return block(BLOCK_IDB, body)


def original_length(packet: bytes) -> int:
    """The IP packet's length from its header (nfnetlink_log may have cut the copy short)."""
    if len(packet) >= 4 and packet[0] >> 4 == 4:
        return max(struct.unpack("!H", packet[2:4])[0], len(packet))
    if len(packet) >= 6 and packet[0] >> 4 == 6:
        return max(40 + struct.unpack("!H", packet[4:6])[0], len(packet))
    return len(packet)


def enhanced_packet(packet: bytes, timestamp: float, comment: str, interface_id: int = 0) -> bytes:
    micros = int(round(timestamp * 1_000_000))
    header = struct.pack("<IIIII", interface_id, micros >> 32, micros & 0xFFFFFFFF, len(packet), original_length(packet))
    return block(BLOCK_EPB, header + _pad(packet) + _options([(OPT_COMMENT, comment.encode("utf-8", "replace"))]))


class PcapngWriter:
    """Append-only writer of one file (created 0600, never through a symlink)."""

    def __init__(self, path: str, interface_name: str, snaplen: int, application: str = "netfilter.conntrack capture") -> None:
        self.path = path
        self.packets = 0
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            self._write(section_header(application) + interface_description(interface_name, snaplen))
        except OSError:
            os.close(self._fd)
            raise

    def _write(self, data: bytes) -> None:
        os.write(self._fd, data)

    def add(self, packet: bytes, comment: str, timestamp: float | None = None) -> None:
        self._write(enhanced_packet(packet, time.time() if timestamp is None else timestamp, comment))
        self.packets += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
