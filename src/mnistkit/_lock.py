"""Claiming a run folder: one process writes into it at a time.

A run takes ``run.lock`` with an exclusive create and writes its process id and host into
it; a second run finds it and is refused at once. A lock whose process is gone (killed,
crashed) on this host is stale, and is taken over.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from mnistkit.errors import CheckpointError

#: The lock file's name in a run folder.
LOCK_FILE = "run.lock"


def claim_folder(folder: Path) -> Path:
    """Take ``folder``'s lock file and return its path; raise if a live process holds it.

    Raises:
        CheckpointError: If another process that is still running holds the lock.
    """
    lock = folder / LOCK_FILE
    host = socket.gethostname()
    me = {"pid": os.getpid(), "host": host}
    for _ in range(2):
        try:
            descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _lock_holder(lock)
            if holder is not None and not _stale(holder, host):
                raise CheckpointError(
                    f"{folder}: another mnistkit run (process {holder.get('pid')} on "
                    f"{holder.get('host')}) is writing to this folder. Wait for it, or choose "
                    f"another --output; if no such process runs, remove {lock}."
                ) from None
            lock.unlink(missing_ok=True)  # left by a process that is gone
            continue
        with os.fdopen(descriptor, "w") as handle:
            json.dump(me, handle)
        return lock
    raise CheckpointError(f"{folder}: could not take {LOCK_FILE}; another run is starting.")


def _lock_holder(lock: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(lock.read_text()[:10_000])
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _stale(holder: dict[str, Any], host: str) -> bool:
    if holder.get("host") != host or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False
