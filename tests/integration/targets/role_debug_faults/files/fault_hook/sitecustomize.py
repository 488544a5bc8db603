# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fault in the middle of the host program's enable, injected at the system-call boundary (an audit hook).

enable applies every setting in one run of conntrack-debug-window.pyz, so a step can no longer be made to fail by
running one module differently. The interpreter wrappers next to this directory (python-*) put it on PYTHONPATH and
name the fault in NFCT_FAULT; Python imports this file at start-up and watches every open(2) of enable's run:

  erofs-nf-log       opening net.netfilter.nf_log.N for writing fails with EROFS (fault 4a)
  erofs-all-netns    the same for net.netfilter.nf_log_all_netns (fault 4b)
  stall-nf-log       opening net.netfilter.nf_log.N for writing waits up to 120 s (fault 1)
  wait-log-invalid   opening nf_conntrack_log_invalid for writing waits until NFCT_FAULTS_GO exists (fault 5b)

Every other command and every module runs unchanged, and children (modprobe, the detached revert) start without it.
"""

import errno
import os
import signal
import sys
import time

FAULT = os.environ.pop("NFCT_FAULT", "")
os.environ.pop("PYTHONPATH", None)
NF_LOG = "/proc/sys/net/netfilter/nf_log/"
ALL_NETNS = "/proc/sys/net/netfilter/nf_log_all_netns"
LOG_INVALID = "/proc/sys/net/netfilter/nf_conntrack_log_invalid"


def parent_of(pid):
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])


def stall():
    """Wait for the controller to be killed. ansible-core's workers call setsid(), so killing the controller's
    process group leaves this task's worker alive, and it would finish the enable later. A controller machine that
    dies takes its workers along: when the worker (the leader of this session) has lost its parent, the whole
    session is killed here."""
    worker = os.getsid(0)
    for _tick in range(1200):
        if parent_of(worker) == 1:
            os.killpg(worker, signal.SIGKILL)
        time.sleep(0.1)


def wait_for_go():
    go = os.environ.get("NFCT_FAULTS_GO", "")
    for _tick in range(600):
        if os.path.exists(go):
            return
        time.sleep(0.1)


def hook(event, args):
    if event != "open" or not isinstance(args[0], str) or not args[2] & (os.O_WRONLY | os.O_RDWR):
        return
    path = args[0]
    if FAULT == "erofs-nf-log" and path.startswith(NF_LOG) or FAULT == "erofs-all-netns" and path == ALL_NETNS:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
    if FAULT == "stall-nf-log" and path.startswith(NF_LOG):
        stall()
    if FAULT == "wait-log-invalid" and path == LOG_INVALID:
        wait_for_go()


# sys.argv: the program (or -c, the bootstrap's, and the program, its digest), [--shipped-on-stdin=...],
# --expect-sha256=..., [--install-to=...], then the command.
if FAULT and any(word.endswith(".pyz") for word in sys.argv[:2]) and "enable" in sys.argv[1:8]:
    sys.addaudithook(hook)
