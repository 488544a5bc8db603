# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Exception shared by the collection's helpers.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!
"""

from __future__ import annotations


class ConntrackModuleError(Exception):
    """A failure with a message written for the operator.

    Helpers raise it instead of calling ``fail_json`` so they stay usable (and testable)
    without an AnsibleModule; ``details`` carries extra result keys such as ``rc``.
    """

    def __init__(self, msg: str, **details: object) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


def exit_with_result(module, run) -> None:
    """Exit ``module`` with the result of ``run(module)``, or fail with a ConntrackModuleError's message."""
    try:
        result = run(module)
    except ConntrackModuleError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


__all__ = ("ConntrackModuleError", "exit_with_result")
