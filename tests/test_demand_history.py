"""The prepared history is the same, bit for bit, in every process."""

from __future__ import annotations

from _processes import outputs_in_processes

_SCRIPT = """
import hashlib

from stocktailor.demand.history import prepare_history
from stocktailor.synth import generate

net = generate("default", 0, n_stores=12, n_sku_sizes=120)
h = prepare_history(net.tables, net.as_of, history_days=364)
digest = hashlib.sha256()
for frame in (h.sku_weekly, h.grid):
    keys = [c for c in frame.columns if not frame[c].dtype.is_float()]
    floats = frame.sort(keys).select(c for c in frame.columns if frame[c].dtype.is_float())
    digest.update(floats.to_numpy().tobytes())
print(digest.hexdigest())
"""


def test_two_processes_prepare_the_same_history() -> None:
    # A join's row order changes with each process's hash seed; float sums over those rows
    # then differed in the last bits, and the optimiser broke ties differently (issue 17).
    runs = outputs_in_processes(_SCRIPT, 3)
    assert len(set(runs)) == 1, runs
