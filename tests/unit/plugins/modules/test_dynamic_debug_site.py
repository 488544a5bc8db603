# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dynamic_debug_site's read-modify-readback against a fake control file in a tmp dir.

The fake applies each write the way the kernel does: parse with kernel_parse_queries, match with
site_matches, then rewrite the file.  It can also "misbehave" to exercise the read-back check.
"""

from __future__ import annotations

import types

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils import _dynamic_debug as dd
from ansible_collections.netfilter.conntrack.plugins.module_utils import _dynamic_debug_model as ddm
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.modules import dynamic_debug_site
from ansible_collections.netfilter.conntrack.tests.unit.plugins.module_utils.kernel_tree import TreeKernel

CONTROL = "\n".join(
    [
        ddm.CONTROL_HEADER,
        r'init/main.c:1152 [main]initcall_blacklist =p "blacklisting initcall %s\n"',
        r'net/netfilter/nf_conntrack_proto_tcp.c:889 [nf_conntrack]tcp_new =_ "nf_ct_tcp: invalid new deleting.\n"',
        r'net/netfilter/nf_conntrack_proto_tcp.c:1172 [nf_conntrack]nf_conntrack_tcp_packet =_ "nf_ct_tcp: SYN proxy client keep alive\n"',
        r'net/netfilter/nf_conntrack_proto_tcp.c:1317 [nf_conntrack]nf_conntrack_tcp_packet =_ "tcp_conntracks: "',
        r'net/netfilter/nf_conntrack_proto_tcp.c:1319 [nf_conntrack]nf_conntrack_tcp_packet =_ "syn=%i ack=%i fin=%i rst=%i old=%i new=%i\n"',
        r'net/netfilter/nf_conntrack_proto_sctp.c:261 [nf_conntrack]sctp_new =_ "nf_conntrack_sctp: invalid new deleting.\n"',
        r'drivers/gpu/drm/drm_vblank.c:1234 [drm]drm_update_vblank_count =_ "updating vblank count\n" class:DRM_UT_VBL',
    ]
) + "\n"


@pytest.fixture
def kernel(tmp_path):
    return TreeKernel(tmp_path, {}, control=CONTROL)


def flags(kernel):
    return {(site.function, site.lineno): site.flags for site in dd.read_control(kernel.control_path)}


def run_module(kernel, **params):
    return dynamic_debug_site.run(make_module(kernel, **params), kernel)


def make_module(kernel, check_mode=False, diff=False, **params):
    full = {k: None for k in ("file", "func", "module", "format", "line", "class")}
    full.update(flags="p", state="enabled", control_path=kernel.control_path, mount_debugfs=False, require_match=True)
    full.update(params)
    warnings = []
    return types.SimpleNamespace(params=full, check_mode=check_mode, _diff=diff, warn=warnings.append, warnings=warnings)


def test_enable_then_idempotent(kernel):
    result = run_module(kernel, diff=True, func="tcp_new", format="invalid new deleting")
    assert result["changed"] and result["written"]
    assert result["query"] == 'func tcp_new format "invalid new deleting" +p'
    assert [(s["lineno"], s["flags_before"], s["flags_after"]) for s in result["sites"]] == [(889, "_", "p")]
    assert result["diff"]["before"].endswith('=_ "nf_ct_tcp: invalid new deleting.\\n"\n')
    assert result["diff"]["after"].endswith('=p "nf_ct_tcp: invalid new deleting.\\n"\n')
    assert flags(kernel)[("tcp_new", 889)] == "p"
    assert flags(kernel)[("sctp_new", 261)] == "_"
    again = run_module(kernel, func="tcp_new", format="invalid new deleting")
    assert not again["changed"] and not again["written"]
    assert len(kernel.control_writes) == 1


def test_check_mode_writes_nothing(kernel):
    result = run_module(kernel, check_mode=True, func="nf_conntrack_tcp_packet")
    assert result["changed"] and not result["written"]
    assert [s["flags_after"] for s in result["sites"]] == ["p", "p", "p"]
    assert kernel.control_writes == []


def test_format_copied_from_control_file(kernel):
    result = run_module(kernel, format=r"^syn=%i ack=%i fin=%i rst=%i old=%i new=%i\n", state="exact", flags="pfl")
    assert result["query"] == 'format "^syn=%i ack=%i fin=%i rst=%i old=%i new=%i\\012" =pfl'
    assert flags(kernel)[("nf_conntrack_tcp_packet", 1319)] == "pfl"


def test_disable_and_restore(kernel):
    on = run_module(kernel, file="nf_conntrack_proto_tcp.c", flags="pf")
    assert len(on["sites"]) == 4
    for site in on["sites"]:
        run_module(kernel, **site["restore"])
    assert all(flags == "_" for (func, _line), flags in flags(kernel).items() if func != "initcall_blacklist" and func != "drm_update_vblank_count")
    off = run_module(kernel, module="main", state="disabled")
    assert off["sites"][0]["flags_after"] == "_"


def test_class_sites_need_class(kernel):
    with pytest.raises(ConntrackModuleError, match="no dynamic debug site matches module drm"):
        run_module(kernel, module="drm")
    result = run_module(kernel, module="drm", **{"class": "DRM_UT_VBL"})
    assert result["query"] == "module drm class DRM_UT_VBL +p"
    assert result["sites"][0]["restore"]["class"] == "DRM_UT_VBL"


def test_query_state_is_read_only(kernel):
    result = run_module(kernel, file="net/netfilter/*", state="query")
    assert not result["changed"] and kernel.control_writes == []
    assert result["query"] == "file net/netfilter/*"
    assert len(result["sites"]) == 5


def test_no_match_lists_what_was_searched(kernel):
    with pytest.raises(ConntrackModuleError) as exc:
        run_module(kernel, func="nf_conntrack_tcp_packet", format="invalid new deleting")
    msg = exc.value.msg
    assert "no dynamic debug site matches func nf_conntrack_tcp_packet, format 'invalid new deleting'" in msg
    assert "searched 7 sites of 3 modules" in msg
    assert "Without the func criterion these match" in msg and "tcp_new" in msg
    result = run_module(kernel, func="nope", require_match=False)
    assert not result["changed"] and result["sites"] == []


def test_missing_module_hint(kernel):
    with pytest.raises(ConntrackModuleError, match="no site belongs to module nf_nat"):
        run_module(kernel, module="nf_nat")


def test_injection_rejected_before_reading(kernel):
    with pytest.raises(ConntrackModuleError, match="would end the value"):
        run_module(kernel, func="tcp_new +p; file * +p")
    assert kernel.control_writes == []


class DeafKernel(TreeKernel):
    """Takes each write and changes no site."""

    def write_control(self, path, query):
        self.control_writes.append(query)


def test_readback_mismatch_fails(tmp_path):
    kernel = DeafKernel(tmp_path, {}, control=CONTROL)
    with pytest.raises(ConntrackModuleError, match="reads =_, wanted =p"):
        dynamic_debug_site.run(make_module(kernel, func="tcp_new"), kernel)
    assert kernel.control_writes == ["func tcp_new +p"]


def test_missing_control_path(tmp_path):
    fake = types.SimpleNamespace(control_path=str(tmp_path / "nope"))
    with pytest.raises(ConntrackModuleError, match="does not exist"):
        dynamic_debug_site.run(make_module(fake, func="tcp_new"))


def test_bad_flags():
    host = types.SimpleNamespace(check_mode=False, diff=False)
    with pytest.raises(ConntrackModuleError, match="unknown dynamic debug flag"):
        dd.set_site(host, {"flags": "px", "state": "enabled"})
