# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Load kernel modules with modprobe, with a real dry run for check mode.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!
"""

from __future__ import annotations

import re

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError

_MODULE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def modprobe(host, name: str, dry_run: bool) -> None:
    """Load kernel module ``name`` (or only resolve it when ``dry_run``); ``host`` is a ``_host`` runner.

    Names such as ``nf_log_ipv4`` are real modules before Linux 5.13 and aliases of
    ``nf_log_syslog`` since; modprobe resolves both, so callers pass the logger name.
    """
    if not _MODULE_NAME_RE.match(name):
        raise ConntrackModuleError(f"{name!r} is not a kernel module name")
    binary = host.which("modprobe", ["/usr/sbin", "/sbin"])
    if binary is None:
        raise ConntrackModuleError(f"kernel module {name} must be loaded but modprobe is not installed (package kmod)")
    argv = [binary] + (["--dry-run"] if dry_run else []) + ["--", name]
    rc, out, err = host.run(argv)
    if rc != 0:
        raise ConntrackModuleError(
            f"cannot load kernel module {name}: {err.strip() or out.strip() or 'modprobe exited with ' + str(rc)}",
            rc=rc,
            stdout=out,
            stderr=err,
            cmd=argv,
        )


__all__ = ("modprobe",)
