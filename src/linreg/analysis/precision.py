"""Precision: how many digits a fit can promise (train.py settles where it stops).

In:  the method and dtype that trained, the standardized data (`scaled`) and
     the R of its QR factorization, the standardized weights W and b, and
     what training reported: the last gradient's norm (direct optimizers) or
     the last refinement round's correction (the orthogonal method).
Out: `error_bounds`: Bounds, per coefficient [intercept, W_1, ..., W_d], on
     its error against the exact least-squares solution of the data as
     given (every float64 is an exact number), split by the stage that
     rounds; `Bounds.digits`, the correct significant digits of the worst
     coefficient, the number a fit promises. A coefficient within its own
     bound of zero is zero to rounding: it is left out of the worst (its
     relative error says nothing), and so is a fit's intercept left out.

Each stage that rounds perturbs the standardized problem by a relative ε
(the stages: the training dtype and the QR for the direct optimizers, the
extended-precision residuals once the orthogonal method's refinement has
run, the streamed cross-products, the float64 result and its way back to the
original units), and a perturbation moves the coefficient W_j by at most
    ρ_j · (size of the perturbation of the fitted values)       first order
  + η_j · ‖x‖ · ‖r‖ · ε                                          second order
with ρ_j the length of row j of R⁻¹ and η_j of row j of (xᵀx)⁻¹ = R⁻¹R⁻ᵀ. The
second term is the perturbation theory of least squares' κ²·ε·‖r‖ term: it
grows with the residual r, so noisy data can lose digits that noiseless data
with the same κ keep. The intercept's row is −zᵀR⁻¹ (z = means/spreads of the
columns), since it is ȳ − Σ W_j·x̄_j back in the original units.
"""
import math
from dataclasses import dataclass

import numpy as np

from linreg.analysis.ols import standardized_residuals

EPSILON = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}
# The refinement's residuals and standardized data: numpy's long double, 64
# bits of mantissa on x86 (ε ≈ 1.1e-19); on platforms where it is float64,
# the bounds below say so through its ε.
EXTENDED = np.longdouble
EXTENDED_EPSILON = float(np.finfo(EXTENDED).eps)
MAX_DIGITS = -math.log10(EPSILON["float64"])
# A fit that cannot promise one correct digit has not converged to anything.
MIN_DIGITS = 1.0
# Headroom on every bound. Its norms assume rounding errors line up, which
# they rarely do, yet on the family of examples/digits_family.py the worst
# delivery came within 0.2 digit of the bare bounds; times 4 (0.6 digit) the
# promise stays below every delivery measured there, by 0.8 digit or more.
SAFETY = 4.0
# A coefficient is zero to rounding when its bound exceeds it and is below
# this share of the coefficients' size (their norm): zero at about 12 of the
# 16 digits float64 carries. The streamed statistics' bound (κ²·ε) can
# swallow a small coefficient that is not zero at all; that one is unknown.
ZERO_SHARE = 1e-12

@dataclass
class Bounds:
    """Error bounds of a fit's coefficients [intercept, W_1, ..., W_d], in
    standardized units (each W_j and the intercept over the target's spread).

    terms: {stage: [d + 1] bound on the absolute error that stage leaves}
    value: [d + 1] the coefficients' sizes
    """

    terms: dict
    value: np.ndarray

    @property
    def total(self):
        return sum(self.terms.values())

    @property
    def zero(self):
        """Coefficients within their bound of zero while that bound is tiny
        beside the coefficients' size: zero to rounding, their relative
        error meaningless (an intercept left out is one too). A larger bound
        that swallows a coefficient says its value is unknown, not zero: it
        counts, with no correct digit."""
        scale = max(float(np.linalg.norm(self.value)), np.finfo(np.float64).tiny)
        return (self.value <= self.total) & (self.total <= ZERO_SHARE * scale)

    @property
    def relative(self):
        """Bounds on the relative errors; infinite for coefficients zero to rounding."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.zero, np.inf, self.total / self.value)

    @property
    def digits(self):
        """Correct significant digits of the worst coefficient not zero to
        rounding, from 0 to about 15.7: what a fit promises. 0 when the
        weights as a whole are not known to one digit, whatever each says."""
        slopes = self.value[1:]
        if not np.linalg.norm(self.total[1:]) < 0.1 * np.linalg.norm(slopes):
            return 0.0
        worst = float(np.max(self.relative[~self.zero], initial=0.0))
        return min(max(-math.log10(worst), 0.0), MAX_DIGITS) if worst > 0 else MAX_DIGITS

    def dominant(self):
        """The stage whose bound is largest on the worst coefficient."""
        relative = np.where(self.zero, -np.inf, self.total / np.maximum(self.value, np.finfo(np.float64).tiny))
        worst = int(np.argmax(relative))
        return max(self.terms, key=lambda name: self.terms[name][worst])


def error_bounds(method, dtype, scaled, R, W, b, *, final_gradient=0.0, correction=(0.0, 0.0), refined=False):
    """The Bounds of a fit.

    method, dtype: what trained; scaled: the standardized data (data/scaling.py),
    R: its QR factor; W, b: the weights found (standardized, float64);
    final_gradient: the loss's gradient norm where a direct optimizer stopped;
    correction: (W, b), the change of the last refinement round (orthogonal);
    refined: whether the orthogonal method's refinement ran to its end.
    """
    from scipy.linalg import solve_triangular

    y, W = scaled.y, np.asarray(W, np.float64)
    n, d = len(y), len(scaled.x_mean)
    z = scaled.x_mean / scaled.x_scale  # 0 without an intercept: nothing centred
    z_y = scaled.y_mean / scaled.y_scale
    inverse = solve_triangular(R, np.eye(d))
    rows = np.vstack([-z @ inverse, inverse])  # how [intercept, W] move when the fitted values do
    first = np.linalg.norm(rows, axis=1)
    first[0] = math.hypot(first[0], 1 / math.sqrt(n))
    second = np.linalg.norm(rows @ inverse.T, axis=1)
    value = np.abs(np.concatenate([[z_y + b - z @ W], W]))
    y_norm = float(np.linalg.norm(y))
    residual = float(np.linalg.norm(standardized_residuals(scaled, W, b)))
    # The size of what is rounded: the target and every column's share of the fit.
    size = y_norm + np.abs(W) @ np.linalg.norm(R, axis=0)
    width = float(np.linalg.norm(R))  # ‖x‖ (Frobenius): a gradient xᵀr rounds at about ε·‖x‖·‖r‖
    eps64 = EPSILON["float64"]

    def stage(eps, perturbed, second_order=0.0):
        return SAFETY * eps * (first * perturbed + second * second_order)

    # The float64 result, and its way back to the original units: each slope
    # is multiplied twice, the intercept is ȳ − Σ W_j·x̄_j, a sum that
    # cancels when the means are large beside the spreads.
    output = 3 * eps64 * value
    output[0] = eps64 * (abs(z_y) + abs(b) + np.abs(W) @ np.abs(z))
    terms = {"float64 result": SAFETY * output}
    if method == "orthogonal" and refined:
        # The refinement's fixed point is the least-squares solution of the
        # data as its extended-precision residuals see them: the QR and the
        # training dtype set only how fast it gets there.
        terms["extended residuals"] = stage(EXTENDED_EPSILON, size, width * residual)
        # The last round, left out as rounding, moved each coefficient this far.
        step_W, step_b = correction
        terms["last round"] = SAFETY * np.abs(np.concatenate([[step_b - z @ step_W], step_W]))
    else:
        # Rounding the data and the residual to the dtype moves the point
        # where the gradient xᵀr is zero at first order; summing xᵀr in it,
        # at second order.
        terms["training dtype"] = stage(EPSILON[dtype], size, width * residual)
        if method == "orthogonal":  # stopped before refinement: the QR's rounding stays too
            terms["QR"] = stage(eps64, size, width * residual)
        # Stopping early: the weights are (xᵀx)⁻¹·(n/2)·gradient from the minimum.
        terms["early stop"] = second * n / 2 * final_gradient
    if scaled.represents is not None:  # streamed: the cross-products xᵀx were rounded
        terms["cross-products"] = stage(scaled.cross_epsilon or eps64, 0.0, width * (y_norm + size))
    if not scaled.intercept:
        value[0], terms = 0.0, {name: np.concatenate([[0.0], term[1:]]) for name, term in terms.items()}
    return Bounds(terms, value)
