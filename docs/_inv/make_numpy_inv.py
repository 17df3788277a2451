"""Write numpy.inv: the entries of NumPy's objects.inv that these pages link to.

NumPy's full inventory is at https://numpy.org/doc/stable/objects.inv; this subset keeps
the build offline. Add a line to ENTRIES when a page or docstring names another NumPy
object, then run ``python docs/_inv/make_numpy_inv.py``.
"""

from __future__ import annotations

import zlib
from pathlib import Path

# (name, domain:role, address relative to https://numpy.org/doc/stable/; "$" is the name)
ENTRIES = [
    ("numpy.dtype", "py:class", "reference/generated/numpy.dtype.html#$"),
    ("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html#$"),
    ("numpy.random.Generator", "py:class", "reference/random/generator.html#$"),
    ("numpy.savez_compressed", "py:function", "reference/generated/numpy.savez_compressed.html#$"),
]

HEADER = (
    "# Sphinx inventory version 2\n"
    "# Project: NumPy\n"
    "# Version: stable\n"
    "# The remainder of this file is compressed using zlib.\n"
)


def main() -> None:
    body = "".join(f"{name} {role} 1 {address} -\n" for name, role, address in ENTRIES)
    path = Path(__file__).with_name("numpy.inv")
    path.write_bytes(HEADER.encode() + zlib.compress(body.encode(), 9))


if __name__ == "__main__":
    main()
