"""The infer stage: what the trained weights say, and how far to trust them.

In: the Table, the standardized problem, its preconditioning and the
Solution (trained weights, history, the refinement's last correction).
Out: an Inference -- the OLS statistics in original units (coefficients,
standard errors, t, p, R², covariance), the diagnostics (condition number,
residual tests), the closed-form least-squares solution the report compares
with (from the QR factors, made once), the expected correct digits (analysis/precision.py) and the verdict:
a fit that cannot promise one correct digit has not converged to anything.

With a robust covariance type (HC0-HC3, cluster, HAC: analysis/covariance.py)
the standard errors, z tests, intervals and the F test (then a Wald test) come
from its sandwich, made from the rows with the QR factor R the precondition
stage already has as the bread; on the streamed engines, from one more pass
over the files, each worker reading its share.
"""
import math
from dataclasses import dataclass, replace

import numpy as np

from linreg.analysis import ols, precision
from linreg.analysis.covariance import Covariance
from linreg.analysis.diagnostics import diagnostics
from linreg.threads import one_blas_thread


@dataclass
class Inference:
    stats: object  # analysis/ols.py's OLSStatistics, in original units
    diagnostics: object  # analysis/diagnostics.py's Diagnostics
    reference: np.ndarray  # the closed-form least-squares (intercept, W...), NaN where it is not known
    relative_gradient: float  # the gradient's norm at the end over its first
    bounds: object  # analysis/precision.py's Bounds, None when κ is unknown
    converged: bool
    covariance: Covariance  # the type's, in original units; its distribution is the tests' (t or normal)
    cov_kwds: dict  # what the report names: {"groups": the column (None for labels given)} or {"maxlags": L}
    relative_difference: np.ndarray  # |trained − closed form| / |closed form|, per coefficient
    digits: float  # the bounds' correct digits, NaN when κ is unknown
    zero: np.ndarray  # per coefficient, zero to rounding (the bounds'); None when κ is unknown


def infer(table, scaled, pre, solution, dtype, cov=("nonrobust", {})):
    R, singular_values = (None, None) if pre.ortho is None else (pre.ortho.R, pre.ortho.singular_values)
    # Without the cross-products (engine stream, many features) the fit's
    # own mean squared error, measured over the files where training
    # ended, gives R², the residual SD and the likelihood; nothing else.
    history = solution.result.history
    mean_square = None if scaled.cross_products else float(history.loss[-1])
    # The residuals' passes are products of vectors and a matrix by a vector:
    # one BLAS thread does them at memory speed, where a second waits for a
    # core that TensorFlow's threads still hold after training (linreg/threads.py;
    # measured: Durbin-Watson's dots over 10⁶ residuals took 83 ms so, 1 ms alone).
    with one_blas_thread():
        if scaled.cross_products:
            stats = ols.standardized_statistics(scaled, solution.W, solution.b, R=R)
        else:
            stats = ols.loss_statistics(scaled, solution.W, solution.b, mean_square)
        found = diagnostics(scaled, solution.W, solution.b, table.x, table.weights, singular_values,
                            getattr(table, "log_weights", None), mean_square=mean_square,
                            R=R if table.x is not None else None, raw_y=table.y)  # (pseudo-rows': the same κ)

    covariance = Covariance("nonrobust", stats.covariance, True, stats.df_residual, scaled.intercept)
    if cov[0] != "nonrobust":
        stats, found, covariance = _robust(cov, scaled, pre.ortho.R, table, solution, stats, found)

    norms = history.gradient_norm
    relative_gradient = float(norms[-1] / norms[0]) if norms[0] > 0 else 0.0
    bounds = precision.error_bounds(
        solution.method, dtype, scaled, R, solution.W, solution.b, final_gradient=float(norms[-1]),
        correction=solution.correction, refined=solution.refined,
    ) if scaled.cross_products else None  # κ unknown
    named = {"cluster": {"groups": cov[1].get("column")}, "HAC": {"maxlags": cov[1].get("maxlags")}}.get(cov[0], {})
    reference = _closed_form(table, scaled, pre.ortho)
    tiny = np.finfo(np.float64).tiny
    relative_difference = np.abs(stats.coefficients - reference) / np.maximum(np.abs(reference), tiny)
    digits, zero = (math.nan, None) if bounds is None else (bounds.digits, bounds.zero)
    converged = solution.result.converged and not digits < precision.MIN_DIGITS
    return Inference(stats, found, reference, relative_gradient, bounds, converged, covariance, named,
                     relative_difference, digits, zero)


def _closed_form(table, scaled, ortho):
    """(intercept, W...) of the least-squares solution in closed form, for the
    report's comparison: from the QR factors the precondition stage made
    (x_s = Q·R, so W_s = R⁻¹·Qᵀy_s), in float64 without iterating -- the
    rows are factored once per fit, not again here."""
    if ortho is None:  # no closed form without xᵀx (engine stream, many features)
        return np.concatenate([[math.nan], np.full(len(table.features), math.nan)])
    from scipy.linalg import solve_triangular

    n = len(scaled.y)
    # ortho.q is √N·Q, so Qᵀy = qᵀy/√N.
    W_s = solve_triangular(ortho.R, ortho.q.T @ scaled.y / math.sqrt(n))
    W, b = scaled.coefficients(W_s, 0.0)
    return np.concatenate([[b], W])


def _robust(cov, scaled, R, table, solution, stats, found):
    """(stats, diagnostics, Covariance) of a robust type, from the rows.

    The sandwich (analysis/sandwich.py) is made in the standardized
    coordinates, on the whitened design Z = [√u, x_s] (u = w / mean w; 1
    unweighted) whose columns are orthogonal after weighted centring, so its
    triangular factor is [[√N, 0], [0, R]], R the fit's own. The matrix is then
    taken to original units by the map (b_s, W_s) ↦ (b, W), whose Jacobian is
    diag(σ_y, σ_y/σ_x)·[[1, -x̄/σ_x], [0, I]].

    Streamed (engine moments or stream, on any number of workers) the rows
    come from one more pass over the files (`_streamed`), and R is that of
    the statistics' pseudo-rows, which have the cross-products of the N rows
    divided by N over their own number: times the square root of that ratio.
    """
    from scipy.linalg import block_diag

    from linreg.analysis.sandwich import Sandwich

    name, kwds = cov
    kwds = {key: value for key, value in kwds.items() if key not in ("groups", "column")}
    n = scaled.rows
    W_s, b = np.asarray(solution.W, np.float64), float(solution.b)
    R = R * math.sqrt(scaled.multiplicity)
    units = scaled.y_scale / scaled.x_scale
    if scaled.intercept:
        R = block_diag([[math.sqrt(n)]], R)
        z = scaled.x_mean / scaled.x_scale
        jacobian = np.diag(np.concatenate([[scaled.y_scale], units]))
        jacobian[0, 1:] = -scaled.y_scale * z
    else:
        jacobian = np.diag(units)
    sandwich = Sandwich(name, None, R, kwds, scaled.intercept)
    again = getattr(table, "again", None)
    if again is None:
        sandwich.add_residuals(*_whitened(scaled, scaled.x, scaled.y, table.weights, W_s, b), None,
                               cov[1].get("groups"))
    else:
        sandwich = _streamed(sandwich, again, scaled, W_s, b, cov[1].get("column"))
    covariance = sandwich.result()
    covariance.matrix = jacobian @ covariance.matrix @ jacobian.T
    first = 0 if scaled.intercept else 1  # without an intercept, its slot keeps what ols.py gave it
    tests = covariance.inference(stats.coefficients[first:])
    if stats.exact:  # zero residuals: 0/0, nothing to test (as ols.py reports it)
        tests.statistic[:] = tests.p_values[:] = math.nan
    wald = covariance.wald_test(stats.coefficients[first:])
    matrix = np.zeros((len(stats.coefficients),) * 2)
    matrix[first:, first:] = covariance.matrix

    def slots(values, old):
        return np.concatenate([old[:first], values])

    stats = replace(stats, std_errors=slots(covariance.std_errors, stats.std_errors), t=slots(tests.statistic, stats.t),
                    p_values=slots(tests.p_values, stats.p_values), ci_low=slots(tests.ci_low, stats.ci_low),
                    ci_high=slots(tests.ci_high, stats.ci_high), covariance=matrix)
    return stats, replace(found, f_statistic=wald.statistic, f_p_value=wald.p_value), covariance


def _whitened(scaled, x_s, y_s, weights, W_s, b):
    """(Z, residuals) of standardized rows: Z = [√u, x_s] (x_s alone without
    an intercept) and the residuals y_s - x_s·W_s - b·√u."""
    root = np.ones(len(y_s)) if weights is None else np.sqrt(np.asarray(weights, np.float64) / scaled.weight_mean)
    residuals = y_s - x_s @ W_s - b * root
    return (np.column_stack([root, x_s]) if scaled.intercept else x_s), residuals


def _streamed(sandwich, again, scaled, W_s, b, column):
    """`sandwich` with the sums of this worker's share of the files, read once
    more (data/read.py's Again), combined with the other workers' in rank
    order: the shards are contiguous and in file order, so HAC's lags across
    their boundaries are paired as in one pass, and a cluster split between
    workers is summed by its label."""
    from functools import reduce

    with one_blas_thread():  # as the first pass (linreg/threads.py)
        for batch, labels in again.batches(column):
            x_s, y_s = scaled.transform(batch.x, batch.y, batch.w)
            sandwich.add_residuals(*_whitened(scaled, x_s, y_s, batch.w, W_s, b), None, labels)
    parts = [sandwich.from_vector(vector) for vector in again.cluster.gather_ragged(sandwich.vector())]
    return reduce(lambda total, part: total.merge(part), parts)
