"""Label and field selectors: parsing, matching and the errors a real server gives."""

from __future__ import annotations

import pytest

from trikopf.apiserver.selectors import (
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app": "web", "tier": "front", "example.com/owner": "team-a", "replicas": "3"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("tier in (front, back)", True),
        ("tier in (back)", False),
        ("tier notin (back,middle)", True),
        ("tier notin (front)", False),
        ("missing notin (a)", True),
        ("missing in (a)", False),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,tier=front", True),
        ("app=web, tier=back", False),
        ("example.com/owner=team-a", True),
        ("replicas>2", True),
        ("replicas<2", False),
        ("missing>0", False),
        ("  app = web ,  !legacy  ", True),
    ],
)
def test_label_selector_matches_like_the_real_server(text: str, expected: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is expected


def test_label_selector_with_empty_value_matches_an_empty_label() -> None:
    selector = parse_label_selector("flag=")
    assert selector.matches({"flag": ""})
    assert not selector.matches({"flag": "x"})
    assert not selector.matches({})


def test_label_selector_trailing_comma_in_a_set_means_an_empty_value() -> None:
    selector = parse_label_selector("tier in (front,)")
    assert selector.requirements[0].values == ("front", "")
    assert selector.matches({"tier": ""})


def test_label_selector_treats_missing_labels_as_none() -> None:
    assert parse_label_selector("!app").matches(None)
    assert not parse_label_selector("app").matches(None)


def test_label_selector_renders_back_to_text() -> None:
    text = "app=web,tier in (a,b),!x,y,z!=1"
    assert str(parse_label_selector(text)) == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("app=web,", "expected: identifier"),
        ("=web", "expected: identifier"),
        ("app in (a", "expected: ')'"),
        ("app in a", "expected: '('"),
        ("app in ()", "values set can't be empty"),
        ("app web", "expected: in, notin, =, ==, !=, gt, lt"),
        ("!app=x", "expected: ',' or 'end of string'"),
        ("app=web tier=x", "expected: ',' or 'end of string'"),
        ("-bad=x", "name part must consist of alphanumeric characters"),
        ("Example.COM/x=y", "prefix part a lowercase RFC 1123 subdomain"),
        ("/x=y", "prefix part must be non-empty"),
        ("app=" + "a" * 64, "must be no more than 63 characters"),
        ("app=-x", "a valid label must be an empty string"),
        ("app in (ok, -bad)", "values[1][app]"),
        ("replicas>two", "the value must be an integer"),
    ],
)
def test_malformed_label_selectors_are_rejected_with_a_clear_message(
    text: str, fragment: str
) -> None:
    with pytest.raises(SelectorError) as excinfo:
        parse_label_selector(text)
    assert fragment in excinfo.value.message


EVENT = {
    "apiVersion": "v1",
    "kind": "Event",
    "metadata": {"name": "e1", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default", "uid": "u-1"},
    "reason": "Started",
    "type": "Normal",
    "source": {"component": "kubelet"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("metadata.name=e1", True),
        ("metadata.name==e1", True),
        ("metadata.name!=e1", False),
        ("metadata.namespace=default,involvedObject.kind=Pod", True),
        ("involvedObject.name=web-2", False),
        ("involvedObject.uid=u-1", True),
        ("involvedObject.fieldPath=", True),
        ("reason=Started,type!=Warning", True),
        ("source=kubelet", True),
        ("source!=kubelet", False),
    ],
)
def test_field_selector_matches_event_fields(text: str, expected: bool) -> None:
    assert parse_field_selector(text).matches(EVENT) is expected


def test_field_selector_renders_booleans_and_numbers_as_text() -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"hostNetwork": True}, "status": {"phase": "Running"}}
    assert parse_field_selector("spec.hostNetwork=true").matches(pod)
    assert parse_field_selector("status.phase=Running").matches(pod)
    assert not parse_field_selector("spec.hostNetwork=false").matches(pod)


def test_field_selector_values_may_escape_separators() -> None:
    selector = parse_field_selector(r"metadata.name=a\,b\=c")
    assert selector.requirements[0].value == "a,b=c"
    assert selector.matches({"metadata": {"name": "a,b=c"}})
    assert str(selector) == r"metadata.name=a\,b\=c"


@pytest.mark.parametrize(
    "text",
    ["metadata.name", "=x", "metadata.name=a,", "metadata.name=a=b", r"metadata.name=a\q", "a=b\\"],
)
def test_malformed_field_selectors_are_rejected(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_field_selector(text)


def test_field_selector_refuses_fields_the_kind_does_not_support() -> None:
    selector = parse_field_selector("spec.duration=1m")
    with pytest.raises(SelectorError, match=r"field label not supported: spec\.duration"):
        selector.check_supported(group="kopf.dev", kind="KopfExample")
    selector.check_supported(group="kopf.dev", kind="KopfExample", extra=[".spec.duration"])
    parse_field_selector("status.phase=Running").check_supported(group="", kind="Pod")
    parse_field_selector("involvedObject.name=x,source=y").check_supported(group="", kind="Event")
    with pytest.raises(SelectorError):
        parse_field_selector("status.phase=Running").check_supported(group="", kind="ConfigMap")
