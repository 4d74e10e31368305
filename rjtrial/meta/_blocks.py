"""Block-diagonal linear algebra for dependent effect sizes (multilevel models and RVE).

Rows are grouped by a top-level cluster (a study); every covariance matrix the models use
(sampling errors V, random effects, the marginal M = V + sum sigma_l^2 Z_l Z_l') is block
diagonal over those clusters. Clusters of equal size are stacked into one
``(n_clusters, m, m)`` array, so that one batched numpy call (Cholesky, inverse, eigen)
handles all of them: 1,000 studies of 5 effects cost one (1000, 5, 5) call, not 1,000 calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Batch:
    """The clusters of one size ``m``: ``rows[c, i]`` is the position (in the data) of the
    ``i``-th row of the ``c``-th cluster of this batch; ``clusters`` their cluster codes."""

    rows: np.ndarray
    clusters: np.ndarray

    @property
    def size(self) -> int:
        return self.rows.shape[1]


class Blocks:
    """Rows grouped into clusters by integer ``codes`` (0..J-1), batched by cluster size.

    Within a cluster rows keep their order in the data.
    """

    def __init__(self, codes: np.ndarray):
        codes = np.asarray(codes, dtype=np.int64)
        self.n = len(codes)
        self.codes = codes
        self.n_clusters = int(codes.max()) + 1 if len(codes) else 0
        order = np.argsort(codes, kind="stable")
        sizes = np.bincount(codes, minlength=self.n_clusters)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        batches = []
        for m in np.unique(sizes[sizes > 0]):
            clusters = np.flatnonzero(sizes == m)
            rows = order[starts[clusters][:, None] + np.arange(m)[None, :]]
            batches.append(Batch(rows, clusters))
        self.batches: tuple[Batch, ...] = tuple(batches)

    def gather(self, values: np.ndarray) -> list[np.ndarray]:
        """Per batch, ``values[rows]``: shape (n_c, m) for a vector, (n_c, m, p) for a matrix."""
        return [values[b.rows] for b in self.batches]

    def scatter(self, parts: list[np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`gather` for vectors: a length-n array in data order."""
        out = np.empty(self.n)
        for b, part in zip(self.batches, parts):
            out[b.rows] = part
        return out

    def same(self, labels: np.ndarray) -> list[np.ndarray]:
        """Per batch, the 0/1 matrices ``[labels_i == labels_j]`` within each cluster."""
        out = []
        for b in self.batches:
            lab = labels[b.rows]
            out.append((lab[:, :, None] == lab[:, None, :]).astype(float))
        return out

    def sampling_covariance(self, vi: np.ndarray, rho: float | None) -> list[np.ndarray]:
        """Blocks of V: ``diag(v)``, or with ``rho`` the constant-correlation blocks
        ``rho sqrt(v_i v_j)`` off the diagonal (``clubSandwich::impute_covariance_matrix(vi,
        cluster, r = rho)``)."""
        out = []
        for b in self.batches:
            v = vi[b.rows]
            m = b.size
            block = np.zeros((len(b.clusters), m, m))
            idx = np.arange(m)
            block[:, idx, idx] = v
            if rho is not None and m > 1:
                s = np.sqrt(v)
                off = rho * s[:, :, None] * s[:, None, :]
                off[:, idx, idx] = 0.0
                block += off
            out.append(block)
        return out


def codes_of(*columns) -> np.ndarray:
    """Integer codes (0..G-1, in order of first appearance) of the combinations of ``columns``."""
    if len(columns) == 1:
        values = np.asarray(columns[0], dtype=object)
        _, first, inverse = np.unique(values.astype(str), return_index=True, return_inverse=True)
    else:
        keys = np.array(["\x1f".join(map(str, row)) for row in zip(*columns)], dtype=object)
        _, first, inverse = np.unique(keys.astype(str), return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.ravel()]


def inverse_sqrt_psd(matrices: np.ndarray, *, tol: float = 1e-12) -> np.ndarray:
    """Symmetric inverse square roots of a stack of symmetric matrices; eigenvalues at or
    below ``tol`` are treated as 0 (clubSandwich's ``matrix_power(x, -1/2)``)."""
    values, vectors = np.linalg.eigh(matrices)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(values > tol, 1.0 / np.sqrt(np.where(values > tol, values, 1.0)), 0.0)
    return np.einsum("...ij,...j,...kj->...ik", vectors, scaled, vectors)


def inverse_sqrt_symmetric(matrix: np.ndarray, *, tol: float = 1e-12) -> np.ndarray:
    """One symmetric matrix to the power -1/2 (see :func:`inverse_sqrt_psd`)."""
    return inverse_sqrt_psd(matrix[None])[0]
