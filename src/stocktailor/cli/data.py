"""``generate`` and ``ingest``: data folders in, validated workspace tables out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from stocktailor.cli.common import (
    ConfigOpt,
    UsageError,
    WorkspaceOpt,
    app,
    console,
    errors,
    settings_for,
    workspace_path,
)

__all__ = ["generate", "ingest"]


@app.command()
def generate(
    scenario: Annotated[str, typer.Option(help="seed-stories, default or scale.")] = "default",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 0,
    out: Annotated[Path, typer.Option(help="Output data folder.")] = Path("synthetic-data"),
    stores: Annotated[int | None, typer.Option("--stores", help="Stores (scale).")] = None,
    sku_sizes: Annotated[int | None, typer.Option("--sku-sizes", help="SKU-sizes (scale).")] = None,
    switch_segments: Annotated[
        int, typer.Option(help="Stores that switch behaviour segment mid-season.")
    ] = 0,
    daily: Annotated[
        int,
        typer.Option(
            "--daily",
            help="Keep the last N days out of the data folder and write them as daily "
            "increments to OUT/increments/YYYY-MM-DD/ (for `ingest --append`).",
        ),
    ] = 0,
    config: ConfigOpt = None,
) -> None:
    """Write a synthetic data folder (+ truth/) for a named scenario."""
    with errors():
        settings_for(config)
        from stocktailor.synth import SCENARIOS
        from stocktailor.synth import generate as make

        if scenario not in SCENARIOS:
            msg = f"--scenario: unknown {scenario!r}; expected one of {', '.join(SCENARIOS)}"
            raise UsageError(msg)
        if daily < 0:
            msg = f"--daily: expected a number of days >= 0, got {daily}"
            raise UsageError(msg)
        with console.status(f"generating {scenario} (seed {seed})"):
            net = make(
                scenario,
                seed,
                n_stores=stores,
                n_sku_sizes=sku_sizes,
                switch_segments=switch_segments,
            )
            net.write(out)
            if daily:
                _write_daily(net.tables, net.as_of, daily, out)
        t = net.tables
        console.print(
            f"{scenario} seed {seed}: {t.stores.height} locations, {t.products.height} SKU-sizes, "
            f"{t.sales.height:,} sales rows, as of {net.as_of}; written to {out} (truth in truth/)"
        )
        if daily:
            cut = net.as_of - dt.timedelta(days=daily)
            console.print(
                f"history up to {cut} in {out}; {daily} daily increments in {out / 'increments'}"
            )


def _write_daily(tables: object, as_of: dt.date, days: int, out: Path) -> None:
    """Replace the data folder's tables by the history up to ``as_of - days``; add increments."""
    from stocktailor.contract import Tables
    from stocktailor.pipeline.increments import split_increments, write_folder

    assert isinstance(tables, Tables)
    cut = as_of - dt.timedelta(days=days)
    base, incs = split_increments(tables, cut, days)
    for name in base:
        for old in (out / f"{name}.csv", out / f"{name}.parquet"):
            old.unlink(missing_ok=True)
    write_folder(base, out)
    for i, inc in enumerate(incs):
        write_folder(inc, out / "increments" / (cut + dt.timedelta(days=i + 1)).isoformat())


@app.command()
def ingest(
    data_dir: Annotated[Path, typer.Argument(help="Folder with one CSV/Parquet file per table.")],
    workspace: WorkspaceOpt = None,
    append: Annotated[
        bool,
        typer.Option(
            "--append",
            help="Add an increment (new days of sales, snapshots, signals; new stores or "
            "products) to the stored history instead of replacing it. Rows already stored are "
            "skipped; a row that contradicts a stored one is refused.",
        ),
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Validate a data folder and load it into the workspace (all or nothing)."""
    with errors():
        from stocktailor.workspace import Workspace

        settings = settings_for(config)
        ws = Workspace(workspace_path(workspace))
        if append:
            from stocktailor.pipeline import append_increment

            with console.status(f"validating the increment {data_dir}"):
                increment = append_increment(ws, data_dir, settings)
            console.print(increment)
            return
        with console.status(f"validating {data_dir}"):
            report = ws.ingest(data_dir, settings)
        console.print(f"ingested {data_dir} into {ws.path}")
        console.print(report)
