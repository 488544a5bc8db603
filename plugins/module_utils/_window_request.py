# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A debug window's request: the options of enable, parsed once into resolved values.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

The action ``conntrack_debug_window`` parses the task's options with :func:`parse_window_request` to refuse bad
input before it connects, and sends :meth:`WindowRequest.argument` (one JSON object, the options in their
canonical form) to the host program, whose command line parses it with :func:`request_from_argument`. Nothing
after either parse checks these values again: the program's enable uses the protocol number, the logger of each
family, the namespace specs, the container names and the parsed dynamic-debug queries as they are here.
"""

from __future__ import annotations

import argparse
import json
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._containers import validate_container_spec
from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug import OPERATIONS, SITE_DEFAULTS, SiteRequest, parse_site
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import (
    PROTOCOL_NONE,
    load_etc_protocols,
    resolve_family,
    resolve_protocol,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._netns import netns_path
from ansible_collections.netfilter.conntrack.plugins.module_utils._nf_log import wanted_logger
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_capture import KERNEL_LOG, parse_request

# The longest window enable accepts: a debug window of weeks is already a forgotten one.
MAX_DURATION = 7 * 24 * 3600
# The options of dynamic_debug_site that a dynamic_debug_sites entry may give (control_path and mount_debugfs are
# the window's own business).
SITE_FIELDS = ("file", "func", "module", "format", "line", "class", "flags", "state", "require_match")
REQUEST_FIELDS = ("duration", "protocol", "families", "backend", "all_netns", "netns", "containers",
                  "dynamic_debug_sites", "capture")


class WindowSite(t.NamedTuple):
    """One dynamic_debug_sites entry: as given (None dropped; the form sent and quoted) and as dynamic_debug_site
    parses it (its control file is the one the window's snapshot reads, set when applied)."""

    entry: dict
    parsed: SiteRequest

    def shown(self) -> str:
        return json.dumps(self.entry, sort_keys=True)


class WindowRequest(t.NamedTuple):
    """What one enable asks for, resolved.

    ``protocol`` is None only on the controller, for a name that its own /etc/protocols does not know: the host's
    table resolves it. ``loggers`` maps each family's NFPROTO number to the logger ``backend`` means for it.
    ``netns`` and ``containers`` both empty mean the namespace the connection lands in.
    """

    options: dict
    duration: int
    protocol: int | None
    loggers: dict
    all_netns: bool
    netns: tuple
    containers: tuple
    sites: tuple
    capture: dict | None

    @property
    def backend(self) -> str:
        return self.options["backend"]

    @property
    def families(self) -> list:
        return list(self.loggers)

    def argument(self) -> str:
        """The canonical form sent to the host: one JSON object of the options."""
        return json.dumps(self.options, sort_keys=True)


def check_duration(value: object) -> int:
    """Whole seconds, 1 <= duration <= MAX_DURATION; booleans, fractions and non-numbers are refused."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is None:
        raise ConntrackModuleError(f"duration {value!r} is not a whole number of seconds")
    if number < 1 or number > MAX_DURATION:
        raise ConntrackModuleError(
            f"duration {value!r} is out of range: give 1 to {MAX_DURATION} seconds ({MAX_DURATION // 86400} days)")
    return number


def check_protocol(value: object, etc_protocols: dict, defer_unknown: bool = False) -> int | None:
    """The IPPROTO number; 0 (however it is spelled: none, 00, ip) is refused because it logs nothing. With
    ``defer_unknown`` a name that ``etc_protocols`` does not know is left for the host's table (None)."""
    try:
        number = resolve_protocol(value, etc_protocols)
    except ConntrackModuleError:
        if not defer_unknown or not isinstance(value, str) or not value.strip() or value.strip().isdigit():
            raise
        return None
    if number == PROTOCOL_NONE:
        raise ConntrackModuleError(
            f"protocol none switches logging off: use state=reverted instead ({value!r} is protocol 0)")
    return number


def parse_window_site(entry: object) -> WindowSite:
    """One dynamic_debug_sites entry, with dynamic_debug_site's own defaults, query builder and rules."""
    if not isinstance(entry, dict):
        raise ConntrackModuleError(f"dynamic_debug_sites entry {entry!r} is not a dictionary")
    given = {key: value for key, value in entry.items() if value is not None}
    shown = json.dumps(given, sort_keys=True, default=str)
    unknown = sorted(set(given) - set(SITE_FIELDS))
    if unknown:
        raise ConntrackModuleError(f"dynamic_debug_sites entry {shown}: unknown key(s) {', '.join(unknown)}")
    try:
        if given.get("state", SITE_DEFAULTS["state"]) not in OPERATIONS:
            raise ConntrackModuleError(f"state must be one of {', '.join(OPERATIONS)}")
        if not isinstance(given.get("require_match", True), bool):
            raise ConntrackModuleError(f"require_match must be true or false, not {given['require_match']!r}")
        parsed = parse_site(given)
    except ConntrackModuleError as exc:
        raise ConntrackModuleError(f"dynamic_debug_sites entry {shown}: {exc.msg}") from None
    return WindowSite(given, parsed)


def _loggers(families: object, backend: object) -> dict:
    if not isinstance(families, list) or not families:
        raise ConntrackModuleError("families is empty: nothing would be logged")
    if not isinstance(backend, str) or backend.strip().lower() == "none":
        raise ConntrackModuleError("backend none unbinds the logger while logging is switched on: nothing would be logged")
    numbers = [resolve_family(family) for family in families]
    return {number: wanted_logger(backend.strip(), number) for number in dict.fromkeys(numbers)}


def _strings(options: dict, name: str, check: t.Callable) -> tuple:
    values = options.get(name) or []
    if not isinstance(values, list):
        raise ConntrackModuleError(f"{name} must be a list, not {values!r}")
    for value in values:
        check(value)
    if len(set(values)) != len(values):
        raise ConntrackModuleError(f"{name} names one more than once: {', '.join(values)}")
    return tuple(values)


def _capture(value: object) -> dict | None:
    """The capture request; None for the kernel log, where no collector runs and budgets do not apply."""
    if value is None:
        return None
    parsed = parse_request(json.dumps(value, sort_keys=True))
    return None if parsed["mode"] == KERNEL_LOG else parsed


def parse_window_request(options: dict, etc_protocols: dict, on_controller: bool = False,
                         partial: bool = False) -> WindowRequest:
    """Every rule enable's options must meet, each error listed (``; `` between them) in one ConntrackModuleError.

    ``etc_protocols`` is the protocol table of the side that parses (its /etc/protocols). The controller's may
    lack a name the host knows: ``on_controller`` leaves such a name to the host's parse. ``partial`` (the host
    program's flags, run by hand) lets a missing protocol or families mean "not touched" (protocol None, no
    loggers) instead of an error.
    """
    unknown = sorted(set(options) - set(REQUEST_FIELDS))
    if unknown:
        raise ConntrackModuleError(f"unknown request field(s) {', '.join(unknown)}")
    protocol, backend = options.get("protocol", "all"), options.get("backend") or "auto"
    errors: list[str] = []
    values: dict = {}
    checks = (
        ("duration", lambda: check_duration(options.get("duration"))),
        ("protocol", lambda: (None if partial and protocol is None
                              else check_protocol(protocol, etc_protocols, on_controller))),
        ("loggers", lambda: ({} if partial and not options.get("families")
                             else _loggers(options.get("families"), backend))),
        ("netns", lambda: _strings(options, "netns", netns_path)),
        ("containers", lambda: _strings(options, "containers", validate_container_spec)),
        ("sites", lambda: tuple(parse_window_site(entry) for entry in options.get("dynamic_debug_sites") or [])),
        ("capture", lambda: _capture(options.get("capture"))),
    )
    for name, check in checks:
        try:
            values[name] = check()
        except ConntrackModuleError as exc:
            errors.append(exc.msg)
    if errors:
        raise ConntrackModuleError("; ".join(errors))
    canonical = {
        "duration": values["duration"], "protocol": None if protocol is None else str(protocol).strip(),
        "families": list(options.get("families") or []), "backend": str(backend).strip(),
        "all_netns": bool(options.get("all_netns")), "netns": list(values["netns"]),
        "containers": list(values["containers"]), "dynamic_debug_sites": [site.entry for site in values["sites"]],
        "capture": options.get("capture"),
    }
    return WindowRequest(options=canonical, duration=values["duration"], protocol=values["protocol"],
                         loggers=values["loggers"], all_netns=canonical["all_netns"], netns=values["netns"],
                         containers=values["containers"], sites=values["sites"], capture=values["capture"])


def request_from_argument(text: str, etc_protocols: dict) -> WindowRequest:
    """The host's parse of the action's --request argument."""
    try:
        options = json.loads(text)
    except ValueError as exc:
        raise ConntrackModuleError(f"--request is not JSON: {exc}") from None
    if not isinstance(options, dict):
        raise ConntrackModuleError("--request must be a JSON object of enable's options")
    return parse_window_request(options, etc_protocols)


def flag_options(args: argparse.Namespace) -> dict:
    """The request's options as the flags of snapshot and enable give them (run by hand, and by the tests)."""
    try:
        sites = [json.loads(text) for text in args.dyndbg_site or []]
        capture = json.loads(args.capture) if getattr(args, "capture", None) else None
    except ValueError as exc:
        raise ConntrackModuleError(f"--dyndbg-site and --capture take JSON: {exc}") from None
    return {"duration": args.duration, "protocol": args.log_invalid, "families": args.family or [],
            "backend": args.backend, "all_netns": args.all_netns == "on", "netns": args.netns or [],
            "containers": getattr(args, "container", None) or [], "dynamic_debug_sites": sites, "capture": capture}


def request_of(args: argparse.Namespace) -> WindowRequest:
    """The window request of this run, parsed once (and kept on args): --request as the action sends it, or the
    same options given as flags, where a missing protocol or family is left alone."""
    if getattr(args, "window_request", None) is None:
        etc_protocols = load_etc_protocols()
        if getattr(args, "request", None) is not None:
            if any(value not in (None, []) for value in flag_options(args).values() if value is not False):
                raise ConntrackModuleError("give enable's options either as --request or as flags, not both")
            request = request_from_argument(args.request, etc_protocols)
        else:
            request = parse_window_request(flag_options(args), etc_protocols, partial=True)
        args.window_request = request
        # What the run decides from here on: the capture path may take nf_log_all_netns back, and each
        # namespace's logger (see backend_for).
        args.backend = request.backend
        args.all_netns = "on" if request.all_netns else None
    return args.window_request


__all__ = ("MAX_DURATION", "REQUEST_FIELDS", "SITE_FIELDS", "WindowRequest", "WindowSite", "check_duration",
           "check_protocol", "flag_options", "parse_window_request", "parse_window_site", "request_from_argument",
           "request_of")
