"""One worker of the load bench: ``hpsearch ARGS``, then its storage clock written to a JSON file.

``python -m bench.load_worker CLOCK.json study --storage ...`` runs the CLI in this process, as
the console script does, and writes the exit code, the seconds since the CLI started, and what
``PatientStorage`` counted (calls of the main thread, their seconds, the wait for the study's
lock): the storage's share of the worker's time. A killed worker writes nothing.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    out, args = Path(argv[0]), argv[1:]
    from hpsearch.cli import main as cli
    from hpsearch.store.patience import CLOCK

    out.with_suffix(".started").touch()  # imported: from here a Ctrl-C ends it as hpsearch's own (exit 130)
    start = time.perf_counter()
    code = cli(args)
    clock = {"code": code, "wall": time.perf_counter() - start}
    clock |= {"calls": CLOCK.calls, "seconds": CLOCK.seconds, "lock_seconds": CLOCK.lock_seconds}
    out.write_text(json.dumps(clock) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
