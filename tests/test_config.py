from __future__ import annotations

from pathlib import Path

import pytest

from stocktailor.config import ConfigError, Settings, load_settings


def test_defaults_are_documented_values() -> None:
    s = load_settings(environ={})
    assert s == Settings()
    assert s.economics.salvage_fraction == pytest.approx(0.3)
    assert s.constraints.presentation_minimum == 1
    assert s.engine.engine == "local"


def test_toml_file_then_environment_override(tmp_path: Path) -> None:
    cfg = tmp_path / "st.toml"
    cfg.write_text(
        "[economics]\nsalvage_fraction = 0.25\n[constraints]\npack_size = 3\n", encoding="utf-8"
    )
    s = load_settings(cfg, environ={})
    assert s.economics.salvage_fraction == pytest.approx(0.25)
    assert s.constraints.pack_size == 3
    env = {
        "STOCKTAILOR_CONSTRAINTS__PACK_SIZE": "6",
        "STOCKTAILOR_ENGINE__ENGINE": "dask",
        "OTHER": "x",
    }
    s2 = load_settings(cfg, environ=env)
    assert s2.constraints.pack_size == 6
    assert s2.engine.engine == "dask"
    # the file's other values survive the override
    assert s2.economics.salvage_fraction == pytest.approx(0.25)


def test_overrides_win_over_environment() -> None:
    s = load_settings(
        environ={"STOCKTAILOR_CLUSTERING__N_CLUSTERS": "4"},
        overrides={"clustering": {"n_clusters": 5}},
    )
    assert s.clustering.n_clusters == 5


def test_invalid_value_names_source_and_field(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[economics]\nsalvage_fraction = 1.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml: setting economics\.salvage_fraction"):
        load_settings(cfg, environ={})


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"constraints\.pack_sise"):
        load_settings(environ={"STOCKTAILOR_CONSTRAINTS__PACK_SISE": "2"})


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", environ={})
    bad = tmp_path / "broken.toml"
    bad.write_text("[economics\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, environ={})


def test_configuration_doc_is_current() -> None:
    from stocktailor.config import settings_markdown

    doc = Path(__file__).parents[1] / "docs" / "configuration.md"
    assert doc.read_text(encoding="utf-8") == settings_markdown(), (
        "docs/configuration.md is stale: regenerate with "
        "python -c 'from stocktailor.config import settings_markdown as m; print(m(), end=\"\")'"
    )


def test_retired_exception_keys_still_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A settings file written for the old exception rules (before issue 13's) keeps working."""
    f = tmp_path / "old.toml"
    f.write_text("[serve]\nexception_loss_probability = 0.4\nport = 9000\n", encoding="utf-8")
    with caplog.at_level("WARNING"):
        s = load_settings(f, environ={})
    assert s.serve.port == 9000
    assert "exception_loss_probability" in caplog.text
    with pytest.raises(ConfigError, match="exception_typo"):
        load_settings(_write(tmp_path, "exception_typo = 1"), environ={})


def _write(tmp_path: Path, line: str) -> Path:
    f = tmp_path / "typo.toml"
    f.write_text(f"[serve]\n{line}\n", encoding="utf-8")
    return f
