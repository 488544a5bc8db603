# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks what headless Chromium made of the fleet report page.

check_page.py DOM NETLOG SCREENSHOT
  DOM         the page's DOM after its script ran (chromium --dump-dom)
  NETLOG      chromium --log-net-log output: no network request started by the page
  SCREENSHOT  chromium --screenshot output: a PNG of a real size
check_page.py --control NETLOG
  the network log of a page that fetches: the check must see it
"""

from __future__ import annotations

import json
import struct
import sys
from html.parser import HTMLParser


class Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict]] = []
        self.hosts_table: dict | None = None
        self.host_rows = 0
        self.bars = 0
        self.svg = False
        self.elements: dict[str, int] = {}
        self.title = ""
        self._in_title = False
        self.ids: list[str] = []
        self.untitled_red_rows = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements[tag] = self.elements.get(tag, 0) + 1
        if attrs.get("id"):
            self.ids.append(attrs["id"])
        if tag == "tr" and "bad" in (attrs.get("class") or "").split() and not attrs.get("title"):
            self.untitled_red_rows += 1
        if tag == "table" and attrs.get("id") == "hosts":
            self.hosts_table = attrs
        if tag == "tr" and any(name == "tbody" for name, _attrs in self.stack) and any(
                t == "table" and a.get("id") == "hosts" for t, a in self.stack):
            self.host_rows += 1
        if tag == "svg" and attrs.get("id") == "reason-chart":
            self.svg = True
        if tag == "rect" and any(name == "svg" for name, _attrs in self.stack):
            self.bars += 1
        self._in_title = tag == "title" and not any(name == "svg" for name, _attrs in self.stack)
        if tag not in ("meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"):
            self.stack.append((tag, attrs))

    def handle_endtag(self, tag):
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                break
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def png_size(path: str) -> tuple[int, int]:
    with open(path, "rb") as handle:
        head = handle.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path} is not a PNG")
    return struct.unpack(">II", head[16:24])


def load_netlog(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        return json.loads(text)
    except ValueError:  # Chromium stopped before it closed the log: close the events list
        return json.loads(text.rstrip().rstrip(",") + "]}")


def page_requests(netlog: dict) -> list[str]:
    """The URLs of network requests a page started. Chromium's own background requests (time, updates, accounts,
    whatever the flags did not switch off) are started by the browser, whose initiator is "not an origin"; a
    request of a page opened from a file URL has the page's opaque origin, "null", as its initiator."""
    types = {value: name for name, value in (netlog.get("constants") or {}).get("logEventTypes", {}).items()}
    found = []
    for event in netlog.get("events", []):
        params = event.get("params") or {}
        if (types.get(event.get("type")) == "URL_REQUEST_START_JOB" and "url" in params
                and params.get("initiator") != "not an origin"):
            found.append(f"{params.get('url')} (initiator {params.get('initiator')})")
    return found


def main() -> int:
    if sys.argv[1] == "--control":
        # The check itself: a page that does fetch (from a closed loopback port) must be seen fetching.
        fetched = page_requests(load_netlog(sys.argv[2]))
        print(f"control page: {fetched}")
        return 0 if fetched else 1
    dom_path, netlog_path, shot = sys.argv[1:4]
    with open(dom_path, encoding="utf-8") as handle:
        dom = Dom()
        dom.feed(handle.read())
    failures = []
    if dom.hosts_table is None:
        failures.append("no table#hosts in the DOM")
    elif dom.hosts_table.get("data-sortable") != "ready":
        failures.append("the table's sorting script did not run (data-sortable is not 'ready'): blocked by the CSP?")
    if dom.host_rows != 12 * 2 + 1:
        failures.append(f"table#hosts has {dom.host_rows} rows, expected 25 (12 hosts x 2 namespaces + 1 failed)")
    if not dom.svg or dom.bars < 4:
        failures.append(f"no SVG bar chart (svg#reason-chart: {dom.svg}, bars: {dom.bars})")
    if dom.elements.get("script", 0) != 1:
        failures.append(f"{dom.elements.get('script', 0)} script elements: a hostile string became markup")
    if "pwned" in dom.title:
        failures.append("the hostile <script> ran")
    verdicts = [index for index, ident in enumerate(dom.ids) if ident in ("verdicts", "nothing-wrong")]
    if not verdicts or "hosts" not in dom.ids or verdicts[0] > dom.ids.index("hosts"):
        failures.append(f"the verdicts do not come before the host table (ids in order: {dom.ids})")
    if dom.untitled_red_rows:
        failures.append(f"{dom.untitled_red_rows} red row(s) without a title saying what red means")

    netlog = load_netlog(netlog_path)
    fetched = page_requests(netlog)
    if fetched:
        failures.append(f"the page fetched from the network: {fetched[:10]}")

    width, height = png_size(shot)
    if width < 800 or height < 600:
        failures.append(f"screenshot {width}x{height} is too small")

    for failure in failures:
        print(f"FAIL: {failure}")
    print(f"DOM: table#hosts {dom.host_rows} rows, sortable={dom.hosts_table and dom.hosts_table.get('data-sortable')},"
          f" chart bars {dom.bars}, scripts {dom.elements.get('script', 0)}; netlog: {len(netlog.get('events', []))}"
          f" events, {len(fetched)} request(s) by the page; screenshot {width}x{height}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
