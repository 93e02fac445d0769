"""Stored step outputs: one folder per step, as-of date and input key.

Layout::

    WS/outputs/<step>/<as_of>_<key16>/   the step's files + meta.json (written last)

An output folder is built under a temporary name and renamed into place once complete, so a
folder that has ``meta.json`` is whole; a writer killed half way leaves a ``.tmp-*`` folder
that the next writer removes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["OUTPUTS_DIR", "OutputStore", "StoredOutput"]

OUTPUTS_DIR = "outputs"
META = "meta.json"
_KEY_CHARS = 16
_TMP = ".tmp-"


@dataclass(frozen=True)
class StoredOutput:
    """One stored output of a step.

    Attributes
    ----------
    step, as_of, key
        Which step, for which date, from which inputs (sha256 hex).
    path
        Its folder.
    meta
        ``meta.json``: when and how long it took, its upstream keys, row counts.
    """

    step: str
    as_of: dt.date
    key: str
    path: Path
    meta: dict[str, Any]

    def file(self, name: str) -> Path:
        """A file of the output (``labels.parquet``, ``forecast/``, ...)."""
        return self.path / name


class OutputStore:
    """The ``outputs/`` folder of a workspace."""

    def __init__(self, workspace: Path) -> None:
        self.root = Path(workspace) / OUTPUTS_DIR

    def folder(self, step: str, as_of: dt.date, key: str) -> Path:
        """Where the output of ``step`` for ``as_of`` and ``key`` lives."""
        return self.root / step / f"{as_of.isoformat()}_{key[:_KEY_CHARS]}"

    def get(self, step: str, as_of: dt.date, key: str) -> StoredOutput | None:
        """The stored output, or None when it was never computed (or not completely)."""
        path = self.folder(step, as_of, key)
        meta_file = path / META
        if not meta_file.is_file():
            return None
        meta: dict[str, Any] = json.loads(meta_file.read_text("utf-8"))
        if meta.get("key") != key:
            return None
        return StoredOutput(step, as_of, key, path, meta)

    @contextlib.contextmanager
    def put(self, step: str, as_of: dt.date, key: str) -> Iterator[tuple[Path, dict[str, Any]]]:
        """Build an output: yields ``(folder, meta)`` to fill; both land atomically on exit."""
        final = self.folder(step, as_of, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f"{_TMP}{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
        meta: dict[str, Any] = {"step": step, "as_of": as_of.isoformat(), "key": key}
        try:
            yield tmp, meta
            meta.setdefault("created_at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
            (tmp / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            if final.exists():  # computed meanwhile by another writer: same key, same content
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def entries(self, step: str | None = None) -> list[StoredOutput]:
        """Stored outputs (of one step or all), oldest as-of first."""
        out: list[StoredOutput] = []
        if not self.root.is_dir():
            return out
        steps = [self.root / step] if step else sorted(self.root.iterdir())
        for folder in steps:
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                meta_file = path / META
                if path.name.startswith(_TMP) or not meta_file.is_file():
                    continue
                meta = json.loads(meta_file.read_text("utf-8"))
                as_of = dt.date.fromisoformat(meta["as_of"])
                out.append(StoredOutput(folder.name, as_of, meta["key"], path, meta))
        return sorted(out, key=lambda o: (o.as_of, o.step, o.meta.get("created_at", "")))

    def sweep(self) -> None:
        """Remove folders left by a writer that died before finishing."""
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if folder.is_dir():
                for path in folder.iterdir():
                    if path.name.startswith(_TMP):
                        shutil.rmtree(path, ignore_errors=True)

    def prune(self, keep_dates: int, protect: set[Path]) -> list[Path]:
        """Per step, delete outputs older than its latest ``keep_dates`` as-of dates.

        Outputs in ``protect`` (and outputs they were computed from, named in their meta's
        ``inputs``) are kept. Returns the folders removed.
        """
        entries = self.entries()
        by_key = {(e.step, e.key): e for e in entries}
        keep: set[Path] = set(protect)
        for step in {e.step for e in entries}:
            dates = sorted({e.as_of for e in entries if e.step == step}, reverse=True)
            recent = set(dates[:keep_dates])
            keep |= {e.path for e in entries if e.step == step and e.as_of in recent}
        todo = [e for e in entries if e.path in keep]
        while todo:
            entry = todo.pop()
            for step, key in entry.meta.get("inputs", {}).items():
                up = by_key.get((step, key))
                if up is not None and up.path not in keep:
                    keep.add(up.path)
                    todo.append(up)
        removed = [e.path for e in entries if e.path not in keep]
        for path in removed:
            shutil.rmtree(path, ignore_errors=True)
        return removed
