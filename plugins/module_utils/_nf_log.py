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
from ansible_collections.netfilter.conntrack.plugins.module_utils._kmod import modprobe
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import SYSLOG_LOGGERS, family_name, resolve_family
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl_keys import KEY_ALL_NETNS, logger_key

NF_LOG_PROC = "/proc/net/netfilter/nf_log"
NONE = "NONE"
# The logger that sends to a netlink socket of the packet's namespace (the capture), not to the kernel log.
NFNETLINK_LOG = "nfnetlink_log"

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


def resolve_registered(host, family: int, wanted: str, loaded: list[str], load_module: bool) -> str:
    """Return ``wanted`` spelled as the kernel registered it, loading its module when allowed."""
    if wanted == NONE:
        return NONE
    table = host.kernel.read_nf_log()
    registered = table.get(family)
    name = find_registered(wanted, registered.registered if registered else ())
    if name is not None:
        return name
    elsewhere = [family_name(other) for other, loggers in sorted(table.items()) if find_registered(wanted, loggers.registered)]
    if elsewhere:
        raise ConntrackModuleError(
            f"logger {wanted} serves family {', '.join(elsewhere)}, not {family_name(family)} "
            f"(registered for {family_name(family)}: {', '.join(registered.registered) if registered else 'none'})"
        )
    if not load_module:
        raise ConntrackModuleError(
            f"logger {wanted} is not registered for family {family_name(family)} "
            f"(registered: {', '.join(registered.registered) if registered and registered.registered else 'none'});"
            " set load_module=true to load its kernel module"
        )
    modprobe(host, wanted.lower(), dry_run=host.check_mode)
    if wanted.lower() not in loaded:
        loaded.append(wanted.lower())
    if host.check_mode:
        return wanted.lower()
    registered = host.kernel.read_nf_log().get(family)
    name = find_registered(wanted, registered.registered if registered else ())
    if name is None:
        raise ConntrackModuleError(
            f"loaded kernel module {wanted.lower()} but logger {wanted} is still not registered for family "
            f"{family_name(family)} (registered: {', '.join(registered.registered) if registered else 'none'})"
        )
    return name


def set_backends(host, families: list[int], backend: str, load_module: bool, result: dict) -> None:
    plan = []
    for family in families:
        key = logger_key(family)
        if not host.kernel.sysctl_exists(key):
            raise ConntrackModuleError(f"{key} does not exist: this kernel has no netfilter logging for family {family}")
        wanted = wanted_logger(backend, family)
        plan.append((family, key, host.kernel.sysctl_read(key),
                     resolve_registered(host, family, wanted, result["loaded_modules"], load_module)))

    result["previous"] = {family_name(family): before for family, _key, before, _after in plan}
    result["current"] = {family_name(family): after for family, _key, _before, after in plan}
    pending = [(key, before, after) for _family, key, before, after in plan if before.lower() != after.lower()]
    if not pending:
        return
    result["changed"] = True
    if host.check_mode:
        return
    applied = []
    try:
        for key, before, after in pending:
            host.kernel.sysctl_write(key, after)
            applied.append((key, before))
            if host.kernel.sysctl_read(key).lower() != after.lower():
                raise ConntrackModuleError(
                    f"wrote {after} to {key} but the kernel reads back {host.kernel.sysctl_read(key)}")
    except ConntrackModuleError as exc:
        for key, before in reversed(applied):
            host.kernel.sysctl_write(key, before)
        raise ConntrackModuleError(f"{exc.msg}; restored {len(applied)} family setting(s) changed before the failure") from exc


def set_all_netns(host, wanted: bool, in_netns: bool, result: dict) -> None:
    if not host.kernel.sysctl_exists(KEY_ALL_NETNS):
        if in_netns:
            raise ConntrackModuleError(
                f"{KEY_ALL_NETNS} exists only in the initial network namespace: set all_netns without netns"
            )
        raise ConntrackModuleError(f"{KEY_ALL_NETNS} does not exist: this is not the initial network namespace")
    before = host.kernel.sysctl_read(KEY_ALL_NETNS) != "0"
    result["all_netns"] = {"previous": before, "current": wanted}
    if before != wanted:
        result["changed"] = True
        if not host.check_mode:
            host.kernel.sysctl_write(KEY_ALL_NETNS, "1" if wanted else "0")


def diff_text(result: dict, state: str) -> str:
    lines = [f"{logger_key(resolve_family(name))} = {logger}" for name, logger in result.get(state, {}).items()]
    if "all_netns" in result:
        lines.append(f"{KEY_ALL_NETNS} = {int(result['all_netns'][state])}")
    return "".join(line + "\n" for line in lines)


def set_loggers(host, family: list | None, backend: str | None, all_netns: bool | None, load_module: bool,
                in_netns: bool) -> dict:
    """Bind ``backend`` for each family and/or set nf_log_all_netns, in the namespace the caller has entered.

    Validates everything before the first write; a failing family write puts back the families written before it.
    Returns changed, loaded_modules, previous/current (per family name), all_netns and, in diff mode, diff.
    """
    families = []
    for value in family or []:
        number = resolve_family(value)
        if number not in families:
            families.append(number)
    if backend is not None:
        if not families:
            raise ConntrackModuleError("family is required with backend (for example family: [ipv4, ipv6])")
        for number in families:
            wanted_logger(backend, number)
    elif families:
        raise ConntrackModuleError("family was given without backend: say which logger to bind (auto, none or a name)")

    result: dict = {"changed": False, "loaded_modules": []}
    if backend is not None:
        set_backends(host, families, backend, load_module, result)
    if all_netns is not None:
        set_all_netns(host, all_netns, in_netns, result)
    if host.diff:
        result["diff"] = {"before": diff_text(result, "previous"), "after": diff_text(result, "current")}
    return result


__all__ = ("NFNETLINK_LOG", "NF_LOG_PROC", "NONE", "FamilyLoggers", "find_registered", "parse_nf_log",
           "read_nf_log", "set_all_netns", "set_backends", "set_loggers", "wanted_logger")
