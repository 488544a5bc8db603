#!/usr/bin/python
# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: conntrack_invalid_log_facts
short_description: Summarise the conntrack invalid-packet lines of the kernel log as facts
version_added: 0.1.0
description:
  - Reads the kernel log lines that connection tracking writes for invalid packets (see
    M(netfilter.conntrack.conntrack_log_invalid)), parses them on the managed host into records (protocol, reason,
    state, interfaces, addresses, ports, TCP flags, family, time) and returns only a compact summary as
    RV(ansible_facts.conntrack_invalid), so that a fleet sends back a few kilobytes per host however many lines
    were logged.
  - Understands the C(nf_ct_proto_<N>:) prefix of current kernels and the C(nf_ct_tcp:)-style prefix of older ones,
    IPv4 and IPv6, TCP, UDP, ICMP and ICMPv6 packet dumps. Lines it cannot understand are counted in
    RV(ansible_facts.conntrack_invalid.unparsed), never an error.
  - The kernel log is global to the host, not per network namespace, so this module has no C(netns) option.
    Records carry the C(IN=)/C(OUT=) interfaces, which tell containers apart.
author:
  - netfilter.conntrack maintainers (@netfilter-conntrack)
extends_documentation_fragment:
  - netfilter.conntrack._attributes
  - netfilter.conntrack._attributes.facts
options:
  log_source:
    description:
      - Where to read the kernel log.
      - Called O(log_source) as in M(netfilter.conntrack.conntrack_debug_report) and
        M(netfilter.conntrack.conntrack_facts); the name C(source) of 0.2.0 still works as an alias.
      - V(auto) uses the journal (C(journalctl -k -b -o json)) when journald holds kernel messages of the current boot,
        else reads C(/dev/kmsg) without blocking, else runs C(dmesg).
      - V(journal), V(kmsg) and V(dmesg) force one reader and fail when it is not available.
      - V(file) reads O(log_path), which may hold C(dmesg) output, C(/dev/kmsg) records, C(journalctl -k) output in
        the C(short), C(short-iso), C(short-iso-precise), C(short-monotonic) or C(json) formats, or an rsyslog kernel
        log file; formats may be mixed. Kernel timestamps of a file are not converted to wall-clock time (the file
        may come from another host), so with O(log_since) only lines that carry a wall-clock time are filtered.
    type: str
    choices: [auto, journal, kmsg, dmesg, file]
    default: auto
    aliases: [source]
  log_path:
    description:
      - The file to read when O(log_source=file). Required then, ignored otherwise.
    type: path
  log_since:
    description:
      - The start of the window, as wall-clock time.
      - The name C(since) of 0.2.0 still works as an alias.
      - V(boot) (the default, unless O(log_since_monotonic) is set) reads everything the source holds for the current
        boot. The kernel ring buffer read by V(kmsg) and V(dmesg) is bounded, so old lines may already be gone.
      - V(now) selects nothing; use it to obtain RV(ansible_facts.conntrack_invalid.watermark_monotonic) as a
        starting point for a later run.
      - An ISO-8601 timestamp (V(2026-11-27T03:47:58Z); no zone means UTC), epoch seconds (V(1764215278) or
        V(@1764215278)). Records from the journal are compared by their wall-clock time. Records with only a kernel
        timestamp (V(kmsg), V(dmesg)) are compared after converting the timestamp with the boot time
        (now minus C(CLOCK_MONOTONIC)), which is off by however much the kernel log clock has drifted from
        C(CLOCK_MONOTONIC) since boot (usually well under a second; more after a suspend).
      - Mutually exclusive with O(log_since_monotonic).
    type: str
    aliases: [since]
  log_since_monotonic:
    description:
      - The start of the window on the kernel log clock, in seconds since boot; only records strictly after it are
        read. This is the recommended way to read "everything since X" because it works with and without journald
        and needs no clock conversion.
      - The kernel log clock is the number in C([ 304.507921 ]) of C(dmesg), the third field of a C(/dev/kmsg) record
        divided by 1,000,000, and the journal's C(_SOURCE_MONOTONIC_TIMESTAMP) divided by 1,000,000.
      - The exact value to record at the start of a window is RV(ansible_facts.conntrack_invalid.watermark_monotonic)
        of a run with O(log_since=now) (the kernel timestamp of the newest kernel log message at that moment). The first
        field of C(/proc/uptime) is a close approximation on hosts that never suspended (it is C(CLOCK_BOOTTIME)).
      - The value only has a meaning within one boot; compare RV(ansible_facts.conntrack_invalid.boot_id) with the
        one recorded together with it.
      - The name C(since_monotonic) of 0.2.0 still works as an alias.
    type: float
    aliases: [since_monotonic]
  max_samples:
    description:
      - How many parsed records to return in RV(ansible_facts.conntrack_invalid.samples) (the first ones in the
        window).
      - The same default as O(netfilter.conntrack.conntrack_debug_report#module:max_samples), which reads the log
        for a debug window. M(netfilter.conntrack.conntrack_facts) keeps none by default because its summary of
        every host is meant to be stored in fact caches.
    type: int
    default: 10
  top_peers:
    description:
      - How many source addresses to return in RV(ansible_facts.conntrack_invalid.by_peer) (the most frequent).
      - M(netfilter.conntrack.conntrack_facts) keeps 5 by default, for the same reason as for O(max_samples).
    type: int
    default: 10
  interfaces:
    description:
      - Attribute each line to the network namespace that owns its C(IN=) (else C(OUT=)) interface. Keys are
        namespace labels of your choice, values the namespace's interfaces as
        M(netfilter.conntrack.conntrack_plan_facts) returns them in C(ansible_facts.conntrack_plan.interfaces), each
        with C(name), C(ifindex) and C(mac).
      - The kernel log does not say which namespace a line comes from. A name owned by one namespace decides; a
        name several own (C(eth0) in every container) is decided by the MAC address in the line's C(MAC=) field
        (destination for C(IN=), source for C(OUT=)); otherwise, and for lines with empty C(IN=) and C(OUT=) (as
        on Linux 5.10, which does not pass the interfaces), the line is counted as unattributed with the reason.
      - The result is in RV(ansible_facts.conntrack_invalid.attribution).
    type: dict
notes:
  - Reading C(/dev/kmsg) or the kernel journal needs root (or C(CAP_SYSLOG) / membership of C(adm) or
    C(systemd-journal)) on hosts with C(kernel.dmesg_restrict=1).
  - Conntrack only logs invalid packets when C(net.netfilter.nf_conntrack_log_invalid) selects their protocol and a
    logger is bound for their family (C(net.netfilter.nf_log.2), C(net.netfilter.nf_log.10)); see
    M(netfilter.conntrack.conntrack_log_invalid) and M(netfilter.conntrack.nf_log_backend).
  - Lines about packets in a network namespace other than the initial one only reach the kernel log when the host
    has C(net.netfilter.nf_log_all_netns=1) (set in the initial namespace); otherwise the kernel drops them silently.
  - The facts are bounded in size by O(max_samples), O(top_peers) and at most 50 distinct reasons, whatever the
    number of log lines.
  - The journal is read from a pipe as C(journalctl) writes it, one entry at a time, so memory use does not grow with
    the size of the journal and time grows linearly with it.
  - The kernel ring buffer read by V(kmsg) and V(dmesg) is bounded (often 128 KiB to 1 MiB, a few thousand lines);
    a burst of invalid packets overwrites older records before they are read. The module detects that from the
    records' sequence numbers (V(kmsg)) or journald's reports (V(journal)) and reports it in
    RV(ansible_facts.conntrack_invalid.lost_records), RV(ansible_facts.conntrack_invalid.ring_buffer_wrapped) and
    RV(ansible_facts.conntrack_invalid.diagnosis).
seealso:
  - module: netfilter.conntrack.conntrack_log_invalid
  - module: netfilter.conntrack.nf_log_backend
"""

EXAMPLES = r"""
- name: Summarise every invalid-packet line of the current boot
  netfilter.conntrack.conntrack_invalid_log_facts:

- name: Show the most frequent reasons
  ansible.builtin.debug:
    var: ansible_facts.conntrack_invalid.by_reason

- name: Record where the kernel log stands before a debugging window
  netfilter.conntrack.conntrack_invalid_log_facts:
    log_since: now
  register: log_mark

- name: Later, read only the lines written since then
  netfilter.conntrack.conntrack_invalid_log_facts:
    log_since_monotonic: "{{ log_mark.ansible_facts.conntrack_invalid.watermark_monotonic | default(0, true) }}"
    max_samples: 5

- name: Parse a saved dmesg capture
  netfilter.conntrack.conntrack_invalid_log_facts:
    log_source: file
    log_path: /tmp/dmesg.txt
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: always
  type: complex
  contains:
    conntrack_invalid:
      description: Summary of the conntrack invalid-packet log lines in the window.
      returned: always
      type: complex
      contains:
        total:
          description: Number of invalid-packet records parsed in the window.
          type: int
          sample: 14
        by_reason:
          description:
            - Count per reason, as the kernel wrote it with per-packet numbers (sequence and acknowledgement bounds,
              any number of 5 or more digits) replaced by C(N). Small numbers such as C(index 1) and C(dir 0) stay.
            - At most 50 keys; the rest is counted under C((other)).
          type: dict
          sample: {"invalid tcp flag combination": 2, "ACK is over upper bound N (ACKed data not seen yet)": 1}
        by_protocol:
          description: Count per protocol name (C(tcp), C(udp), C(icmp), C(icmpv6), ...).
          type: dict
          sample: {"tcp": 11, "icmp": 2, "udp": 1}
        by_family:
          description: Count per address family (C(ipv4), C(ipv6)).
          type: dict
          sample: {"ipv4": 14}
        by_peer:
          description: Count per source address, the O(top_peers) most frequent only.
          type: dict
          sample: {"10.99.0.1": 14}
        peers_distinct:
          description: Number of distinct source addresses in the window.
          type: int
          sample: 1
        samples:
          description: The first O(max_samples) records of the window.
          type: list
          elements: dict
          contains:
            protocol:
              description: Protocol name from the prefix (C(nf_ct_proto_6) is C(tcp)).
              type: str
            reason:
              description: The normalised reason (see RV(ansible_facts.conntrack_invalid.by_reason)).
              type: str
            reason_text:
              description: The reason with its numbers, only when it differs from C(reason).
              type: str
              returned: when numbers were normalised
            state:
              description: The conntrack state named in the reason (C(ESTABLISHED)), else null.
              type: str
            in:
              description: Input interface, null when empty.
              type: str
            out:
              description: Output interface, null when empty.
              type: str
            src:
              description: Source address (IPv6 in compressed form).
              type: str
            dst:
              description: Destination address.
              type: str
            length:
              description: IP packet length.
              type: int
            family:
              description: V(ipv4) or V(ipv6).
              type: str
            sport:
              description: Source port (TCP, UDP, ...), else null.
              type: int
            dport:
              description: Destination port, else null.
              type: int
            flags:
              description: TCP flags in kernel order (C(CWR ECE URG ACK PSH RST SYN FIN)).
              type: list
              elements: str
              returned: for TCP
            icmp_type:
              description: ICMP or ICMPv6 type.
              type: int
              returned: for ICMP and ICMPv6
            icmp_code:
              description: ICMP or ICMPv6 code.
              type: int
              returned: for ICMP and ICMPv6
            monotonic:
              description: Kernel log timestamp (seconds since boot), null when the source has none.
              type: float
            timestamp:
              description:
                - Wall-clock time in ISO-8601 UTC. From the journal as recorded; for V(kmsg)/V(dmesg) converted
                  from C(monotonic) with the boot time (approximate); null when unknown.
              type: str
          sample:
            - {"protocol": "tcp", "reason": "invalid tcp flag combination", "state": null, "in": "vs", "out": null,
               "src": "10.99.0.1", "dst": "10.99.0.2", "length": 40, "family": "ipv4", "sport": 40001, "dport": 80,
               "flags": ["RST", "SYN"], "monotonic": 304.507921, "timestamp": "2026-11-27T03:42:54.507921Z"}
        unparsed:
          description: Conntrack (C(nf_ct_*)) lines that could not be parsed, such as dynamic-debug messages.
          type: dict
          contains:
            count:
              description: How many.
              type: int
            samples:
              description: Up to three of them, raw, cut at 300 characters.
              type: list
              elements: str
          sample: {"count": 0, "samples": []}
        source:
          description: The reader used.
          type: str
          sample: kmsg
          choices: [journal, kmsg, dmesg, file]
        since:
          description: The wall-clock start of the window in ISO-8601 UTC, or V(boot).
          type: str
          sample: boot
        since_monotonic:
          description: O(log_since_monotonic) as given, else null.
          type: float
          sample: 302.1
        first_monotonic:
          description: Kernel timestamp of the first record in the window, null when none.
          type: float
        last_monotonic:
          description: Kernel timestamp of the last record in the window, null when none.
          type: float
        watermark_monotonic:
          description:
            - Kernel timestamp of the newest kernel log message read (of any kind, in or before the window).
            - Pass it as O(log_since_monotonic) to a later run to read only what was logged after this one.
            - Null when the source had no message with a kernel timestamp.
          type: float
          sample: 314.934047
        boot_id:
          description: The kernel's boot ID (C(/proc/sys/kernel/random/boot_id)); a kernel timestamp belongs to one boot.
          type: str
          sample: 0d6c9d5e-1f7a-4c09-9b55-7d3e0f1f2a11
        lines_read:
          description: Number of log lines or journal entries the reader returned.
          type: int
          sample: 1234
        lost_records:
          description:
            - Kernel log records of the window that were lost because the kernel ring buffer wrapped before they could
              be read. Any of them may have been an invalid-packet line, so RV(ansible_facts.conntrack_invalid.total)
              is then lower than what was logged.
            - For V(kmsg), the gaps in the records' sequence numbers. The kernel numbers records from 0 at boot, so
              the oldest record still held tells how many were overwritten. When the window starts after boot and the
              oldest record held is already inside it, the overwritten
              records may be older than the window, so the number is then an upper bound (the diagnosis says "up to").
            - For V(journal), the sum of journald's own C(Missed N kernel messages) reports in the window (journald
              checks the sequence numbers as it reads C(/dev/kmsg)). The journal's C(__SEQNUM) cannot show the loss, since
              it numbers the entries of every source, so gaps between kernel entries are normal.
            - Null when the source cannot tell (V(dmesg), and V(file) because a saved file may be an excerpt).
          type: int
          sample: 0
        ring_buffer_wrapped:
          description: Whether records of the window were lost to the ring buffer wrapping (see
            RV(ansible_facts.conntrack_invalid.lost_records)), including an overrun while reading C(/dev/kmsg);
            null when the source cannot tell.
          type: bool
          sample: false
        diagnosis:
          description:
            - A warning in plain language when records were lost (how many, how it was detected, what to do), also
              issued as a task warning; null when nothing was lost or the source cannot tell.
          type: str
          sample: >-
            The kernel ring buffer wrapped: up to 19450 kernel log records of this window were overwritten before they
            could be read (gaps in the /dev/kmsg sequence numbers; the oldest record still held is number 19795). The
            550 invalid-packet records counted here are fewer than were logged; ...
        kernel_events:
          description:
            - "Kernel messages about a full table in the window, which the kernel prints even with
              C(nf_conntrack_log_invalid=0). C(table_full) counts C(nf_conntrack: table full, dropping packet) and,
              from Linux 6.17, C(nf_conntrack: table full in netns N, dropping packet) (C(by_netns) keys are the inode
              numbers N); C(expect_full) counts C(nf_conntrack: expectation table full); C(ratelimit_suppressed) sums
              C(net_ratelimit: N callbacks suppressed), the messages the kernel rate limit dropped (table-full lines
              are rate-limited, the C(drop) counter is not)."
            - Each has C(count), C(first), C(last) (wall-clock, ISO 8601) and C(first_monotonic), C(last_monotonic).
          type: dict
          sample: {"table_full": {"count": 10, "by_netns": {"4026532290": 10}, "first": "2026-12-02T05:40:01.123456Z",
                   "last": "2026-12-02T05:40:01.180001Z", "first_monotonic": 304.1, "last_monotonic": 304.2},
                   "expect_full": {"count": 0}, "ratelimit_suppressed": {"count": 52}}
        attribution:
          description:
            - With O(interfaces), the lines per namespace label (C(by_namespace.<label>.count) and C(by_interface),
              keyed C(name (ifindex N))) and the lines no selected namespace owns (C(unattributed.count),
              C(unattributed.reasons)); null without O(interfaces).
            - Samples then carry the label in C(netns).
          type: dict
          sample: {"by_namespace": {"netns-pod-a": {"count": 3, "by_interface": {"veth-a (ifindex 2)": 3}}},
                   "unattributed": {"count": 1, "reasons": {"interface docker0 is owned by no selected namespace": 1}}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import exit_with_result
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import ModuleHost
from ansible_collections.netfilter.conntrack.plugins.module_utils._kernel_log import SOURCES, read_invalid_log


def run(module: AnsibleModule) -> dict:
    params = module.params
    facts = read_invalid_log(ModuleHost(module), source=params["log_source"], log_path=params["log_path"],
                             since=params["log_since"], since_monotonic=params["log_since_monotonic"],
                             max_samples=params["max_samples"], top_peers=params["top_peers"],
                             interfaces=params["interfaces"])
    return {"changed": False, "ansible_facts": {"conntrack_invalid": facts}}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "log_source": {"type": "str", "choices": list(SOURCES), "default": "auto", "aliases": ["source"]},
            "log_path": {"type": "path"},
            "log_since": {"type": "str", "aliases": ["since"]},
            "log_since_monotonic": {"type": "float", "aliases": ["since_monotonic"]},
            "max_samples": {"type": "int", "default": 10},
            "top_peers": {"type": "int", "default": 10},
            "interfaces": {"type": "dict"},
        },
        mutually_exclusive=[("log_since", "log_since_monotonic")],
        required_if=[("log_source", "file", ("log_path",))],
        supports_check_mode=True,
    )
    exit_with_result(module, run)


if __name__ == "__main__":
    main()
