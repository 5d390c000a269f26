"""``python -m trikopf``: see :mod:`trikopf.cli`."""

from __future__ import annotations

import sys

from trikopf.cli import main

if __name__ == "__main__":
    sys.exit(main())
