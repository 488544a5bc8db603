# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write one playbook per module from its EXAMPLES, and one per YAML playbook in a role's README.

Usage: python3 examples.py COLLECTION_ROOT OUT_DIR NETNS PID SCRATCH CONTROL DMESG

The examples are run as written, with these changes, each printed:
- the illustrative paths are replaced by real ones: /proc/4242/ns/net by the namespace of PID (a process in a
  second test namespace), the namespace name `blue`, `cni-1234` and the inventory group `nodes` by the test's
  namespace and hosts, /tmp/dmesg.txt by a real 6.1 kernel log, the node_exporter directory by a scratch one;
- module_defaults point every module at the test namespace NETNS (option netns), at a scratch program_dir and
  facts_path, and dynamic_debug_site at CONTROL, a copy of a real 6.1 control file (this host's kernel has no
  dynamic debug); an example that names its own value keeps it;
- two kinds of task run in check mode, with the reason in the output: those that set nf_log_all_netns, a
  setting of the host's initial namespace only that other tests on the same host rely on, and those that
  would write to the dynamic-debug control file, because a regular file does not apply a query the way the
  kernel's control file does (a write would overwrite its first line). make vm-test runs them on real kernels.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys

import yaml

NETNS_PATH_EXAMPLE = "/proc/4242/ns/net"
NAMED_NETNS_EXAMPLES = ("blue", "cni-1234")
HOST_GROUP_EXAMPLE = "nodes"
DMESG_EXAMPLE = "/tmp/dmesg.txt"
TEXTFILE_EXAMPLE = "/var/lib/prometheus/node-exporter"
ALL_NETNS_REASON = "sets nf_log_all_netns, which only the initial namespace has and other tests on this host share"
CONTROL_REASON = "writes the dynamic-debug control file, which a regular copy cannot apply like the kernel"


def module_strings(path: str) -> dict:
    """The DOCUMENTATION and EXAMPLES strings of a module file, without importing it."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in ("DOCUMENTATION", "EXAMPLES"):
                    found[target.id] = node.value.value
    return found


def substitute(text: str, args: dict) -> str:
    text = text.replace(NETNS_PATH_EXAMPLE, f"/proc/{args['pid']}/ns/net")
    for name in NAMED_NETNS_EXAMPLES:
        text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", args["netns"], text)
    text = text.replace(DMESG_EXAMPLE, args["dmesg"])
    return text.replace(TEXTFILE_EXAMPLE, os.path.join(args["scratch"], "textfile"))


def module_defaults(options: dict, args: dict) -> dict:
    """Options every task of the module gets unless it sets them: the test's namespace and scratch paths."""
    defaults = {}
    if "netns" in options:
        defaults["netns"] = [args["netns"]] if options["netns"].get("type") == "list" else args["netns"]
    if "program_dir" in options:
        defaults["program_dir"] = os.path.join(args["scratch"], "program")
    if "facts_path" in options:
        defaults["facts_path"] = os.path.join(args["scratch"], "facts", "netfilter_conntrack.fact")
    if "control_path" in options:
        defaults["control_path"] = args["control"]
    return defaults


def check_mode_reason(module: str, task_args) -> str | None:
    if not isinstance(task_args, dict):
        return None
    if task_args.get("all_netns") is True:
        return ALL_NETNS_REASON
    if module == "dynamic_debug_site" and task_args.get("state", "enabled") != "query":
        return CONTROL_REASON
    return None


def task_module(task: dict) -> tuple:
    for key, value in task.items():
        if key.startswith("netfilter.conntrack."):
            return key.split(".", 2)[2], value
    return None, None


def module_play(module: str, doc: dict, examples: str, args: dict) -> list:
    tasks = yaml.safe_load(substitute(examples, args))
    if not tasks:
        raise SystemExit(f"{module}: EXAMPLES is empty")
    for task in tasks:
        name, task_args = task_module(task)
        reason = check_mode_reason(name, task_args) if name else None
        if reason:
            task["check_mode"] = True
            print(f"{module}: '{task['name']}' in check mode: {reason}")
    return [{
        "name": f"EXAMPLES of netfilter.conntrack.{module}",
        "hosts": "all",
        "gather_facts": False,
        "environment": {"CONNTRACK_DEBUG_STATE_DIR": os.path.join(args["scratch"], "state")},
        "module_defaults": {f"netfilter.conntrack.{module}": module_defaults(doc.get("options", {}), args)},
        "tasks": tasks,
    }]


def readme_plays(readme: str, args: dict) -> list:
    """The YAML blocks of a role README that are playbooks (a list of plays with hosts)."""
    plays = []
    with open(readme, encoding="utf-8") as handle:
        text = handle.read()
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        parsed = yaml.safe_load(re.sub(rf"hosts: {HOST_GROUP_EXAMPLE}\b", "hosts: all", substitute(block, args)))
        if isinstance(parsed, list) and parsed and all(isinstance(p, dict) and "hosts" in p for p in parsed):
            for play in parsed:
                play.setdefault("environment", {})["CONNTRACK_DEBUG_STATE_DIR"] = os.path.join(args["scratch"], "state")
                play.setdefault("vars", {})["conntrack_debug_program_dir"] = os.path.join(args["scratch"], "program")
                if re.search(r"all_netns: true", block):
                    play["check_mode"] = True
                    print(f"{readme}: play '{play.get('name')}' in check mode: {ALL_NETNS_REASON}")
            plays.append(parsed)
    return plays


def main() -> None:
    root, out_dir = sys.argv[1], sys.argv[2]
    args = dict(zip(("netns", "pid", "scratch", "control", "dmesg"), sys.argv[3:8]))
    written = []
    modules_dir = os.path.join(root, "plugins", "modules")
    for filename in sorted(os.listdir(modules_dir)):
        if not filename.endswith(".py") or filename.startswith("_"):
            continue
        module = filename[:-3]
        strings = module_strings(os.path.join(modules_dir, filename))
        if "EXAMPLES" not in strings:
            raise SystemExit(f"{module}: no EXAMPLES")
        play = module_play(module, yaml.safe_load(strings["DOCUMENTATION"]), strings["EXAMPLES"], args)
        written.append(write(out_dir, f"module-{module}.yml", play))
    for role in sorted(os.listdir(os.path.join(root, "roles"))):
        readme = os.path.join(root, "roles", role, "README.md")
        if os.path.exists(readme):
            for index, plays in enumerate(readme_plays(readme, args)):
                written.append(write(out_dir, f"role-{role}-{index}.yml", plays))
    print(json.dumps(written))


def write(out_dir: str, name: str, plays: list) -> str:
    path = os.path.join(out_dir, name)
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(plays, handle, sort_keys=False, width=160)
    return path


if __name__ == "__main__":
    main()
