# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import errno
import typing as t

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils import _conntrack_facts as cf
from ansible_collections.netfilter.conntrack.plugins.module_utils._ctnetlink import (
    IPCTNL_MSG_CT_GET,
    IPCTNL_MSG_CT_GET_DYING,
    IPCTNL_MSG_CT_GET_UNCONFIRMED,
    DumpResult,
    NetlinkError,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl_keys import KEY_BUCKETS, KEY_COUNT, KEY_MAX

TEST_KERNEL_VERSION = [
    ("6.18.44-fc-v782", (6, 18)),
    ("5.19.0", (5, 19)),
    ("5.15.0-91-generic", (5, 15)),
    ("4.19.0-26-amd64", (4, 19)),
    ("garbage", (0, 0)),
    ("", (0, 0)),
]


@pytest.mark.parametrize("release, expected", TEST_KERNEL_VERSION)
def test_kernel_version(release: str, expected: tuple[int, int]) -> None:
    assert cf.kernel_version(release) == expected


TEST_USAGE = [(10, 100, 10.0), (1, 3, 33.33), (0, 262144, 0.0), (5, None, None), (None, 10, None), (5, 0, None)]


@pytest.mark.parametrize("count, maximum, expected", TEST_USAGE)
def test_usage_percent(count: int | None, maximum: int | None, expected: float | None) -> None:
    assert cf.usage_percent(count, maximum) == expected


# The line from ../shared/reference/kernel-samples/conntrack-L-unconfirmed-nfqueue.txt (kernel 6.18) and variants.
TEST_NFQUEUE = [
    ("    5  31275     4 2 65531     0     0        4  1\n", [
        {"queue": 5, "portid": 31275, "waiting": 4, "copy_mode": 2, "copy_range": 65531, "dropped": 0, "user_dropped": 0},
    ]),
    ("    3  29416    20 1     0     0     0       20  1\n    4  0  0 2 65535 7 1 9 1\n", [
        {"queue": 3, "portid": 29416, "waiting": 20, "copy_mode": 1, "copy_range": 0, "dropped": 0, "user_dropped": 0},
        {"queue": 4, "portid": 0, "waiting": 0, "copy_mode": 2, "copy_range": 65535, "dropped": 7, "user_dropped": 1},
    ]),
    ("", []),
    ("not a queue line\n", []),
]


@pytest.mark.parametrize("text, expected", TEST_NFQUEUE)
def test_parse_nfqueue_proc(text: str, expected: list[dict[str, int]]) -> None:
    assert cf.parse_nfqueue_proc(text) == expected


def base_facts(**overrides: t.Any) -> dict[str, t.Any]:
    facts: dict[str, t.Any] = {
        "count": 10,
        "count_after": 10,
        "max": 262144,
        "usage_percent": 0.0,
        "family": None,
        "table": {"listed": 10},
        "dying": {"dumpable": True, "listed": 0, "note": cf.DYING_NOTE_NEW},
        "unconfirmed": {"dumpable": False, "listed": None},
    }
    facts.update(overrides)
    return facts


QUEUE3 = [{"queue": 3, "portid": 99, "waiting": 150, "copy_mode": 1, "copy_range": 0, "dropped": 0, "user_dropped": 0}]
IDLE_QUEUE = [dict(QUEUE3[0], waiting=0)]

# (id, facts, thresholds override, nfqueue, expected value, expected finding codes, text the diagnosis must contain)
TEST_DIAGNOSE: list[tuple[str, dict[str, t.Any], dict[str, t.Any], t.Any, t.Any, list[str], str]] = [
    ("all listed", base_facts(), {}, [], 0, [], "No problem found: 10 of 10"),
    ("small gap under threshold", base_facts(count=150, count_after=150, table={"listed": 100}), {}, [], 50, [], "within the threshold"),
    ("gap held by nfqueue", base_facts(count=160, count_after=160), {}, QUEUE3, 150, ["unconfirmed_held_by_nfqueue"], "queue 3 (150 packets"),
    ("gap without queue", base_facts(count=160, count_after=160), {}, IDLE_QUEUE, 150, ["unlisted_entries"], "No NFQUEUE holds packets"),
    ("gap, nfnetlink_queue not loaded", base_facts(count=160, count_after=160), {}, None, 150, ["unlisted_entries"], "NFQUEUE for a verdict"),
    ("lower threshold", base_facts(count=30, count_after=30), {"unlisted": 10}, QUEUE3, 20, ["unconfirmed_held_by_nfqueue"], "20 entries are counted"),
    ("percent threshold wins on big tables", base_facts(count=1_000_500, count_after=1_000_500, table={"listed": 1_000_000}), {}, [], 500, [], "within"),
    ("count moved a little: smaller count used", base_facts(count=10, count_after=90), {}, [], 0, [], "No problem"),
    ("more listed than counted, within the threshold", base_facts(count=10, count_after=10, table={"listed": 40}), {}, [], -30, [], "No problem"),
    # Issue 15: a table flushed and refilled while it is read. Neither NFQUEUE nor "56552 of 0 counted entries".
    ("count moved a lot during the dump", base_facts(count=10, count_after=500), {}, [], 0, [], "was changing while it was read"),
    (
        "flushed between the reads and the dump: more listed than ever counted",
        base_facts(count=0, count_after=0, table={"listed": 56552}), {}, [], -56552, [], "nf_conntrack_count was 0 over 2 readings",
    ),
    (
        "same count before and after, refilled in between: the middle reading shows it",
        base_facts(count=60000, count_after=60000, count_samples=[60000, 1200, 60000], table={"listed": 1200}),
        {}, QUEUE3, 1200 - 1200, [], "moved between 1200 and 60000 over 3 readings",
    ),
    (
        "confirmation readings show the churn, not the queue",
        base_facts(count=30000, count_after=30000, count_samples=[30000, 30010, 30000, 4000, 52000], table={"listed": 2000}),
        {}, QUEUE3, 2000, [], "says nothing about entries held outside the table (NFQUEUE",
    ),
    (
        "stable count with readings in between: the queue is still found",
        base_facts(count=160, count_after=160, count_samples=[160, 160, 161, 160, 160]), {}, QUEUE3, 150,
        ["unconfirmed_held_by_nfqueue"], "queue 3 (150 packets",
    ),
    (
        "dump interrupted (NLM_F_DUMP_INTR) with a stable count",
        base_facts(count=160, count_after=160, table={"listed": 10, "interrupted": True}), {}, QUEUE3, 150, [],
        "flagged the dump of the table as interrupted (NLM_F_DUMP_INTR)",
    ),
    (
        "dying dump interrupted, table full: the other findings stay",
        base_facts(count=95, count_after=95, max=100, usage_percent=95.0, table={"listed": 95},
                   dying={"dumpable": True, "listed": 0, "interrupted": True, "note": cf.DYING_NOTE_NEW}),
        {}, [], 0, ["table_near_max"], "dump of the dying list as interrupted",
    ),
    (
        "unconfirmed dumpable on an old kernel",
        base_facts(count=300, count_after=300, unconfirmed={"dumpable": True, "listed": 0}),
        {}, [], 290, ["unlisted_entries"], "kernel accounting problem",
    ),
    (
        "dying entries pinned",
        base_facts(count=309, count_after=309, dying={"dumpable": True, "listed": 299, "note": cf.DYING_NOTE_NEW}),
        {}, [], 0, ["dying_entries_pinned"], "NETLINK_BROADCAST_ERROR",
    ),
    (
        "dying entries on an old kernel",
        base_facts(count=309, count_after=309, dying={"dumpable": True, "listed": 299, "note": cf.DYING_NOTE_OLD}),
        {}, [], 0, ["dying_entries_pinned"], "pinned by an event listener",
    ),
    (
        "dying under threshold",
        base_facts(count=15, count_after=15, dying={"dumpable": True, "listed": 5, "note": cf.DYING_NOTE_NEW}),
        {}, [], 0, [], "No problem",
    ),
    (
        "table near max",
        base_facts(count=95, count_after=95, max=100, usage_percent=95.0, table={"listed": 95}),
        {}, [], 0, ["table_near_max"], "95.0% of nf_conntrack_max",
    ),
    ("family filter: no comparison", base_facts(family="ipv6", table={"listed": 2}), {}, [], None, [], "were not compared"),
    ("table not listed", base_facts(table=None), {}, [], None, [], "were not compared"),
    (
        "everything at once",
        base_facts(count=1000, count_after=1000, max=1000, usage_percent=100.0, table={"listed": 500},
                   dying={"dumpable": True, "listed": 350, "note": cf.DYING_NOTE_NEW}),
        {}, QUEUE3, 150, ["unconfirmed_held_by_nfqueue", "dying_entries_pinned", "table_near_max"], "NFQUEUE",
    ),
]


@pytest.mark.parametrize(
    "facts, thresholds, nfqueue, value, codes, text",
    [case[1:] for case in TEST_DIAGNOSE],
    ids=[case[0] for case in TEST_DIAGNOSE],
)
def test_diagnose(facts: dict[str, t.Any], thresholds: dict[str, t.Any], nfqueue: t.Any, value: t.Any, codes: list[str], text: str) -> None:
    limits = dict(cf.DEFAULT_THRESHOLDS, **thresholds)
    result = cf.diagnose(facts, limits, nfqueue)
    assert result["value"] == value
    assert [finding["code"] for finding in result["findings"]] == codes
    assert text in result["diagnosis"]
    changing = "changing" in result["diagnosis"] or "interrupted" in result["diagnosis"]
    assert result["table_changing"] is changing
    if changing:
        assert "No problem found" not in result["diagnosis"]
        assert not [f for f in result["findings"] if f["code"] in cf.UNLISTED_CODES]


# --- gather() with a fake sysctl reader and a fake socket ---------------------------------------------------------


def dump_result(counts: dict[tuple[int, int, int], int]) -> DumpResult:
    result = DumpResult()
    result.counts = counts
    result.listed = sum(counts.values())
    return result


class FakeSocket:
    """Answers dumps from a table keyed by message type; an int answer is raised as that errno."""

    instances = 0

    def __init__(self, answers: dict[int, t.Any], fail_open: int | None = None) -> None:
        if fail_open:
            raise NetlinkError(fail_open, "cannot open a NETLINK_NETFILTER socket")
        self.answers = answers
        self.calls: list[int] = []

    def dump_conntrack(self, msg: int, family: int, max_entries: int, decode: t.Any) -> DumpResult:
        self.calls.append(msg)
        answer = self.answers.get(msg, {})
        if isinstance(answer, int):
            raise NetlinkError(answer, "kernel refused the request")
        return dump_result(answer)

    def count_expectations(self, family: int) -> dict[int, int]:
        answer = self.answers.get("expect", {})
        if isinstance(answer, int):
            raise NetlinkError(answer, "kernel refused the request")
        return answer

    def stats_cpu(self) -> list[dict[str, int]]:
        return self.answers.get("stats", [{"cpu": 0, "found": 1}, {"cpu": 1, "found": 2, "attr_16": 3}])

    def close(self) -> None:
        pass


def reader(values: dict[str, str]) -> t.Callable[[str], str]:
    read_keys: list[str] = []

    def read(key: str) -> str:
        read_keys.append(key)
        if key not in values:
            raise ConntrackModuleError(f"{key} does not exist")
        return values[key]

    read.keys = read_keys  # type: ignore[attr-defined]
    return read


SYSCTLS = {KEY_COUNT: "12", KEY_MAX: "262144", KEY_BUCKETS: "65536"}


def run_gather(answers: dict[t.Any, t.Any], release: str = "6.18.44", **kwargs: t.Any) -> tuple[dict[str, t.Any], t.Any]:
    kwargs.setdefault("read", reader(SYSCTLS))
    kwargs.setdefault("nfqueue_reader", lambda: None)
    return cf.gather(kernel_release=release, open_socket=lambda: FakeSocket(answers), **kwargs)


def test_gather_summary_only_reads_three_sysctls() -> None:
    read = reader(SYSCTLS)

    def no_socket() -> t.Any:
        raise AssertionError("summary_only must not open a socket")

    facts, loaded = cf.gather(summary_only=True, kernel_release="6.18.44", read=read, open_socket=no_socket)
    assert read.keys == [KEY_COUNT, KEY_MAX, KEY_BUCKETS]  # type: ignore[attr-defined]
    assert loaded is None
    assert facts["count"] == 12 and facts["max"] == 262144 and facts["buckets"] == 65536
    assert facts["usage_percent"] == 0.0
    assert "table" not in facts and "stats" not in facts
    assert facts["discrepancy"]["value"] is None


def test_gather_full_on_new_kernel() -> None:
    answers = {IPCTNL_MSG_CT_GET: {(2, 6, 3): 8, (10, 17, -1): 2}, IPCTNL_MSG_CT_GET_DYING: {(2, 17, -1): 2}, "expect": {2: 1}}
    facts, loaded = run_gather(answers)
    assert loaded is None
    assert facts["table"] == {
        "dumpable": True,
        "listed": 10,
        "by_family": {"ipv4": 8, "ipv6": 2},
        "by_protocol": {"tcp": 8, "udp": 2},
        "by_tcp_state": {"ESTABLISHED": 8},
    }
    assert facts["dying"]["listed"] == 2 and facts["dying"]["note"] == cf.DYING_NOTE_NEW
    assert facts["unconfirmed"] == {"dumpable": False, "listed": None, "reason": cf.UNCONFIRMED_REASON}
    assert facts["expect"] == {"dumpable": True, "listed": 1, "by_family": {"ipv4": 1}}
    assert facts["stats"]["total"] == {"found": 3, "attr_16": 3}
    assert facts["discrepancy"]["value"] == 0
    assert facts["sources"]["unconfirmed"] == "not dumpable on this kernel"
    assert facts["gathered_at"].endswith("Z")


def test_gather_old_kernel_dumps_unconfirmed() -> None:
    answers = {IPCTNL_MSG_CT_GET: {(2, 17, -1): 10}, IPCTNL_MSG_CT_GET_UNCONFIRMED: {(2, 17, -1): 2}}
    facts, _loaded = run_gather(answers, release="5.15.0-91-generic")
    assert facts["unconfirmed"]["dumpable"] is True and facts["unconfirmed"]["listed"] == 2
    assert facts["dying"]["note"] == cf.DYING_NOTE_OLD
    assert facts["discrepancy"]["value"] == 0


def test_gather_unsupported_list_is_not_dumpable() -> None:
    answers = {IPCTNL_MSG_CT_GET: {(2, 17, -1): 12}, IPCTNL_MSG_CT_GET_DYING: errno.EOPNOTSUPP}
    facts, _loaded = run_gather(answers, lists=["table", "dying"])
    assert facts["dying"]["dumpable"] is False
    assert "cannot dump the dying list" in facts["dying"]["reason"]
    assert "unconfirmed" not in facts and "expect" not in facts


def test_gather_eperm_is_a_clear_error() -> None:
    with pytest.raises(ConntrackModuleError, match="CAP_NET_ADMIN"):
        run_gather({IPCTNL_MSG_CT_GET: errno.EPERM})


def test_gather_loads_ctnetlink_when_missing() -> None:
    state = {"loaded": False}
    loads: list[str] = []

    def load(name: str) -> bool:
        loads.append(name)
        state["loaded"] = True
        return True

    def open_socket() -> FakeSocket:
        return FakeSocket({IPCTNL_MSG_CT_GET: {(2, 17, -1): 12}} if state["loaded"] else {IPCTNL_MSG_CT_GET: errno.EINVAL})

    facts, loaded = cf.gather(kernel_release="6.18.44", read=reader(SYSCTLS), open_socket=open_socket, load_module=load, nfqueue_reader=lambda: None)
    assert loads == ["nf_conntrack_netlink"]
    assert loaded == "nf_conntrack_netlink"
    assert facts["table"]["listed"] == 12


def test_gather_missing_ctnetlink_without_loading() -> None:
    with pytest.raises(ConntrackModuleError, match="nf_conntrack_netlink is not loaded"):
        run_gather({IPCTNL_MSG_CT_GET: errno.EINVAL}, load_module=lambda name: False)


def test_gather_missing_nfnetlink_socket() -> None:
    def open_socket() -> t.Any:
        return FakeSocket({}, fail_open=errno.EPROTONOSUPPORT)

    with pytest.raises(ConntrackModuleError, match="no nfnetlink"):
        cf.gather(kernel_release="6.18.44", read=reader(SYSCTLS), open_socket=open_socket, nfqueue_reader=lambda: None)


def test_gather_family_filter_skips_comparison() -> None:
    facts, _loaded = run_gather({IPCTNL_MSG_CT_GET: {(10, 17, -1): 2}}, family=10)
    assert facts["family"] == "ipv6"
    assert facts["discrepancy"]["value"] is None


def test_gather_thresholds_none_values_keep_defaults() -> None:
    facts, _loaded = run_gather({IPCTNL_MSG_CT_GET: {}}, thresholds={"unlisted": None, "unlisted_percent": None, "dying": None, "usage_percent": None})
    # 12 counted, 0 listed: under the default threshold of 100.
    assert facts["discrepancy"]["value"] == 12 and facts["discrepancy"]["findings"] == []


def test_gather_nfqueue_evidence() -> None:
    facts, _loaded = run_gather({IPCTNL_MSG_CT_GET: {}}, thresholds={"unlisted": 5}, nfqueue_reader=lambda: [dict(QUEUE3[0], waiting=12)])
    assert facts["nfqueue"][0]["waiting"] == 12
    assert [f["code"] for f in facts["discrepancy"]["findings"]] == ["unconfirmed_held_by_nfqueue"]


class CountSequence:
    """A sysctl reader whose nf_conntrack_count answers the next number of a list (then repeats the last)."""

    def __init__(self, counts: list[int]) -> None:
        self.counts = list(counts)
        self.reads = 0

    def __call__(self, key: str) -> str:
        if key != KEY_COUNT:
            return SYSCTLS[key]
        self.reads += 1
        return str(self.counts.pop(0) if len(self.counts) > 1 else self.counts[0])


# (id, counts read in order, table listed, nfqueue, expected finding codes, table_changing, expected number of readings)
TEST_GATHER_CHURN = [
    ("stable gap: confirmed, queue blamed", [160], 10, QUEUE3, ["unconfirmed_held_by_nfqueue"], False, 3 + cf.CONFIRM_READS),
    ("all listed: no confirmation reads", [10], 10, QUEUE3, [], False, 3),
    ("same count around a refill: the confirmation reads catch it", [30000, 30000, 30000, 2000, 45000], 10, QUEUE3, [], True,
     3 + cf.CONFIRM_READS),
    ("emptied between the readings and the dump: more listed than ever counted", [0, 0, 0], 56552, [], [], True, 3),
    ("moves during the table dump", [100, 40000, 40100], 20000, QUEUE3, [], True, 3),
]


@pytest.mark.parametrize(
    "counts, listed, nfqueue, codes, changing, reads",
    [c[1:] for c in TEST_GATHER_CHURN],
    ids=[c[0] for c in TEST_GATHER_CHURN],
)
def test_gather_under_churn(counts: list[int], listed: int, nfqueue: t.Any, codes: list[str], changing: bool, reads: int) -> None:
    read = CountSequence(counts)
    sleeps: list[float] = []
    facts, _loaded = run_gather(
        {IPCTNL_MSG_CT_GET: {(2, 17, -1): listed}}, read=read, nfqueue_reader=lambda: nfqueue, sleep=sleeps.append
    )
    assert [f["code"] for f in facts["discrepancy"]["findings"]] == codes
    assert facts["discrepancy"]["table_changing"] is changing
    assert read.reads == reads == len(facts["count_samples"])
    assert sleeps == [cf.CONFIRM_INTERVAL] * (reads - 3)
    assert facts["count"] == facts["count_samples"][0] and facts["count_after"] == facts["count_samples"][2]


def test_gather_interrupted_dump_is_reported() -> None:
    class Interrupting(FakeSocket):
        def dump_conntrack(self, msg: int, family: int, max_entries: int, decode: t.Any) -> DumpResult:
            result = super().dump_conntrack(msg, family, max_entries, decode)
            result.interrupted = msg == IPCTNL_MSG_CT_GET
            return result

    facts, _loaded = cf.gather(
        kernel_release="6.18.44", read=reader(SYSCTLS), nfqueue_reader=lambda: None,
        open_socket=lambda: Interrupting({IPCTNL_MSG_CT_GET: {(2, 17, -1): 1}}),
    )
    assert facts["table"]["interrupted"] is True
    assert facts["discrepancy"]["interrupted"] == ["table"]
    assert facts["discrepancy"]["table_changing"] is True
    assert facts["discrepancy"]["findings"] == []
    assert "NLM_F_DUMP_INTR" in facts["discrepancy"]["diagnosis"]
