# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Find the network namespace of a container or pod, given its name or id, through the runtime that runs it.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

The runtimes asked: podman (containers, and pods, whose infra container holds the namespace), docker, nerdctl
(containerd's docker-compatible CLI) and crictl (Kubernetes pods and their containers on containerd or CRI-O).
The parsers read each runtime's JSON and are pure; :func:`resolve_containers` runs the CLIs through a host object
with ``which(name, opt_dirs)`` and ``run(argv) -> (rc, stdout, stderr)`` (``_host.ModuleHost`` or ``ProcessHost``).
"""

from __future__ import annotations

import json
import os
import re
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError

RUNTIMES = ("podman", "docker", "nerdctl", "crictl")
# crictl and nerdctl are usually installed by hand or by a Kubernetes distribution, outside the packaged PATH.
RUNTIME_DIRS = ["/usr/local/bin", "/usr/local/sbin", "/usr/bin", "/usr/sbin", "/bin", "/sbin", "/opt/bin"]

# Container names of docker/podman/nerdctl, Kubernetes names (optionally "namespace/name") and ids (or id prefixes).
# A leading "-" would read as an option of the runtime's CLI.
_SPEC_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,252})?$")


class Sandbox(t.NamedTuple):
    """What a runtime says about one container or pod: enough to find and check its network namespace."""

    runtime: str
    kind: str  # "container" or "pod"
    id: str
    name: str
    pid: int  # 0 when not running
    runtime_netns: str  # the runtime's bind-mounted namespace file, "" when it names none
    host_network: bool
    running: bool


class PodRef(t.NamedTuple):
    id: str
    name: str
    namespace: str  # Kubernetes namespace; "" for podman pods
    infra_id: str  # podman's infra container; "" for Kubernetes sandboxes
    ready: bool


class CriContainer(t.NamedTuple):
    id: str
    name: str
    sandbox_id: str
    running: bool


def validate_container_spec(spec: object) -> str:
    """The check every name or id passes before it reaches a runtime's command line."""
    if not isinstance(spec, str) or not _SPEC_RE.match(spec):
        raise ConntrackModuleError(
            f"{spec!r} is not a container or pod name or id: use letters, digits and ._- "
            "(a Kubernetes pod may be given as namespace/name)"
        )
    return spec


def _load(text: str, what: str) -> t.Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConntrackModuleError(f"cannot parse the output of {what} as JSON: {exc}") from exc


def _mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def parse_inspect_containers(text: str, runtime: str) -> list[Sandbox]:
    """``podman|docker|nerdctl container inspect``: a JSON array of docker-style container objects."""
    data = _load(text, f"{runtime} container inspect")
    if not isinstance(data, list):
        raise ConntrackModuleError(f"{runtime} container inspect did not answer a JSON array")
    found = []
    for item in data:
        item = _mapping(item)
        state = _mapping(item.get("State"))
        pid = int(state.get("Pid") or 0)
        network_mode = str(_mapping(item.get("HostConfig")).get("NetworkMode") or "")
        found.append(Sandbox(
            runtime=runtime, kind="container", id=str(item.get("Id") or ""),
            # docker prefixes names with "/"; podman and nerdctl do not.
            name=str(item.get("Name") or "").lstrip("/"), pid=pid,
            runtime_netns=str(_mapping(item.get("NetworkSettings")).get("SandboxKey") or ""),
            host_network=network_mode == "host", running=bool(state.get("Running")) and pid > 0,
        ))
    return found


def parse_podman_pods(text: str) -> list[PodRef]:
    """``podman pod inspect``: one object (podman 4) or an array of them (podman 5)."""
    data = _load(text, "podman pod inspect")
    items = data if isinstance(data, list) else [data]
    pods = []
    for item in items:
        item = _mapping(item)
        pods.append(PodRef(id=str(item.get("Id") or ""), name=str(item.get("Name") or ""), namespace="",
                           infra_id=str(item.get("InfraContainerID") or ""),
                           ready=str(item.get("State") or "").lower() in ("running", "degraded")))
    return pods


def parse_crictl_pods(text: str) -> list[PodRef]:
    """``crictl pods -o json``: {"items": [{"id", "metadata": {"name", "namespace"}, "state"}]}."""
    data = _mapping(_load(text, "crictl pods"))
    pods = []
    for item in data.get("items") or []:
        item = _mapping(item)
        meta = _mapping(item.get("metadata"))
        pods.append(PodRef(id=str(item.get("id") or ""), name=str(meta.get("name") or ""),
                           namespace=str(meta.get("namespace") or ""), infra_id="",
                           ready=item.get("state") == "SANDBOX_READY"))
    return pods


def parse_crictl_containers(text: str) -> list[CriContainer]:
    """``crictl ps -o json``: {"containers": [{"id", "podSandboxId", "metadata": {"name"}, "state"}]}."""
    data = _mapping(_load(text, "crictl ps"))
    return [CriContainer(id=str(item.get("id") or ""), name=str(_mapping(item.get("metadata")).get("name") or ""),
                         sandbox_id=str(item.get("podSandboxId") or ""),
                         running=item.get("state") == "CONTAINER_RUNNING")
            for item in (_mapping(i) for i in data.get("containers") or [])]


def parse_crictl_inspectp(text: str) -> Sandbox:
    """``crictl inspectp -o json``: the sandbox's state and namespace mode under ``status``; its pid and OCI
    runtime spec (where the network namespace's path is) under ``info``, which CRI runtimes fill as they like."""
    data = _mapping(_load(text, "crictl inspectp"))
    status = _mapping(data.get("status"))
    info = _mapping(data.get("info"))
    meta = _mapping(status.get("metadata"))
    options = _mapping(_mapping(_mapping(status.get("linux")).get("namespaces")).get("options"))
    spec_namespaces = _mapping(_mapping(info.get("runtimeSpec")).get("linux")).get("namespaces") or []
    netns = next((str(ns.get("path") or "") for ns in map(_mapping, spec_namespaces) if ns.get("type") == "network"),
                 "")
    pid = int(info.get("pid") or 0)
    name = str(meta.get("name") or "")
    if meta.get("namespace"):
        name = f"{meta['namespace']}/{name}"
    return Sandbox(runtime="crictl", kind="pod", id=str(status.get("id") or ""), name=name, pid=pid,
                   runtime_netns="" if info.get("netNamespaceClosed") else netns,
                   host_network=options.get("network") == "NODE",
                   running=status.get("state") == "SANDBOX_READY" and pid > 0)


def namespace_path(sandbox: Sandbox) -> str:
    """The runtime's bind-mounted namespace file when it names one (it outlives a restarted process), else the
    namespace of the sandbox's process."""
    return sandbox.runtime_netns or f"/proc/{sandbox.pid}/ns/net"


def _result(spec: str, sandbox: Sandbox) -> dict:
    if not sandbox.running:
        raise ConntrackModuleError(f"{sandbox.runtime} {sandbox.kind} {sandbox.name} ({spec!r}) is not running: "
                                   "it has no network namespace to debug")
    if sandbox.host_network:
        raise ConntrackModuleError(
            f"{sandbox.runtime} {sandbox.kind} {sandbox.name} ({spec!r}) uses the host's network namespace: "
            "debug the host itself (no netns) instead")
    label = "Kubernetes pod" if sandbox.runtime == "crictl" and sandbox.kind == "pod" else sandbox.kind
    return {"name": spec, "runtime": sandbox.runtime, "kind": sandbox.kind, "id": sandbox.id, "pid": sandbox.pid,
            "netns_path": namespace_path(sandbox), "display_name": f"{sandbox.runtime} {label} {sandbox.name}"}


class RuntimeUnanswered(Exception):
    """A runtime's CLI is installed but could not answer (daemon down, no permission): the name may be there."""


def _answer(host, argv: list[str]) -> str | None:
    """stdout of a lookup; None when the runtime says the object does not exist."""
    rc, out, err = host.run(argv)
    if rc == 0:
        return out
    message = (err or out).strip()
    if "no such" in message.lower():
        return None
    if "more than one" in message.lower() or "multiple ids" in message.lower():
        # An id prefix that several containers share: the runtime refuses to choose, and so do we.
        raise ConntrackModuleError(f"{argv[-1]!r} is ambiguous: {os.path.basename(argv[0])} says "
                                   f"{message.splitlines()[-1]}. Give a full id or a unique name.")
    raise RuntimeUnanswered(f"{message.splitlines()[-1] if message else 'no message'} (rc {rc})")


def _lookup_inspect(host, cli: str, runtime: str, spec: str) -> list[Sandbox]:
    """podman, docker and nerdctl: the container ``spec``, and for podman the pod ``spec`` (its infra container)."""
    found = []
    out = _answer(host, [cli, "container", "inspect", "--", spec])
    if out is not None:
        found.extend(parse_inspect_containers(out, runtime))
    if runtime != "podman":
        return found
    out = _answer(host, [cli, "pod", "inspect", "--", spec])
    for pod in parse_podman_pods(out) if out is not None else []:
        if not pod.infra_id:
            raise ConntrackModuleError(f"podman pod {pod.name} ({spec!r}) has no infra container, so no network "
                                       "namespace of its own: name one of its containers instead")
        infra = _answer(host, [cli, "container", "inspect", "--", pod.infra_id])
        for sandbox in parse_inspect_containers(infra or "[]", runtime):
            found.append(sandbox._replace(kind="pod", id=pod.id, name=pod.name))
    return found


def _crictl_matches(spec: str, name: str, namespace: str, object_id: str) -> bool:
    return spec in (name, f"{namespace}/{name}") or object_id.startswith(spec)


def _lookup_crictl(host, cli: str, spec: str, listings: dict) -> list[Sandbox]:
    """Kubernetes: a pod by name, namespace/name or id prefix, or a container (whose pod holds the namespace)."""
    if "pods" not in listings:
        listings["pods"] = parse_crictl_pods(_answer(host, [cli, "pods", "-o", "json"]) or "{}")
        listings["containers"] = parse_crictl_containers(_answer(host, [cli, "ps", "-o", "json"]) or "{}")
    sandbox_ids = [pod.id for pod in listings["pods"] if _crictl_matches(spec, pod.name, pod.namespace, pod.id)]
    sandbox_ids += [c.sandbox_id for c in listings["containers"] if _crictl_matches(spec, c.name, "", c.id)]
    found = []
    for sandbox_id in dict.fromkeys(sandbox_ids):
        out = _answer(host, [cli, "inspectp", "-o", "json", "--", sandbox_id])
        if out is not None:
            found.append(parse_crictl_inspectp(out))
    return found


def _runtimes_present(host, runtimes: t.Iterable[str]) -> dict[str, str]:
    present = {}
    for runtime in runtimes:
        if runtime not in RUNTIMES:
            raise ConntrackModuleError(f"unknown container runtime {runtime!r}: choose from {', '.join(RUNTIMES)}")
        cli = host.which(runtime, RUNTIME_DIRS)
        if cli:
            present[runtime] = cli
    return present


def _pick(spec: str, found: list[Sandbox], asked: list[str], unanswered: list[str]) -> Sandbox:
    # A stopped namesake (a Kubernetes pod's earlier sandbox) does not compete with a running one, and one
    # namespace reached twice (a podman pod and its infra container's name) is not a choice to make.
    candidates = [s for s in found if s.running] or found
    distinct = list({namespace_path(s) if s.running else (s.runtime, s.id): s for s in candidates}.values())
    if len(distinct) == 1:
        return distinct[0]
    tried = ", ".join(asked) if asked else "none installed"
    if distinct:
        listing = "; ".join(f"{s.runtime} {s.kind} {s.name} (id {s.id[:12]})" for s in distinct)
        raise ConntrackModuleError(f"{spec!r} is ambiguous: it matches {listing}. Give a full id or a unique name.",
                                   runtimes_tried=asked)
    detail = f"; no answer from {'; '.join(unanswered)}" if unanswered else ""
    raise ConntrackModuleError(f"no running container or pod named {spec!r} (runtimes asked: {tried}{detail})",
                               runtimes_tried=asked)


def resolve_containers(host, specs: t.Iterable[str], runtimes: t.Iterable[str] = RUNTIMES) -> list[dict]:
    """Each name or id of ``specs`` as ``{name, runtime, kind, id, pid, netns_path, display_name, unanswered}``.

    Every installed runtime of ``runtimes`` is asked, so that a name known to two of them is refused as ambiguous
    instead of silently meaning one. ``unanswered`` lists the runtimes that are installed but did not answer
    (a docker CLI without its daemon, for one): a name found elsewhere is used, and the caller may warn.
    """
    specs = [validate_container_spec(spec) for spec in specs]
    present = _runtimes_present(host, runtimes)
    listings: dict = {}
    resolved = []
    for spec in specs:
        found: list[Sandbox] = []
        unanswered: list[str] = []
        for runtime, cli in present.items():
            try:
                if runtime == "crictl":
                    found.extend(_lookup_crictl(host, cli, spec, listings))
                else:
                    found.extend(_lookup_inspect(host, cli, runtime, spec))
            except RuntimeUnanswered as exc:
                unanswered.append(f"{runtime}: {exc}")
        result = _result(spec, _pick(spec, found, list(present), unanswered))
        result["unanswered"] = unanswered
        resolved.append(result)
    return resolved


def namespace_identity(resolved: dict, stat: t.Callable[[str], os.stat_result] = os.stat) -> tuple[int, int]:
    """(device, inode) of the resolved namespace, after checking that the runtime's path and the sandbox's process
    still mean the same namespace: a container restarted or removed since it was resolved fails here."""
    try:
        by_path = stat(resolved["netns_path"])
        by_pid = stat(f"/proc/{resolved['pid']}/ns/net")
    except OSError as exc:
        raise ConntrackModuleError(f"the network namespace of {resolved['display_name']} is gone "
                                   f"({exc.filename}: {exc.strerror})", reason="vanished") from exc
    identity = (by_path.st_dev, by_path.st_ino)
    if identity != (by_pid.st_dev, by_pid.st_ino):
        raise ConntrackModuleError(f"{resolved['netns_path']} and process {resolved['pid']} of "
                                   f"{resolved['display_name']} are in different network namespaces: "
                                   "it was restarted; resolve it again", reason="vanished")
    return identity


def container_namespaces(host, names: t.Iterable[str], netns: t.Iterable[str] = ()) -> tuple[dict, list]:
    """{namespace path: the names of its container} for each container or pod name, resolved through the runtime
    that runs it, and warnings about installed runtimes that did not answer. One namespace given twice is refused."""
    found: dict = {}
    warnings = []
    for resolved in resolve_containers(host, names) if names else []:
        # The runtime's namespace file and the container's process must still agree: a container restarted
        # meanwhile is refused rather than debugged in a namespace it left.
        namespace_identity(resolved)
        path = resolved["netns_path"]
        if path in found or path in netns:
            other = (found.get(path) or {}).get("display_name", path)
            raise ConntrackModuleError(f"{resolved['display_name']} ({resolved['name']!r}) is in the network namespace"
                                       f" of {other}: give that namespace once")
        found[path] = {key: resolved[key] for key in ("name", "display_name", "runtime", "kind", "id")}
        warnings += [f"{resolved['name']!r} was found, but {answer}" for answer in resolved["unanswered"]]
    return found, warnings


__all__ = (
    "RUNTIMES", "CriContainer", "PodRef", "Sandbox", "container_namespaces", "namespace_identity", "namespace_path", "parse_crictl_containers",
    "parse_crictl_inspectp", "parse_crictl_pods", "parse_inspect_containers", "parse_podman_pods",
    "resolve_containers", "validate_container_spec",
)
