"""Errors hpsearch reports to its user, each with the exit code the CLI uses.

Hierarchy::

    HpsearchError            exit 2: the user asked for something that cannot be done
    ├── ConfigError          a malformed study definition or option value
    ├── DataError            a data set that cannot be found, read or used
    ├── StorageError         a storage that cannot be reached, read or written
    └── DefinitionMismatch   continuing a study with a different definition
    TrainingDiverged         a trial's loss became NaN or inf (the trial is pruned, not the run)

The CLI prints ``str(error)`` as one line on stderr and exits with ``exit_code``; a traceback
appears only with ``--debug``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence


class HpsearchError(Exception):
    """A problem the user can fix; its message is one line that says what to do."""

    exit_code = 2


class ConfigError(HpsearchError):
    """A study definition or option that does not describe a valid run."""


class DataError(HpsearchError):
    """A data set that is missing, unreadable, or unfit for classification."""


class StorageError(HpsearchError):
    """An Optuna storage that cannot be opened, read or written."""


class DefinitionMismatch(HpsearchError):
    """A run whose definition differs from the one its study was created with."""


class TrainingDiverged(Exception):
    """Training produced a non-finite loss; the trial ends as pruned with this reason."""


def did_you_mean(name: str, known: Sequence[str], *, label: str | None = "known") -> str:
    """`` (did you mean 'adam'?)`` for the near miss of ``name`` in ``known``, else `` (known: a, b)``
    (nothing when ``label`` is None): the one hint every "unknown ..." message of hpsearch gives."""
    match = difflib.get_close_matches(name, list(known), n=1)
    if match:
        return f" (did you mean {match[0]!r}?)"
    return f" ({label}: {', '.join(known)})" if label else ""
