"""``python -m mnistkit``: the same command line as the ``mnistkit`` script."""

from __future__ import annotations

import sys

from mnistkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
