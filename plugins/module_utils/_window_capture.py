# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The debug window's capture: which path each namespace's evidence takes, and the one collector per state directory.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Two paths for the invalid-packet messages of a namespace:

* ``netlink``: the namespace's ``nf_log.N`` are bound to ``nfnetlink_log`` (recorded and restored like any key),
  and the collector (``_capture.run_collector``) counts every message exactly and keeps the first packets of each
  reason in a pcapng. Nothing reaches the kernel log, and ``nf_log_all_netns`` is not needed (only the kernel-log
  logger checks it), so enable does not set it for these namespaces.
* ``kernel_log``: the kernel-log loggers, read back by collect from the kernel log (lossy when it wraps).

``auto`` takes netlink where ``nfnetlink_log`` is registered or loadable and nobody else holds the log group
conntrack uses (group 0) in the namespace, else the kernel log, and says why. A taken group is never taken over
and its namespace's binding is not changed: that namespace falls back to the kernel log (``netlink`` asked
explicitly is refused there instead).

One collector per state directory captures every capturing window's namespace, so its memory does not grow with
the number of namespaces. It is a transient systemd service with ``Restart=on-failure`` where systemd is PID 1, a
detached process elsewhere; its aggregate (heartbeat, pid and start time) tells status, collect and enable whether
it lives, and the next enable starts a dead one again, which carries on the counts (the same session token).
When a budget is exceeded, the collector reverts the windows it captures (the revert the watcher runs) and its
aggregate says which budget ended them and when. The aggregate and the pcapng files stay in the capture directory
(the state directory's path with ``-capture`` appended) after the windows end, for collect and for fetching.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
import uuid

from ansible_collections.netfilter.conntrack.plugins.module_utils._capture import FLUSH_SIGNAL, TICK, run_collector
from ansible_collections.netfilter.conntrack.plugins.module_utils._capture_aggregate import (
    COUNTED,
    TABLES,
    collector_liveness,
    process_start_ticks,
    read_aggregate,
    read_json_object,
    write_json_atomic,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._capture_config import CaptureConfig, config_from_dict
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import run_argv
from ansible_collections.netfilter.conntrack.plugins.module_utils._nf_log import NFNETLINK_LOG
from ansible_collections.netfilter.conntrack.plugins.module_utils._nflog import CONNTRACK_GROUP, GroupTaken, NflogError, NflogSocket

NETLINK = "netlink"
KERNEL_LOG = "kernel_log"
AUTO = "auto"
CAPTURE_UNIT_PREFIX = "netfilter-conntrack-capture"
# The settings enable takes (one JSON argument); everything else of CaptureConfig is the program's to choose.
REQUEST_KEYS = ("mode", "budgets", "samples_per_reason")
START_TIMEOUT_SECONDS = 15.0
# A collector still starting (its process or unit alive) is waited for this long: a slow or loaded host is no reason
# to roll the window back.
START_LIMIT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 5.0


def parse_request(text: str | None) -> dict | None:
    """The --capture argument ({mode, budgets, samples_per_reason}) checked with CaptureConfig's own rules."""
    if text in (None, ""):
        return None
    try:
        request = json.loads(text)
    except ValueError as exc:
        raise ConntrackModuleError(f"--capture is not JSON: {exc}") from None
    if not isinstance(request, dict) or set(request) - set(REQUEST_KEYS):
        raise ConntrackModuleError(f"--capture must be an object with some of: {', '.join(REQUEST_KEYS)}")
    mode = request.get("mode", AUTO)
    if mode not in (AUTO, NETLINK, KERNEL_LOG):
        raise ConntrackModuleError(f"capture must be {AUTO}, {NETLINK} or {KERNEL_LOG}, not {mode!r}")
    settings = {key: request[key] for key in ("budgets", "samples_per_reason") if request.get(key) is not None}
    # The same validation the collector runs, on a configuration that differs only in where it writes.
    config_from_dict(dict(settings, namespaces=[["check", None]], aggregate_path="/check", pcap_dir="/check"))
    return dict(settings, mode=mode)


def netlink_unavailable(host) -> str | None:
    """Why nfnetlink_log cannot be used on this host (not registered and not loadable), or None; host is a
    ``_host`` runner."""
    try:
        if any(NFNETLINK_LOG in family.registered for family in host.kernel.read_nf_log().values()):
            return None
    except ConntrackModuleError:
        pass
    if host.kernel.module_loaded(NFNETLINK_LOG):
        return None
    modprobe = host.which("modprobe", ["/usr/sbin", "/sbin"])
    if modprobe is not None and host.run([modprobe, "--dry-run", "--quiet", NFNETLINK_LOG])[0] == 0:
        return None
    return "nfnetlink_log is neither registered nor loadable on this kernel"


def group_holder(group: int = CONNTRACK_GROUP) -> str | None:
    """Who holds the log group in the namespace the caller has entered (another listener, ulogd say), or None.

    Binding and at once unbinding is the only question the kernel answers; a refused bind changes nothing.
    """
    try:
        sock = NflogSocket(group, 65536)
    except OSError as exc:
        return f"no nfnetlink_log socket: {exc}"
    try:
        sock.bind()
    except GroupTaken as exc:
        return f"another listener holds nfnetlink_log group {group} ({exc})"
    except (NflogError, OSError) as exc:
        return f"nfnetlink_log group {group} cannot be bound: {exc}"
    finally:
        sock.close()
    return None


def read_config(path: str) -> dict | None:
    """What the collector of a state directory captures (written by enable, under the lock), or None."""
    data = read_json_object(path)
    return data if data is not None and isinstance(data.get("window_id"), str) else None


def capture_dir(state_dir: str) -> str:
    """Beside the state directory (which goes once no window is left): the aggregate and pcapng files stay."""
    return os.path.abspath(state_dir).rstrip("/") + "-capture"


# How long a collect waits for a running collector's next aggregate: its once-a-second write and a loaded host's delay.
FRESH_AGGREGATE_WAIT_SECONDS = 3.0


class CaptureCommands:
    """The capture path of each window and the collector's supervision (mixed into Program)."""

    in_collector = False

    # ------------------------------------------------------------------ paths

    @property
    def capture_directory(self) -> str:
        return capture_dir(self.store.directory)

    def capture_file(self, name: str) -> str:
        return os.path.join(self.capture_directory, name)

    def choose_path(self, request: dict | None, existing: dict | None, probe_group: bool = True) -> dict:
        """The capture path of one namespace (entered by the caller): an open window keeps its own."""
        if existing is not None:
            return existing.get("capture") or {"path": KERNEL_LOG, "why": "opened without a capture"}
        if request is None or request["mode"] == KERNEL_LOG:
            return {"path": KERNEL_LOG, "why": "asked for" if request else "no capture asked for"}
        why = netlink_unavailable(self.host) or (group_holder() if probe_group else None)
        if why is None:
            return {"path": NETLINK, "why": "nfnetlink_log is usable and group 0 is free"}
        if request["mode"] == NETLINK:
            raise ConntrackModuleError(f"capture netlink is not possible here: {why}; use capture auto or kernel_log")
        return {"path": KERNEL_LOG, "why": why + ": the kernel log is used instead"}

    def backend_for(self, args: argparse.Namespace, ident: str) -> str | None:
        capture = (getattr(args, "capture_paths", None) or {}).get(ident)
        return NFNETLINK_LOG if capture and capture["path"] == NETLINK else args.backend

    def capturing_windows(self) -> dict:
        """{window id: its namespace path or None} of the open windows on the netlink path."""
        found = {}
        for ident in self.store.windows():
            try:
                data = self.store.load(ident, self.command)
            except ConntrackModuleError:
                continue
            if data and (data.get("capture") or {}).get("path") == NETLINK:
                found[ident] = None if data["netns"]["spec"] in (None, "") else data["netns"]["path"]
        return found

    # ------------------------------------------------------------------ the collector

    def collector_unit(self) -> str:
        return CAPTURE_UNIT_PREFIX + self.scheduler.sweep_unit[len("netfilter-conntrack-sweep"):]

    def collector_state(self) -> tuple[dict | None, dict | None, str]:
        """(config, aggregate, liveness) of this state directory's collector; liveness is running, dead or finished."""
        config = read_config(self.capture_file("config.json"))
        aggregate = read_aggregate(self.capture_file("aggregate.json"))
        if config is None or aggregate is None or aggregate.get("window_id") != config.get("window_id"):
            return config, aggregate, "dead"
        return config, aggregate, collector_liveness(aggregate)

    def ensure_collector(self, request: dict | None = None) -> dict | None:
        """One collector for the capturing windows (called with the lock held): started when none lives, started
        again when the namespaces changed, stopped when no window captures. Returns what it does, or None."""
        wanted = self.capturing_windows()
        config, aggregate, liveness = self.collector_state()
        if not wanted:
            if config is not None:
                self.stop_collector(config, aggregate, liveness)
            return None
        if self.in_collector:
            # A budget's revert that left a window open (it failed): the next enable or revert sees to it.
            return None
        namespaces = sorted([label, path] for label, path in wanted.items())
        if liveness == "running" and config.get("namespaces") == namespaces:
            return {"state": "running", "pid": aggregate["pid"], "rearmed": False}
        rearmed = config is not None and liveness != "running"
        if liveness == "running":
            self.stop_collector(config, aggregate, liveness, keep_session=True)
            aggregate = read_aggregate(self.capture_file("aggregate.json"))
        if config is None:
            config = {"window_id": uuid.uuid4().hex, "settings": {}}
            self.clear_capture_directory()
        elif aggregate is not None and aggregate.get("window_id") == config["window_id"]:
            # A collector stopped to change its namespaces (or killed) hands its counts on: the new one resumes them.
            write_json_atomic(self.capture_file("aggregate.json"), dict(aggregate, state="running"))
        if request is not None:
            config["settings"] = {key: request[key] for key in ("budgets", "samples_per_reason") if key in request}
        config["namespaces"] = namespaces
        write_json_atomic(self.capture_file("config.json"), config)
        self.collector_config(config).check()
        return dict(self.start_collector(), rearmed=rearmed)

    def collector_config(self, config: dict) -> CaptureConfig:
        budgets = (config.get("settings") or {}).get("budgets") or {}
        return config_from_dict(dict(
            config.get("settings") or {}, namespaces=config["namespaces"], window_id=config["window_id"],
            aggregate_path=self.capture_file("aggregate.json"), pcap_dir=self.capture_directory,
            watch_kmsg=budgets.get("max_kmsg_lines_per_second") is not None))

    def clear_capture_directory(self) -> None:
        """A new capture session starts from nothing: the files of the previous one go."""
        os.makedirs(self.capture_directory, mode=0o700, exist_ok=True)
        for name in os.listdir(self.capture_directory):
            if name.endswith((".pcapng", ".json")):
                os.unlink(self.capture_file(name))

    def start_collector(self) -> dict:
        """Start the collector and wait until its aggregate says it captures (or why it does not)."""
        if self.scheduler._use_systemd():
            unit = self.collector_unit()
            self.scheduler._systemd_run(["--unit=" + unit, "--property=Restart=on-failure", "--property=RestartSec=1"],
                                        self.scheduler._base_argv() + ["capture"], reset_on_failure=[unit + ".service"])
            how = {"kind": "systemd-service", "unit": unit + ".service"}
        else:
            how = {"kind": "detached-process", "pid": self.scheduler.spawn_detached(["capture"])}
        started = time.monotonic()
        while True:
            _config, aggregate, liveness = self.collector_state()
            if liveness == "running" and how.get("pid") in (None, aggregate["pid"]):
                return dict(how, state="running", pid=aggregate["pid"],
                            namespaces={one["label"]: one["status"] for one in aggregate["namespaces"]})
            waited = time.monotonic() - started
            if waited >= START_LIMIT_SECONDS or waited >= START_TIMEOUT_SECONDS and not self.collector_starting(how):
                break
            time.sleep(0.05 if waited < 1 else 0.2)
        # Not left behind capturing for windows that enable now rolls back.
        if "unit" in how:
            run_argv(["systemctl", "stop", how["unit"]])
        else:
            try:
                os.kill(how["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass
        raise ConntrackModuleError(f"the capture collector did not start within {time.monotonic() - started:.0f} s"
                                   f" ({self.command} --state-dir={self.store.directory} capture runs it by hand)")

    def collector_starting(self, how: dict) -> bool:
        """Whether the collector just started is still alive (its unit active, or its process there)."""
        if "unit" in how:
            return self.scheduler.unit_active(how["unit"])
        return process_start_ticks(how["pid"]) is not None

    def stop_collector(self, config: dict | None, aggregate: dict | None, liveness: str,
                       keep_session: bool = False) -> list[str]:
        """Stop the collector (not when this process is it) and, unless it is only restarted, end the session."""
        stopped = []
        unit = self.collector_unit() + ".service"
        if self.in_collector:
            # The budget's own revert: the collector returns once it is done.
            pass
        elif self.scheduler._use_systemd() and self.scheduler.unit_active(unit):
            run_argv(["systemctl", "stop", unit])
            stopped.append(unit)
        elif liveness == "running":
            pid, ticks = aggregate["pid"], aggregate.get("pid_start_ticks")
            try:
                os.kill(pid, signal.SIGTERM)
                stopped.append(f"pid {pid}")
            except ProcessLookupError:
                pass
            until = time.monotonic() + STOP_TIMEOUT_SECONDS
            while process_start_ticks(pid) == ticks and time.monotonic() < until:
                time.sleep(0.02)
        if not keep_session and config is not None:
            os.unlink(self.capture_file("config.json"))
        return stopped

    # ------------------------------------------------------------------ the collector process

    def cmd_capture(self, args: argparse.Namespace) -> dict:
        """The collector: capture the namespaces of config.json until stopped; a budget reverts their windows."""
        del args
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.in_collector = True
        config = read_config(self.capture_file("config.json"))
        if config is None:
            return {"changed": False, "msg": "no capture configured: nothing to do"}
        ids = [label for label, _path in config["namespaces"]]
        import resource  # the host's; the controller imports this file for parse_request only

        # Three descriptors per namespace (its socket, the namespace, the pcapng): 1024 would stop at about 330.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

        def end_windows(budget: dict) -> None:
            del budget
            self.revert_due(ids)

        final = run_collector(self.collector_config(config), end_windows)
        return {"changed": False, "state": final["state"], "stopped_by": final["stopped_by"],
                "budget_exceeded": final["budget_exceeded"]}

    # ------------------------------------------------------------------ status and the report

    def capture_status(self, problems: list) -> dict | None:
        """What status and collect say of the capture; a dead collector of open windows is a problem."""
        wanted = self.capturing_windows()
        config, aggregate, liveness = self.collector_state()
        if not wanted and aggregate is None:
            return None
        if wanted and liveness != "running":
            problems.append(f"{', '.join(sorted(wanted))}: the capture collector is NOT running (killed or failed):"
                            " invalid packets are not counted; run enable again to re-arm it, or revert now")
        return {"collector": liveness if wanted else "stopped", "windows": sorted(wanted),
                "directory": self.capture_directory, "session": (config or aggregate or {}).get("window_id")}

    def ask_for_write(self) -> float:
        """Ask a running collector that announces the flush signal to write its aggregate now, and return the time
        (epoch seconds) after which its write counts as fresh (see fresh_aggregate).

        Collect asks first and reads the aggregate last: the collector writes while collect reads the lists and the
        log, instead of collect waiting about two ticks for it at the end.
        """
        since = time.time()
        aggregate = read_aggregate(self.capture_file("aggregate.json"))
        if collector_liveness(aggregate) == "running" and aggregate.get("flush_signal") == FLUSH_SIGNAL.name:
            try:
                os.kill(aggregate["pid"], FLUSH_SIGNAL)
            except ProcessLookupError:
                pass  # it ended since: fresh_aggregate reads its last aggregate
        return since

    def fresh_aggregate(self, since: float) -> dict | None:
        """The aggregate as a running collector writes it after ``since`` (epoch seconds, from ask_for_write), or as
        it is.

        A collector writes its aggregate once a second: packets logged just before a collect would be counted only
        by the next write. So a collect waits for the first write that began a full poll after it started, at most
        FRESH_AGGREGATE_WAIT_SECONDS; a collector that is not running is not waited for. One asked for a write
        (ask_for_write) writes within about two ticks instead of up to a second.
        """
        deadline = time.monotonic() + FRESH_AGGREGATE_WAIT_SECONDS
        aggregate = read_aggregate(self.capture_file("aggregate.json"))
        while True:
            if (collector_liveness(aggregate) != "running" or float(aggregate.get("heartbeat") or 0) >= since + TICK
                    or time.monotonic() >= deadline):
                return aggregate
            time.sleep(TICK / 2)
            aggregate = read_aggregate(self.capture_file("aggregate.json"))

    def capture_report(self, since: float) -> tuple[dict | None, dict]:
        """(the report's capture section, {namespace id: reasons} for the verdicts) from the aggregate, written after
        ``since`` when a collector is running (see fresh_aggregate)."""
        aggregate = self.fresh_aggregate(since)
        if aggregate is None:
            return None, {}
        namespaces, reasons = {}, {}
        for one in aggregate.get("namespaces") or []:
            loss = one.get("loss") or {}
            namespaces[one["label"]] = {
                # Every namespace of the aggregate is bound to nfnetlink_log; status says whether it was captured.
                "path": NETLINK, "status": one.get("status"),
                "error": one.get("error"), "netns": one.get("netns"), "events": one.get("events"),
                "loss": loss.get("summary", "unknown"), "loss_detail": loss,
                "pcapng": one.get("pcapng"), "samples": one.get("samples"),
                **{table: one.get(table) or {} for table in TABLES}}
            if one.get("status") == "capturing":
                reasons[one["label"]] = dict(one.get("by_reason") or {})
        budget = aggregate.get("budget_exceeded")
        section = {"counted": aggregate.get("counted", COUNTED), "state": aggregate.get("state"),
                   "stopped_by": aggregate.get("stopped_by"), "ended_by_budget": budget is not None,
                   "budget_exceeded": budget, "restarts": aggregate.get("restarts"),
                   "events": aggregate.get("events"), "directory": self.capture_directory,
                   # When the capture ran: the files stay after the windows end, until the next capture replaces them.
                   "started_utc": aggregate.get("started_utc"), "last_written_utc": aggregate.get("heartbeat_utc"),
                   "cpu_seconds": aggregate.get("cpu_seconds"), "max_rss_kib": aggregate.get("max_rss_kib"),
                   "namespaces": namespaces}
        return section, reasons


__all__ = ("AUTO", "KERNEL_LOG", "NETLINK", "NFNETLINK_LOG", "CaptureCommands", "capture_dir", "group_holder",
           "netlink_unavailable", "parse_request")
