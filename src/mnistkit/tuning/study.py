"""Where a search keeps its study, and how a study outlives the processes that run it.

Three storages, by what ``storage`` says:

- ``None``: SQLite, ``study.db`` in the search's folder, for one process (the folder's
  lock keeps a second one out);
- a path ending in ``.journal`` (or ``journal:PATH``): Optuna's ``JournalStorage`` in
  that file, which processes on one machine share;
- a database URL (``postgresql://...``, ``mysql://...``, ``sqlite:///...``): Optuna's
  ``RDBStorage``, which machines share, with Optuna's heartbeat (a trial whose process
  stops beating for :data:`GRACE_SECONDS` is failed by the next process to start).

Whatever the storage, each trial records the process and host that run it, so a trial
left running by a process that is gone (killed, or stopped by Ctrl-C while it wrote) is
failed at the next start on that host, and tried again with the same settings, once.
"""

from __future__ import annotations

import os
import random
import re
import socket
import time
import warnings
from pathlib import Path
from typing import Any

from mnistkit._lock import process_is_gone, process_started
from mnistkit.errors import InvalidArgumentError, MissingDependencyError, MnistkitError

__all__ = [
    "GRACE_SECONDS",
    "HEARTBEAT_SECONDS",
    "STUDY_FILE",
    "claim_trial",
    "describe_storage",
    "error_of",
    "finished",
    "make_storage",
    "mark_error",
    "mark_interrupted",
    "retry_of",
    "retry_orphans",
]

#: The SQLite file of a search's study in its folder, unless ``storage`` says otherwise.
STUDY_FILE = "study.db"
#: How often a trial on a database server tells it that its process lives.
HEARTBEAT_SECONDS = 30
#: How long a trial may go without a heartbeat before another process fails it.
GRACE_SECONDS = 120
# Tries at opening a database that other processes may be creating at the same time.
_ATTEMPTS = 5
# The user attributes of a trial: who runs it, and which trial it tries again.
_OWNER, _RETRY_OF, _INTERRUPTED, _ERROR = "process", "retry_of", "interrupted", "error"


def make_storage(storage: str | os.PathLike[str] | None, folder: Path) -> Any:
    """Return the Optuna storage that ``storage`` names (see the module's words).

    Raises:
        InvalidArgumentError: If ``storage`` is neither a journal path nor a database
            URL.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend

    text = os.fspath(storage) if storage is not None else None
    if text is None:
        url = f"sqlite:///{(folder / STUDY_FILE).resolve()}"
        return optuna.storages.RDBStorage(url)
    if text.startswith("journal:") or text.endswith(".journal"):
        path = Path(text.removeprefix("journal:"))
        if path.is_dir():
            raise InvalidArgumentError(f"Invalid value for argument `storage`. {path} is a folder.")
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if re.match(r"^[a-z][a-z0-9+.-]*://", text):
        return _database(text, folder)
    raise InvalidArgumentError(
        "Invalid value for argument `storage`. Expected a journal file (PATH.journal) or a "
        f"database URL (postgresql://USER@HOST/DB). Received: storage={text!r}"
    )


def _database(url: str, folder: Path) -> Any:
    """Optuna's ``RDBStorage`` at ``url``, with its heartbeat; errors in one line.

    Processes that start together on a new database race to create its tables, and all
    but one may fail: each tries again, up to :data:`_ATTEMPTS` times.
    """
    import optuna
    import sqlalchemy.exc

    shown = describe_storage(url, folder)
    for attempt in range(_ATTEMPTS):
        try:
            with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna 4 and 5
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS
                )
        except ImportError as error:  # SQLAlchemy's driver for the URL's database
            hint = " (pip install 'psycopg[binary]')" if url.startswith("postgres") else ""
            raise MissingDependencyError(
                f"The storage {shown} needs its database driver, which is not installed: "
                f"{error.__cause__ or error}{hint}."
            ) from None
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == _ATTEMPTS - 1:
                raise
            time.sleep(0.5 + random.random())  # another process is creating the tables
        except sqlalchemy.exc.SQLAlchemyError as error:
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            raise MnistkitError(f"Could not open the storage {shown}: {reason}") from None
    raise AssertionError("unreachable")


def describe_storage(storage: str | os.PathLike[str] | None, folder: Path) -> str:
    """The storage in words, a database URL's password hidden."""
    if storage is None:
        return str(folder / STUDY_FILE)
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", os.fspath(storage))


def claim_trial(trial: Any) -> None:
    """Record on ``trial`` the process and host that run it."""
    pid = os.getpid()
    trial.set_user_attr(
        _OWNER, {"pid": pid, "host": socket.gethostname(), "started": process_started(pid)}
    )


def mark_interrupted(trial: Any) -> None:
    """Record that ``trial`` stopped on Ctrl-C or SIGTERM, so that it is tried again."""
    trial.set_user_attr(_INTERRUPTED, True)


def mark_error(trial: Any, message: str) -> None:
    """Record why ``trial`` failed (a loss that diverged...), so it is not tried again."""
    trial.set_user_attr(_ERROR, message)


def error_of(trial: Any) -> str | None:
    """Why a failed trial failed, as :func:`mark_error` recorded it."""
    error = trial.user_attrs.get(_ERROR)
    return None if error is None else str(error)


def retry_of(trial: Any) -> int | None:
    """The number of the trial that ``trial`` tries again, or ``None``."""
    number = trial.user_attrs.get(_RETRY_OF)
    return None if number is None else int(number)


def retry_orphans(study: Any, storage: Any, *, exclusive: bool = False) -> list[int]:
    """Fail the trials whose process is gone, and queue each interrupted trial once more.

    A trial still marked running whose process ran on this host and is gone is failed;
    with ``exclusive`` (this process alone uses the study, as with the folder's
    ``study.db``), every trial still marked running is. Every failed trial that did not
    fail on an error of its own (it was interrupted or orphaned) and is not yet queued
    again is queued with the same settings.

    Returns:
        The numbers of the trials queued again.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    host = socket.gethostname()
    for trial in trials:
        owner = trial.user_attrs.get(_OWNER)
        gone = exclusive or (owner is not None and process_is_gone(owner, host))
        if trial.state == TrialState.RUNNING and gone:
            _fail(study, storage, trial)
    trials = study.get_trials(deepcopy=False)
    retried = {retry_of(trial) for trial in trials}
    queued = []
    for trial in trials:
        if (
            trial.state == TrialState.FAIL
            and error_of(trial) is None
            and trial.number not in retried
            and retry_of(trial) is None
        ):
            study.enqueue_trial(trial.params, user_attrs={_RETRY_OF: trial.number})
            queued.append(trial.number)
    return queued


def finished(study: Any) -> int:
    """How many trials of ``study`` count towards its total.

    Those complete, pruned, or failed on an error of their own (an interrupted trial is
    tried again, and counts then).
    """
    from optuna.trial import TrialState

    done = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
            trial.state == TrialState.FAIL and error_of(trial) is not None
        ):
            done += 1
    return done


def _fail(study: Any, storage: Any, trial: Any) -> None:
    """Fail a running trial of another (gone) process, through the storage's own API."""
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
    storage.set_trial_state_values(trial_id, TrialState.FAIL)
