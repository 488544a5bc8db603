# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import struct

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils import _pcapng as pcapng

IPV4_SYNFIN = bytes.fromhex("450000283a1740004006eb240ac900010ac900029c41005000001388000000005006200" + "0ca300000")
IPV6_HEADER_ONLY = bytes.fromhex("6000000000140640") + b"\0" * 32


def blocks(data):
    """(type, body) of each block, checking both length fields."""
    offset, found = 0, []
    while offset < len(data):
        block_type, total = struct.unpack_from("<II", data, offset)
        assert total % 4 == 0 and struct.unpack_from("<I", data, offset + total - 4)[0] == total
        found.append((block_type, data[offset + 8 : offset + total - 4]))
        offset += total
    assert offset == len(data)
    return found


def options(data):
    found, offset = {}, 0
    while offset + 4 <= len(data):
        code, length = struct.unpack_from("<HH", data, offset)
        if code == 0:
            break
        found[code] = data[offset + 4 : offset + 4 + length]
        offset += 4 + length + (-length % 4)
    return found


@pytest.mark.parametrize(
    "packet, expected",
    [
        (IPV4_SYNFIN, 40),
        (IPV4_SYNFIN[:20], 40),  # copy cut short: the header's total length counts
        (IPV6_HEADER_ONLY, 60),
        (b"\x00\x01", 2),
        (b"", 0),
    ],
)
def test_original_length(packet, expected):
    assert pcapng.original_length(packet) == expected


def test_enhanced_packet_block_layout():
    (block_type, body), = blocks(pcapng.enhanced_packet(IPV4_SYNFIN[:21], 1796609251.940636, "invalid tcp flag combination"))
    assert block_type == pcapng.BLOCK_EPB
    interface, high, low, captured, original = struct.unpack_from("<IIIII", body)
    assert (interface, (high << 32) | low, captured, original) == (0, 1796609251940636, 21, 40)
    assert body[20:41] == IPV4_SYNFIN[:21] and body[41:44] == b"\0\0\0"
    assert options(body[44:]) == {pcapng.OPT_COMMENT: b"invalid tcp flag combination"}


def test_file_has_header_interface_and_packets_and_appends_sections(tmp_path):
    path = str(tmp_path / "ns.pcapng")
    writer = pcapng.PcapngWriter(path, "netns-a", 256)
    writer.add(IPV4_SYNFIN, "invalid tcp flag combination", 1.5)
    writer.close()
    pcapng.PcapngWriter(path, "netns-a", 256).close()  # a restarted collector
    found = blocks(open(path, "rb").read())
    assert [block_type for block_type, _body in found] == [pcapng.BLOCK_SHB, pcapng.BLOCK_IDB, pcapng.BLOCK_EPB, pcapng.BLOCK_SHB, pcapng.BLOCK_IDB]
    magic, major, minor, section_length = struct.unpack_from("<IHHq", found[0][1])
    assert (magic, major, minor, section_length) == (pcapng.BYTE_ORDER_MAGIC, 1, 0, -1)
    linktype, _reserved, snaplen = struct.unpack_from("<HHI", found[1][1])
    assert (linktype, snaplen) == (pcapng.LINKTYPE_RAW, 256)
    assert options(found[1][1][8:]) == {pcapng.IF_NAME: b"netns-a"}
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_never_writes_through_a_symlink(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    link = tmp_path / "link.pcapng"
    link.symlink_to(target)
    with pytest.raises(OSError):
        pcapng.PcapngWriter(str(link), "x", 256)
    assert target.read_bytes() == b"keep"
