"""docs/architecture.md is true to the code: every name it cites in backticks exists.

Three checks over the backticked spans of the page:

- a dotted path whose first part is ``stocktailor`` or one of its modules (``positions.core_sizes``,
  ``stocktailor.config.Settings``) resolves to a module attribute;
- a cited call (``run_plan(tables, as_of, settings, engine=None)``, ``.commit(changed, record)``)
  names only parameters that a stocktailor callable of that name takes;
- a CamelCase name (a class or protocol, ``SimResult``, ``PolicyView``) exists in the package.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import inspect
import pkgutil
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import stocktailor

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
SRC = Path(stocktailor.__file__).resolve().parent


def _modules() -> dict[str, ModuleType]:
    out: dict[str, ModuleType] = {"stocktailor": stocktailor}
    for info in pkgutil.walk_packages(stocktailor.__path__, "stocktailor."):
        if ".migrations" in info.name:  # alembic scripts run only inside alembic
            continue
        out[info.name] = importlib.import_module(info.name)
    return out


MODULES = _modules()


def _spans() -> list[str]:
    text = DOC.read_text(encoding="utf-8").replace("\n", " ")
    return [re.sub(r"\s+", " ", s).strip() for s in re.findall(r"`([^`]+)`", text)]


def _is_module(name: str) -> bool:
    return name == "stocktailor" or f"stocktailor.{name}" in MODULES


def _resolve(path: str) -> bool:
    full = path if path.startswith("stocktailor") else f"stocktailor.{path}"
    parts = full.split(".")
    for i in range(len(parts), 0, -1):
        mod = MODULES.get(".".join(parts[:i]))
        if mod is None:
            continue
        obj: Any = mod
        for p in parts[i:]:
            if not hasattr(obj, p):
                return False
            obj = getattr(obj, p)
        return True
    return False


def _callables() -> dict[str, list[Callable[..., Any]]]:
    """Every public function, class and method of the package, by its last name."""
    out: dict[str, list[Callable[..., Any]]] = {}
    for mod in MODULES.values():
        for name, obj in vars(mod).items():
            if not getattr(obj, "__module__", "").startswith("stocktailor"):
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                out.setdefault(name, []).append(obj)
            if inspect.isclass(obj):
                for attr in vars(obj):
                    member = getattr(obj, attr, None)
                    if callable(member):
                        out.setdefault(attr, []).append(member)
    return out


def _top_level_split(args: str) -> Iterator[str]:
    depth, cur = 0, ""
    for ch in args:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            yield cur.strip()
            cur = ""
        else:
            cur += ch
    if cur.strip():
        yield cur.strip()


def _param_names(args: str) -> list[str]:
    """The parameter names of a cited call: ``a``, ``b: T``, ``c=None``, ``**d`` -> a, b, c, d;
    ``*``, ``...`` and expressions (``settings.pipeline``) name no parameter."""
    names = []
    for a in _top_level_split(args):
        if a.startswith("**"):  # "any keyword parameters"
            continue
        head = re.split(r"[:=]", a, maxsplit=1)[0].strip().lstrip("*")
        if head.isidentifier() and not head[0].isupper():  # `from_config(DemandConfig)`: a type
            names.append(head)
    return names


def _accepts(fn: Callable[..., Any], names: list[str]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return True
    return all(n in params for n in names)


def test_dotted_names_exist() -> None:
    paths = set()
    for span in _spans():
        m = re.match(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)", span)
        if m is None or m.group(1).endswith(".py"):
            continue
        if _is_module(m.group(1).split(".")[0]):
            paths.add(m.group(1))
    assert len(paths) >= 20  # the page cites this many; an empty scan checks nothing
    missing = sorted(p for p in paths if not _resolve(p))
    assert not missing, f"docs/architecture.md cites names that do not exist: {missing}"


def test_cited_files_exist() -> None:
    files = {s for s in _spans() if re.fullmatch(r"[\w/]+\.py", s) or re.fullmatch(r"\w+/", s)}
    files -= {"truth/"}  # a folder the generator writes, not a source folder
    assert files
    missing = sorted(f for f in files if not (SRC / f).exists())
    assert not missing, f"docs/architecture.md cites files that do not exist: {missing}"


def test_cited_calls_match_signatures() -> None:
    known = _callables()
    checked, wrong = 0, []
    for span in _spans():
        # every call of the span: `f(a, b)`, `Cls(...).fit(x, y) -> self`, `.commit(a, b)`
        for m in re.finditer(r"(?<![\w.])\.?([A-Za-z_][\w.]*)\(([^()]*)\)", span):
            name, args = m.groups()
            first = name.split(".")[0]
            if name in vars(builtins):
                continue  # raise ValueError(msg)
            if "." in name and not _is_module(first) and first not in known:
                continue  # np.random.default_rng(seed), logging.getLogger(__name__)
            cands = known.get(name.split(".")[-1], [])
            if not cands:
                wrong.append(f"{span} (no callable {name})")
                continue
            checked += 1
            if not any(_accepts(c, _param_names(args)) for c in cands):
                wrong.append(span)
    assert checked >= 15
    assert not wrong, f"docs/architecture.md cites calls the code does not take: {wrong}"


def test_class_names_exist() -> None:
    known = {n for mod in MODULES.values() for n in vars(mod)}
    word = re.compile(r"(?<![\w.])([A-Z][a-z]+[A-Z]\w*|[A-Z][a-z]{2,})(?=$|[\s(.,:\[])")
    cited = {m.group(1) for span in _spans() for m in word.finditer(span)}
    cited -= {"Tables", "Path", "Mapping", "Typer", "Rich", "FastAPI", "Dask", "Alembic", "Int64"}
    cited -= {"LazyFrame", "DataFrame", "ValueError"}
    cited = {c for c in cited if c not in {"None", "True", "False", "Callable"}}
    assert len(cited) >= 10
    missing = sorted(c for c in cited if c not in known)
    assert not missing, f"docs/architecture.md cites classes that do not exist: {missing}"


@pytest.mark.parametrize("bad", ["SimState", "create_app(settings, workspace)"])
def test_the_checks_can_fail(bad: str) -> None:
    """The names issue 13 found stale are caught by the checks above."""
    if "(" in bad:
        name, args = bad[:-1].split("(")
        assert not any(_accepts(c, _param_names(args)) for c in _callables()[name])
    else:
        assert not any(bad in vars(mod) for mod in MODULES.values())
