from __future__ import annotations

import trikopf


def test_all_is_sorted_and_every_name_exists() -> None:
    assert list(trikopf.__all__) == sorted(trikopf.__all__)
    for name in trikopf.__all__:
        assert hasattr(trikopf, name), name
