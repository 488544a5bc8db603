# The fact store side of an AWX job (tests/ee/run.sh): what AWX's start_fact_cache / finish_fact_cache do around a
# run, for a jsonfile fact cache directory.
#   factcache.py pass-in  STORE CACHE_DIR HOST...   write each host's stored facts into the cache, then a stamp
#   factcache.py read-back STORE CACHE_DIR HOST...  save the cache entries written after the stamp to the store
# STORE holds one plain JSON object of facts per host (AWX keeps them in its database). ansible-core 2.19 and later
# no longer read or write the plain `<host>` files of earlier versions: their jsonfile entries are `s1_<host>`
# holding {"__payload__": "<JSON with type tags>"} (ansible/ansible#85874, ansible/ansible-runner#1441). Both
# shapes are written on the way in; on the way back either is read, and the tags are dropped.
# Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import json
import os
import sys

PREFIX = "s1_"
STAMP = ".passed-in"


def untag(value):
    if isinstance(value, dict):
        if "__ansible_type" in value and "value" in value:
            return untag(value["value"])
        return {key: untag(item) for key, item in value.items()}
    if isinstance(value, list):
        return [untag(item) for item in value]
    return value


def pass_in(store, cache, hosts):
    os.makedirs(cache, exist_ok=True)
    for host in hosts:
        path = os.path.join(store, host)
        facts = json.load(open(path, encoding="utf-8")) if os.path.exists(path) else {}
        with open(os.path.join(cache, host), "w", encoding="utf-8") as handle:
            json.dump(facts, handle)
        with open(os.path.join(cache, PREFIX + host), "w", encoding="utf-8") as handle:
            json.dump({"__payload__": json.dumps(facts)}, handle)
    with open(os.path.join(cache, STAMP), "w", encoding="utf-8") as handle:
        handle.write("\n")


def read_back(store, cache, hosts):
    stamp = os.stat(os.path.join(cache, STAMP)).st_mtime
    saved = []
    for host in hosts:
        for name in (PREFIX + host, host):
            path = os.path.join(cache, name)
            if os.path.exists(path) and os.stat(path).st_mtime > stamp:
                data = json.load(open(path, encoding="utf-8"))
                if "__payload__" in data:
                    data = json.loads(data["__payload__"])
                with open(os.path.join(store, host), "w", encoding="utf-8") as handle:
                    json.dump(untag(data), handle, sort_keys=True)
                saved.append(host)
                break
    print("facts saved back: %s" % (" ".join(saved) or "none"))


def main():
    command, store, cache, hosts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    {"pass-in": pass_in, "read-back": read_back}[command](store, cache, hosts)


if __name__ == "__main__":
    main()
