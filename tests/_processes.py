"""Run one script in several fresh Python processes (reproducibility across processes)."""

from __future__ import annotations

import subprocess
import sys


def outputs_in_processes(script: str, n: int = 3) -> list[str]:
    """The stripped standard output of ``script`` run by ``n`` processes at once; every
    process must succeed (AssertionError with the end of their standard errors otherwise)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    outs = [p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    return [out.strip() for out, _ in outs]
