# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's resolver, as the host program runs it (ProcessHost), for runme.sh.

  resolve.py resolve NAME...   JSON list of the results, each with the namespace identity checked
  resolve.py identity FILE     the identity check again on results saved earlier, one line per result
  resolve.py refuse NAME       exit 0 and print the message when resolving NAME fails, 1 when it succeeds
"""
from __future__ import annotations

import json
import sys

from ansible_collections.netfilter.conntrack.plugins.module_utils._containers import (
    namespace_identity,
    resolve_containers,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import ProcessHost


def main(command: str, args: list[str]) -> int:
    if command == "resolve":
        results = resolve_containers(ProcessHost(), args, runtimes=["podman"])
        for result in results:
            result["dev"], result["ino"] = namespace_identity(result)
        json.dump(results, sys.stdout, indent=1)
        return 0
    if command == "identity":
        with open(args[0], encoding="utf-8") as handle:
            for result in json.load(handle):
                try:
                    print("same", namespace_identity(result))
                except ConntrackModuleError as exc:
                    print("refused", exc.msg, exc.details)
        return 0
    try:
        print("resolved", resolve_containers(ProcessHost(), args, runtimes=["podman"]))
        return 1
    except ConntrackModuleError as exc:
        print(exc.msg)
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
