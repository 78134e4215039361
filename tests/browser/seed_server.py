"""Runs the browser tests' seed scripts for one service: started in the service's directory and
environment (as a script's own process would be), it imports the app once and then runs each
script in a fork of itself. A script costs a fork instead of an interpreter start and the app's
imports (about a second of CPU); each fork starts from the same freshly imported state, so
nothing one script does is seen by the next.

Protocol, on stdin and stdout: a request is one line of JSON ``{"script", "out", "err"}``
(the script's source and the files its stdout and stderr go to); the answer is one line, the
script's exit code (1 with its traceback on stderr when it raises). stdin closed: the server
exits.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, out: str, err: str) -> None:
    """In the fork: the script with its output in the files, then exit without teardown."""
    code = 0
    with open(out, "wb") as o, open(err, "wb") as e, open(os.devnull, "rb") as nothing:
        os.dup2(nothing.fileno(), 0)
        os.dup2(o.fileno(), 1)
        os.dup2(e.fileno(), 2)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 (the fork ends with os._exit)
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    try:
        exec(compile(script, "<seed>", "exec"), {"__name__": "__main__"})  # noqa: S102 (the tests' own scripts)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    # The cyclic collector would only scan what the imports built; the forks share it frozen.
    gc.disable()
    sys.path.insert(0, str(ROOT))
    import app.main  # noqa: F401  (what the scripts import, and the models they use)
    import tests.factories  # noqa: F401

    gc.freeze()
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run(request["script"], request["out"], request["err"])
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)


if __name__ == "__main__":
    main()
