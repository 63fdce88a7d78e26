"""A math worker process: `python -m raspberry.verify.math_worker MODULE:FUNCTION [PATH]`.

Reads [gold, answer] pairs as JSON lines and answers each with a JSON true or false (false when
the comparison raised). Started by verify/math.py as a plain program, not by multiprocessing, so
it never imports its caller's main module (a script without `if __name__ == "__main__"` or
`python -` would otherwise run again in every worker). It ends when its parent does.
"""

import importlib
import json
import os
import sys
import threading
import time


def _exit_when_orphaned(parent: int) -> None:
    # A comparison that hangs keeps the loop below from seeing its input close.
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def main() -> None:
    target = sys.argv[1]
    if len(sys.argv) > 2:
        sys.path.insert(0, sys.argv[2])
    module, name = target.split(":")
    compare = getattr(importlib.import_module(module), name)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    for line in sys.stdin:
        gold, answer = json.loads(line)
        try:
            equal = bool(compare(gold, answer))
        except Exception:  # math-verify raised on this input: not equal
            equal = False
        sys.stdout.write("true\n" if equal else "false\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
