"""What a real API server's service registry allocates: cluster IPs and node ports.

A Service written without ``spec.clusterIP`` gets a free address of the service range
(``10.96.0.0/12``, picked at random as the real allocator does) in ``clusterIP`` and
``clusterIPs``, with ``ipFamilies``/``ipFamilyPolicy``; ``NodePort`` and ``LoadBalancer``
services get a free node port (30000 to 32767) for every port without one. An update that
leaves these out keeps the allocated values, an update that changes them is refused, and a
requested address or node port in use is refused, each with the real server's 422. Pure: the
caller passes the other services of the cluster; no I/O.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from typing import Any, Final

from trikopf.apiserver import errors
from trikopf.apiserver.errors import ApiError

__all__ = ["allocate"]

SERVICE_RANGE: Final = ipaddress.ip_network("10.96.0.0/12")
NODE_PORTS: Final = range(30000, 32768)
_NO_IP: Final = frozenset({"", None})


def allocate(
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    others: Iterable[dict[str, Any]],
    *,
    rng: random.Random | None = None,
) -> None:
    """Allocate (or keep) the service's cluster IP and node ports, in place."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    rng = rng or random.Random()
    name = str(obj.get("metadata", {}).get("name", ""))
    old_spec = old.get("spec") if old is not None else None
    old_spec = old_spec if isinstance(old_spec, dict) else {}
    uid = obj.get("metadata", {}).get("uid")
    taken = [o for o in others if o.get("metadata", {}).get("uid") != uid]
    if spec.get("type", "ClusterIP") == "ExternalName":
        return
    _cluster_ip(spec, old_spec, taken, name, rng)
    if spec.get("type") in ("NodePort", "LoadBalancer"):
        _node_ports(spec, old_spec, taken, name, rng)
    if old is None and not isinstance(obj.get("status"), dict):
        obj["status"] = {"loadBalancer": {}}


def _invalid(name: str, field: str, message: str) -> ApiError:
    return errors.invalid("Service", "", name, [("FieldValueInvalid", field, message)])


def _cluster_ip(
    spec: dict[str, Any],
    old_spec: dict[str, Any],
    taken: list[dict[str, Any]],
    name: str,
    rng: random.Random,
) -> None:
    previous = old_spec.get("clusterIP")
    if spec.get("clusterIP") in _NO_IP and previous not in _NO_IP:
        for field in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if field in old_spec and (field not in spec or spec[field] in ([], "")):
                spec[field] = old_spec[field]
    ip = spec.get("clusterIP")
    if previous not in _NO_IP and ip != previous:
        raise _invalid(
            name, "spec.clusterIPs[0]", f'Invalid value: ["{ip}"]: may not change once set'
        )
    if ip in _NO_IP:
        ip = spec["clusterIP"] = _free_ip(taken, rng)
    elif ip != "None" and ip != previous:
        try:
            address = ipaddress.ip_address(str(ip))
        except ValueError:
            raise _invalid(
                name, "spec.clusterIPs[0]", f'Invalid value: "{ip}": must be a valid IP address'
            ) from None
        if address not in SERVICE_RANGE:
            raise _invalid(
                name,
                "spec.clusterIPs",
                f'Invalid value: ["{ip}"]: failed to allocate IP {ip}: the provided IP'
                f" ({ip}) is not in the valid range. The range of valid IPs is {SERVICE_RANGE}",
            )
        if ip in _cluster_ips(taken):
            raise _invalid(
                name,
                "spec.clusterIPs",
                f'Invalid value: ["{ip}"]: failed to allocate IP {ip}: provided IP is already'
                " allocated",
            )
    spec.setdefault("clusterIPs", [ip])
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")


def _cluster_ips(services: Iterable[dict[str, Any]]) -> set[str]:
    ips = set()
    for service in services:
        spec = service.get("spec")
        if isinstance(spec, dict) and isinstance(spec.get("clusterIP"), str):
            ips.add(spec["clusterIP"])
    return ips


def _free_ip(taken: list[dict[str, Any]], rng: random.Random) -> str:
    used = _cluster_ips(taken)
    # The first address is the network's and the second the API server's own service.
    first, size = int(SERVICE_RANGE.network_address) + 2, SERVICE_RANGE.num_addresses - 3
    while True:
        candidate = str(ipaddress.ip_address(first + rng.randrange(size)))
        if candidate not in used:
            return candidate


def _node_ports(
    spec: dict[str, Any],
    old_spec: dict[str, Any],
    taken: list[dict[str, Any]],
    name: str,
    rng: random.Random,
) -> None:
    used: set[int] = set()
    for service in taken:
        other = service.get("spec")
        if isinstance(other, dict):
            for port in other.get("ports") or ():
                if isinstance(port, dict) and isinstance(port.get("nodePort"), int):
                    used.add(port["nodePort"])
    kept = {
        (p.get("port"), p.get("protocol", "TCP")): p["nodePort"]
        for p in old_spec.get("ports") or ()
        if isinstance(p, dict) and isinstance(p.get("nodePort"), int)
    }
    ports = spec.get("ports")
    for index, port in enumerate(ports if isinstance(ports, list) else ()):
        if not isinstance(port, dict):
            continue
        wanted = port.get("nodePort")
        if wanted in (None, 0):
            wanted = kept.get((port.get("port"), port.get("protocol", "TCP")))
        if wanted in (None, 0):
            free = [p for p in NODE_PORTS if p not in used]
            if not free:
                raise _invalid(name, f"spec.ports[{index}].nodePort", "no node ports left")
            wanted = rng.choice(free)
        elif not isinstance(wanted, int) or wanted not in NODE_PORTS:
            raise _invalid(
                name,
                f"spec.ports[{index}].nodePort",
                f"Invalid value: {wanted}: provided port is not in the valid range. The range"
                f" of valid ports is {NODE_PORTS.start}-{NODE_PORTS.stop - 1}",
            )
        elif wanted in used:
            raise _invalid(
                name,
                f"spec.ports[{index}].nodePort",
                f"Invalid value: {wanted}: provided port is already allocated",
            )
        port["nodePort"] = wanted
        used.add(wanted)
