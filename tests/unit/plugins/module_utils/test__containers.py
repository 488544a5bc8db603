# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._containers import (
    container_namespaces,
    namespace_identity,
    parse_crictl_containers,
    parse_crictl_inspectp,
    parse_crictl_pods,
    parse_inspect_containers,
    parse_podman_pods,
    resolve_containers,
    validate_container_spec,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "containers")


def fixture(name: str) -> str:
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


WEB_ID = "1bd3ee0a31e2507e7b91b427d94ac4be4f1a6c0696d1dabc112dea8a5dd05cc9"
POD_ID = "dcf32c23517b163e82445c7356f3d7d64c2efd8d575841135967578b51a8aaec"
INFRA_ID = "07179233e0e70f5f2b1f93ec42cf355075553bc2efb735177f9723e177832da9"
WEB_NETNS = "/run/netns/netns-70d160cb-1f01-d167-4c24-25405d7af390"
POD_NETNS = "/run/netns/netns-a50203f5-0417-bd4c-1b0b-7099d2ca1214"
KIND_POD_ID = "fce6f52914c45673e3b34d9ede950fc24951c31380818f3e256e93eb0fe1f410"
KIND_POD = "red-deployment-5bc7b56845-cgt7w"
KIND_NETNS = "/var/run/netns/cni-6c2f3f24-c065-fe4d-c5d6-849f28acc7de"
NO_DOCKER_DAEMON = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"

# file, runtime -> name, pid, runtime's netns file, host network, running
INSPECT_CASES = [
    ("podman-container-inspect-running.json", "podman", ("nfct-rt-web", 21875, WEB_NETNS, False, True)),
    ("podman-container-inspect-created.json", "podman", ("nfct-rt-stopped", 0, "", False, False)),
    ("podman-container-inspect-host-network.json", "podman", ("nfct-rt-hostnet", 22315, "", True, True)),
    ("podman-container-inspect-pod-infra.json", "podman", ("dcf32c23517b-infra", 22709, POD_NETNS, False, True)),
    ("podman-container-inspect-in-pod.json", "podman", ("nfct-rt-pod-app", 22743, POD_NETNS, False, True)),
    ("docker-container-inspect.json", "docker", ("dazzling_wiles", 3931, "/var/run/docker/netns/0104b31b0ec0",
                                                 False, True)),
]


@pytest.mark.parametrize("name, runtime, expected", INSPECT_CASES)
def test_parse_inspect_containers(name, runtime, expected):
    first = parse_inspect_containers(fixture(name), runtime)[0]
    assert (first.name, first.pid, first.runtime_netns, first.host_network, first.running) == expected
    assert first.runtime == runtime and first.kind == "container" and len(first.id) == 64


def test_parse_docker_inspect_of_two_containers():
    names = [s.name for s in parse_inspect_containers(fixture("docker-container-inspect.json"), "docker")]
    assert names == ["dazzling_wiles", "elasticsearch"]


@pytest.mark.parametrize("text", [
    fixture("podman-pod-inspect.json"),  # podman 4: one object
    "[" + fixture("podman-pod-inspect.json") + "]",  # podman 5 prints the same objects in an array
])
def test_parse_podman_pods(text):
    (pod,) = parse_podman_pods(text)
    assert (pod.id, pod.name, pod.infra_id, pod.ready) == (POD_ID, "nfct-rt-pod", INFRA_ID, True)


def test_parse_crictl_pods_and_inspectp():
    (pod,) = parse_crictl_pods(fixture("crictl-pods.json"))
    assert (pod.id, pod.name, pod.namespace, pod.ready) == (KIND_POD_ID, KIND_POD, "test-ns-fc5ef8f4", True)
    sandbox = parse_crictl_inspectp(fixture("crictl-inspectp.json"))
    assert sandbox.name == f"test-ns-fc5ef8f4/{KIND_POD}"
    assert (sandbox.kind, sandbox.id, sandbox.pid, sandbox.runtime_netns) == ("pod", KIND_POD_ID, 6075, KIND_NETNS)
    assert sandbox.running and not sandbox.host_network


def test_parse_crictl_inspectp_host_network_and_closed_netns():
    data = json.loads(fixture("crictl-inspectp.json"))
    data["status"]["linux"]["namespaces"]["options"]["network"] = "NODE"
    data["info"]["netNamespaceClosed"] = True
    sandbox = parse_crictl_inspectp(json.dumps(data))
    assert sandbox.host_network and sandbox.runtime_netns == ""


def test_parse_crictl_containers():
    (container,) = parse_crictl_containers(fixture("crictl-ps-exited.json"))
    assert container.name == "nydus-container" and not container.running
    assert container.sandbox_id == "2ae536d3481130d8a47a05fb6ffeb303cb3d57b29e8744d3ffcbbc27377ece3d"


@pytest.mark.parametrize("parser", [
    lambda text: parse_inspect_containers(text, "podman"), parse_podman_pods, parse_crictl_pods,
    parse_crictl_containers, parse_crictl_inspectp,
])
def test_parsers_refuse_what_is_not_json(parser):
    with pytest.raises(ConntrackModuleError, match="cannot parse"):
        parser("Error: something\n")


def test_inspect_parser_refuses_an_object():
    with pytest.raises(ConntrackModuleError, match="JSON array"):
        parse_inspect_containers("{}", "docker")


@pytest.mark.parametrize("spec, valid", [
    ("web", True), ("nfct-rt-pod", True), ("1bd3ee0a", True), ("kube-system/coredns-5d78c9869d-x2x8k", True),
    ("my_app.v2", True), ("-a", False), ("", False), ("a b", False), ("a/b/c", False), ("/web", False),
    ("web;id", False), ("x" * 254, False), (None, False), (["web"], False),
])
def test_validate_container_spec(spec, valid):
    if valid:
        assert validate_container_spec(spec) == spec
    else:
        with pytest.raises(ConntrackModuleError, match="is not a container or pod name"):
            validate_container_spec(spec)


class FakeHost:
    """The runtimes' CLIs as a table of argument lists; anything else is "no such" object."""

    def __init__(self, installed, answers):
        self.installed = installed
        self.answers = answers
        self.ran = []

    def which(self, name, opt_dirs):
        return f"/usr/bin/{name}" if name in self.installed else None

    def run(self, argv):
        self.ran.append(argv)
        key = tuple(argv)
        if key in self.answers:
            return self.answers[key]
        return 125, "[]", f"Error: no such object {argv[-1]}"


def inspect(runtime, spec, text):
    return {("/usr/bin/" + runtime, "container", "inspect", "--", spec): (0, text, "")}


PODMAN_POD = {
    ("/usr/bin/podman", "pod", "inspect", "--", "nfct-rt-pod"): (0, fixture("podman-pod-inspect.json"), ""),
    **inspect("podman", INFRA_ID, fixture("podman-container-inspect-pod-infra.json")),
}
DOCKER_DOWN = {("/usr/bin/docker", "container", "inspect", "--", "nfct-rt-web"): (1, "[]", NO_DOCKER_DAEMON)}
KIND = {
    ("/usr/bin/crictl", "pods", "-o", "json"): (0, fixture("crictl-pods.json"), ""),
    ("/usr/bin/crictl", "ps", "-o", "json"): (0, '{"containers": []}', ""),
    ("/usr/bin/crictl", "inspectp", "-o", "json", "--", KIND_POD_ID): (0, fixture("crictl-inspectp.json"), ""),
}

# installed runtimes, their answers, name -> runtime, kind, id, pid, netns_path, display_name, unanswered
RESOLVE_CASES = [
    (["podman"], inspect("podman", "nfct-rt-web", fixture("podman-container-inspect-running.json")), "nfct-rt-web",
     ("podman", "container", WEB_ID, 21875, WEB_NETNS, "podman container nfct-rt-web", 0)),
    (["podman", "docker"], {**inspect("podman", "nfct-rt-web", fixture("podman-container-inspect-running.json")),
                            **DOCKER_DOWN}, "nfct-rt-web",
     ("podman", "container", WEB_ID, 21875, WEB_NETNS, "podman container nfct-rt-web", 1)),
    (["podman"], PODMAN_POD, "nfct-rt-pod", ("podman", "pod", POD_ID, 22709, POD_NETNS, "podman pod nfct-rt-pod", 0)),
    (["podman"], inspect("podman", "nfct-rt-pod-app", fixture("podman-container-inspect-in-pod.json")),
     "nfct-rt-pod-app", ("podman", "container", "bbce10559032e49a8761e3a806e439384cd20fa20f1d9da58068f204525a247d",
                         22743, POD_NETNS, "podman container nfct-rt-pod-app", 0)),
    (["docker", "nerdctl"], inspect("docker", "dazzling_wiles", json.dumps(
        json.loads(fixture("docker-container-inspect.json"))[:1])), "dazzling_wiles",
     ("docker", "container", "3a73d078dfe897882443cb09785b9ac896a989cc4b8c721c61e08596ae642b4a", 3931,
      "/var/run/docker/netns/0104b31b0ec0", "docker container dazzling_wiles", 0)),
    (["crictl"], KIND, KIND_POD, ("crictl", "pod", KIND_POD_ID, 6075, KIND_NETNS,
                                  f"crictl Kubernetes pod test-ns-fc5ef8f4/{KIND_POD}", 0)),
    (["crictl"], KIND, f"test-ns-fc5ef8f4/{KIND_POD}", ("crictl", "pod", KIND_POD_ID, 6075, KIND_NETNS,
                                                        f"crictl Kubernetes pod test-ns-fc5ef8f4/{KIND_POD}", 0)),
    (["crictl"], KIND, "fce6f529", ("crictl", "pod", KIND_POD_ID, 6075, KIND_NETNS,
                                    f"crictl Kubernetes pod test-ns-fc5ef8f4/{KIND_POD}", 0)),
]


@pytest.mark.parametrize("installed, answers, spec, expected", RESOLVE_CASES)
def test_resolve_containers(installed, answers, spec, expected):
    (result,) = resolve_containers(FakeHost(installed, answers), [spec])
    assert result["name"] == spec
    assert (result["runtime"], result["kind"], result["id"], result["pid"], result["netns_path"],
            result["display_name"], len(result["unanswered"])) == expected


def test_resolve_a_kubernetes_container_through_its_pod():
    # The real exited-container listing, running and moved onto the real kind pod.
    listing = json.loads(fixture("crictl-ps-exited.json"))
    listing["containers"][0].update(state="CONTAINER_RUNNING", podSandboxId=KIND_POD_ID)
    answers = dict(KIND)
    answers[("/usr/bin/crictl", "ps", "-o", "json")] = (0, json.dumps(listing), "")
    (result,) = resolve_containers(FakeHost(["crictl"], answers), ["nydus-container"])
    assert (result["kind"], result["id"], result["netns_path"]) == ("pod", KIND_POD_ID, KIND_NETNS)


def test_crictl_lists_once_for_several_names():
    host = FakeHost(["crictl"], KIND)
    resolve_containers(host, [KIND_POD, "fce6f529"])
    assert sum(argv[1] == "pods" for argv in host.ran) == 1


def test_an_earlier_stopped_sandbox_of_the_same_pod_does_not_compete():
    pods = json.loads(fixture("crictl-pods.json"))
    stale = dict(pods["items"][0], id="0" * 64, state="SANDBOX_NOTREADY")
    pods["items"].append(stale)
    stale_status = json.loads(fixture("crictl-inspectp.json"))
    stale_status["status"].update(id="0" * 64, state="SANDBOX_NOTREADY")
    stale_status["info"]["pid"] = 0
    answers = dict(KIND)
    answers[("/usr/bin/crictl", "pods", "-o", "json")] = (0, json.dumps(pods), "")
    answers[("/usr/bin/crictl", "inspectp", "-o", "json", "--", "0" * 64)] = (0, json.dumps(stale_status), "")
    (result,) = resolve_containers(FakeHost(["crictl"], answers), [KIND_POD])
    assert result["id"] == KIND_POD_ID


# installed, answers, name, the error's message must match
REFUSE_CASES = [
    (["podman", "docker"], {**inspect("podman", "web", fixture("podman-container-inspect-running.json")),
                            **inspect("docker", "web", json.dumps(
                                json.loads(fixture("docker-container-inspect.json"))[:1]))},
     "web", r"'web' is ambiguous: it matches podman container nfct-rt-web .*; docker container dazzling_wiles"),
    (["podman"], {("/usr/bin/podman", "container", "inspect", "--", "1b"): (
        125, "[]", 'Error: inspecting object: more than one result for container ID prefix "1b"')},
     "1b", r"'1b' is ambiguous: podman says .*more than one result for container ID prefix"),
    (["podman", "docker"], DOCKER_DOWN, "nfct-rt-web",
     r"no running container or pod named 'nfct-rt-web' \(runtimes asked: podman, docker; no answer from docker: "
     r"Cannot connect to the Docker daemon"),
    ([], {}, "web", r"no running container or pod named 'web' \(runtimes asked: none installed\)"),
    (["podman"], inspect("podman", "stopped", fixture("podman-container-inspect-created.json")), "stopped",
     r"podman container nfct-rt-stopped \('stopped'\) is not running"),
    (["podman"], inspect("podman", "hostnet", fixture("podman-container-inspect-host-network.json")), "hostnet",
     r"uses the host's network namespace: debug the host itself"),
    (["podman"], {("/usr/bin/podman", "pod", "inspect", "--", "p"): (
        0, json.dumps(dict(json.loads(fixture("podman-pod-inspect.json")), InfraContainerID="")), "")},
     "p", r"podman pod nfct-rt-pod \('p'\) has no infra container"),
]


@pytest.mark.parametrize("installed, answers, spec, message", REFUSE_CASES)
def test_resolve_containers_refuses(installed, answers, spec, message):
    with pytest.raises(ConntrackModuleError, match=message):
        resolve_containers(FakeHost(installed, answers), [spec])


def test_ambiguous_crictl_id_prefix():
    pods = json.loads(fixture("crictl-pods.json"))
    twin_id = KIND_POD_ID[:8] + "0" * 56
    pods["items"].append(dict(pods["items"][0], id=twin_id, metadata=dict(pods["items"][0]["metadata"], name="b")))
    twin = json.loads(fixture("crictl-inspectp.json"))
    twin["status"].update(id=twin_id, metadata=dict(twin["status"]["metadata"], name="b"))
    twin["info"]["runtimeSpec"]["linux"]["namespaces"][-1]["path"] = "/var/run/netns/cni-other"
    answers = dict(KIND)
    answers[("/usr/bin/crictl", "pods", "-o", "json")] = (0, json.dumps(pods), "")
    answers[("/usr/bin/crictl", "inspectp", "-o", "json", "--", twin_id)] = (0, json.dumps(twin), "")
    with pytest.raises(ConntrackModuleError, match=r"'fce6f529' is ambiguous: .*crictl pod test-ns-fc5ef8f4/b"):
        resolve_containers(FakeHost(["crictl"], answers), ["fce6f529"])


def test_unknown_runtime_is_refused():
    with pytest.raises(ConntrackModuleError, match="unknown container runtime 'lxc'"):
        resolve_containers(FakeHost([], {}), ["web"], runtimes=["podman", "lxc"])


class Stat:
    def __init__(self, dev, ino):
        self.st_dev, self.st_ino = dev, ino


RESOLVED = {"netns_path": WEB_NETNS, "pid": 21875, "display_name": "podman container nfct-rt-web"}


def test_namespace_identity_same_namespace():
    assert namespace_identity(RESOLVED, stat=lambda path: Stat(4, 4026532306)) == (4, 4026532306)


def test_namespace_identity_restarted_container():
    inodes = {WEB_NETNS: 4026532306, "/proc/21875/ns/net": 4026531840}
    with pytest.raises(ConntrackModuleError, match="different network namespaces: it was restarted"):
        namespace_identity(RESOLVED, stat=lambda path: Stat(4, inodes[path]))


def test_namespace_identity_removed_container():
    def gone(path):
        raise FileNotFoundError(2, "No such file or directory", path)

    with pytest.raises(ConntrackModuleError, match="namespace of podman container nfct-rt-web is gone") as caught:
        namespace_identity(RESOLVED, stat=gone)
    assert caught.value.details == {"reason": "vanished"}


def running_here(name):
    """podman's answer for a running container whose process is this test's: its namespace is really there."""
    return json.dumps([{"Id": f"{name}-id", "Name": name, "State": {"Pid": os.getpid(), "Running": True},
                        "HostConfig": {"NetworkMode": "bridge"}, "NetworkSettings": {"SandboxKey": ""}}])


def test_enable_takes_each_container_namespace_once_with_its_names():
    docker_down = {("/usr/bin/docker", "container", "inspect", "--", "web"): (1, "[]", NO_DOCKER_DAEMON)}
    host = FakeHost(["podman", "docker"], {**inspect("podman", "web", running_here("web")), **docker_down})
    found, warnings = container_namespaces(host, ["web"])
    names = {"name": "web", "display_name": "podman container web", "runtime": "podman", "kind": "container",
             "id": "web-id"}
    assert found == {f"/proc/{os.getpid()}/ns/net": names}
    assert len(warnings) == 1 and warnings[0].startswith("'web' was found, but docker: Cannot connect")
    assert container_namespaces(host, []) == ({}, [])


@pytest.mark.parametrize("names, in_netns", [(["web", "web-again"], False), (["web"], True)],
                         ids=["two names", "a name and its path in netns"])
def test_enable_refuses_one_namespace_given_twice(names, in_netns):
    netns = (f"/proc/{os.getpid()}/ns/net",) if in_netns else ()
    host = FakeHost(["podman"], {**inspect("podman", "web", running_here("web")),
                                 **inspect("podman", "web-again", running_here("web-again"))})
    with pytest.raises(ConntrackModuleError, match="is in the network namespace of .*: give that namespace once"):
        container_namespaces(host, names, netns)
