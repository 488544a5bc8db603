# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run an ansible-core action from inside one of the collection's actions, as a task of its own would run it.

Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins!

Each task the role adds costs a worker per host on the controller even where it is skipped (about 0.1 s at 10
hosts and 1 s at 50, per task over ssh). So the role's argument validation, the optional install of
conntrack-tools and the optional fetch of the capture files run inside the window and report actions instead, each
through ansible-core's own action with the calling task's connection, check mode and variables: the rules, the
messages and the results are those of the task they replace.
"""

from __future__ import annotations

import typing as t


def run_builtin_action(action: t.Any, name: str, args: dict[str, t.Any],
                       task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
    """The result of the action ``name`` (for example ``ansible.builtin.fetch``) run with ``args`` on the host and
    connection of ``action``, the calling action plugin."""
    # Its parent blocks (module_defaults, the role) come along; their other tasks, which cost a copy each, do not.
    task = action._task.copy(exclude_tasks=True)
    task.args = args
    other = action._shared_loader_obj.action_loader.get(
        name, task=task, connection=action._connection, play_context=action._play_context, loader=action._loader,
        templar=action._templar, shared_loader_obj=action._shared_loader_obj)
    return other.run(task_vars=task_vars)


__all__ = ("run_builtin_action",)
