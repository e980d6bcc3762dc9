"""A fit's report: the text table `linreg fit` prints and the JSON document it writes."""
import math

import numpy as np


def summary(fit):
    """The report of a Fit as text, laid out like statistical software's OLS summary."""
    table, stats, curvature, result = fit.table, fit.stats, fit.curvature, fit.result
    n, d = table.x.shape
    labels = fit.names
    width = max(12, *(len(label) for label in labels))
    beta = float(getattr(fit.optimizer, "beta", 0.0))
    momentum = f", momentum beta {beta:.6g}" if hasattr(fit.optimizer, "beta") else ""
    rate = float(fit.optimizer.learning_rate)
    if result.converged:
        ending = f"converged after {result.epochs} epochs"
    else:
        advice = "raise --epochs" if fit.optimizer_name != "gd" else "raise --epochs or try --optimizer momentum"
        if fit.dtype == "float32":
            advice += " (or, if float32 rounding keeps the gradient from falling further, raise --tol or use float64)"
        ending = (
            f"NOT converged after {result.epochs} epochs (relative gradient norm "
            f"{fit.relative_gradient:.3g} > tol {fit.tol:g}); {advice}"
        )
    resumed = "" if fit.resumed_at is None else f" (resumed from a checkpoint at epoch {fit.resumed_at})"
    lines = [
        f"linreg fit: {table.path}, target {table.target!r}, {d} feature{'s' if d > 1 else ''}, {n} rows",
        f"  features and target standardized; {fit.dtype}; optimizer {fit.optimizer_name}; compile {result.compile}",
        f"  Hessian eigenvalues ({curvature.method}): largest {curvature.largest:.6g}, smallest "
        f"{curvature.smallest:.6g}, condition number {curvature.condition_number:.4g}",
        f"  learning rate {rate:.6g} (divergence above {fit.optimizer.stable_rate(curvature.largest):.6g}){momentum}",
        f"  {ending}{resumed}; {fit.training_seconds:.2f} s"
        + (f" (stop: gradient norm <= tol {fit.tol:g} x its first value)" if result.converged else ""),
        "",
        f"{'':<{width}} {'coef':>14} {'std err':>11} {'t':>9} {'P>|t|':>9} {'[0.025':>14} {'0.975]':>14}",
    ]
    for i, label in enumerate(labels):
        lines.append(
            f"{label:<{width}} {stats.coefficients[i]:>14.7g} {stats.std_errors[i]:>11.4g} {stats.t[i]:>9.3f} "
            f"{stats.p_values[i]:>9.3g} {stats.ci_low[i]:>14.7g} {stats.ci_high[i]:>14.7g}"
        )
    ls = list(fit.least_squares.values())
    lines += [
        "",
        f"R²  {stats.r_squared:.6f}   adjusted R²  {stats.adj_r_squared:.6f}   residual SD  {stats.residual_sd:.6g}"
        f"   n  {stats.n}   df  {stats.df_residual}",
        "",
        "gradient descent beside the closed-form least-squares solution (float64):",
        f"{'':<{width}} {'gradient descent':>22} {'least squares':>22} {'rel. difference':>16}",
    ]
    for i, label in enumerate(labels):
        lines.append(
            f"{label:<{width}} {stats.coefficients[i]:>22.15g} {ls[i]:>22.15g} {fit.relative_difference[i]:>16.3g}"
        )
    worst = float(np.max(fit.relative_difference))
    digits = -math.log10(worst) if worst > 0 else math.inf
    lines.append(f"largest relative difference {worst:.3g} (about {digits:.1f} matching digits)")
    return "\n".join(lines)


def document(fit):
    """The fit as a JSON-ready dict (what `linreg fit --json` writes)."""
    stats = fit.stats
    return {
        "target": fit.target,
        "features": fit.features,
        "coefficients": fit.coefficients,
        "std_errors": fit.std_errors,
        "t": fit.t_values,
        "p_values": fit.p_values,
        "ci_95": {name: list(interval) for name, interval in fit.conf_int(0.05).items()},
        "r_squared": stats.r_squared,
        "adj_r_squared": stats.adj_r_squared,
        "residual_sd": stats.residual_sd,
        "n": stats.n,
        "epochs": fit.epochs,
        "converged": fit.converged,
        "least_squares": fit.least_squares,
        "max_relative_difference": float(np.max(fit.relative_difference)),
        "learning_rate": float(fit.optimizer.learning_rate),
        "momentum": float(getattr(fit.optimizer, "beta", 0.0)),
        "optimizer": fit.optimizer_name,
        "dtype": fit.dtype,
        "tol": fit.tol,
        "condition_number": fit.curvature.condition_number,
        "compile": fit.compile,
        "resumed_at_epoch": fit.resumed_at,
        "training_seconds": fit.training_seconds,
    }
