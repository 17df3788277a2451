"""Claiming a run folder: one process writes into it at a time.

A run takes ``run.lock`` at once, before it writes anything, and records its process id,
its host and when its process started. The file appears whole (written aside, then
linked into place, which fails if a lock is there), so a second run always reads who
holds the folder and is refused at once. A lock whose process is gone (killed, crashed)
on this host is stale, and is taken over; one from another host is never guessed at.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from mnistkit.errors import CheckpointError

#: The lock file's name in a run folder.
LOCK_FILE = "run.lock"


def claim_folder(folder: Path) -> Path:
    """Take ``folder``'s lock file and return its path; raise if a live process holds it.

    Raises:
        CheckpointError: If another process that is still running (or one on another
            host) holds the lock, naming its process and host.
    """
    lock = folder / LOCK_FILE
    host = socket.gethostname()
    me = {"pid": os.getpid(), "host": host, "started": process_started(os.getpid())}
    for _ in range(3):
        if _create(lock, me):
            return lock
        holder = _lock_holder(lock)
        if holder is None:
            continue  # gone in between: try again
        if not process_is_gone(holder, host):
            raise _held(folder, lock, holder)
        if not _take_away(lock, holder):
            raise _held(folder, lock, _lock_holder(lock) or holder)
    raise CheckpointError(f"{folder}: could not take {LOCK_FILE}; another run is starting.")


def _create(lock: Path, content: dict[str, Any]) -> bool:
    """Create ``lock`` with ``content`` whole, unless it exists; return whether it was made."""
    handle, name = tempfile.mkstemp(dir=lock.parent, prefix=f".{lock.stem}.", suffix=lock.suffix)
    try:
        with os.fdopen(handle, "w") as file:
            json.dump(content, file)
        os.chmod(name, 0o644)
        try:
            os.link(name, lock)
        except FileExistsError:
            return False
        except OSError:  # no hard links here: an exclusive create, written at once
            try:
                descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(descriptor, "w") as file:
                json.dump(content, file)
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _held(folder: Path, lock: Path, holder: dict[str, Any]) -> CheckpointError:
    who = f"process {holder.get('pid', '?')} on {holder.get('host', 'an unknown host')}"
    return CheckpointError(
        f"{folder}: another mnistkit run ({who}) is writing to this folder. Wait for it, or "
        f"choose another --output; if no such process runs, remove {lock}."
    )


def _lock_holder(lock: Path) -> dict[str, Any] | None:
    """Who holds the lock: its record, ``{}`` if unreadable, ``None`` if there is no lock."""
    try:
        holder = json.loads(lock.read_bytes()[:10_000])
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def process_is_gone(holder: dict[str, Any], host: str) -> bool:
    """Whether the holder's process is gone (it ran on this host, and no longer does).

    Args:
        holder: The process's ``pid``, ``host`` and ``started`` (:func:`process_started`).
        host: This host's name.
    """
    pid = holder.get("pid")
    if holder.get("host") != host or not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists, under another user
    started = holder.get("started")
    # Another process may have been given the pid since: compare when each started.
    return started is not None and process_started(pid) not in (None, started)


def process_started(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot, where /proc tells it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _take_away(lock: Path, stale: dict[str, Any]) -> bool:
    """Remove the stale lock ``stale``; ``False`` if another run's new lock was there instead."""
    aside = lock.with_name(f".{lock.name}.{os.getpid()}.stale")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return True  # another run removed it first
    try:
        if _lock_holder(aside) == stale:
            return True
        # Another run took the stale lock over first: give its lock back.
        with contextlib.suppress(OSError):
            os.link(aside, lock)
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(aside)
