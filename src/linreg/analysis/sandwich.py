"""The meat of a covariance (analysis/covariance.py), gathered batch by batch.

In:  the triangular factor R of the whitened design, the fitted
     coefficients and the rows in batches (or, in memory, all of them as one
     batch: `covariance`), on one worker or several.
Out: the sums each covariance type needs, merged across batches and workers
     (`Sandwich`), and at the end the type's `Covariance`.

Why triangular factors. With R the triangular factor of the whitened design
(RᵀR = XᵀWX: from its QR in memory, or from the cross-products when
streamed), write q_i = R⁻ᵀ √w_i x_i. Then the bread is R⁻¹R⁻ᵀ, the leverage
is h_i = ‖q_i‖², and V = R⁻¹ S R⁻ᵀ where S is the same meat made of the q's:
two triangular solves, never (XᵀWX)⁻¹ itself, whose condition number is the
square of the design's.
"""
import copy
import math

import numpy as np

from linreg.analysis.covariance import KERNELS, Covariance
from linreg.errors import LinregError
from linreg.plan import cov_keywords, cov_type_name

# Memory set aside for the per-cluster sums of a streamed pass: k numbers a
# cluster and, in the dictionary that finds them by label, about this much more.
CLUSTER_BYTES, CLUSTER_OVERHEAD = 2**28, 200


def covariance(design, residuals, cov_type="nonrobust", cov_kwds=None, weights=None, intercept=True, use_t=None):
    """The covariance of the coefficients of a fit held in memory.

    design:    [n, k] rows of x, with the intercept's column of ones first when `intercept`
    residuals: [n] y - design·β (not whitened)
    cov_kwds:  {"groups": one cluster label per row} for cluster; {"maxlags": L} for HAC
    weights:   [n] observation weights (weighted least squares), or None
    use_t:     Student's t rather than the normal; None: statsmodels' default
    """
    design = np.asarray(design, np.float64)
    cov_type = cov_type_name(cov_type)
    kwds = cov_keywords(cov_type, cov_kwds)
    groups = kwds.pop("groups", None)
    if cov_type == "cluster" and groups is None:
        raise LinregError("cov_type 'cluster' needs cov_kwds groups: one cluster label per row")
    root = np.ones(len(design)) if weights is None else np.sqrt(np.asarray(weights, np.float64))
    R = np.linalg.qr(design * root[:, None], mode="r")
    sandwich = Sandwich(cov_type, None, R, kwds, intercept, use_t)
    sandwich.add_residuals(design, residuals, weights, groups)
    return sandwich.result()


def factor_from_moments(moments, intercept=True):
    """The R (RᵀR = XᵀWX, upper triangular) of the design [1, x] or x, from the
    streamed statistics of data/moments.py, for a `Sandwich`.

    From the centred cross-products C_xx = R_cᵀR_c (Cholesky of the unit-free
    correlations, then the spreads), the design with an intercept has
        R = [[√Σw, √Σw·x̄ᵀ], [0, R_c]],
    since RᵀR = [[Σw, Σw·x̄ᵀ], [Σw·x̄, C_xx + Σw·x̄x̄ᵀ]] = XᵀWX. The raw sums of
    squares, whose digits a column like 2024 ± 3 would cancel, are never formed.
    """
    from linreg.data.moments import standardized

    if moments.diagonal:
        raise LinregError("a robust covariance needs the cross-products of the features, which were not gathered")
    mean, scale, S = standardized(moments, intercept)  # without an intercept, S is the uncentred one
    R = np.linalg.cholesky(S[:-1, :-1]).T * scale[:-1]
    if not intercept:
        return R
    root = math.sqrt(moments.weight)
    return np.block([[np.array([[root]]), root * mean[None, :-1]], [np.zeros((len(R), 1)), R]])


class Sandwich:
    """The meat of a covariance gathered batch by batch: one more pass over the
    data after training, on any number of workers.

    cov_type:     a name of plan.py's COV_TYPES
    coefficients: [k] the fitted β, in the design's column order
    R:            [k, k] upper triangular, RᵀR = XᵀWX of the whitened design
                  (e.g. the Cholesky factor of the cross-products a streamed
                  fit gathered, transposed)
    cov_kwds:     the type's keywords as the plan checked them (plan.cov_keywords:
                  defaults filled in), but a cluster's groups come with each batch (`add`)
    max_clusters: how many distinct clusters a pass may hold; by default as
                  many as fit in CLUSTER_BYTES

    What it holds: the number of rows, Σ w e², and the type's meat in the q
    coordinates (see the module's notes): Σ u uᵀ (HC, the lag-0 term of HAC),
    for cluster a dictionary from label to s_g, for HAC the weighted lagged
    products Σ_l w_l Σ_t u_t u_{t-l}ᵀ and the first and last L rows u.

    Batches must come in row order for HAC (the lags pair neighbouring rows).
    `merge` puts another's rows after these: the lags across the boundary pair
    this one's last L rows with the other's first L, so workers that read
    contiguous shards and merge in the order of their ranks get the
    covariance of the whole data, the same as one process. Cluster sums merge
    by label (a cluster may be split between batches and workers). Every
    other sum simply adds, exact up to rounding.
    """

    def __init__(self, cov_type, coefficients, R, cov_kwds=None, intercept=True, use_t=None, max_clusters=None):
        self.cov_type, kwds = cov_type, cov_kwds or {}
        if kwds.get("groups") is not None:
            raise LinregError("a streamed cluster covariance takes its groups with each batch, not in cov_kwds")
        self.R = np.asarray(R, np.float64)
        self.k = len(self.R)
        self.coefficients = None if coefficients is None else np.asarray(coefficients, np.float64)
        self.intercept = intercept
        self.use_t = self.cov_type == "nonrobust" if use_t is None else bool(use_t)
        self.use_correction = kwds.get("use_correction", False)
        self.df_correction = kwds.get("df_correction", False)
        self.lags = kwds.get("maxlags", 0)
        self.lag_weights = KERNELS[kwds["kernel"]](self.lags) if self.cov_type == "HAC" else None
        self.max_clusters = max_clusters or CLUSTER_BYTES // (8 * self.k + CLUSTER_OVERHEAD)
        self._clear()

    def _clear(self):
        k = self.k
        self.rows, self.rss = 0, 0.0
        self.meat, self.lagged = np.zeros((k, k)), np.zeros((k, k))
        self.head, self.tail = np.zeros((0, k)), np.zeros((0, k))
        self.clusters = {}

    def _empty(self):
        """Another accumulator with these settings and no rows."""
        other = copy.copy(self)
        other._clear()
        return other

    # --- gathering ----------------------------------------------------------------

    def add(self, x, y, w=None, groups=None):
        """The rows of one batch: design rows x [m, k], targets y [m], weights w, cluster labels."""
        x = np.asarray(x, np.float64)
        self.add_residuals(x, np.asarray(y, np.float64) - x @ self.coefficients, w, groups)

    def add_residuals(self, x, residuals, w=None, groups=None):
        """As `add`, given the residuals y - x·β of the rows instead of y."""
        from scipy.linalg import solve_triangular

        x = np.asarray(x, np.float64)
        e = np.asarray(residuals, np.float64)
        if w is not None:
            root = np.sqrt(np.asarray(w, np.float64))
            x, e = x * root[:, None], e * root
        q = solve_triangular(self.R, x.T, trans="T").T
        self.merge(self._part(q, e, groups))

    def _part(self, q, e, groups):
        """The accumulator of one batch's rows, in q coordinates."""
        part = self._empty()
        part.rows, part.rss = len(e), float(e @ e)
        u = q * e[:, None]
        if self.cov_type in ("HC2", "HC3"):
            leverage = np.einsum("ij,ij->i", q, q)
            u /= ((1.0 - leverage) ** (0.5 if self.cov_type == "HC2" else 1.0))[:, None]
        if self.cov_type == "cluster":
            if groups is None:
                raise LinregError("cov_type 'cluster' needs the groups of every batch: one cluster label per row")
            codes, labels = _cluster_codes(groups, len(e))
            sums = np.zeros((len(labels), self.k))
            np.add.at(sums, codes, u)
            part.clusters = dict(zip(labels, sums))
        elif self.cov_type != "nonrobust":
            part.meat = u.T @ u
        if self.cov_type == "HAC":
            for lag, weight in enumerate(self.lag_weights[1 : len(u)], start=1):
                part.lagged += weight * (u[lag:].T @ u[:-lag])
            part.head, part.tail = u[: self.lags], u[max(len(u) - self.lags, 0) :]
        return part

    def merge(self, other):
        """Put `other`'s rows after these (in place); returns self."""
        if (other.cov_type, other.k, other.lags) != (self.cov_type, self.k, self.lags):
            raise ValueError("cannot merge covariance sums gathered with different settings")
        if self.cov_type == "HAC":
            # The pairs across the boundary: row t among other's first L, row
            # t - l among these last L.
            rows = np.vstack([self.tail, other.head])
            p = len(self.tail)
            for lag, weight in enumerate(self.lag_weights[1:], start=1):
                first, end = max(p, lag), min(len(rows), p + lag)
                if first < end:
                    self.lagged += weight * (rows[first:end].T @ rows[first - lag : end - lag])
            self.lagged += other.lagged
            self.head = np.vstack([self.head, other.head])[: self.lags]
            tail = np.vstack([self.tail, other.tail])
            self.tail = tail[len(tail) - min(self.lags, len(tail)) :]
        for label, s in other.clusters.items():
            self.clusters[label] = self.clusters[label] + s if label in self.clusters else s
        if len(self.clusters) > self.max_clusters:
            raise LinregError(
                f"the groups have more than {self.max_clusters:,} distinct clusters, more than the "
                f"{CLUSTER_BYTES >> 20} MiB set aside for their sums ({self.k} numbers each) holds; cluster on a "
                "coarser grouping (--cov cluster:COL), or, when most clusters are a row or two, use --cov HC1"
            )
        self.rows += other.rows
        self.rss += other.rss
        self.meat += other.meat
        return self

    # --- one vector, for the exchange between workers ------------------------------

    def vector(self):
        """The sums as one float64 vector. Without clusters its length is the
        same on every worker (head and tail padded to L rows); with clusters it
        grows with them: pad the shorter vectors with zeros for a collective of
        equal lengths (`from_vector` reads only what the header announces)."""
        header = [self.rows, self.rss, len(self.head), len(self.tail), len(self.clusters)]
        parts = [header, self.meat.ravel(), self.lagged.ravel()]
        parts += [np.pad(rows, ((0, self.lags - len(rows)), (0, 0))).ravel() for rows in (self.head, self.tail)]
        for label, s in self.clusters.items():
            parts += [_pack_label(label), s]
        return np.concatenate(parts)

    def from_vector(self, vector):
        """A new accumulator with these settings and the sums packed in `vector`."""
        k, L = self.k, self.lags
        other = self._empty()
        rows, rss, heads, tails, clusters = vector[:5]
        other.rows, other.rss = int(rows), float(rss)
        at = 5
        other.meat = vector[at : at + k * k].reshape(k, k).copy()
        other.lagged = vector[at + k * k : at + 2 * k * k].reshape(k, k).copy()
        at += 2 * k * k
        other.head = vector[at : at + L * k].reshape(L, k)[: int(heads)].copy()
        other.tail = vector[at + L * k : at + 2 * L * k].reshape(L, k)[: int(tails)].copy()
        at += 2 * L * k
        for _ in range(int(clusters)):
            label, at = _unpack_label(vector, at)
            other.clusters[label] = vector[at : at + k].copy()
            at += k
        return other

    # --- the covariance -------------------------------------------------------------

    def result(self):
        """The Covariance of the rows gathered."""
        from scipy.linalg import solve_triangular

        n, k = self.rows, self.k
        correction, clusters = 1.0, None
        if self.cov_type == "nonrobust":
            meat = np.eye(k) * (self.rss / (n - k))
        elif self.cov_type == "cluster":
            clusters = len(self.clusters)
            if clusters < 2:
                raise LinregError(f"the groups have {clusters} distinct value{'s' if clusters != 1 else ''}; a cluster "
                                  "covariance needs at least 2 clusters (HC1 is the one for independent rows)")
            sums = np.array(list(self.clusters.values()))
            meat = sums.T @ sums
            if self.use_correction:
                correction = clusters / (clusters - 1.0) * (n - 1.0) / (n - k)
        else:
            meat = self.meat + self.lagged + self.lagged.T
            if self.cov_type == "HC1" or (self.cov_type == "HAC" and self.use_correction):
                correction = n / (n - k)
        # R⁻¹ · S · R⁻ᵀ, S symmetric: two triangular solves.
        V = solve_triangular(self.R, solve_triangular(self.R, meat * correction).T)
        df = clusters - 1 if clusters is not None and self.df_correction else n - k
        return Covariance(self.cov_type, (V + V.T) / 2.0, self.use_t, df, self.intercept, clusters)


def _cluster_codes(groups, rows):
    """Each row's cluster as a code 0..G-1, and the G labels (Python values, in order of appearance)."""
    import pyarrow as pa

    try:
        labels = pa.array(groups, from_pandas=True)  # NaN, None and pandas' NA all count as missing
    except (pa.ArrowException, TypeError, ValueError):
        raise LinregError("groups must be one cluster label per row, all numbers or all text") from None
    if pa.types.is_dictionary(labels.type):  # a categorical column: its dictionary may hold labels no row has
        labels = labels.dictionary_decode()
    if len(labels) != rows:
        raise LinregError(f"groups has {len(labels)} labels for {rows} rows; give one cluster label per row")
    if labels.null_count:
        row = int(np.flatnonzero(labels.is_null().to_numpy(zero_copy_only=False))[0])
        raise LinregError(f"groups has {labels.null_count} missing labels (the first in row {row}); "
                          "give every row its cluster, or leave those rows out")
    encoded = labels.dictionary_encode()
    return encoded.indices.to_numpy(), encoded.dictionary.to_pylist()


def _pack_label(label):
    """A cluster label as floats: [0, number] or [1, n, its n UTF-8 bytes]."""
    if isinstance(label, str):
        data = np.frombuffer(label.encode(), np.uint8)
        return np.concatenate([[1.0, len(data)], data])
    if isinstance(label, (int, float)) and float(label) == label:
        return np.array([0.0, label])
    raise LinregError(f"cluster label {label!r} cannot be sent to the other workers; use whole numbers "
                      "(below 2**53) or text as labels")


def _unpack_label(vector, at):
    if vector[at] == 0.0:
        value = vector[at + 1]
        return (int(value) if value.is_integer() else float(value)), at + 2
    n = int(vector[at + 1])
    return bytes(vector[at + 2 : at + 2 + n].astype(np.uint8)).decode(), at + 2 + n
