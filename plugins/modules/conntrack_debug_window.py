#!/usr/bin/python
# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: conntrack_debug_window
short_description: Switch conntrack debugging on for a bounded time, with an automatic revert on the host
version_added: 0.2.0
description:
  - The host side of the C(netfilter.conntrack.debug) role's C(enable) and C(revert), in one task per host.
  - With O(state=enabled), installs the host program C(conntrack-debug-window.pyz) in O(program_dir) when it is
    missing or differs from this collection's copy (it is built from the collection's module_utils, the same code
    the modules run, and runs with the interpreter Ansible uses for the host), records the current values in a snapshot per network namespace
    (C(nf_conntrack_log_invalid), each C(nf_log.<N>) of O(families), C(nf_log_all_netns) with O(all_netns), the
    flags of every dynamic-debug site that O(dynamic_debug_sites) matches, the conntrack statistics), schedules the
    automatic revert at the end of O(duration) (a systemd transient timer, or a detached process where systemd is
    not PID 1), then applies the settings with M(netfilter.conntrack.conntrack_log_invalid),
    M(netfilter.conntrack.nf_log_backend) and M(netfilter.conntrack.dynamic_debug_site), and confirms the window.
  - If a step fails, everything this run applied is reverted from the snapshot and the task fails with the name of
    the step, the reason, and C(Rolled back).
  - A second O(state=enabled) with the same settings keeps the original snapshot and only extends the deadline;
    one with other settings is refused while the window is open.
  - With O(state=reverted), restores the recorded values (compare-and-restore, a value changed by someone else
    during the window is left alone and reported), cancels the automatic revert and removes the snapshot. The
    host-wide values (C(nf_log_all_netns), the dynamic-debug sites) are restored with the last window that holds
    them; a window of another namespace, or of the host itself, is never ended by this one.
  - With O(state=absent), removes what the collection left on the host once no window is open (the state
    directory, the last capture's files, O(facts_path), and the program in O(program_dir) with the directory when
    it is then empty). Kernel
    modules that a window loaded are never unloaded. It refuses while any window is open.
  - With O(state=enabled), the snapshot, the settings (the same code as M(netfilter.conntrack.conntrack_log_invalid),
    M(netfilter.conntrack.nf_log_backend) and M(netfilter.conntrack.dynamic_debug_site)), the confirmation and the
    plan of every namespace run in one process on the host, one run of the host program, which on a fleet is what
    makes this cheaper than a task or a module per step. A step that fails rolls back what the snapshot recorded.
author:
  - netfilter.conntrack maintainers (@netfilter-conntrack)
extends_documentation_fragment:
  - netfilter.conntrack._attributes
  - netfilter.conntrack._attributes.action_plugin
attributes:
  action:
    details: Runs on the controller and runs the host program (enable, revert, status) on the host.
  check_mode:
    support: partial
    details:
      - With O(state=enabled), check mode runs the host program's steps in check mode (a temporary copy when the
        installed one is missing or stale) and reports what they would change and the plan; it takes no snapshot,
        schedules nothing, installs nothing and does not predict O(dynamic_debug_sites).
      - With O(state=reverted), reports what a real revert would restore for exactly the selected windows and
        changes nothing, not even a window of another namespace that is past its deadline.
      - With O(state=absent), reports what would be removed.
  diff_mode:
    support: partial
    details: Returns the diffs of the steps that apply the settings (a list); not for O(state=reverted).
  idempotent:
    support: full
    details: A second enable with the same settings changes no value (it extends the deadline of the open window).
options:
  state:
    description:
      - V(enabled) opens (or extends) the debug window; V(reverted) closes it; V(absent) removes the program, the
        local facts file, the state directory and the last capture's files from the host (no window may be open).
    type: str
    choices: [enabled, reverted, absent]
    default: enabled
  duration:
    description:
      - Whole seconds until the host reverts by itself, from 1 to 604800 (7 days). Required with O(state=enabled).
      - A value out of that range, a fraction, or one that is not a number (V(true) included), is refused before the
        host is touched.
    type: int
  protocol:
    description:
      - The protocol whose invalid packets are logged, as M(netfilter.conntrack.conntrack_log_invalid) takes it, a
        name, a number 1-254, or V(all). The kernel takes one value; to log two protocols, use V(all).
      - A value that means 0 (V(none), V(00), V(ip)) is refused, because it switches logging off. A name that the
        controller's C(/etc/protocols) does not know is resolved with the host's.
      - Replaces C(protocols) of 0.2.0 (a list that silently meant V(all) with two entries).
    type: str
    default: all
  families:
    description:
      - Address families whose logger is bound (V(ipv4), V(ipv6), V(arp), V(netdev), V(bridge)).
    type: list
    elements: str
    default: [ipv4, ipv6]
  backend:
    description:
      - Logger bound to each of O(families); V(auto) is the kernel-log logger of each family.
    type: str
    default: auto
  all_netns:
    description:
      - Also set C(net.netfilter.nf_log_all_netns=1) in the initial namespace during the window.
      - With O(state=reverted), also revert the initial namespace's snapshot that holds that value.
    type: bool
    default: false
  dynamic_debug_sites:
    description:
      - Dynamic-debug sites to switch on, as option dicts of M(netfilter.conntrack.dynamic_debug_site) (C(func),
        C(file), C(module), C(format), C(line), C(class), C(flags), C(state), C(require_match)). Each entry is
        validated with the module's own rules and query builder, so every entry the module accepts is accepted here,
        escapes included (a C(format) copied from the control file with its C(\\012) matches).
      - The snapshot records each site the entry selects (the module's matcher), with its flags before and after;
        revert restores those sites and only those.
      - Skipped with a warning on kernels without dynamic debug.
      - When this enable had to load C(nf_conntrack) (a modular kernel where nothing used conntrack yet), the sites
        are recorded again after the load, before any of them is changed.
      - The sites are host-wide, so they are restored when the last window that asked for them is reverted.
    type: list
    elements: dict
    default: []
  capture:
    description:
      - Where the evidence of invalid packets goes.
      - V(netlink) binds each namespace's C(nf_log.<N>) of O(families) to C(nfnetlink_log) (instead of O(backend);
        recorded and restored like any other value) and runs one collector on the host for every such namespace. It
        counts every message exactly, by reason, protocol, family, interface and peer, reports the loss exactly (or
        C(none)), and keeps the first O(samples_per_reason) packets of each reason in a pcapng file per namespace,
        each with its reason as the packet comment. Nothing reaches the kernel log, and C(nf_log_all_netns) is not
        needed, so O(all_netns) is not applied when every namespace is captured this way.
      - V(kernel_log) binds O(backend) and leaves the evidence in the kernel log, as releases before 0.3.0 did;
        the dynamic-debug sites always write there.
      - V(auto) takes V(netlink) in each namespace where C(nfnetlink_log) is registered or loadable and no other
        listener (ulogd, say) holds the log group conntrack uses (group 0), else V(kernel_log) for that namespace.
        Each namespace's choice and why are returned (C(namespaces.<id>.capture)). A taken group is never taken
        over; V(netlink) asked for explicitly is refused where it cannot be used.
      - The collector is a transient systemd service with C(Restart=on-failure) where systemd is PID 1, a detached
        process elsewhere. A dead one is reported by collect and status, and the next enable starts it again; its
        counts carry on, and the time it was not observing is reported as loss.
      - Its aggregate and pcapng files (0600) stay after revert in the state directory's path with C(-capture)
        appended (C(/run/netfilter-conntrack-capture), tmpfs), where collect reads them and the report names them.
    type: str
    choices: [auto, netlink, kernel_log]
    default: auto
    version_added: 0.3.0
  capture_budget:
    description:
      - Limits that end the window early, by the same revert as its deadline, while a collector runs (O(capture)
        V(netlink) or V(auto)). The report says which budget ended the window and when.
      - Keys, each a positive number, or V(null) to switch it off; a key left out keeps its default.
        C(max_packets) (messages captured in all namespaces together, default 1000000), C(max_rate) (messages per
        second over C(rate_interval) seconds, default 50000 over 2), C(max_cpu_share) (the collector's share of
        one CPU over C(cpu_interval) seconds, default 0.5 over 5), C(max_kmsg_lines_per_second) (every kernel-log
        line, read from C(/dev/kmsg), for the dynamic-debug sites; default off).
      - Checked with the collector's own rules before the host is touched.
    type: dict
    default: {}
    version_added: 0.3.0
  samples_per_reason:
    description:
      - With the netlink capture, how many packets of each reason (per namespace) go to the pcapng file, 0 to 10000.
        The file is bounded, at most 65 reasons times this many packets of at most 256 bytes.
    type: int
    default: 20
    version_added: 0.3.0
  netns:
    description:
      - Network namespaces to act in, by name under C(/run/netns) or as a path. Empty (with O(containers) empty too)
        means the connection's namespace.
    type: list
    elements: str
    default: []
  containers:
    description:
      - Containers or pods to act in, by name or id, each resolved to its network namespace on the host by the
        container runtime that runs it (C(podman), C(docker), C(nerdctl), or C(crictl) for Kubernetes pods, given as
        C(name) or C(namespace/name); a podman pod's namespace is the one of its infra container). Every installed
        runtime is asked, so a name two runtimes know is refused as ambiguous.
      - Each one is a window of its own, beside those of O(netns), and the window, the enable result
        (C(namespaces.<id>.container)) and the report name it by the runtime's whole name, such as
        C(podman pod web).
      - A name that no runtime resolves to a running container with a network namespace of its own (unknown,
        stopped, or on the host's network) fails the enable before anything is changed, with the name and the
        reason. There is no best-effort mode, because a window that silently left out a container would report
        it clean.
      - Revert and collect find the windows by their snapshot, so O(state=reverted) with O(revert_scope=all), or
        the automatic revert, closes them; the namespace is checked to be still the container's (a container
        restarted since is not touched).
    type: list
    elements: str
    default: []
    version_added: 0.3.0
  revert_scope:
    description:
      - With O(state=reverted), V(selected) reverts the snapshots of O(netns), V(all) every snapshot on the host.
    type: str
    choices: [selected, all]
    default: selected
  program_dir:
    description:
      - Directory of the host program. It and every directory above it must be owned by root and not writable by
        group or others (a sticky directory such as C(/tmp) is accepted above it); otherwise nothing is run and the
        task fails naming the directory.
    type: path
    default: /usr/local/libexec/netfilter-conntrack
  facts_path:
    description:
      - With O(state=absent), the local facts file to remove (the one M(netfilter.conntrack.conntrack_debug_report)
        writes).
    type: path
    default: /etc/ansible/facts.d/netfilter_conntrack.fact
  install_tools:
    description:
      - With O(state=enabled), once the window is open, also install conntrack-tools (the C(conntrack) package) with
        ansible-core's M(ansible.builtin.package) action, over the same connection and in the same check mode, so
        that C(conntrack -L) and C(conntrack -S) work on the host during the window. Its result is returned as
        RV(tools); when the install fails, the task fails and the window stays open until its deadline or a
        revert.
      - Refused with any other O(state).
    type: bool
    default: false
    version_added: 0.4.0
  validate_role_variables:
    description:
      - First validate the variables of the P(netfilter.conntrack.debug#role) role's entry point that runs this task
        (V(enable) for O(state=enabled), V(revert) for V(reverted), V(cleanup) for V(absent)) against the role's
        own argument spec, with ansible-core's C(validate_argument_spec) action, with the same rules and messages as the
        role's validation task. The role's tasks set it, so that the collection's playbooks can include the role
        with C(rolespec_validate=false) and validate in this task instead of in one more task per host.
    type: bool
    default: false
notes:
  - Needs root on the host, like the modules it runs.
  - The host program runs with the interpreter Ansible uses for modules on that host (C(ansible_python_interpreter)
    or the discovered one), in this action and in the automatic revert (the systemd unit's command line or the
    detached process names it).
  - The snapshots live in C(/run/netfilter-conntrack) (tmpfs), one 0600 JSON file per namespace, plus one for the
    host-wide values; the environment variable C(CONNTRACK_DEBUG_STATE_DIR) of the task moves them.
  - Deadlines are kept on C(CLOCK_BOOTTIME), so a step of the wall clock (NTP at boot, a resumed VM) neither ends a
    window early nor keeps it on.
  - Where systemd is PID 1 each window's revert is a transient timer that a C(daemon-reload) does not re-arm, and a
    sweep timer reverts any window whose own timer was lost, at most 10 s after its deadline (it first runs 10 s after
    the earliest deadline, then every 10 s while a window is left); elsewhere one watcher process and its
    partner serve every window of the host, each restarting the other. A window past its deadline with neither is
    reverted by the next collect, enable or revert.
seealso:
  - module: netfilter.conntrack.conntrack_debug_report
  - module: netfilter.conntrack.conntrack_log_invalid
  - module: netfilter.conntrack.nf_log_backend
  - module: netfilter.conntrack.dynamic_debug_site
"""

EXAMPLES = r"""
- name: Log invalid TCP packets for 15 minutes, then revert by itself
  netfilter.conntrack.conntrack_debug_window:
    state: enabled
    duration: 900
    protocol: tcp
  register: window

- name: The same inside a container's namespace, with the TCP tracker's debug messages
  netfilter.conntrack.conntrack_debug_window:
    duration: 600
    netns: [/proc/4242/ns/net]
    all_netns: true
    dynamic_debug_sites:
      - file: nf_conntrack_proto_tcp.c
        require_match: false

- name: Put everything back now
  netfilter.conntrack.conntrack_debug_window:
    state: reverted

- name: Remove the program, the local facts file and the state directory (after revert)
  netfilter.conntrack.conntrack_debug_window:
    state: absent
"""

RETURN = r"""
deadline:
  description: When the host reverts by itself (Unix time).
  returned: state=enabled, not in check mode
  type: float
  sample: 1795340000.5
dynamic_debug:
  description: Whether the kernel has dynamic debug (otherwise O(dynamic_debug_sites) were skipped).
  returned: state=enabled, not in check mode
  type: bool
namespaces:
  description:
    - One entry per snapshot, keyed by its id (V(init), C(netns-NAME) or C(path-HASH)).
    - For O(state=enabled), C(created), C(deadline), C(deadline_extended), C(original) (the recorded values),
      C(recorded) (what this run added to the snapshot), C(identity) (device and inode of the namespace the
      snapshot belongs to), C(dyndbg) (each recorded dynamic-debug site with its flags before and after),
      C(scheduler) (its kind, and the interpreter the automatic revert runs with) and C(rearmed) (true when the
      window's timer or watcher was gone and this run armed it again; the run is then changed, with a warning),
      C(capture) (C(path), V(netlink) or V(kernel_log), and C(why) that path; see O(capture)).
    - For O(state=reverted), C(restored), C(left) (changed by someone else, left alone) and C(unchanged);
      C(dropped) with C(msg) when the window's namespace no longer exists or its path now names another namespace
      (nothing is written then); C(kept) (C(values) and C(for)) on the host's snapshot when the windows of other
      namespaces, still open, rely on its C(nf_log_all_netns) or dynamic-debug sites, which then stay as enable
      set them until the last of those windows ends.
  returned: always
  type: dict
  sample:
    init:
      created: true
      original: {net.netfilter.nf_conntrack_log_invalid: "0", net.netfilter.nf_log.2: NONE}
      scheduler: {kind: systemd-timer, unit: netfilter-conntrack-revert-init.timer, in_seconds: 900}
steps:
  description:
    - The modules run by O(state=enabled), in order, with the namespace and whether each changed something.
    - C(loaded) names the kernel modules a step loaded (C(nf_conntrack) on a modular kernel, a logger module).
    - C(matched) counts the dynamic-debug sites an entry of O(dynamic_debug_sites) selected. An entry with
      C(require_match=false) that selects none adds a warning.
    - With a namespace on the netlink path, the first step is C(Start the capture collector), with C(collector)
      (how it runs, its pid, and each namespace's status, V(capturing) or why not); it is not changed when the
      collector already ran for the same namespaces.
  returned: state=enabled
  type: list
  elements: dict
  sample: [{step: Log invalid packets, netns: null, changed: true}]
plan:
  description:
    - Which of the troubleshooting steps are effective in each namespace, and why, keyed by window id
      (the C(ansible_facts.conntrack_plan) fact of M(netfilter.conntrack.conntrack_plan_facts) per namespace).
    - After enable it reads the values enable applied; in check mode it plans with the values enable would set
      (protocol, loggers bound with O(backend=auto), O(all_netns)), so C(--check) previews it.
    - A namespace whose plan cannot be read is left out with a warning; the plan never fails enable.
  returned: state=enabled
  type: dict
  version_added: 0.3.0
  sample:
    netns-pod-a:
      problems: [{code: child_without_all_netns, text: "log_invalid on in a child namespace but net.netfilter.nf_log_all_netns=0 on the host"}]
program:
  description:
    - The host program that ran, the same in every result of this action (a failure's too) - its path, its version
      (the SHA-256 of the program the controller ships), whether this run installed it, and the interpreter it ran
      with.
    - The program's own answer names itself in C(program_name) and C(program_version) (that same SHA-256).
  returned: always
  type: dict
  sample: {path: /usr/local/libexec/netfilter-conntrack/conntrack-debug-window.pyz, installed: false,
           version: 0d6c1b0ab3c54d5e2d4d1f4a2fba0c4bfa0e7f5e6b9a1c3d2e4f5a6b7c8d9e0f, interpreter: /usr/bin/python3}
capture:
  description:
    - In check mode, the capture path each namespace would take (C(path) and C(why), keyed by window id), chosen as a
      real run would, except that check mode does not ask the kernel whether another listener holds the log group.
  returned: state=enabled, in check mode
  type: dict
  version_added: 0.3.0
  sample: {netns-pod-a: {path: netlink, why: nfnetlink_log is usable and group 0 is free}}
window:
  description: The token of the window this enable opened or extended; its confirm checks it.
  returned: state=enabled, not in check mode
  type: str
dropped:
  description: Snapshots of namespaces that were deleted and re-created, dropped before this enable recorded anew.
  returned: state=enabled, when it happened
  type: dict
overdue:
  description: Windows past their deadline whose automatic revert had died, reverted by this run.
  returned: state=enabled, not in check mode
  type: dict
shared:
  description:
    - The host-wide values this enable asked for (C(nf_log_all_netns), the dynamic-debug sites), recorded once for
      every window that holds them, C(original) their values before the first of those windows, C(holders) the
      windows that hold them now.
  returned: state=enabled, when all_netns or dynamic_debug_sites were given, not in check mode
  type: dict
  version_added: 0.3.0
  sample: {created: true, holders: [netns-pod-a], original: {net.netfilter.nf_log_all_netns: "0"}}
removed:
  description: With O(state=absent), the files and directories removed (or, in check mode, that would be).
  returned: state=absent
  type: list
  elements: str
  version_added: 0.3.0
kept:
  description: With O(state=absent), what stays on the host, and why.
  returned: state=absent
  type: list
  elements: str
  version_added: 0.3.0
tools:
  description:
    - With O(install_tools), the result of M(ansible.builtin.package) for the C(conntrack) package (C(changed) when it
      was installed by this run; in check mode, when it would be).
  returned: state=enabled, with install_tools
  type: dict
  version_added: 0.4.0
  sample: {changed: true, name: conntrack}
rollback:
  description: What the rollback restored after a failed step.
  returned: when a step of O(state=enabled) failed
  type: dict
msg:
  description: A summary for O(state=reverted) and check mode, such as V(nothing to revert).
  returned: sometimes
  type: str
"""
