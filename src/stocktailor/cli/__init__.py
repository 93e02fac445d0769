"""The ``stocktailor`` command line (Typer + Rich).

Every command accepts ``--config FILE.toml``; errors exit non-zero with one line on stderr.
Commands live in :mod:`stocktailor.cli.data` (generate, ingest), :mod:`stocktailor.cli.plan`
(run, status, cluster, forecast, allocate, rebalance) and :mod:`stocktailor.cli.review`
(backtest, serve, demo) and :mod:`stocktailor.cli.measure` (executions import, measure);
importing this package registers them all on :data:`app`.
"""

from __future__ import annotations

import logging
import os
import sys

from stocktailor.cli import data, measure, plan, review
from stocktailor.cli.common import app, console, progress_bar, write_frame

__all__ = [
    "app",
    "console",
    "data",
    "main",
    "measure",
    "plan",
    "progress_bar",
    "review",
    "write_frame",
]


def main() -> None:
    """Entry point of the ``stocktailor`` script."""
    logging.basicConfig(
        level=os.environ.get("STOCKTAILOR_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    app()
