# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Control-file parser, kernel matching rules (_dynamic_debug_model), query parser and builder (_dynamic_debug_query)
and locating the control file (_dynamic_debug).

Control lines are real ones: Debian 6.1 (../shared/reference/kernel-samples), the line the
troubleshooting article quotes from an older kernel (octal escapes), and the class suffixes
lib/dynamic_debug.c prints since 6.1.
"""

from __future__ import annotations

import glob
import os

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils import _dynamic_debug as dd
from ansible_collections.netfilter.conntrack.plugins.module_utils import _dynamic_debug_model as ddm
from ansible_collections.netfilter.conntrack.plugins.module_utils import _dynamic_debug_query as ddq
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
VM_SAMPLES = sorted(glob.glob(os.path.join(REPO, "tests", "vm", "samples", "dynamic-debug-control-*.txt")))

# (line, expected Site or None)
TC_LINES = {
    "header": (ddm.CONTROL_HEADER, None),
    "blank": ("", None),
    "6.1-disabled": (
        r'net/netfilter/nf_conntrack_core.c:1241 [nf_conntrack]__nf_conntrack_confirm =_ "Confirming conntrack %p\n"',
        ddm.Site("net/netfilter/nf_conntrack_core.c", 1241, "nf_conntrack", "__nf_conntrack_confirm", "_", "Confirming conntrack %p\n"),
    ),
    "6.1-enabled-builtin": (
        r'init/main.c:1152 [main]initcall_blacklist =p "blacklisting initcall %s\n"',
        ddm.Site("init/main.c", 1152, "main", "initcall_blacklist", "p", "blacklisting initcall %s\n"),
    ),
    "no-newline-in-format": (
        r'net/netfilter/nf_conntrack_core.c:2141 [nf_conntrack]nf_conntrack_alter_reply =_ "Altering reply tuple of %p to "',
        ddm.Site("net/netfilter/nf_conntrack_core.c", 2141, "nf_conntrack", "nf_conntrack_alter_reply", "_", "Altering reply tuple of %p to "),
    ),
    "old-kernel-octal": (
        r'net/netfilter/nf_conntrack_proto_tcp.c:1104 [nf_conntrack]nf_conntrack_tcp_packet =_ "syn=%i ack=%i fin=%i rst=%i old=%i new=%i\012"',
        ddm.Site(
            "net/netfilter/nf_conntrack_proto_tcp.c", 1104, "nf_conntrack", "nf_conntrack_tcp_packet", "_",
            "syn=%i ack=%i fin=%i rst=%i old=%i new=%i\n",
        ),
    ),
    "old-kernel-octal-quote-tab": (
        r'drivers/x/y.c:7 [y]f =p "a\042b\011c\012"',
        ddm.Site("drivers/x/y.c", 7, "y", "f", "p", 'a"b\tc\n'),
    ),
    "new-kernel-raw-quote": (
        'drivers/x/y.c:7 [y]f =p "say "hi"\\n"',
        ddm.Site("drivers/x/y.c", 7, "y", "f", "p", 'say "hi"\n'),
    ),
    "many-flags": (
        r'drivers/x/y.c:7 [y]f =pmflt "x\n"',
        ddm.Site("drivers/x/y.c", 7, "y", "f", "pmflt", "x\n"),
    ),
    "class-name": (
        r'drivers/gpu/drm/drm_vblank.c:1234 [drm]drm_update_vblank_count =_ "updating vblank count on crtc %u:%s\n" class:DRM_UT_VBL',
        ddm.Site(
            "drivers/gpu/drm/drm_vblank.c", 1234, "drm", "drm_update_vblank_count", "_",
            "updating vblank count on crtc %u:%s\n", "DRM_UT_VBL",
        ),
    ),
    "class-unknown": (
        r'drivers/gpu/drm/i915/x.c:10 [i915]g =_ "y\n" class unknown, _id:3',
        ddm.Site("drivers/gpu/drm/i915/x.c", 10, "i915", "g", "_", "y\n", None, 3),
    ),
    "format-looks-like-class": (
        r'a/b.c:1 [b]f =_ "x" class:Y"',
        ddm.Site("a/b.c", 1, "b", "f", "_", 'x" class:Y'),
    ),
}


@pytest.mark.parametrize("line,expected", [TC_LINES[k] for k in sorted(TC_LINES)], ids=sorted(TC_LINES))
def test_parse_control_line(line, expected):
    assert ddm.parse_control_line(line) == expected


@pytest.mark.parametrize("line", ["garbage", "a.c:x [m]f =p \"x\"", 'a.c:1 m]f =p "x"', 'a.c:1 [m]f p "x"'])
def test_parse_control_line_rejects(line):
    with pytest.raises(ValueError, match="unexpected dynamic debug control line"):
        ddm.parse_control_line(line)


def test_control_line_round_trip():
    for line, site in TC_LINES.values():
        if site is not None and "\\0" not in line and "format-looks" not in line:
            assert ddm.parse_control_line(site.control_line()) == site


def test_reference_excerpt():
    path = os.path.join(REPO, "..", "shared", "reference", "kernel-samples", "dynamic-debug-control-6.1-excerpt.txt")
    if not os.path.exists(path):
        pytest.skip("shared reference samples not present")
    with open(path, encoding="utf-8") as handle:
        sites = ddm.parse_control(handle.read())
    assert len(sites) == 29
    assert {s.module for s in sites} == {"main", "nf_conntrack"}


@pytest.mark.parametrize("path", VM_SAMPLES, ids=[os.path.basename(p) for p in VM_SAMPLES])
def test_vm_samples_parse(path):
    """Control files captured from real kernels by tests/vm/vm.sh samples."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    sites = ddm.parse_control(text)
    assert len(sites) == len([ln for ln in text.splitlines() if ln and not ln.startswith("#")])
    for site in sites:
        assert ddm.parse_control_line(site.control_line()) == site


# --- match_wildcard (lib/parser.c) ---------------------------------------------------------------------------

TC_WILDCARD = {
    "exact": ("nf_conntrack", "nf_conntrack", True),
    "exact-mismatch": ("nf_conntrack", "nf_conntrack_ipv4", False),
    "star-suffix": ("nf_conntrack*", "nf_conntrack_ipv4", True),
    "star-prefix": ("*_packet", "nf_conntrack_tcp_packet", True),
    "star-middle": ("nf_*_packet", "nf_conntrack_tcp_packet", True),
    "star-empty": ("nf_conntrack*", "nf_conntrack", True),
    "star-only": ("*", "anything", True),
    "question": ("nf_conntrack_?cp_packet", "nf_conntrack_tcp_packet", True),
    "question-needs-char": ("ab?", "ab", False),
    "backtrack": ("*ab", "aab", True),
    "backtrack-2": ("a*b*c", "axbyc", True),
    "backtrack-fail": ("a*b*c", "axbyd", False),
    # Kernels before late 2025 skip only one trailing '*' (fixed upstream since).
    "double-trailing-star-old-kernel": ("abc**", "abc", False),
    "empty-pattern": ("", "x", False),
}


@pytest.mark.parametrize("pattern,string,expected", [TC_WILDCARD[k] for k in sorted(TC_WILDCARD)], ids=sorted(TC_WILDCARD))
def test_match_wildcard(pattern, string, expected):
    assert ddm.match_wildcard(pattern, string) is expected


# --- site_matches (ddebug_change) ------------------------------------------------------------------------------

TCP = ddm.Site(
    "net/netfilter/nf_conntrack_proto_tcp.c", 1104, "nf_conntrack", "nf_conntrack_tcp_packet", "_",
    "syn=%i ack=%i fin=%i rst=%i old=%i new=%i\n",
)
CLASSED = ddm.Site("drivers/gpu/drm/drm_vblank.c", 1234, "drm", "drm_update_vblank_count", "_", "updating vblank\n", "DRM_UT_VBL")
UNKNOWN_CLASS = ddm.Site("drivers/gpu/drm/drm_vblank.c", 1235, "drm", "drm_update_vblank_count", "_", "x\n", None, 3)

TC_MATCH = {
    "file-full-path": (dict(file="net/netfilter/nf_conntrack_proto_tcp.c"), TCP, True),
    "file-basename": (dict(file="nf_conntrack_proto_tcp.c"), TCP, True),
    "file-partial-path-no": (dict(file="netfilter/nf_conntrack_proto_tcp.c"), TCP, False),
    "file-wildcard-path": (dict(file="net/netfilter/*"), TCP, True),
    "file-wildcard-base": (dict(file="nf_conntrack_proto_*.c"), TCP, True),
    "func": (dict(func="nf_conntrack_tcp_packet"), TCP, True),
    "func-wildcard": (dict(func="*tcp*"), TCP, True),
    "func-no": (dict(func="nf_conntrack_tcp"), TCP, False),
    "module": (dict(module="nf_conntrack"), TCP, True),
    "module-wildcard": (dict(module="nf_*"), TCP, True),
    "module-dash-no": (dict(module="nf-conntrack"), TCP, False),
    "format-substring": (dict(format="old=%i"), TCP, True),
    "format-escaped-newline": (dict(format=r"new=%i\n"), TCP, True),
    "format-octal-newline": (dict(format=r"new=%i\012"), TCP, True),
    "format-real-newline": (dict(format="new=%i\n"), TCP, True),
    "format-anchored": (dict(format="^syn="), TCP, True),
    "format-anchored-no": (dict(format="^ack="), TCP, False),
    "format-no-wildcards": (dict(format="syn=*"), TCP, False),
    "line-exact": (dict(line="1104"), TCP, True),
    "line-exact-no": (dict(line="1105"), TCP, False),
    "line-range": (dict(line="1100-1200"), TCP, True),
    "line-range-no": (dict(line="1105-1200"), TCP, False),
    "line-upto": (dict(line="-1104"), TCP, True),
    "line-upto-no": (dict(line="-1103"), TCP, False),
    "line-from": (dict(line="1104-"), TCP, True),
    "line-from-no": (dict(line="1105-"), TCP, False),
    "all-four": (dict(file="nf_conntrack_proto_tcp.c", func="nf_conntrack_tcp_packet", module="nf_conntrack", format="syn"), TCP, True),
    "classless-query-skips-classed-site": (dict(module="drm"), CLASSED, False),
    "classless-query-skips-unknown-class": (dict(module="drm"), UNKNOWN_CLASS, False),
    "class-query": (dict(class_name="DRM_UT_VBL"), CLASSED, True),
    "class-query-other-class": (dict(class_name="DRM_UT_KMS"), CLASSED, False),
    "class-query-classless-site": (dict(class_name="DRM_UT_VBL"), TCP, False),
    "class-query-unknown-class": (dict(class_name="DRM_UT_VBL"), UNKNOWN_CLASS, False),
}


@pytest.mark.parametrize("spec,site,expected", [TC_MATCH[k] for k in sorted(TC_MATCH)], ids=sorted(TC_MATCH))
def test_site_matches(spec, site, expected):
    assert ddm.site_matches(ddq.make_query(**spec), site) is expected


# --- flags -------------------------------------------------------------------------------------------------------

TC_APPLY = {
    "enable": ("_", "+", "p", "p"),
    "enable-kept": ("p", "+", "p", "p"),
    "enable-adds": ("pf", "+", "l", "pfl"),
    "disable": ("pfl", "-", "p", "fl"),
    "disable-all": ("p", "-", "p", "_"),
    "disable-none-set": ("_", "-", "p", "_"),
    "exact": ("pmf", "=", "p", "p"),
    "exact-none": ("pmf", "=", "_", "_"),
    "order": ("_", "+", "tlsfmp", "pmfslt"),
}


@pytest.mark.parametrize("old,op,flags,new", [TC_APPLY[k] for k in sorted(TC_APPLY)], ids=sorted(TC_APPLY))
def test_apply_flags(old, op, flags, new):
    assert ddm.apply_flags(old, op, ddm.parse_flags(flags)) == new


@pytest.mark.parametrize("flags", ["", "x", "p+", "P", "p\n"])
def test_parse_flags_rejects(flags):
    with pytest.raises(ValueError):
        ddm.parse_flags(flags)


# --- query building, validation and the kernel's own parser -------------------------------------------------

TC_BUILD = {
    "func-format": (
        dict(func="nf_conntrack_tcp_packet", format="invalid new deleting"), "+", "p",
        'func nf_conntrack_tcp_packet format "invalid new deleting" +p',
    ),
    "article-file-line": (
        dict(file="net/netfilter/nf_conntrack_proto_tcp.c", line=1005), "+", "p",
        "file net/netfilter/nf_conntrack_proto_tcp.c line 1005 +p",
    ),
    "exact-none": (dict(module="nf_conntrack"), "=", "_", "module nf_conntrack =_"),
    "disable-several": (dict(func="f"), "-", "lp", "func f -pl"),
    "format-escapes-quoted-as-octal": (dict(format='a;b#c"d\'e\\\\f\\n'), "+", "p", 'format "a\\073b\\043c\\042d\\047e\\134f\\012" +p'),
    "format-anchor": (dict(format="^nf_ct_tcp:"), "+", "p", 'format "^nf_ct_tcp:" +p'),
    "line-ranges": (dict(func="f", line="-10"), "+", "p", "func f line -10 +p"),
    "line-open-end": (dict(func="f", line="10-"), "+", "p", "func f line 10- +p"),
    "class": (dict(module="drm", class_name="DRM_UT_KMS"), "+", "p", "module drm class DRM_UT_KMS +p"),
    "five-specs-fold-line": (
        dict(file="a.c", func="f", module="m", format="x", line="1-2"), "+", "p",
        'file a.c:1-2 func f module m format "x" +p',
    ),
    "five-specs-fold-func": (
        dict(file="a.c", func="f", module="m", format="x", class_name="C"), "+", "p",
        'file a.c:f module m format "x" class C +p',
    ),
}


@pytest.mark.parametrize("spec,op,flags,text", [TC_BUILD[k] for k in sorted(TC_BUILD)], ids=sorted(TC_BUILD))
def test_build_query(spec, op, flags, text):
    query = ddq.make_query(**spec)
    assert ddq.build_query(query, op, ddm.parse_flags(flags)) == text
    # The kernel's parser reads back exactly one query, equal to the one meant.
    assert ddq.kernel_parse_queries(text) == [(query, op, ddm.parse_flags(flags))]


TC_REJECT = {
    "nothing": (dict(), "at least one"),
    "func-space": (dict(func="f +p"), "would end the value"),
    "func-semicolon": (dict(func="f;file"), "would end the value"),
    "module-newline": (dict(module="m\nfile * +p"), "would end the value"),
    "file-hash": (dict(file="#a.c"), "would end the value"),
    "file-quote": (dict(file='a".c'), "would end the value"),
    "file-single-quote": (dict(file="a'.c"), "would end the value"),
    "file-backslash": (dict(file="a\\b.c"), "would end the value"),
    "file-colon": (dict(file="a.c:10"), "contains ':'"),
    "func-nul": (dict(func="f\0"), "would end the value"),
    "class-tab": (dict(class_name="A\tB"), "would end the value"),
    "func-empty": (dict(func=""), "non-empty"),
    "double-star": (dict(func="nf**"), r"contains '\*\*'"),
    "format-empty": (dict(format=""), "non-empty"),
    "format-anchor-only": (dict(format="^"), "non-empty"),
    "format-nul": (dict(format="a\0b"), "NUL"),
    "format-octal-nul": (dict(format="a\\000b"), "NUL"),
    "format-non-ascii": (dict(format="\u00e9"), "non-ASCII"),
    "line-word": (dict(line="abc"), "not a line number"),
    "line-reversed": (dict(line="20-10"), "not a line number"),
    "line-zero": (dict(line="0"), "selects no line"),
    "line-dash": (dict(line="-"), "selects no line"),
    "line-injection": (dict(line="1 +p;file *"), "not a line number"),
}


@pytest.mark.parametrize("spec,match", [TC_REJECT[k] for k in sorted(TC_REJECT)], ids=sorted(TC_REJECT))
def test_make_query_rejects(spec, match):
    with pytest.raises(ConntrackModuleError, match=match):
        ddq.make_query(**spec)


def test_six_specs_rejected():
    query = ddq.make_query(file="a.c", func="f", module="m", format="x", line="1", class_name="C")
    with pytest.raises(ConntrackModuleError, match="at most 4 match-specs"):
        ddq.build_query(query, "+", ddm.parse_flags("p"))


def test_five_specs_without_fold_rejected():
    query = ddq.make_query(func="f", module="m", format="x", line="1", class_name="C")
    with pytest.raises(ConntrackModuleError, match="at most 4 match-specs"):
        ddq.build_query(query, "+", ddm.parse_flags("p"))


def test_func_starting_with_underscore_is_not_folded():
    # "file a.c:__f" would be read as a line range by the kernel.
    query = ddq.make_query(file="a.c", func="__f", module="m", format="x", class_name="C")
    with pytest.raises(ConntrackModuleError, match="at most 4 match-specs"):
        ddq.build_query(query, "+", ddm.parse_flags("p"))


def test_overlong_query_rejected():
    query = ddq.make_query(format="x" * (ddq.MAX_WRITE - 10))
    with pytest.raises(ConntrackModuleError, match="at most 4095 bytes"):
        ddq.build_query(query, "+", ddm.parse_flags("p"))


def test_format_made_of_specials_stays_one_query():
    nasty = "\n;#\"'\\\\ +p\tfile * =p\r\x0b\x0c"
    query = ddq.make_query(format=nasty)
    text = ddq.build_query(query, "=", ddm.parse_flags("p"))
    assert "\n" not in text and ";" not in text and "#" not in text and "'" not in text
    assert ddq.kernel_parse_queries(text) == [(query, "=", frozenset("p"))]


# The kernel's parser itself (used to check what the builder writes, and by the unit-test fake).
TC_KERNEL_PARSE = {
    "two-queries-semicolon": ("func a +p; func b -p", [(ddm.Query(func="a"), "+", frozenset("p")), (ddm.Query(func="b"), "-", frozenset("p"))]),
    "two-queries-newline": ("func a +p\nfunc b =_", [(ddm.Query(func="a"), "+", frozenset("p")), (ddm.Query(func="b"), "=", frozenset())]),
    "comment": ("# func a +p\nfunc b +p # trailing", [(ddm.Query(func="b"), "+", frozenset("p"))]),
    "single-quotes": ("format 'a b' +p", [(ddm.Query(format="a b"), "+", frozenset("p"))]),
    "format-unescape": (r"format 'a\tb\012\"\\' +p", [(ddm.Query(format='a\tb\n"\\'), "+", frozenset("p"))]),
    "file-colon-func": ("file a.c:f +p", [(ddm.Query(file="a.c", func="f"), "+", frozenset("p"))]),
    "file-colon-lines": ("file a.c:10-20 +p", [(ddm.Query(file="a.c", first_lineno=10, last_lineno=20), "+", frozenset("p"))]),
    "line-open": ("line 10- +p", [(ddm.Query(first_lineno=10, last_lineno=2**32 - 1), "+", frozenset("p"))]),
}


@pytest.mark.parametrize("text,expected", [TC_KERNEL_PARSE[k] for k in sorted(TC_KERNEL_PARSE)], ids=sorted(TC_KERNEL_PARSE))
def test_kernel_parse_queries(text, expected):
    assert ddq.kernel_parse_queries(text) == expected


@pytest.mark.parametrize(
    "text,error",
    [
        ("func a", "bad flag-op"),
        # The tokenizer knows no backslash escapes: \" ends a double-quoted word.
        (r'format "a\"b" +p', "expecting pairs"),
        ("func a +x", "unknown flag"),
        ("func +p", "expecting pairs"),
        ('format "abc +p', "unclosed quote"),
        ("func a func b +p", "overridden"),
        ("bogus a +p", "unknown keyword"),
        ("file a b c d e f g h i j +p", "too many words"),
        ("line 20-10 +p", "last-line"),
    ],
)
def test_kernel_parse_queries_errors(text, error):
    [(query, op, exc)] = ddq.kernel_parse_queries(text)
    assert query is None and op is None
    assert error in str(exc)


# --- locating the control file --------------------------------------------------------------------------------

MOUNTS_DEBUGFS = "sysfs /sys sysfs rw 0 0\ndebugfs /sys/kernel/debug debugfs rw,nosuid 0 0\n"
MOUNTS_DEBUGFS_ODD = "none /mnt/debug\\040fs debugfs rw 0 0\n"
MOUNTS_NONE = "sysfs /sys sysfs rw 0 0\nproc /proc proc rw 0 0\n"

TC_LOCATE = {
    "proc": (MOUNTS_NONE, {dd.PROC_CONTROL}, None, (dd.PROC_CONTROL, None)),
    "proc-preferred": (MOUNTS_DEBUGFS, {dd.PROC_CONTROL, "/sys/kernel/debug/dynamic_debug/control"}, None, (dd.PROC_CONTROL, None)),
    "debugfs": (MOUNTS_DEBUGFS, {"/sys/kernel/debug/dynamic_debug/control"}, None, ("/sys/kernel/debug/dynamic_debug/control", None)),
    "debugfs-escaped-mountpoint": (MOUNTS_DEBUGFS_ODD, {"/mnt/debug fs/dynamic_debug/control"}, None, ("/mnt/debug fs/dynamic_debug/control", None)),
    "debugfs-mounted-no-control": (MOUNTS_DEBUGFS, set(), None, (None, "no-dynamic-debug")),
    "not-mounted-unknown": (MOUNTS_NONE, set(), None, (None, "debugfs-not-mounted")),
    "not-mounted-kallsyms-has": (MOUNTS_NONE, set(), True, (None, "debugfs-not-mounted")),
    "not-mounted-kallsyms-lacks": (MOUNTS_NONE, set(), False, (None, "no-dynamic-debug")),
}


@pytest.mark.parametrize("mounts,existing,has,expected", [TC_LOCATE[k] for k in sorted(TC_LOCATE)], ids=sorted(TC_LOCATE))
def test_locate_control(mounts, existing, has, expected):
    assert dd.locate_control(mounts, exists=existing.__contains__, has_ddebug=has) == expected


TC_LOCATE_HERE = {
    # The plan and the module both ask this: a kernel without dynamic debug and without a debugfs mount (this
    # CI machine's 6.18) is "no dynamic debug", not "cannot tell".
    "not-mounted-kallsyms-lacks": (False, (None, "no-dynamic-debug")),
    "not-mounted-kallsyms-has": (True, (None, "debugfs-not-mounted")),
    "not-mounted-kallsyms-unreadable": (None, (None, "debugfs-not-mounted")),
}


@pytest.mark.parametrize("has,expected", [TC_LOCATE_HERE[k] for k in sorted(TC_LOCATE_HERE)], ids=sorted(TC_LOCATE_HERE))
def test_locate_control_here_asks_kallsyms(tmp_path, has, expected):
    """A /proc of its own: no control file, no debugfs mount, and a kallsyms with or without the write handler."""
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "mounts").write_text(MOUNTS_NONE)
    if has is not None:
        symbol = "ddebug_proc_write" if has else "start_kernel"
        (tmp_path / "kallsyms").write_text(f"0000000000000000 T {symbol}\n")
    assert dd.locate_control_here(str(tmp_path)) == expected


@pytest.mark.parametrize(
    "lines,expected",
    [
        (["0000000000000000 T ddebug_proc_write\n"], True),
        (["0000000000000000 t ddebug_exec_queries\n"], True),
        (["0000000000000000 T start_kernel\n", "0000000000000000 t foo\t[mod]\n"], False),
        ([], None),
    ],
)
def test_kernel_has_dynamic_debug(lines, expected):
    assert dd.kernel_has_dynamic_debug(lines) is expected
