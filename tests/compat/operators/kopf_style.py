"""A typical Kopf operator, unchanged but for its import line."""

import logging

import trikopf as kopf


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger, **_):
    # The settings Kopf users change in startup handlers, under Kopf's own names.
    settings.persistence.finalizer = "compat.example.com/finalizer"
    settings.posting.level = logging.INFO
    settings.batching.worker_limit = 10
    settings.batching.batch_window = 0.0
    settings.execution.max_workers = 4
    settings.watching.server_timeout = 120
    settings.peering.standalone = True
    memo.greeting = "hello"
    # Every object's memo is a shallow copy of this one: these lists are shared by all.
    memo.created, memo.deleted, memo.optional_deleted, memo.events = [], [], [], []
    logger.info("configured")


@kopf.on.cleanup()
async def cleanup_fn(memo: kopf.Memo, **_):
    memo.cleaned_up = True


@kopf.on.create("kopfexamples")
def create_fn(
    spec,
    name,
    namespace,
    meta,
    labels,
    annotations,
    body,
    memo,
    reason,
    retry,
    started,
    runtime,
    resource,
    patch,
    logger,
    **kwargs,
):
    kopf.info(body, reason="Greeting", message=f"{memo.greeting}, {name}")
    memo.created.append(name)
    patch.metadata.labels["handled-by"] = "compat"
    child = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"size": str(spec.get("size"))}}
    kopf.adopt(child)
    return {
        "message": f"{memo.greeting}, {name}",
        "namespace": namespace,
        "uid_matches": meta.uid == body["metadata"]["uid"],
        "reason": reason,
        "is_create": reason == kopf.Reason.CREATE,
        "retry": retry,
        "has_started": started is not None and runtime.total_seconds() >= 0,
        "resource": resource.plural,
        "label": labels.get("app"),
        "annotation": annotations.get("note"),
        "child": child,
    }


@kopf.on.resume("kopfexamples")
def resume_fn(reason, **_):
    return {"reason": reason}


@kopf.on.update("kopfexamples", field="spec.size")
def size_changed(old, new, diff, **_):
    return {"old": old, "new": new, "ops": [item[0] for item in diff]}


@kopf.on.field("kopfexamples", field="spec.colour")
def colour_fn(old, new, **_):
    return {"old": old, "new": new}


@kopf.on.create("kopfexamples", id="flaky", backoff=0.1, retries=5)
def flaky_fn(retry, **_):
    if retry < 2:
        raise kopf.TemporaryError("not yet", delay=0.05)
    return {"attempts": retry + 1}


@kopf.on.create("kopfexamples", labels={"fail": kopf.PRESENT})
def failing_fn(**_):
    raise kopf.PermanentError("this one cannot work")


@kopf.on.create(
    "kopfexamples",
    when=kopf.all_(
        [lambda spec, **_: spec.get("size", 0) > 1, kopf.not_(lambda labels, **_: "fail" in labels)]
    ),
)
def big_fn(spec, **_):
    return {"size": spec["size"]}


@kopf.on.event("kopfexamples")
def event_fn(type, event, memo, **_):
    memo.events.append(type)


@kopf.on.delete("kopfexamples")
def delete_fn(name, memo, **_):
    memo.deleted.append(name)


@kopf.on.delete("kopfexamples", optional=True)
def optional_delete_fn(name, memo, **_):
    memo.optional_deleted.append(name)
