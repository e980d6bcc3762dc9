"""The precondition stage: the shape of the loss's bowl, measured before training.

In: the standardized problem (data/scaling.py's Scaled: rows, or the
statistics' pseudo-rows) and the method. Out: a Preconditioned -- the QR
factors that make the columns orthonormal (`orthogonalize`), the
Hessian's largest and smallest eigenvalues the direct optimizers tune their
steps from (analysis/curvature.py), and κ of the standardized columns.

Without the cross-products (engine stream past MAX_MOMENTS_FEATURES
features) there is no matrix to factor: λ_max comes from Lanczos passes
over the files and λ_min is unknown.
"""
import math
from dataclasses import dataclass, field

import numpy as np

from linreg.errors import LinregError
from linreg.rowwise import TENSOR_ALIGNMENT, aligned_empty

# How far (relative to its own size) a standardized column may lie from the
# span of the columns before it and still count as "an exact combination of
# them". Rounding in a CSV of ordinary floats leaves about 1e-15; a column
# 1e-12 away from the others still carries information that float64 resolves
# to a few digits, and the report's estimated digits say how many.
COMBINATION_TOLERANCE = 1e-12


@dataclass
class Curvature:
    """The extreme eigenvalues of the loss's Hessian and how they were found."""

    largest: float
    smallest: float
    method: str
    condition_number: float = field(init=False)  # of the Hessian: largest / smallest

    def __post_init__(self):
        self.condition_number = self.largest / self.smallest if self.smallest > 0 else math.inf


@dataclass
class Preconditioned:
    ortho: object  # Orthogonalized (q, R, singular values; below), or None
    curvature: Curvature  # the Hessian's extreme eigenvalues, in the space the optimizers train
    condition_number: float  # κ of the standardized columns (the Hessian's is its square); NaN: unknown


def precondition(scaled, stream=None, table=None, in_place=False):
    """The Preconditioned problem. stream: a function returning λ_max by
    passes over the files, used when `scaled` has no cross-products. table:
    the rows' Table, whose columns are refused here if one is a combination
    of others (the statistics' pseudo-rows were checked when they were made).
    in_place: the factor q is made in the memory of the standardized rows,
    which only training on q needs from here on (Standardized.factor: they
    are made again from the data if anything asks for them)."""
    if not scaled.cross_products:
        curvature = Curvature(stream(), 0.0, "Lanczos over the files (the smallest eigenvalue is not known)")
        return Preconditioned(None, curvature, math.nan)
    in_place = in_place and table is not None and table.x is not None
    ortho = orthogonalize(scaled.x, overwrite=in_place)
    if in_place:  # x's memory is q's now: Standardized.factor
        scaled.factor = (ortho.q, ortho.R)
        del scaled.x
    if table is not None and table.x is not None:
        _check_independent(ortho.R, scaled, table)
    # The Hessian of the standardized loss is 2/N·[x_sᵀx_s, 0; 0, N] (the
    # columns are centred), so its eigenvalues are 2·s²/N for the singular
    # values s of x_s -- those of R -- and 2 for the intercept, when it is trained.
    s2 = 2.0 * ortho.singular_values**2 / len(scaled.y)
    b2 = [2.0] if scaled.train_intercept else []
    curvature = Curvature(max([s2[0], *b2]), min([s2[-1], *b2]), "from the singular values of the standardized data")
    return Preconditioned(ortho, curvature, ortho.condition_number)


def _check_independent(R, scaled, table):
    """Refuse a feature that is an exact combination of the ones before it,
    naming them. |R[j, j]| is the length of the part of column j that the
    columns before it cannot explain; standardized columns are centred (the
    constant already taken out, with an intercept) and of length √N, so
    "tiny" means the same for all of them."""
    if not np.any(_lengths(R, len(scaled.y)) < COMBINATION_TOLERANCE):
        return  # (the rows are looked at only to name the columns)
    combination = linear_combination(scaled.x, R)
    if combination is not None:
        j, others = combination
        names = ", ".join(repr(table.features[k]) for k in others) or "the intercept"
        raise LinregError(
            f"{table.path}: feature column {table.features[j]!r} is an exact linear combination of {names}, "
            "so its coefficient cannot be told apart from theirs; leave it out with --features"
        )


def linear_combination(x_standardized, R=None):
    """The first column that is a linear combination of the ones before it
    (plus a constant, when they are centred), as (its index, the indices it
    is made of), or None. R: the QR factor of x_standardized, when made."""
    n = len(x_standardized)
    if R is None:
        R = np.linalg.qr(x_standardized, mode="r")
    for j in np.flatnonzero(_lengths(R, n) < COMBINATION_TOLERANCE):
        # Coefficients that make column j out of the columns before it.
        coefficients = np.linalg.lstsq(x_standardized[:, :j], x_standardized[:, j], rcond=None)[0]
        others = [k for k in range(j) if abs(coefficients[k]) > 1e-6]
        return int(j), others
    return None


@dataclass
class Orthogonalized:
    """The standardized columns made orthonormal, and the way back.

    Why: descent needs about κ·ln(1/ε) epochs, κ the condition number of the
    loss's Hessian (core/optimizers.py), and standardizing removes only the
    differences of scale. Correlated columns keep κ large: 1e5 on the hard
    generated sets, 1e19 on a degree-10 polynomial design.

    The cure is another change of variables. Factor the standardized design
    as x_s = Q·R (QR: Q [N, d] with orthonormal columns, R [d, d] upper
    triangular) and train the same model on q = √N·Q instead of x_s:
        ŷ = q·φ + b,   with   W = √N·R⁻¹·φ   giving the same predictions.
    The Hessian of the loss in (φ, b) is 2/N·[qᵀq, qᵀ1; 1ᵀq, N] = 2·I (the
    columns of x_s are centred, so those of Q are too): every direction has
    the same curvature, κ = 1, and plain descent with rate 1/λ = 1/2 lands
    at the bottom in one step, whatever the correlations were.

    Why not keep W and precondition the gradient (W ← W − r·(x_sᵀx_s)⁻¹·g)?
    The steps are the same in exact arithmetic, but that gradient is made
    from x_s and its rounding is amplified by κ(x_s)², the Hessian's
    condition number; the gradient with respect to φ is made from orthonormal
    columns, and only the final triangular solve costs accuracy, about
    κ(x_s)·ε -- the accuracy of QR-based least squares.
    """

    q: np.ndarray  # [N, d]: √N·Q
    R: np.ndarray  # [d, d]
    singular_values: np.ndarray  # of x_s (those of R), largest first

    @property
    def condition_number(self):
        """κ(x_s): how much relative errors in the data can grow in W."""
        s = self.singular_values
        return float(s[0] / s[-1]) if s[-1] > 0 else math.inf


# CholeskyQR2 (below) makes Q as orthonormal as Householder's QR does while
# the columns' κ stays below about 1/√ε(float64); past this κ of the first
# Cholesky factor the rows are factored by Householder reflections instead.
CHOLESKY_QR_LIMIT = 1e6


def _lengths(R, n):
    """Each standardized column's length beyond the columns before it, over √N."""
    return np.abs(np.diag(R)) / math.sqrt(n)


def orthogonalize(x_standardized, overwrite=False):
    """The Orthogonalized columns: x_s = Q·R.

    Householder reflections (LAPACK's QR) are backward stable at any κ but
    work column by column, a slow pass over the rows for each. CholeskyQR
    gets R from the d x d cross-products instead -- xᵀx = RᵀR, one matrix
    product and a Cholesky factorization -- and Q = x·R⁻¹ by a triangular
    solve, both fast matrix operations. Forming xᵀx squares κ, so Q comes out
    orthonormal only to about κ²·ε; doing it twice (CholeskyQR2: factor the
    Q of the first round again) brings that to about ε while κ²·ε is well
    below 1. A first factor whose κ is past CHOLESKY_QR_LIMIT, or a Cholesky
    that fails (a column in the span of the others), takes the reflections.
    overwrite: Q may be made in x's own memory (if it is aligned for a tensor).
    """
    x = np.asarray(x_standardized, np.float64)
    from scipy.linalg import LinAlgError, blas, cholesky, lapack

    try:
        R1 = cholesky(x.T @ x, lower=False)
        # LAPACK's estimate of 1/κ (1-norm) of the triangular factor.
        reciprocal = lapack.dtrcon(R1, norm="1", uplo="U", diag="N")[0] if len(R1) else 1.0
    except LinAlgError:
        reciprocal = 0.0
    if reciprocal * CHOLESKY_QR_LIMIT > 1:
        if overwrite and x.flags.c_contiguous and x.ctypes.data % TENSOR_ALIGNMENT == 0:
            Q = x
        else:
            Q = aligned_empty(x.shape)  # that the train stage's tensor can share (engine/solve._tensor)
            Q[...] = x
        Q = _right_solve(blas, Q, R1, overwrite=True)
        R2 = cholesky(Q.T @ Q, lower=False)
        Q, R = _right_solve(blas, Q, R2, overwrite=True), R2 @ R1
    else:
        Q, R = np.linalg.qr(x)  # Householder reflections (LAPACK): backward stable
    Q *= math.sqrt(len(x))  # in place: Q is this function's own
    return Orthogonalized(Q, R, np.linalg.svd(R, compute_uv=False))


def _right_solve(blas, x, R, overwrite=False):
    """x·R⁻¹ for upper triangular R, as the solve Rᵀ·zᵀ = xᵀ on x's own
    memory layout (a row-major x is its transpose in column-major order)."""
    return blas.dtrsm(1.0, R, x.T, side=0, lower=0, trans_a=1, overwrite_b=overwrite).T
