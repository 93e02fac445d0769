"""The ``[posts]`` settings section (kept beside the posts package; part of
:class:`stocktailor.config.Settings`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PostsConfig"]


class PostsConfig(BaseModel):
    """Posts (social, influencer, blog text) read as trend signals (``posts`` table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        True, description="Turn a posts table, when given, into derived trend series."
    )
    method: Literal["embedding", "keyword"] = Field(
        "keyword",
        description="How posts are matched to product attributes: keywords (tags and names, "
        "exact and stemmed), or the packaged static embedding model (measured weaker so far: "
        "docs/posts.md).",
    )
    attributes: tuple[str, ...] = Field(
        ("tags", "category", "color", "style"),
        description="Product columns whose values posts can be about (style: by its "
        "style_name and description).",
    )
    false_match_rate: float = Field(
        0.01,
        gt=0.0,
        lt=0.5,
        description="Embedding threshold per attribute value: the share of random texts of "
        "the posts' own words allowed above it.",
    )
    min_similarity: float = Field(
        0.3, ge=-1.0, le=1.0, description="Lowest cosine similarity that can count as a match."
    )
    source_weights: tuple[float, float, float, float] = Field(
        (1.0, 2.0, 1.5, 0.5),
        description="Weight of one post by source: social, influencer, blog, other.",
    )
    smoothing_days: int = Field(7, ge=1, description="Days in the trailing mean of the index.")
    baseline_days: int = Field(
        28, ge=7, description="Days before the smoothing window that novelty compares to, days."
    )
    prior_per_day: float = Field(
        1.0,
        gt=0.0,
        description="Weighted posts per day added to every series, so that a few posts on a "
        "quiet series are not read as a surge.",
    )
    min_posts: int = Field(
        20, ge=1, description="Matched posts a scope x attribute value needs to become a series."
    )
