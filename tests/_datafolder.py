"""Tiny valid data folders for tests (shared by the contract and workspace tests).

``TINY`` holds the CSV text of every table of a small but complete network: two stores and a
warehouse, two styles (letter and numeric sizes), three days of sales, one inventory snapshot
and every optional table. Data row numbers in error messages are 1-based with the header
excluded, so row ``r`` of a table is line ``r + 1`` of its CSV text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import polars as pl

TINY: dict[str, str] = {
    "stores": (
        "store_id,name,kind,city,region,country,latitude,longitude,format,area_sqm,"
        "capacity_units,climate_zone\n"
        "S1,Brooklyn Flagship,store,Brooklyn,NY,US,40.68,-73.94,flagship,850.5,4000,temperate\n"
        "S2,Back Bay,store,Boston,MA,US,42.35,-71.08,mall,420,2000,cold\n"
        "W1,Newark DC,warehouse,Newark,NJ,US,40.73,-74.17,,,50000,temperate\n"
    ),
    "products": (
        "sku,style,color,size,category,full_price,unit_cost,salvage_value,season_end,gender,tags\n"
        "T1-RED-M,T1,red,M,tops,40,12.5,,2024-06-30,F,basic;cotton\n"
        "T1-RED-S,T1,red,S,tops,40,12.5,10,2024-06-30,F,basic;cotton\n"
        "T1-RED-L,T1,red,L,tops,40,12.5,,2024-06-30,F,basic;cotton\n"
        "SH1-BLK-41,SH1,black,41,shoes,90,30,,2024-06-30,M,bright-sneaker\n"
        "SH1-BLK-40,SH1,black,40,shoes,90,30,,2024-06-30,M,bright-sneaker\n"
    ),
    "sales": (
        "date,store_id,sku,units,revenue\n"
        "2024-03-01,S1,T1-RED-M,2,80\n"
        "2024-03-01,S2,T1-RED-S,1,40\n"
        "2024-03-02,S1,SH1-BLK-41,1,90\n"
        "2024-03-02,S2,T1-RED-M,-1,-40\n"
        "2024-03-03,S1,T1-RED-L,3,108\n"
    ),
    "inventory": (
        "date,store_id,sku,on_hand,in_transit\n"
        "2024-03-01,S1,T1-RED-M,5,0\n"
        "2024-03-01,S1,T1-RED-L,4,\n"
        "2024-03-01,S2,T1-RED-S,3,2\n"
        "2024-03-01,S2,T1-RED-M,0,0\n"
        "2024-03-01,W1,SH1-BLK-40,120,0\n"
    ),
    "lanes": (
        "from_id,to_id,cost_per_unit,cost_per_shipment,lead_time_days\n"
        "W1,S1,0.5,30,2\n"
        "W1,S2,0.8,45,3\n"
        "S1,S2,0.9,50,3\n"
    ),
    "weather": (
        "date,store_id,temp_c,precip_mm\n"
        "2024-03-03,S1,7.5,0\n"
        "2024-03-04,S1,9,2.5\n"
        "2024-03-03,S2,3,0.4\n"
    ),
    "events": (
        "start_date,end_date,scope,scope_id,name,kind\n"
        "2024-03-08,2024-03-10,city,Brooklyn,Street fair,fair\n"
        "2024-03-29,2024-04-01,all,,Easter,holiday\n"
    ),
    "trends": (
        "date,scope,scope_id,attribute,value,index\n"
        "2024-03-01,city,Brooklyn,tags,bright-sneaker,1.3\n"
    ),
    "posts": (
        "date,scope,scope_id,source,text,engagement,author\n"
        "2024-03-01,city,Brooklyn,social,obsessed with bright sneakers #ootd,12,u1\n"
        "2024-03-02,all,,blog,Spring trench coats are back,,\n"
    ),
    "economy": "date,region,indicator,value\n2024-03-01,NY,cpi,3.1\n",
    "assortment": "store_id,attribute,value,allowed\nS2,gender,M,no\nS1,gender,F,TRUE\n",
    "price_plan": (
        "start_date,end_date,scope,scope_id,style,sku,price,price_factor,promotion\n"
        "2024-03-08,2024-03-14,all,,T1,,,0.8,true\n"
        "2024-03-08,2024-03-14,store,S1,T1,T1-RED-M,30,,\n"
    ),
}


def write_data_folder(
    path: Path,
    *,
    tables: Mapping[str, str] | None = None,
    skip: Iterable[str] = (),
    fmt: str = "csv",
) -> Path:
    """Write a data folder (CSV text per table, or Parquet with ``fmt='parquet'``)."""
    path.mkdir(parents=True, exist_ok=True)
    skipped = set(skip)
    for name, text in (tables or TINY).items():
        if name in skipped:
            continue
        if fmt == "csv":
            (path / f"{name}.csv").write_text(text, encoding="utf-8")
        else:
            frame = pl.read_csv(text.encode(), try_parse_dates=True)
            frame.write_parquet(path / f"{name}.parquet")
    return path


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (relative path -> bytes); empty when ``path`` is absent."""
    if not path.exists():
        return {}
    return {
        str(p.relative_to(path)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(path.rglob("*"))
    }
