# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Set net.netfilter.nf_conntrack_log_invalid: the conntrack_log_invalid module and the host program's enable.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

The caller has already entered the network namespace; ``host`` is a ``_host`` runner.
"""

from __future__ import annotations

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._kmod import modprobe
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import PROTOCOL_NONE, protocol_name
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl_keys import KEY_LOG_INVALID

KEY = KEY_LOG_INVALID


def set_log_invalid(host, target: int, load_module: bool, etc_protocols: dict) -> dict:
    """Set the protocol number ``target``, loading nf_conntrack when the key is missing and ``load_module``.

    Returns changed, key, previous, current, loaded_module (when loaded) and, in diff mode, diff.
    """
    result: dict = {"changed": False, "key": KEY}
    if not host.kernel.sysctl_exists(KEY):
        if not load_module:
            raise ConntrackModuleError(f"{KEY} does not exist: nf_conntrack is not loaded (set load_module=true to load it)")
        previous = PROTOCOL_NONE
        if target != PROTOCOL_NONE:
            modprobe(host, "nf_conntrack", dry_run=host.check_mode)
            result["loaded_module"] = "nf_conntrack"
            result["changed"] = True
    else:
        previous = int(host.kernel.sysctl_read(KEY))

    if previous != target:
        result["changed"] = True
        if not host.check_mode:
            host.kernel.sysctl_write(KEY, str(target))
            confirmed = int(host.kernel.sysctl_read(KEY))
            if confirmed != target:
                raise ConntrackModuleError(f"wrote {target} to {KEY} but the kernel reads back {confirmed}")

    result["previous"] = {"number": previous, "name": protocol_name(previous, etc_protocols)}
    result["current"] = {"number": target, "name": protocol_name(target, etc_protocols)}
    if host.diff:
        result["diff"] = {"before": f"{KEY} = {previous} ({result['previous']['name']})\n",
                          "after": f"{KEY} = {target} ({result['current']['name']})\n"}
    return result


__all__ = ("KEY", "set_log_invalid")
