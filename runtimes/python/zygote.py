"""Ignis Python zygote: one interpreter that has already started, forked into each new
Python instance.

A Python cold start is mostly the interpreter's own start-up and its imports (the runtime,
json, logging, pycurl and libcurl): about three quarters of it on the machines Ignis was
measured on. The daemon starts this script once, as

    /usr/bin/python3 -S zygote.py      (stdin/stdout /dev/null, control socket on fd 3)

with the environment instances start with (PATH, LANG, TZ). It loads what every instance
loads, then serves the daemon: each request forks a copy that enters a sandbox exactly as
an exec'd instance does (src/exec/sandbox/zygote.c, through the _ignis_zygote extension
built next to this file) and comes back here with the argv and environment it would have
been exec'd with. The copy then takes that environment and runs the runtime's main(), as
bootstrap.py would. The zygote itself never runs function code and never reads a
function's environment; the function's own modules are imported only in the copy.
Functions whose environment changes how an interpreter starts (PYTHON*, LC_*, LANG, TZ,
LD_*) are exec'd as before (src/services/lambda/function.c decides).
"""
import sys

import bootstrap  # sys.path as an instance has it, and the runtime module, loaded

import _ignis_zygote  # noqa: E402  (built by make next to this file)
import os  # noqa: E402

ignis_runtime = bootstrap.ignis_runtime
ignis_runtime.preload()

got = _ignis_zygote.serve()  # in the zygote: returns when the daemon has gone
if got is None:
    sys.exit(0)

# A sandboxed copy: become the instance the daemon asked for.
argv, env = got
os.environ.clear()
for item in env:
    key, sep, value = item.partition("=")
    if sep and key:
        os.environ[key] = value
# as `python3 -S bootstrap.py` would have them
sys.argv = argv[2:] if len(argv) > 2 and argv[1] == "-S" else argv[1:]
sys.path[0] = os.path.dirname(sys.argv[0]) if sys.argv else sys.path[0]
del argv, env, got, item
ignis_runtime.main()
