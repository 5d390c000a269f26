from __future__ import annotations

from typing import Any

import pytest

import trikopf
from tests.registries import fresh_default_registry
from trikopf.causes import ChangeCause, Reason
from trikopf.diffs import diff
from trikopf.registry import ChangingHandler, ResourceSelector
from trikopf.structs import Resource

KOPFEXAMPLES = Resource(
    group="kopf.dev",
    version="v1",
    plural="kopfexamples",
    kind="KopfExample",
    singular="kopfexample",
    short_names=("kex",),
    categories=("all",),
    verbs=frozenset({"list", "watch", "get", "patch"}),
)
PODS = Resource(
    group="", version="v1", plural="pods", kind="Pod", singular="pod", short_names=("po",)
)
EVENTS = Resource(group="", version="v1", plural="events", kind="Event", singular="event")


def fn(**_: Any) -> None:
    pass


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("kopfexamples",), {}),
        (("kopfexample",), {}),
        (("KopfExample",), {}),
        (("kex",), {}),
        (("kopfexamples.kopf.dev",), {}),
        (("kopfexamples.v1.kopf.dev",), {}),
        (("kopf.dev", "kopfexamples"), {}),
        (("kopf.dev/v1", "kopfexamples"), {}),
        (("kopf.dev", "v1", "kopfexamples"), {}),
        ((), {"kind": "KopfExample", "group": "kopf.dev"}),
        ((), {"plural": "kopfexamples", "version": "v1"}),
        ((), {"category": "all"}),
        ((trikopf.EVERYTHING,), {}),
    ],
)
def test_resource_selector_forms_select_the_resource(args: Any, kwargs: Any) -> None:
    selector = ResourceSelector.parse(*args, **kwargs)
    assert selector.check(KOPFEXAMPLES)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("pods",), {}),
        (("kopf.dev", "kopfexamples"), {"version": "v2"}),
        (("other.dev", "kopfexamples"), {}),
        ((), {"category": "nothing"}),
    ],
)
def test_resource_selector_rejects_other_resources(args: Any, kwargs: Any) -> None:
    assert not ResourceSelector.parse(*args, **kwargs).check(KOPFEXAMPLES)


def test_core_group_version_form_selects_pods_only() -> None:
    selector = ResourceSelector.parse("v1", "pods")
    assert selector.check(PODS)
    assert not selector.check(KOPFEXAMPLES)


def test_everything_skips_events_and_unwatchable_resources() -> None:
    unwatchable = Resource(
        group="x.dev", version="v1", plural="xs", kind="X", verbs=frozenset({"get"})
    )
    picked = ResourceSelector.parse(trikopf.EVERYTHING).select(
        [KOPFEXAMPLES, PODS, EVENTS, unwatchable]
    )
    assert picked == [KOPFEXAMPLES, PODS]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "Which resource"),
        (("kopf.dev/v1",), {}, "group/version"),
        (("kopfexamples",), {"kind": "KopfExample"}, "named twice"),
        (("kopf.dev/v1", "kopfexamples"), {"version": "v2"}, "Conflicting version"),
        (("",), {}, "non-empty"),
    ],
)
def test_bad_resource_selection_is_a_clear_error(args: Any, kwargs: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        ResourceSelector.parse(*args, **kwargs)


def test_decorators_register_into_an_explicit_registry_and_return_the_function() -> None:
    registry = trikopf.OperatorRegistry()

    def create_fn(**_: Any) -> None:
        pass

    assert trikopf.on.create("kopfexamples", registry=registry)(create_fn) is create_fn
    trikopf.on.update("kopfexamples", registry=registry, id="upd")(fn)
    trikopf.on.delete("kopfexamples", registry=registry, optional=True)(fn)
    trikopf.on.field("kopfexamples", field="spec.size", registry=registry)(fn)
    trikopf.on.event("kopfexamples", registry=registry)(fn)
    trikopf.daemon("kopfexamples", registry=registry, cancellation_timeout=5)(fn)
    trikopf.timer("kopfexamples", interval=10, registry=registry)(fn)
    trikopf.on.startup(registry=registry)(fn)
    trikopf.on.cleanup(registry=registry)(fn)
    trikopf.on.login(registry=registry)(fn)
    trikopf.on.probe(registry=registry)(fn)

    ids = [(h.reason, h.id) for h in registry.changing_handlers_for(KOPFEXAMPLES)]
    assert ids == [
        (Reason.CREATE, create_fn.__name__),
        (Reason.UPDATE, "upd"),
        (Reason.DELETE, fn.__name__),
        (None, f"{fn.__name__}/spec.size"),
    ]
    assert len(registry.watching_handlers_for(KOPFEXAMPLES)) == 1
    assert registry.daemon_handlers_for(KOPFEXAMPLES)[0].cancellation_timeout == 5
    assert registry.timer_handlers_for(KOPFEXAMPLES)[0].interval == 10.0
    assert len(registry.activity_handlers()) == 4
    assert registry.changing_handlers_for(PODS) == ()
    assert registry.resources([PODS, KOPFEXAMPLES]) == [KOPFEXAMPLES]


def test_default_registry_is_used_without_registry_argument() -> None:
    previous = trikopf.get_default_registry()
    with fresh_default_registry() as fresh:
        trikopf.on.resume("kopfexamples")(fn)
        assert [h.reason for h in fresh.changing_handlers] == [Reason.RESUME]
        assert previous.changing_handlers == () or fresh is not previous


def test_duplicate_handler_ids_are_refused() -> None:
    registry = trikopf.OperatorRegistry()
    trikopf.on.create("kopfexamples", registry=registry, id="same")(fn)
    with pytest.raises(ValueError, match="Duplicate handler id 'same'"):
        trikopf.on.create("kopfexamples", registry=registry, id="same")(fn)
    trikopf.on.update("kopfexamples", registry=registry, id="same")(fn)  # another cause: fine


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"retries": 0}, ValueError, "retries="),
        ({"timeout": -1}, ValueError, "timeout="),
        ({"backoff": "soon"}, ValueError, "backoff="),
        ({"errors": "ignore"}, TypeError, "ErrorsMode"),
        ({"labels": {"a": None}}, TypeError, "ABSENT"),
        ({"labels": ["a"]}, TypeError, "mapping"),
        ({"value": 1}, TypeError, "field="),
        ({"when": 5}, TypeError, "callable"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(
    kwargs: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        trikopf.on.create("kopfexamples", registry=trikopf.OperatorRegistry(), **kwargs)


@pytest.mark.parametrize(
    "decorator",
    [trikopf.on.event, trikopf.on.create, trikopf.on.update, trikopf.on.delete, trikopf.on.resume],
)
def test_a_non_callable_when_is_refused_at_decoration_by_every_object_decorator(
    decorator: Any,
) -> None:
    registry = trikopf.OperatorRegistry()
    with pytest.raises(TypeError, match="when= must be a callable, got True"):
        decorator("kopfexamples", when=True, registry=registry)(fn)
    assert registry.watching_handlers == ()
    assert registry.changing_handlers == ()


def test_only_non_optional_delete_handlers_need_the_finalizer() -> None:
    registry = trikopf.OperatorRegistry()
    body = {"metadata": {"labels": {"keep": "yes"}}}
    trikopf.on.delete("kopfexamples", registry=registry, optional=True)(fn)
    assert not registry.requires_finalizer(KOPFEXAMPLES, body, {})
    trikopf.on.delete("kopfexamples", registry=registry, id="d", labels={"keep": "no"})(fn)
    assert not registry.requires_finalizer(KOPFEXAMPLES, body, {})
    trikopf.on.delete("kopfexamples", registry=registry, id="d2", labels={"keep": "yes"})(fn)
    assert registry.requires_finalizer(KOPFEXAMPLES, body, {})


def _handler(registry: trikopf.OperatorRegistry) -> ChangingHandler:
    return registry.changing_handlers[-1]


def test_field_handlers_match_only_when_their_field_changes() -> None:
    registry = trikopf.OperatorRegistry()
    trikopf.on.field("kopfexamples", field="spec.size", registry=registry)(fn)
    h = _handler(registry)
    old, new = {"spec": {"size": 1, "x": 1}}, {"spec": {"size": 1, "x": 2}}
    assert not h.matches_cause(
        ChangeCause(reason=Reason.UPDATE, old=old, new=new, diff=diff(old, new))
    )
    new = {"spec": {"size": 2, "x": 1}}
    assert h.matches_cause(ChangeCause(reason=Reason.UPDATE, old=old, new=new, diff=diff(old, new)))
    assert not h.matches_cause(ChangeCause(reason=Reason.DELETE))


def test_old_and_new_filters_check_the_field_values() -> None:
    registry = trikopf.OperatorRegistry()
    trikopf.on.update(
        "kopfexamples", field="spec.phase", old="a", new=trikopf.PRESENT, registry=registry
    )(fn)
    h = _handler(registry)

    def cause(old: Any, new: Any) -> ChangeCause:
        o, n = {"spec": {"phase": old}}, {"spec": {"phase": new}}
        return ChangeCause(reason=Reason.UPDATE, old=o, new=n, diff=diff(o, n))

    assert h.matches_cause(cause("a", "b"))
    assert not h.matches_cause(cause("c", "b"))
    assert not h.matches_cause(cause("a", None))


def test_resume_handlers_match_only_on_first_sight() -> None:
    registry = trikopf.OperatorRegistry()
    trikopf.on.resume("kopfexamples", registry=registry)(fn)
    h = _handler(registry)
    assert h.matches_cause(ChangeCause(reason=Reason.RESUME, initial=True))
    assert h.matches_cause(ChangeCause(reason=Reason.UPDATE, initial=True))
    assert not h.matches_cause(ChangeCause(reason=Reason.UPDATE))
    # As in Kopf: an object found by the first list but never handled is created and resumed.
    assert h.matches_cause(ChangeCause(reason=Reason.CREATE, initial=True))
    assert not h.matches_cause(ChangeCause(reason=Reason.CREATE))
    assert not h.matches_cause(ChangeCause(reason=Reason.DELETE, initial=True))
