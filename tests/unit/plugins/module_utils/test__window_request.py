# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The window request: enable's options parsed once on each side, with the rules of the modules they stand for.

Each table gives the option as a task would, and the resolved value or the message it is refused with. The last
tests check that the host's parse of what the controller sends gives the same resolved request.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils import _dynamic_debug as dd
from ansible_collections.netfilter.conntrack.plugins.module_utils import _window_request as wq
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import parse_etc_protocols

# The lines of Debian's /etc/protocols that matter here: ip is protocol 0, under a name that is not built in.
ETC_PROTOCOLS = parse_etc_protocols("ip\t0\tIP\t\t# internet protocol\nicmp\t1\tICMP\nipencap\t4\tIP-ENCAP\n")
ENABLE = {"duration": 900, "protocol": "all", "families": ["ipv4", "ipv6"], "backend": "auto", "all_netns": False,
          "netns": [], "containers": [], "dynamic_debug_sites": [], "capture": None}
ARTICLE = {"file": "nf_conntrack_proto_tcp.c", "format": r"Invalid dir=%i index=%u ostate=%u\012"}


def parse(on_controller=False, **options):
    return wq.parse_window_request(dict(ENABLE, **options), ETC_PROTOCOLS, on_controller=on_controller)


def refused(message, on_controller=False, **options):
    with pytest.raises(ConntrackModuleError) as exc:
        parse(on_controller, **options)
    assert message in exc.value.msg
    return exc.value.msg


# --- duration: whole seconds, the role's int -----------------------------------------------------------------

DURATIONS = [
    ("one second", 1, 1),
    ("the article's 15 minutes", 900, 900),
    ("seven days", 604800, 604800),
    ("a numeric string (a templated variable)", "900", 900),
    ("with spaces", " 900 ", 900),
    ("a whole float", 900.0, 900),
]
BAD_DURATIONS = [
    ("zero", 0, "out of range"),
    ("negative", -1, "out of range"),
    ("seven days and a second", 604801, "out of range"),
    ("2**63", 2**63, "out of range"),
    ("a fraction", 900.5, "is not a whole number of seconds"),
    ("exponent notation", "1e3", "is not a whole number of seconds"),
    ("infinity", float("inf"), "is not a whole number of seconds"),
    ("NaN", float("nan"), "is not a whole number of seconds"),
    ("true", True, "is not a whole number of seconds"),
    ("false", False, "is not a whole number of seconds"),
    ("text", "soon", "is not a whole number of seconds"),
    ("empty", "", "is not a whole number of seconds"),
    ("missing", None, "is not a whole number of seconds"),
    ("a list", [900], "is not a whole number of seconds"),
]


@pytest.mark.parametrize("value, expected", [c[1:] for c in DURATIONS], ids=[c[0] for c in DURATIONS])
def test_duration(value, expected):
    request = parse(duration=value)
    assert request.duration == expected and isinstance(request.duration, int) and not isinstance(request.duration, bool)


@pytest.mark.parametrize("value, message", [c[1:] for c in BAD_DURATIONS], ids=[c[0] for c in BAD_DURATIONS])
def test_duration_refused(value, message):
    refused(message, duration=value)


# --- protocol: a number, never 0 --------------------------------------------------------------------------------

PROTOCOLS = [
    ("tcp", "tcp", 6),
    ("a name in capitals", "UDP", 17),
    ("a number", "6", 6),
    ("a number as a YAML int", 132, 132),
    ("all", "all", 255),
    ("a name from /etc/protocols", "ipencap", 4),
]
ZERO = ["none", "NONE", "0", "00", " 0 ", 0, "ip", "IP"]


@pytest.mark.parametrize("value, number", [c[1:] for c in PROTOCOLS], ids=[c[0] for c in PROTOCOLS])
def test_protocol_resolves_to_its_number(value, number):
    assert parse(protocol=value).protocol == number


@pytest.mark.parametrize("value", ZERO, ids=[repr(v) for v in ZERO])
@pytest.mark.parametrize("on_controller", [True, False], ids=["controller", "host"])
def test_protocol_zero_is_refused_by_value_on_both_sides(value, on_controller):
    """Before, "00" and "ip" passed the controller's text check and became 0 on the host: a window that logs nothing."""
    refused(f"protocol none switches logging off: use state=reverted instead ({value!r} is protocol 0)", on_controller,
            protocol=value)


def test_a_name_only_the_host_knows_is_resolved_there():
    request = parse(on_controller=True, protocol="mobility-header")
    assert request.protocol is None and request.options["protocol"] == "mobility-header"
    refused("unknown protocol 'mobility-header'", protocol="mobility-header")


@pytest.mark.parametrize("value", ["256", "", True])
def test_protocol_out_of_range_or_not_one_is_refused_even_on_the_controller(value):
    with pytest.raises(ConntrackModuleError):
        parse(on_controller=True, protocol=value)


# --- families and the logger of each -------------------------------------------------------------------------

LOGGERS = [
    ("auto: each family's kernel-log logger", ["ipv4", "ipv6"], "auto", {2: "nf_log_ipv4", 10: "nf_log_ipv6"}),
    ("a named logger for every family", ["ipv4", "bridge"], "nfnetlink_log", {2: "nfnetlink_log", 7: "nfnetlink_log"}),
    ("numbers and names, once each", ["ipv4", "2", 10], "auto", {2: "nf_log_ipv4", 10: "nf_log_ipv6"}),
]
BAD_LOGGERS = [
    ("no family", [], "auto", "families is empty: nothing would be logged"),
    ("unknown family", ["ipv5"], "auto", "unknown family 'ipv5'"),
    ("backend none", ["ipv4"], "NONE", "backend none unbinds the logger"),
    ("a logger name with a space", ["ipv4"], "nf log", "is not a logger name"),
]


@pytest.mark.parametrize("families, backend, loggers", [c[1:] for c in LOGGERS], ids=[c[0] for c in LOGGERS])
def test_loggers(families, backend, loggers):
    request = parse(families=families, backend=backend)
    assert request.loggers == loggers and request.families == list(loggers)


@pytest.mark.parametrize("families, backend, message", [c[1:] for c in BAD_LOGGERS], ids=[c[0] for c in BAD_LOGGERS])
def test_loggers_refused(families, backend, message):
    refused(message, families=families, backend=backend)


# --- namespaces and containers -----------------------------------------------------------------------------------

def test_namespace_specs_are_checked_by_netns():
    assert parse(netns=["blue", "/proc/4242/ns/net", "cni-1f.2@x:y+z"]).netns == (
        "blue", "/proc/4242/ns/net", "cni-1f.2@x:y+z")
    refused("netns '../etc' is not a valid namespace name", netns=["../etc"])
    refused("netns 'a b' is not a valid namespace name", netns=["a b"])
    refused("netns names one more than once: blue, blue", netns=["blue", "blue"])


def test_container_names_are_checked_before_they_reach_a_runtime():
    assert parse(containers=["web", "kube-system/coredns", "4f2a9c"]).containers == (
        "web", "kube-system/coredns", "4f2a9c")
    refused("'--privileged' is not a container or pod name or id", containers=["--privileged"])
    refused("'a b' is not a container or pod name or id", containers=["a b"])


# --- dynamic-debug sites: dynamic_debug_site's own parse ------------------------------------------------------------

SITES = [
    ("func", {"func": "tcp_new"}, "func tcp_new +p"),
    ("the article's format, octal escape", ARTICLE,
     "file nf_conntrack_proto_tcp.c format \"Invalid dir=%i index=%u ostate=%u\\012\" +p"),
    ("flags and state", {"func": "tcp_new", "flags": "pmflt", "state": "exact"}, "func tcp_new =pmflt"),
    ("state disabled", {"func": "tcp_new", "state": "disabled"}, "func tcp_new -p"),
    ("a null option is not given", {"func": "tcp_new", "file": None, "require_match": False}, "func tcp_new +p"),
    ("line range as text", {"file": "a.c", "line": "100-200"}, "file a.c line 100-200 +p"),
]
BAD_SITES = [
    ("nothing to select", {"flags": "p"}, "give at least one of file, func, module, format, line or class"),
    ("bad flag", {"func": "tcp_new", "flags": "px"}, "unknown dynamic debug flag"),
    ("query injection in func", {"func": "tcp_new +p; file *"}, "would end the value"),
    ("line float", {"line": 1.5}, "line must be a number or a range"),
    ("six match-specs", {"file": "a.c", "func": "f", "module": "m", "format": "x", "line": 3, "class": "C"},
     "at most 4 match-specs"),
    ("unknown key", {"func": "tcp_new", "lines": 3}, "unknown key(s) lines"),
    ("the window's own control file", {"func": "tcp_new", "control_path": "/x"}, "unknown key(s) control_path"),
    ("state query changes nothing", {"func": "tcp_new", "state": "query"}, "state must be one of enabled, disabled"),
    ("require_match as text", {"func": "tcp_new", "require_match": "no"}, "require_match must be true or false"),
    ("not a dictionary", "func=tcp_new", "is not a dictionary"),
]


@pytest.mark.parametrize("entry, text", [c[1:] for c in SITES], ids=[c[0] for c in SITES])
def test_site_is_parsed_once_as_the_module_parses_it(entry, text):
    (site,) = parse(dynamic_debug_sites=[entry]).sites
    given = {key: value for key, value in entry.items() if value is not None}
    assert site.entry == given and site.parsed == dd.parse_site(given)
    assert site.parsed.text == text and site.parsed.control_path is None
    assert site.parsed.require_match is entry.get("require_match", True)


@pytest.mark.parametrize("entry, message", [c[1:] for c in BAD_SITES], ids=[c[0] for c in BAD_SITES])
def test_site_refused_names_the_entry(entry, message):
    msg = refused(message, dynamic_debug_sites=[entry])
    assert msg.startswith("dynamic_debug_sites entry ")


def test_both_spellings_of_the_article_format_are_one_query():
    octal, c_style = parse(dynamic_debug_sites=[ARTICLE, dict(ARTICLE, format=r"Invalid dir=%i index=%u ostate=%u\n")]).sites
    assert octal.parsed.query == c_style.parsed.query
    assert octal.parsed.query.format == "Invalid dir=%i index=%u ostate=%u\n"


# --- capture ---------------------------------------------------------------------------------------------------------

def test_capture():
    assert parse(capture={"mode": "kernel_log", "budgets": {}, "samples_per_reason": 20}).capture is None
    assert parse(capture={"mode": "auto", "budgets": {"max_packets": 5}, "samples_per_reason": 3}).capture == {
        "mode": "auto", "budgets": {"max_packets": 5}, "samples_per_reason": 3}
    refused("budget max_rate must be positive or null, not -1", capture={"mode": "auto", "budgets": {"max_rate": -1}})


# --- the whole request ------------------------------------------------------------------------------------------------

def test_every_error_is_listed_at_once():
    msg = refused("duration True", duration=True, protocol="00", families=[], netns=["a/b"],
                  dynamic_debug_sites=[{"func": "x", "flags": "q"}])
    assert msg.count("; ") == 4


def test_an_unknown_field_is_refused():
    with pytest.raises(ConntrackModuleError, match="unknown request field\\(s\\) protocols"):
        wq.parse_window_request(dict(ENABLE, protocols=["tcp"]), ETC_PROTOCOLS)


def test_the_host_parses_what_the_controller_sends_to_the_same_request():
    sent = parse(on_controller=True, duration="600", protocol="TCP", netns=["a"], containers=["web"], all_netns=True,
                 dynamic_debug_sites=[dict(ARTICLE, require_match=False, func=None)],
                 capture={"mode": "auto", "budgets": {"max_packets": 5000, "max_rate": None}, "samples_per_reason": 3})
    text = sent.argument()
    assert json.loads(text) == {
        "duration": 600, "protocol": "TCP", "families": ["ipv4", "ipv6"], "backend": "auto", "all_netns": True,
        "netns": ["a"], "containers": ["web"], "dynamic_debug_sites": [dict(ARTICLE, require_match=False)],
        "capture": {"mode": "auto", "budgets": {"max_packets": 5000, "max_rate": None}, "samples_per_reason": 3}}
    received = wq.request_from_argument(text, ETC_PROTOCOLS)
    assert received == sent
    assert received.argument() == text


@pytest.mark.parametrize("text, message", [("{duration: 1}", "--request is not JSON"),
                                           ("[900]", "--request must be a JSON object")])
def test_a_bad_argument_is_refused(text, message):
    with pytest.raises(ConntrackModuleError, match=message):
        wq.request_from_argument(text, ETC_PROTOCOLS)


def test_partial_flags_leave_the_protocol_and_the_loggers_alone():
    request = wq.parse_window_request({"duration": "900", "protocol": None, "families": [], "backend": None},
                                      ETC_PROTOCOLS, partial=True)
    assert (request.protocol, request.loggers, request.netns, request.sites) == (None, {}, (), ())
    with pytest.raises(ConntrackModuleError, match="families is empty"):
        wq.parse_window_request({"duration": "900", "protocol": "tcp", "families": []}, ETC_PROTOCOLS)
