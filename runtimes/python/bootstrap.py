"""Ignis Python runtime entry point (see ignis_runtime.py).

Started as `/usr/bin/python3 -S bootstrap.py`: without the `site` module,
which on Debian runs sitecustomize and every .pth file in dist-packages
(a third of an interpreter's start-up). Lambda's runtime puts no .pth-processed
directory on sys.path either; the host's dist-packages (boto3, pycurl: what
the Lambda runtime ships) are added here as plain path entries.

The runtime itself is a module, so that its compiled form in __pycache__ is
used (`make` writes it; the runtime dir is read-only inside the sandbox).
"""
import sys

if sys.flags.no_site:
    _v = "python%d.%d" % sys.version_info[:2]
    for _d in ("/usr/local/lib/%s/dist-packages" % _v, "/usr/lib/python3/dist-packages",
               "/usr/lib/%s/dist-packages" % _v):
        if _d not in sys.path:
            sys.path.append(_d)

import ignis_runtime  # noqa: E402  (sys.path[0] is this directory)

if __name__ == "__main__":  # zygote.py imports this module for the path set-up above
    ignis_runtime.main()
