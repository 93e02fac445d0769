"""A silent HiGHS instance shared by the transfer MIP and the simulator's hindsight bound."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import highspy

__all__ = ["silent_highs"]


def silent_highs() -> Any:
    """Return a ``highspy.Highs`` that prints nothing.

    The library writes a banner on stdout when an instance is created, so stdout's file
    descriptor points at ``/dev/null`` for that moment. The ``threads`` option is left alone:
    HiGHS keeps one scheduler per process, and an instance asking for a thread count other
    than the one that scheduler started with refuses to run (model status "Not Set").
    """
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(AttributeError, OSError, ValueError):
            fd = sys.stdout.fileno()
            sys.stdout.flush()
            saved = os.dup(fd)
            stack.callback(os.close, saved)
            stack.callback(os.dup2, saved, fd)
            null = stack.enter_context(open(os.devnull, "w"))
            os.dup2(null.fileno(), fd)
        h = highspy.Highs()  # type: ignore[no-untyped-call]
        h.setOptionValue("output_flag", False)
    return h
