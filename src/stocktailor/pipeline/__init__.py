"""The continuous pipeline: daily increments, stored step outputs, one step runner.

An edge layer over :class:`~stocktailor.workspace.Workspace`: it reads and writes the
workspace and calls the pure core (clustering, demand, size curves, allocation, transfers).
"""

from __future__ import annotations

from stocktailor.pipeline.append import AppendReport, append_increment

__all__ = ["AppendReport", "append_increment"]
