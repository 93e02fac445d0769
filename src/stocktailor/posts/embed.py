"""Sentence embeddings, offline, with a cache keyed by a hash of the text.

The default embedder is the static (bag-of-token) model that the ``tokenlearn-static-model``
package ships inside its wheel (a model2vec-style table of 10,000 tokens x 64 dimensions,
int8, run by a small Rust extension): it needs no network, no PyTorch and no GPU, and embeds
some thousands of short posts per second on one core. Any object with ``name`` and
``encode(texts) -> float32 array`` can replace it (:class:`Embedder`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.posts.text import clean

__all__ = ["Embedder", "EmbeddingCache", "StaticEmbedder", "embed_texts", "text_hash"]

logger = logging.getLogger(__name__)

FloatMatrix = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Anything that turns texts into row vectors."""

    name: str

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """One float32 row per text (any length; rows are normalised by the caller)."""
        ...


class StaticEmbedder:
    """The static embedding model shipped in the ``tokenlearn-static-model`` wheel.

    Parameters
    ----------
    batch_size
        Texts per call into the extension.
    """

    name = "tokenlearn-static-10k-64d"

    def __init__(self, batch_size: int = 4096) -> None:
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts`` (64 float32 columns)."""
        try:
            from static_model import get_embeddings
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            msg = (
                "posts: the embedding model package is not installed "
                "(pip install tokenlearn-static-model); set [posts] method = 'keyword' to "
                "read posts without it"
            )
            raise RuntimeError(msg) from exc
        out = []
        for i in range(0, len(texts), self.batch_size):
            chunk = list(texts[i : i + self.batch_size])
            out.append(np.asarray(get_embeddings(chunk), dtype=np.float32).reshape(len(chunk), -1))
        if not out:
            return np.zeros((0, 64), dtype=np.float32)
        return np.vstack(out)


def text_hash(texts: pl.Series) -> pl.Series:
    """Stable 16-hex-digit hash of each cleaned text (the cache key; the same on every run)."""
    return texts.map_elements(
        lambda t: hashlib.blake2b(clean(t).encode(), digest_size=8).hexdigest(),
        return_dtype=pl.String,
    )


class EmbeddingCache:
    """Embeddings by text hash, in memory and (with ``folder``) in Parquet shards on disk.

    One sub-folder per embedder name, so that a change of model never reads stale vectors.
    Each call that embeds new texts writes one new shard; shards are read once.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self._vectors: dict[str, dict[str, int]] = {}
        self._matrix: dict[str, FloatMatrix] = {}

    def _dir(self, model: str) -> Path | None:
        return None if self.folder is None else self.folder / model

    def _load(self, model: str, dim: int | None) -> None:
        if model in self._vectors:
            return
        keys: list[str] = []
        mats: list[FloatMatrix] = []
        d = self._dir(model)
        if d is not None and d.is_dir():
            for shard in sorted(d.glob("shard-*.parquet")):
                f = pl.read_parquet(shard)
                keys.extend(f["hash"].to_list())
                mats.append(f["vector"].to_numpy().astype(np.float32, copy=False))
        self._vectors[model] = {k: i for i, k in enumerate(keys)}
        width = mats[0].shape[1] if mats else (dim or 0)
        self._matrix[model] = np.vstack(mats) if mats else np.zeros((0, width), np.float32)

    def lookup(self, model: str, hashes: Sequence[str]) -> tuple[list[int], FloatMatrix]:
        """Positions of the hashes not cached, and the cached rows (zeros where missing)."""
        self._load(model, None)
        index, mat = self._vectors[model], self._matrix[model]
        rows = np.array([index.get(h, -1) for h in hashes], dtype=np.int64)
        missing = [int(i) for i in np.flatnonzero(rows < 0)]
        out = np.zeros((len(hashes), mat.shape[1] if mat.size else 0), dtype=np.float32)
        if mat.size:
            ok = rows >= 0
            out[ok] = mat[rows[ok]]
        return missing, out

    def add(self, model: str, hashes: Sequence[str], vectors: FloatMatrix) -> None:
        """Store new vectors (in memory, and as one new shard when a folder is set)."""
        if not len(hashes):
            return
        self._load(model, vectors.shape[1])
        index, mat = self._vectors[model], self._matrix[model]
        if mat.shape[1] != vectors.shape[1]:  # empty cache of unknown width
            mat = np.zeros((0, vectors.shape[1]), np.float32)
        start = mat.shape[0]
        index.update({h: start + i for i, h in enumerate(hashes)})
        self._matrix[model] = np.vstack([mat, vectors])
        d = self._dir(model)
        if d is not None:
            d.mkdir(parents=True, exist_ok=True)
            n = len(list(d.glob("shard-*.parquet")))
            vec = pl.Series("vector", vectors, dtype=pl.Array(pl.Float32, vectors.shape[1]))
            frame = pl.DataFrame({"hash": list(hashes)}).with_columns(vec)
            tmp = d / f".shard-{n:06d}.tmp"
            frame.write_parquet(tmp)
            tmp.replace(d / f"shard-{n:06d}.parquet")


def embed_texts(
    texts: pl.Series, embedder: Embedder, cache: EmbeddingCache | None = None
) -> FloatMatrix:
    """Unit-length embeddings of ``texts`` (cleaned first), the cached ones read, not computed.

    Returns
    -------
    numpy.ndarray
        ``(len(texts), dim)`` float32; an all-zero row for a text that embeds to zero.
    """
    hashes = text_hash(texts)
    uniq = pl.DataFrame({"hash": hashes, "text": texts}).unique("hash", keep="first")
    uniq = uniq.sort("hash")
    keys = uniq["hash"].to_list()
    if cache is None:
        cache = EmbeddingCache()
    missing, vecs = cache.lookup(embedder.name, keys)
    if missing:
        new_texts = [clean(t) for t in uniq["text"].gather(missing).to_list()]
        new = embedder.encode(new_texts)
        if vecs.shape[1] != new.shape[1]:  # nothing cached yet: the width comes from the model
            vecs = np.zeros((len(keys), new.shape[1]), dtype=np.float32)
        vecs[missing] = new
        cache.add(embedder.name, [keys[i] for i in missing], new)
        logger.info(
            "posts: embedded %d new texts (%d cached)", len(missing), len(keys) - len(missing)
        )
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs = (vecs / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    pos = {k: i for i, k in enumerate(keys)}
    order = np.array([pos[h] for h in hashes.to_list()], dtype=np.int64)
    result: FloatMatrix = vecs[order]
    return result
