"""The dashboard's store map draws on vendored topojson, served from /static (issue 18)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

from _workflow_fixtures import disposing_engines, fresh_database, make_run
from stocktailor import workflow
from stocktailor.config import Settings
from stocktailor.web.figures import (
    LABEL_WIDTH,
    TOPOJSON_URL,
    UPRIGHT_LABELS,
    cluster_figure,
    map_figure,
    nice_step,
)

with warnings.catch_warnings():
    # starlette suggests the httpx2 package; the httpx-based client works the same here
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient


def _store(store_id: str, lat: float, lon: float, kind: str = "store") -> dict[str, Any]:
    return {
        "store_id": store_id,
        "name": store_id,
        "city": "c",
        "kind": kind,
        "cluster_name": "urban",
        "latitude": lat,
        "longitude": lon,
        "on_hand": 5,
    }


def test_a_us_network_gets_the_usa_layer_and_others_the_world_around_them() -> None:
    us = map_figure([_store("NY", 40.7, -74.0), _store("LA", 34.1, -118.2)])
    assert us["config"] == {"topojsonURL": "/static/topojson/"}
    assert us["layout"]["geo"]["scope"] == "usa" and "lataxis" not in us["layout"]["geo"]
    assert us["data"][0]["type"] == "scattergeo" and us["data"][0]["lon"] == [-74.0, -118.2]
    # Alaska and Hawaii are insets of the USA layer (stocktailor.basemap, as in the reports)
    ak = map_figure([_store("NY", 40.7, -74.0), _store("ANC", 61.2, -149.9)])
    assert ak["layout"]["geo"]["scope"] == "usa"
    # Hanoi and Ho Chi Minh City: 10.2 degrees of latitude apart, padded by a quarter (2.55)
    vn = map_figure([_store("HN", 21.0, 105.8), _store("SG", 10.8, 106.7, kind="warehouse")])
    geo = vn["layout"]["geo"]
    assert geo["scope"] == "world"
    assert geo["lataxis"]["range"] == pytest.approx([10.8 - 3.0, 21.0 + 3.0])  # at least 3
    assert geo["lonaxis"]["range"] == pytest.approx([105.8 - 3.0, 106.7 + 3.0])
    assert [t["name"] for t in vn["data"]] == ["urban", "warehouses"]
    assert map_figure([])["layout"]["geo"]["scope"] == "world"


def test_topojson_is_served_and_the_overview_points_plotly_at_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stocktailor.api import create_app

    url = fresh_database("sqlite", tmp_path)
    with disposing_engines(monkeypatch):
        app = create_app(Settings(), url)
        fr = make_run(10)
        workflow.publish_run(
            app.state.engine, fr.plan, fr.stores, fr.products, positions=fr.positions
        )
        token = workflow.create_user(app.state.engine, "vic", "viewer")
        with TestClient(app) as client:
            for name in ("world_110m", "usa_110m"):
                got = client.get(f"{TOPOJSON_URL}{name}.json")
                assert got.status_code == 200, name
                layers = set(got.json()["objects"])
                assert {"land", "countries", "coastlines"} <= layers, name
            assert "subunits" in client.get(f"{TOPOJSON_URL}usa_110m.json").json()["objects"]
            signed = client.post("/login", data={"token": token}, follow_redirects=False)
            assert signed.status_code == 303
            page = client.get("/overview").text
            found = re.search(r"data-testid=\"cluster-map\" data-figure='([^']*)'", page)
            assert found is not None
            figure = json.loads(found.group(1))  # tojson writes ' < > & as \u escapes
            assert figure["config"]["topojsonURL"] == TOPOJSON_URL
            assert figure["layout"]["geo"]["scope"] == "world"  # the stores are in Germany


def test_cluster_bars_have_readable_labels_and_whole_round_ticks() -> None:
    """Issue 18: the names under the bars were cut and overlapping, and the right axis read
    3.16 / 6.32 / 9.49 weeks."""
    assert [nice_step(t) for t in (0.0, 3.0, 5.0, 9.49, 12.0, 47.0, 100.0, 260.0)] == [
        1,
        1,
        1,
        2,
        5,
        10,
        20,
        100,
    ]
    clusters = [
        {"cluster_name": "Unisex, light on menswear", "sell_through": 0.423, "cover_weeks": 9.49},
        {"cluster_name": "Sandals & dresses", "sell_through": 0.611, "cover_weeks": 3.16},
        {"cluster_name": "Core range", "sell_through": None, "cover_weeks": None},
    ]
    fig = cluster_figure(clusters)
    x = fig["layout"]["xaxis"]
    assert x["automargin"] is True and x["tickmode"] == "array"
    assert x["tickvals"] == [c["cluster_name"] for c in clusters] == fig["data"][0]["x"]
    assert x["ticktext"] == ["Unisex, light<br>on menswear", "Sandals &<br>dresses", "Core range"]
    assert all(len(line) <= LABEL_WIDTH for t in x["ticktext"] for line in t.split("<br>"))
    left, right = fig["layout"]["yaxis"], fig["layout"]["yaxis2"]
    assert (left["tickmode"], left["tick0"], left["dtick"]) == ("linear", 0, 20)  # 61.1 %
    assert (right["tickmode"], right["tick0"], right["dtick"]) == ("linear", 0, 2)  # 9.49 weeks
    assert left["tickformat"] == right["tickformat"] == ",d"
    assert left["automargin"] is True and right["automargin"] is True
    assert right["overlaying"] == "y" and right["side"] == "right"
    assert fig["data"][0]["y"] == pytest.approx([42.3, 61.1, None])
    assert x["tickangle"] == 0
    # more clusters than fit upright: one slanted line each, the margin grows to fit them
    many = [{**clusters[0], "cluster_name": f"Cluster {i}"} for i in range(UPRIGHT_LABELS + 1)]
    slanted = cluster_figure(many)["layout"]["xaxis"]
    assert slanted["tickangle"] == -40 and slanted["automargin"] is True
    assert slanted["ticktext"] == [c["cluster_name"] for c in many]
