# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Parse /proc/net/netfilter/nf_log: which logger each family uses and which are registered.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import SYSLOG_LOGGERS

NF_LOG_PROC = "/proc/net/netfilter/nf_log"
NONE = "NONE"

_LOGGER_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,63}$")

# " 2 nf_log_ipv4 (nf_log_ipv4,nfnetlink_log)" -- family, bound logger, registered loggers.
_LINE_RE = re.compile(r"^\s*(?P<family>\d+)\s+(?P<bound>\S+)\s+\((?P<registered>[^)]*)\)\s*$")


class FamilyLoggers(t.NamedTuple):
    bound: str
    registered: tuple[str, ...]


def parse_nf_log(text: str) -> dict[int, FamilyLoggers]:
    """Parse the proc file into ``{family: FamilyLoggers(bound, registered)}``."""
    table: dict[int, FamilyLoggers] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _LINE_RE.match(line)
        if not match:
            raise ConntrackModuleError(f"unexpected line in {NF_LOG_PROC}: {line!r}")
        registered = tuple(name for name in match.group("registered").split(",") if name)
        table[int(match.group("family"))] = FamilyLoggers(match.group("bound"), registered)
    return table


def read_nf_log(path: str = NF_LOG_PROC) -> dict[int, FamilyLoggers]:
    try:
        with open(path, encoding="ascii") as handle:
            return parse_nf_log(handle.read())
    except OSError as exc:
        raise ConntrackModuleError(
            f"cannot read {path} ({exc.strerror}): the kernel has no netfilter logging support loaded"
        ) from exc


def find_registered(name: str, registered: t.Iterable[str]) -> str | None:
    """Return the registered logger matching ``name`` exactly, ignoring case.

    The kernel itself matches a written name case-insensitively on the registered name's
    prefix (``nf_log_ipv6xyz`` binds ``nf_log_ipv6``), so the exact check must happen here.
    """
    for candidate in registered:
        if candidate.lower() == name.lower():
            return candidate
    return None


def wanted_logger(backend: str, family: int) -> str:
    """The logger name to bind for ``family`` (auto: its kernel-log logger), before checking that it is registered."""
    if backend.lower() == "none":
        return NONE
    if backend.lower() == "auto":
        if family not in SYSLOG_LOGGERS:
            raise ConntrackModuleError(f"backend=auto: family {family} has no kernel-log logger; name a backend instead")
        return SYSLOG_LOGGERS[family]
    if not _LOGGER_NAME_RE.match(backend):
        raise ConntrackModuleError(
            f"backend {backend!r} is not a logger name: use auto, none, or a name such as nf_log_ipv4 or nfnetlink_log"
        )
    return backend


__all__ = ("NF_LOG_PROC", "NONE", "FamilyLoggers", "parse_nf_log", "read_nf_log", "find_registered", "wanted_logger")
