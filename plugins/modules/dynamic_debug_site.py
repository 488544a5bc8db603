#!/usr/bin/python
# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: dynamic_debug_site
short_description: Turn kernel dynamic debug (pr_debug) sites on or off, idempotently
version_added: 0.1.0
description:
  - Changes the flags of the kernel's dynamic debug call sites (C(pr_debug) statements), such as the debug messages
    of the connection tracker in C(net/netfilter/nf_conntrack_proto_tcp.c), by writing one query to the dynamic debug
    control file.
  - Sites are selected with the kernel's own rules (see O(file), O(func), O(module), O(format), O(line), O(class)). Line
    numbers change with every kernel build, so prefer O(func) and O(format) over O(line).
  - The module reads the control file first and finds the matching sites itself. It writes only when some matched
    site's flags differ from the wanted ones, then reads the file back and fails unless every matched site has the
    wanted flags. Check mode and diff mode use the same prediction.
  - With O(state=query) nothing is written; the matching sites are returned, so a playbook can discover which sites
    exist on a given kernel.
  - Dynamic debug is global to the kernel, not per network namespace.
  - Returns every matched site's flags before and after, so a later task can put them back (see RV(sites[].restore)).
author:
  - netfilter.conntrack maintainers (@netfilter-conntrack)
extends_documentation_fragment:
  - netfilter.conntrack._attributes
  - netfilter.conntrack._attributes.actionable
attributes:
  check_mode:
    details:
      - When debugfs must be mounted first (O(mount_debugfs=true)), check mode does not mount it and cannot list sites;
        it reports a change.
options:
  file:
    description:
      - Source file of the sites, as the control file shows it (V(net/netfilter/nf_conntrack_proto_tcp.c)) or its base
        name (V(nf_conntrack_proto_tcp.c)).
      - C(*) matches any run of characters and C(?) one character.
      - White space, quotes, backslashes, C(;), C(#) and C(:) are rejected.
    type: str
  func:
    description:
      - Function containing the sites, for example V(nf_conntrack_tcp_packet). C(*) and C(?) are wildcards.
    type: str
  module:
    description:
      - Kernel module of the sites (the name in square brackets in the control file, for example V(nf_conntrack)).
        Code built into the kernel has the name of its object file, for example V(main) for C(init/main.c).
      - C(*) and C(?) are wildcards.
    type: str
  format:
    description:
      - Text that must occur in the site's format string. A leading C(^) anchors it at the start of the format.
      - Escapes are undone as the kernel does for a query (C(\\n), C(\\t), C(\\012), C(\\"), C(\\\\)), so a
        format copied from the control file or from RV(sites[].format) matches; write a literal backslash as C(\\\\).
      - Any other character is allowed, for example V(invalid new deleting) or V(^nf_ct_tcp:); the module escapes it
        for the kernel, so it can never end the query or start another one.
    type: str
  line:
    description:
      - Line number V(N), or a range V(N-M), V(-N) (up to N) or V(N-) (from N). Line numbers differ between kernel builds.
    type: raw
  class:
    description:
      - Class name of the sites (C(class:NAME) in the control file, Linux 6.1 and later).
      - The kernel never changes a site that has a class unless the query names that class, and this module follows
        the same rule.
    type: str
  flags:
    description:
      - Flag characters to set, clear or set exactly. V(p) prints the message; V(m), V(f), V(s), V(l), V(t) add the
        module name, function name, source file, line number and thread id to it; V(d) (recent kernels) adds a stack
        dump. V(_) means no flags (useful with O(state=exact)).
    type: str
    default: p
  state:
    description:
      - V(enabled) adds O(flags) to the matched sites (C(+flags)), V(disabled) removes them (C(-flags)), V(exact) sets
        exactly O(flags) (C(=flags)).
      - V(query) only reads the control file and returns the matching sites.
    type: str
    choices: [enabled, disabled, exact, query]
    default: enabled
  control_path:
    description:
      - Path of the control file. By default C(/proc/dynamic_debug/control) is used when it exists, otherwise
        C(dynamic_debug/control) below a debugfs mount found in C(/proc/self/mounts).
    type: path
  mount_debugfs:
    description:
      - Mount debugfs at C(/sys/kernel/debug) when the control file can only be there (older kernels without
        C(/proc/dynamic_debug/control) and no debugfs mounted). Never done when O(control_path) is set.
    type: bool
    default: false
  require_match:
    description:
      - Fail, listing what was searched, when no site matches. With V(false) a query that matches nothing returns
        RV(sites) empty and C(changed=false).
    type: bool
    default: true
notes:
  - Needs root. A kernel in lockdown mode, or a read-only C(/proc) in a container, refuses writes.
  - Sites exist only while their kernel module is loaded; load C(nf_conntrack) first (M(community.general.modprobe)) to
    reach its sites. Sites that are enabled are forgotten when the module is unloaded.
  - A kernel built without C(CONFIG_DYNAMIC_DEBUG) has no control file; the module then fails with
    C(this kernel has no dynamic debug).
  - The kernel accepts at most four match-specs per query (a O(file) with a O(line) or O(func) may count once).
  - Format strings containing a literal backslash cannot be told apart from escapes in the control file.
seealso:
  - module: netfilter.conntrack.conntrack_log_invalid
  - name: Dynamic debug
    description: The kernel's documentation of the control file and its query language.
    link: https://docs.kernel.org/admin-guide/dynamic-debug-howto.html
"""

EXAMPLES = r"""
# The TCP tracker keeps fewer pr_debug sites with every kernel: 15 on 5.10, 4 on 6.1, 1 on 6.12. Selecting by file
# finds whatever this kernel has; require_match false lets a kernel with none succeed with an empty list.
- name: Print the TCP tracker's debug messages, whatever this kernel still has of them
  netfilter.conntrack.dynamic_debug_site:
    module: nf_conntrack
    file: nf_conntrack_proto_tcp.c
    require_match: false
  register: tcp_debug

- name: List every conntrack debug site of this kernel without changing anything
  netfilter.conntrack.dynamic_debug_site:
    file: "net/netfilter/nf_conntrack_*"
    state: query
  register: conntrack_sites

- name: Also show function name and line number in the messages of the TCP packet handler (5.10 to 6.12 have one)
  netfilter.conntrack.dynamic_debug_site:
    func: nf_conntrack_tcp_packet
    flags: pfl

- name: Put each site back exactly as it was
  netfilter.conntrack.dynamic_debug_site:
    file: "{{ item.restore.file }}"
    line: "{{ item.restore.line }}"
    func: "{{ item.restore.func }}"
    class: "{{ item.restore.class | default(omit) }}"
    flags: "{{ item.restore.flags }}"
    state: exact
  loop: "{{ tcp_debug.sites }}"

- name: Turn the messages off again
  netfilter.conntrack.dynamic_debug_site:
    func: nf_conntrack_tcp_packet
    state: disabled
"""

RETURN = r"""
sites:
  description:
    - The sites the query matches, in control-file order.
    - To put one site back, give the module the options in RV(sites[].restore) (O(state=exact) with the site's
      O(file), O(line), O(func), O(class) and O(flags) set to RV(sites[].flags_before)), one by one as the
      EXAMPLES do, since ansible-core 2.19 warns when a task's whole argument dict comes from a template.
  returned: success
  type: list
  elements: dict
  contains:
    filename:
      description: Source file.
      type: str
      sample: net/netfilter/nf_conntrack_proto_tcp.c
    lineno:
      description: Line number in this kernel build.
      type: int
      sample: 1205
    module:
      description: Kernel module (or built-in object) name.
      type: str
      sample: nf_conntrack
    function:
      description: Function name.
      type: str
      sample: nf_conntrack_tcp_packet
    format:
      description: The format string, escaped like the control file shows it (C(\\n) for a newline).
      type: str
      sample: "syn=%i ack=%i fin=%i rst=%i old=%i new=%i\\n"
    class:
      description: Class name, or null when the site has none.
      type: str
      sample: null
    flags_before:
      description: Flags before the module ran (V(_) means none).
      type: str
      sample: _
    flags_after:
      description: Flags after the module ran, read back from the kernel (predicted in check mode).
      type: str
      sample: p
    restore:
      description:
        - Module arguments that set this site back to RV(sites[].flags_before). If several sites share file, line
          and function, they are restored together.
      type: dict
      sample: {file: net/netfilter/nf_conntrack_proto_tcp.c, line: 1205, func: nf_conntrack_tcp_packet,
               flags: _, state: exact}
query:
  description:
    - The exact text written to the control file, or that would be written (check mode, or nothing to change).
    - With O(state=query), the match-specs only.
  returned: success
  type: str
  sample: file net/netfilter/nf_conntrack_proto_tcp.c format "invalid new deleting" +p
control_path:
  description: The control file used.
  returned: success
  type: str
  sample: /proc/dynamic_debug/control
written:
  description: Whether the query was written (false when nothing had to change, in check mode, and for O(state=query)).
  returned: success
  type: bool
  sample: true
mounted_debugfs:
  description: Where debugfs was mounted (or would be, in check mode) because of O(mount_debugfs).
  returned: when debugfs was mounted
  type: str
  sample: /sys/kernel/debug
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug import OPERATIONS, SITE_DEFAULTS, set_site
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import exit_with_result
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import Kernel, ModuleHost


def run(module: AnsibleModule, kernel: Kernel | None = None) -> dict:
    """The module's work; kernel is the real one unless a test gives a tree of its own."""
    return set_site(ModuleHost(module, kernel), module.params)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "file": {"type": "str"},
            "func": {"type": "str"},
            "module": {"type": "str"},
            "format": {"type": "str"},
            "line": {"type": "raw"},
            "class": {"type": "str"},
            "flags": {"type": "str", "default": SITE_DEFAULTS["flags"]},
            "state": {"type": "str", "choices": list(OPERATIONS) + ["query"], "default": SITE_DEFAULTS["state"]},
            "control_path": {"type": "path"},
            "mount_debugfs": {"type": "bool", "default": SITE_DEFAULTS["mount_debugfs"]},
            "require_match": {"type": "bool", "default": SITE_DEFAULTS["require_match"]},
        },
        required_one_of=[["file", "func", "module", "format", "line", "class"]],
        supports_check_mode=True,
    )
    exit_with_result(module, run)


if __name__ == "__main__":
    main()
