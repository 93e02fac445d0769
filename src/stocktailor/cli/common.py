"""The Typer app and what every command shares: options, errors, output, progress."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from stocktailor.config import ConfigError, Settings, load_settings
from stocktailor.contract import ContractError

__all__ = [
    "MONEY_COLUMNS",
    "AsOfOpt",
    "ConfigOpt",
    "NotBuiltError",
    "UsageError",
    "WorkspaceOpt",
    "app",
    "console",
    "err_console",
    "errors",
    "existing_workspace",
    "fmt",
    "kpi_rows",
    "parse_date",
    "print_frame",
    "progress_bar",
    "settings_for",
    "with_currency",
    "workflow_database",
    "workspace_path",
    "write_frame",
    "write_scan",
]

app = typer.Typer(
    name="stocktailor",
    help="Keep a fashion retailer's inventory in the right store at the right time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)  # tables keep the console width; lines are never broken
err_console = Console(stderr=True, soft_wrap=True)
logger = logging.getLogger(__name__)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Settings file (TOML); STOCKTAILOR_* variables override it."),
]
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        help="Workspace folder (default $STOCKTAILOR_WORKSPACE, else ./stocktailor-workspace).",
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Plan date YYYY-MM-DD (default: the latest sales date)."),
]


class NotBuiltError(RuntimeError):
    """A capability that this version does not have yet."""


class UsageError(ValueError):
    """A command-line argument is invalid."""


_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])


def _raised_by_us(exc: BaseException) -> bool:
    """True when the innermost frame of ``exc`` is stocktailor code (a message we wrote)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(Path(tb.tb_frame.f_code.co_filename).resolve()).startswith(_PACKAGE_DIR)


def _command_name(exc: BaseException) -> str:
    """``stocktailor <command>``: the command function is the frame below :func:`errors`."""
    tb = exc.__traceback__
    inner = tb.tb_next if tb is not None else None
    name = inner.tb_frame.f_code.co_name if inner is not None else ""
    return f"stocktailor {name.replace('_', '-')}" if name else "stocktailor"


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """Turn expected failures into one clear line on stderr and a non-zero exit.

    Errors we raise on purpose (a ContractError, a config or usage error, a ValueError or
    KeyError with our message) are shown as they are (exit 1); anything else raised inside a
    library (numpy, polars, LightGBM, ...) is a bug of ours and said to be one (exit 3).
    """
    try:
        yield
    except NotBuiltError as exc:
        err_console.print(f"stocktailor: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        user = isinstance(exc, ContractError | ConfigError | UsageError | OSError) or (
            isinstance(exc, ValueError | KeyError)
            and _raised_by_us(exc)
            and (not isinstance(exc, KeyError) or " " in str(exc))
        )
        if user:
            text = " ".join(str(exc).split())
            err_console.print(f"error: {text}", markup=False, highlight=False)
            raise typer.Exit(1) from None
        logger.debug("internal error", exc_info=exc)
        detail = " ".join(str(exc).split())[:300]
        err_console.print(
            f"internal error (a bug in stocktailor, please report it): `{_command_name(exc)}` "
            f"failed with {type(exc).__module__}.{type(exc).__name__}: {detail} "
            "(STOCKTAILOR_LOG_LEVEL=DEBUG shows the traceback)",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(3) from None


def settings_for(config: Path | None, **overrides: Any) -> Settings:
    """Settings from the defaults, ``--config`` and the environment, plus option overrides."""
    return load_settings(config, overrides=overrides or None)


def workspace_path(workspace: Path | None) -> Path:
    """``--workspace``, else ``$STOCKTAILOR_WORKSPACE``, else ``./stocktailor-workspace``."""
    from stocktailor.workspace import default_workspace_path

    return workspace if workspace is not None else default_workspace_path()


def workflow_url(database_url: str | None, settings: Settings, workspace: Path | None) -> str:
    """The workflow database: ``--database-url``, else ``serve.database_url``, else the
    workspace's SQLite file."""
    from stocktailor.workspace import Workspace

    url = database_url or settings.serve.database_url
    return url if url is not None else Workspace(workspace_path(workspace)).database_url


@contextlib.contextmanager
def workflow_database(
    database_url: str | None, settings: Settings, workspace: Path | None
) -> Iterator[tuple[str, Any]]:
    """The workflow database (:func:`workflow_url`) migrated to head: its URL and an engine,
    disposed on leaving."""
    from stocktailor import workflow

    url = workflow_url(database_url, settings, workspace)
    workflow.upgrade(url)
    engine = workflow.connect(url)
    try:
        yield url, engine
    finally:
        engine.dispose()


def existing_workspace(workspace: Path | None) -> Any:
    """The :class:`~stocktailor.workspace.Workspace` at ``workspace``; FileNotFoundError when
    nothing was ingested there."""
    from stocktailor.workspace import Workspace

    ws = Workspace(workspace_path(workspace))
    if not ws.exists():
        msg = f"{ws.path}: no workspace here; run `stocktailor ingest DATA_DIR --workspace WS`"
        raise FileNotFoundError(msg)
    return ws


def parse_date(option: str, value: str) -> dt.date:
    """A YYYY-MM-DD option value."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        msg = f"{option}: expected a date YYYY-MM-DD, got {value!r}"
        raise UsageError(msg) from None


def write_frame(frame: pl.DataFrame, path: Path) -> Path:
    """Write ``frame`` in the format named by the suffix (.csv, .parquet, .xlsx)."""
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if suffix == ".csv":
        frame.write_csv(tmp)
    elif suffix == ".parquet":
        frame.write_parquet(tmp)
    elif suffix == ".xlsx":
        frame.write_excel(tmp, autofit=True)
    else:
        msg = f"{path}: unknown output format {suffix!r}; expected .csv, .parquet or .xlsx"
        raise UsageError(msg)
    tmp.replace(path)
    return path


_XLSX_ROWS = 1_048_575


def write_scan(scan: pl.LazyFrame, path: Path) -> Path:
    """Write a lazy frame by the suffix without holding it whole (.parquet, .csv streamed)."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".xlsx"):
        msg = f"{path}: unknown output format {suffix!r}; expected .csv, .parquet or .xlsx"
        raise UsageError(msg)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".xlsx":
        rows = int(scan.select(pl.len()).collect().item())
        if rows > _XLSX_ROWS:
            msg = f"{path}: {rows:,} rows do not fit in a spreadsheet; write .parquet or .csv"
            raise UsageError(msg)
        return write_frame(scan.collect(), path)
    tmp = path.with_name(f".{path.name}.tmp{suffix}")
    if suffix == ".csv":
        scan.sink_csv(tmp)
    else:
        scan.sink_parquet(tmp)
    tmp.replace(path)
    return path


@contextlib.contextmanager
def _rich_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int) -> None:
            bar.advance(task, n)

        yield advance


_PLAIN_EVERY_S = 5.0


@contextlib.contextmanager
def _plain_lines(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """One line when a step starts, one at most every few seconds, one when it ends."""
    start = time.perf_counter()
    state = {"done": 0, "shown": start}
    of = f"/{total}" if total is not None else ""

    def line(text: str) -> None:
        err_console.print(f"{description}: {text}", markup=False, highlight=False)

    def advance(n: int) -> None:
        state["done"] += n
        now = time.perf_counter()
        if now - state["shown"] >= _PLAIN_EVERY_S and state["done"] != total:
            state["shown"] = now
            line(f"{int(state['done'])}{of} done ({now - start:,.0f} s)")

    line("started")
    yield advance
    line(f"{int(state['done'])}{of} done in {time.perf_counter() - start:,.1f} s")


def progress_bar(
    description: str, total: int | None
) -> contextlib.AbstractContextManager[Callable[[int], None]]:
    """Progress of a long step: a Rich bar with counts on a terminal, plain lines when piped.

    Yields a callback that advances it by ``n`` (parts, partitions, stages).
    """
    if err_console.is_terminal:
        return _rich_bar(description, total)
    return _plain_lines(description, total)


def print_frame(
    frame: pl.DataFrame, title: str, *, max_rows: int = 20, right: tuple[str, ...] = ()
) -> None:
    """A frame as a table that fits the console: headers are never cut, only wrapped.

    Headers show ``snake_case`` names as words (``units per week``), which wrap between words
    when space is short; numbers are right-aligned and never wrapped (integers without
    decimals, floats with cents, see :func:`fmt`); text wraps at word boundaries.
    """
    shown = frame.head(max_rows)
    cells = {c: [fmt(v) for v in shown[c].to_list()] for c in frame.columns}
    numeric = {c: frame[c].dtype.is_numeric() or c in right for c in frame.columns}
    need: dict[str, int] = {}  # the least a column needs: a number whole, a word whole
    want: dict[str, int] = {}  # what it would take on one line
    for c in frame.columns:
        words = [len(w) for w in c.split("_")] + [len(w) for v in cells[c] for w in v.split()]
        values = [len(v) for v in cells[c]]
        need[c] = max([*words, *(values if numeric[c] else [])], default=1)
        want[c] = max([len(c), *values], default=1)
    spare = console.width - (3 * len(need) + 1) - sum(need.values())
    widths = dict(need)
    # text first (it wraps into many lines), then headers of numbers; smallest gaps first
    for c in sorted(frame.columns, key=lambda c: (numeric[c], want[c] - need[c])):
        extra = min(max(spare, 0), want[c] - need[c])
        widths[c] += extra
        spare -= extra
    table = Table(title=title)
    for c in frame.columns:
        table.add_column(
            c.replace("_", " "),
            justify="right" if numeric[c] else "left",
            width=widths[c],
            overflow="fold",
        )
    for row in zip(*cells.values(), strict=True):
        table.add_row(*row)
    console.print(table)
    if frame.height > max_rows:
        console.print(f"... {frame.height - max_rows} more rows")


_COUNT_SUFFIXES = ("units", "lines", "lanes", "stores", "skus", "clusters", "count", "rows")


def kpi_rows(frame: pl.DataFrame, key: str = "kpi") -> pl.DataFrame:
    """A KPI-per-row table as text: counts (``*_units``, ``*_lines``, ...) as whole numbers,
    other figures with two decimals, so a count never prints as ``60.00``."""

    def cell(name: str, value: object) -> str:
        if value is None:
            return "-"
        number = float(value)  # type: ignore[arg-type]
        return f"{round(number):,}" if name.endswith(_COUNT_SUFFIXES) else fmt(number)

    rows = [
        {c: (str(v) if c == key else cell(str(row[key]), v)) for c, v in row.items()}
        for row in frame.iter_rows(named=True)
    ]
    return pl.DataFrame(rows, schema=dict.fromkeys(frame.columns, pl.String))


MONEY_COLUMNS = (
    "transfer_cost",
    "expected_gain",
    "expected_source_loss",
    "net_benefit",
    "marginal_net_benefit",
    "net_p10",
    "net_p90",
    "gain_p10",
    "gain_p90",
)
"""Columns of the plan's lines in currency units."""


def with_currency(frame: pl.DataFrame, currency: str) -> pl.DataFrame:
    """``frame`` with a last ``currency`` column (the ISO 4217 code of ``economics.currency``)
    when it has money columns, so an exported file says what its amounts are in."""
    if "currency" in frame.columns or not any(c in frame.columns for c in MONEY_COLUMNS):
        return frame
    return frame.with_columns(pl.lit(currency, dtype=pl.String).alias("currency"))


def fmt(value: object) -> str:
    """A cell: ``-`` for missing, thousands separators, floats with two decimals."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
