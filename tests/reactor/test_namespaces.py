"""Namespace selection: names, globs, negations, cluster-wide."""

from __future__ import annotations

import pytest

from trikopf.reactor.namespaces import NamespaceSelector


def test_no_patterns_mean_the_whole_cluster() -> None:
    selector = NamespaceSelector.parse([])
    assert selector.clusterwide
    assert selector.matches("anything")


def test_plain_names_are_static_and_need_no_namespace_watch() -> None:
    selector = NamespaceSelector.parse(["ns1", "ns2", "ns1"])
    assert selector.is_static
    assert selector.static_names == ("ns1", "ns2")
    assert selector.matches("ns2")
    assert not selector.matches("ns3")


def test_globs_with_negation_select_matching_names_except_the_excluded() -> None:
    selector = NamespaceSelector.parse(["team-*", "!team-test"])
    assert not selector.is_static
    assert selector.matches("team-a")
    assert not selector.matches("team-test")
    assert not selector.matches("other")


def test_only_negations_select_everything_else() -> None:
    selector = NamespaceSelector.parse(["!kube-*"])
    assert not selector.clusterwide
    assert selector.matches("default")
    assert not selector.matches("kube-system")


@pytest.mark.parametrize("pattern", ["", "!", "Upper", "a!b", "has space", "under_score"])
def test_malformed_patterns_are_refused_with_a_clear_message(pattern: str) -> None:
    with pytest.raises(ValueError, match="namespace pattern"):
        NamespaceSelector.parse([pattern])


def test_cluster_wide_cannot_be_combined_with_patterns() -> None:
    with pytest.raises(ValueError, match="cluster-wide"):
        NamespaceSelector.parse(["ns1"], clusterwide=True)
