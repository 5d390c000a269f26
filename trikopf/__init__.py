"""trikopf: Kubernetes operators in Python on Trio-style structured concurrency.

Public names are re-exported here explicitly; ``__all__`` is kept sorted.
"""

from __future__ import annotations

from trikopf.settings import OperatorSettings

__version__ = "0.1.0.dev0"

__all__ = [
    "OperatorSettings",
    "__version__",
]
