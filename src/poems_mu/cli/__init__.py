"""Command line: ``poems-mu fit`` trains POEMS on an ``.h5mu`` file; ``poems-mu demo`` runs it on bundled data.

Errors in the input (a missing file, an unknown modality, a bad layer, an unknown likelihood, a covariate that is not
a column of ``obs``, data that do not suit their likelihood, ...) are reported as one line, ``poems-mu: error: ...``,
with exit status 2 and no stack trace; ``--debug`` shows the trace.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ._args import PROG, CLIError, build_parser
from ._demo import run_demo
from ._fit import run_fit
from ._run import quiet_libraries

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``poems-mu`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with quiet_libraries():
            return {"fit": run_fit, "demo": run_demo}[args.command](args)
    except CLIError as err:
        if args.debug:
            raise
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, KeyError, OSError) as err:
        if args.debug:
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 2
