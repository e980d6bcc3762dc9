"""The precondition stage: the shape of the loss's bowl, measured before training.

In: the standardized problem (data/scaling.py's Scaled: rows, or the
statistics' pseudo-rows) and the method. Out: a Preconditioned -- the QR
factors that make the columns orthonormal (data/scaling.orthogonalize), the
Hessian's largest and smallest eigenvalues the direct optimizers tune their
steps from (analysis/curvature.py), and κ of the standardized columns.

Without the cross-products (engine stream past MAX_MOMENTS_FEATURES
features) there is no matrix to factor: λ_max comes from Lanczos passes
over the files and λ_min is unknown.
"""
import math
from dataclasses import dataclass

import numpy as np

from linreg.analysis.curvature import Curvature
from linreg.data.scaling import orthogonalize
from linreg.errors import LinregError

# How far (relative to its own size) a standardized column may lie from the
# span of the columns before it and still count as "an exact combination of
# them". Rounding in a CSV of ordinary floats leaves about 1e-15; a column
# 1e-12 away from the others still carries information that float64 resolves
# to a few digits, and the report's estimated digits say how many.
COMBINATION_TOLERANCE = 1e-12


@dataclass
class Preconditioned:
    ortho: object  # data/scaling.Orthogonal (q, R, singular values), or None
    curvature: Curvature  # the Hessian's extreme eigenvalues, in the space the optimizers train
    condition_number: float  # κ of the standardized columns (the Hessian's is its square); NaN: unknown

    def to_standardized(self, method):
        """Maps the trained weights to the standardized space: through R⁻¹ after orthogonal training."""
        return self.ortho.weights if method == "orthogonal" else _unchanged


def precondition(scaled, stream=None, table=None):
    """The Preconditioned problem. stream: a function returning λ_max by
    passes over the files, used when `scaled` has no cross-products. table:
    the rows' Table, whose columns are refused here if one is a combination
    of others (the statistics' pseudo-rows were checked when they were made)."""
    if not scaled.cross_products:
        curvature = Curvature(stream(), 0.0, "Lanczos over the files (the smallest eigenvalue is not known)")
        return Preconditioned(None, curvature, math.nan)
    ortho = orthogonalize(scaled.x)
    if table is not None and table.x is not None:
        _check_independent(ortho.R, scaled.x, table)
    # The Hessian of the standardized loss is 2/N·[x_sᵀx_s, 0; 0, N] (the
    # columns are centred), so its eigenvalues are 2·s²/N for the singular
    # values s of x_s -- those of R -- and 2 for the intercept, when it is trained.
    s2 = 2.0 * ortho.singular_values**2 / len(scaled.y)
    b2 = [2.0] if scaled.train_intercept else []
    curvature = Curvature(max([s2[0], *b2]), min([s2[-1], *b2]), "from the singular values of the standardized data")
    return Preconditioned(ortho, curvature, ortho.condition_number)


def _unchanged(W):
    return W


def _check_independent(R, x_standardized, table):
    """Refuse a feature that is an exact combination of the ones before it,
    naming them. |R[j, j]| is the length of the part of column j that the
    columns before it cannot explain; standardized columns are centred (the
    constant already taken out, with an intercept) and of length √N, so
    "tiny" means the same for all of them."""
    combination = linear_combination(x_standardized, R)
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
    diagonal = np.abs(np.diag(R)) / math.sqrt(n)
    for j in np.flatnonzero(diagonal < COMBINATION_TOLERANCE):
        # Coefficients that make column j out of the columns before it.
        coefficients = np.linalg.lstsq(x_standardized[:, :j], x_standardized[:, j], rcond=None)[0]
        others = [k for k in range(j) if abs(coefficients[k]) > 1e-6]
        return int(j), others
    return None
