# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Print, as JSON, what this kernel offers to netfilter.conntrack (evidence for tests/vm/matrix.sh).

usage: mx_probe.py [NETNS]

Read only: kernel release, loaded nf_* modules, which logger modules modprobe could load, the registered
loggers (/proc/net/netfilter/nf_log), the nf_log.N / log_invalid / tcp_be_liberal sysctls (of NETNS when given, read with
`ip netns exec`), nf_log_all_netns, and the netfilter lines of the dynamic-debug control file.
"""
import json
import os
import platform
import subprocess
import sys

CONTROLS = ("/proc/dynamic_debug/control", "/sys/kernel/debug/dynamic_debug/control")
LOGGER_MODULES = ("nf_log_syslog", "nf_log_ipv4", "nf_log_ipv6", "nf_log_arp", "nf_log_bridge", "nf_log_netdev",
                  "nf_log_common", "nfnetlink_log", "nf_conntrack", "nf_conntrack_netlink")


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError as exc:
        return None if exc.errno == 2 else f"<error: {exc.strerror}>"


def run(argv):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"rc": None, "stdout": "", "stderr": str(exc)}


def module_state(name):
    """loaded | builtin | available (modprobe could load it) | absent."""
    if os.path.isdir(f"/sys/module/{name}"):
        return "loaded" if os.path.exists(f"/sys/module/{name}/refcnt") else "builtin"
    release = platform.release()
    builtin = read(f"/lib/modules/{release}/modules.builtin") or ""
    if any(line.rsplit("/", 1)[-1].split(".ko")[0] == name for line in builtin.splitlines()):
        return "builtin"
    dry = run(["modprobe", "-n", "-q", name])
    return "available" if dry["rc"] == 0 else "absent"


def sysctls(netns):
    prefix = ["ip", "netns", "exec", netns] if netns else []
    script = ("cd /proc/sys/net/netfilter 2>/dev/null && for f in nf_conntrack_log_invalid nf_conntrack_tcp_be_liberal nf_log/*; do "
              "[ -e \"$f\" ] && printf '%s=%s\\n' \"$f\" \"$(cat \"$f\")\"; done; true")
    out = run(prefix + ["sh", "-c", script])
    values = {}
    for line in out["stdout"].splitlines():
        key, value = line.partition("=")[::2]
        values[key] = value
    return values


def main():
    netns = sys.argv[1] if len(sys.argv) > 1 else None
    control = next((path for path in CONTROLS if os.path.exists(path)), None)
    control_lines = []
    if control:
        text = read(control) or ""
        lines = text.splitlines()
        control_lines = lines[:1] + [line for line in lines[1:] if "netfilter" in line]
    modules_loaded = sorted(line.split()[0] for line in (read("/proc/modules") or "").splitlines()
                            if line.split()[0].startswith(("nf_", "nfnetlink")))
    result = {
        "release": platform.release(),
        "version": (read("/proc/version") or "").strip(),
        "boot_id": (read("/proc/sys/kernel/random/boot_id") or "").strip(),
        "pid1": (read("/proc/1/comm") or "").strip(),
        "modules_loaded": modules_loaded,
        "module_state": {name: module_state(name) for name in LOGGER_MODULES},
        "nf_log_registered": read("/proc/net/netfilter/nf_log"),
        "nf_log_all_netns": (read("/proc/sys/net/netfilter/nf_log_all_netns") or "").strip() or None,
        "sysctls": sysctls(netns),
        "netns": netns,
        "dynamic_debug_control": control,
        "dynamic_debug_lines": control_lines,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
