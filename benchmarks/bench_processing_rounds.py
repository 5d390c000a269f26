"""The cost of one processing round without the network, beside a parse-only baseline.

    python benchmarks/bench_processing_rounds.py [--objects 5000] [--repeats 3]

Runs ``trikopf.processing.process_event`` for N objects with one async create handler and one
update handler, against an in-memory stand-in of the API (a PATCH merges into a copy of the body),
so that the figure is the framework's own work per round: cause detection, essence encoding,
kwargs, the handler call, building the patch. Three phases:

- ``create``: the first round of each object (the handler runs, one PATCH);
- ``noop``: a round for the body our own PATCH produced (nothing to do: the hot path);
- ``baseline``: ``json.loads(json.dumps(body))`` per object — what merely parsing each event
  costs — measured in the same run, so the ratios travel across machines.

Prints rounds/s (median, min-max over repeats) and each phase's ratio to the baseline. Asserts
nothing: figures vary with the machine and its load.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from typing import Any

import anyio

import trikopf
from trikopf.actions.patching import merge_into
from trikopf.processing import ObjectState, process_event
from trikopf.settings import OperatorSettings
from trikopf.structs import Resource, WatchEvent

RESOURCE = Resource(group="kopf.dev", version="v1", plural="kopfexamples", kind="KopfExample")


class InMemoryApi:
    """Answers PATCH like the API would: the merged object with a new resourceVersion."""

    def __init__(self) -> None:
        self.rv = 1
        self.bodies: dict[str, dict[str, Any]] = {}

    async def patch(
        self, resource: Any, name: str, patch: Any, namespace: Any = None, subresource: Any = None
    ) -> Any:
        self.rv += 1
        body = merge_into(copy.deepcopy(self.bodies[name]), patch)
        body["metadata"]["resourceVersion"] = str(self.rv)
        self.bodies[name] = body
        return body

    async def get(self, resource: Any, name: str, namespace: Any = None) -> Any:
        return self.bodies[name]


def make_body(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfExample",
        "metadata": {
            "name": f"obj-{i}",
            "namespace": "default",
            "uid": f"uid-{i}",
            "resourceVersion": "1",
            "labels": {"app": "bench"},
        },
        "spec": {"duration": "1m", "field": "value", "items": ["item1", "item2"], "size": i},
    }


async def one_run(n: int) -> dict[str, float]:
    registry = trikopf.OperatorRegistry()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(spec: Any, **_: Any) -> dict[str, Any]:
        return {"size": spec.get("size")}

    @trikopf.on.update("kopfexamples", registry=registry)
    async def update_fn(**_: Any) -> None:
        pass

    settings = OperatorSettings()
    settings.posting.enabled = False
    api = InMemoryApi()
    bodies = [make_body(i) for i in range(n)]
    for body in bodies:
        api.bodies[body["metadata"]["name"]] = body
    states = [ObjectState() for _ in bodies]

    async def rounds(type_: str, current: list[dict[str, Any]]) -> float:
        started = time.perf_counter()
        for body, state in zip(current, states, strict=True):
            await process_event(
                registry=registry, settings=settings, resource=RESOURCE,
                event=WatchEvent(type=type_, object=body), client=api, memo=None,
                poster=None, state=state,
            )  # fmt: skip
        return n / (time.perf_counter() - started)

    figures = {"create": await rounds("ADDED", bodies)}
    patched = [api.bodies[b["metadata"]["name"]] for b in bodies]
    figures["noop"] = await rounds("MODIFIED", patched)
    started = time.perf_counter()
    for body in patched:
        json.loads(json.dumps(body))
    figures["baseline"] = n / (time.perf_counter() - started)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = [anyio.run(one_run, args.objects, backend="trio") for _ in range(args.repeats)]
    baseline = statistics.median(r["baseline"] for r in runs)
    print(f"{'phase':<10} {'rounds/s':>10} {'min-max':>20} {'vs parse-only':>14}")
    for phase in ("create", "noop", "baseline"):
        values = [r[phase] for r in runs]
        median = statistics.median(values)
        spread = f"{min(values):.0f}-{max(values):.0f}"
        print(f"{phase:<10} {median:>10.0f} {spread:>20} {median / baseline:>13.2f}x")


if __name__ == "__main__":
    main()
