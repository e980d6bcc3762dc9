"""A penalized fit (penalized.py) as text and as a JSON-ready dict."""
import numpy as np

NAMES = {"l2": "ridge (l2)", "l1": "lasso (l1)", "elasticnet": "elastic net"}
OBJECTIVE = "(1/2n)·‖y − Xw − b‖² + α·ρ·‖w‖₁ + α·(1 − ρ)/2·‖w‖²"
# Why the table has no standard errors, p-values or intervals.
NO_INFERENCE = ("no standard errors, p-values or intervals: the penalty shrinks the coefficients and was "
                "chosen with the same data, so the classical ones are not valid")


def _ratios(values):
    return ", ".join(f"{r:g}" for r in values)


def _what(fit):
    r = fit.result
    ratio = f"l1_ratio ρ = {_ratios(r.l1_ratios)}" if fit.penalty == "elasticnet" else f"ρ = {r.l1_ratios[0]:g}"
    columns = ("the standardized columns (coefficients reported in the original units)" if fit.standardize
               else "the columns in their own units")
    lines = [f"Penalized least squares: {NAMES[fit.penalty]}, {ratio}; minimizes {OBJECTIVE}",
             f"penalty on {columns}; the intercept is not penalized",
             f"{fit.table.path}: target {fit.target}, {len(fit.features)} features, n = {fit.n}, engine {fit.engine}"]
    alphas = fit.curve()[1]
    if len(alphas) > 1:
        lines.append(f"path: {len(alphas)} alphas from {alphas[0]:.4g} down to {alphas[-1]:.4g}, warm starts"
                     + (f"; {fit.cv_folds}-fold cross-validation (folds by row number, seed {fit.cv_seed})"
                        if fit.cv is not None else "; no cross-validation: the model is at the smallest alpha"))
    return lines


def _choices(fit):
    r, (i, j_min), j_se = fit.result, _where(fit, fit.result.best), _where(fit, fit.result.one_se)[1]
    mean, error = r.cv_mean[i], r.cv_error[i]
    lines = ["", "mean validation error (MSE) over the folds ± one standard error:"]
    if len(r.l1_ratios) > 1:
        lines += [f"  l1_ratio {ratio:g}: least {np.min(m):.6g} at alpha {a[np.argmin(m)]:.4g}"
                  for ratio, m, a in zip(r.l1_ratios, r.cv_mean, r.alphas)]
    for label, j, key in (("least mean error", j_min, "min"), ("one-standard-error rule", j_se, "1se")):
        mark = "  <- the model" if key == fit.select else ""
        lines.append(f"  alpha {r.alphas[i, j]:<11.6g}({label}, l1_ratio {r.l1_ratios[i]:g}): "
                     f"{mean[j]:.6g} ± {error[j]:.3g}{mark}")
    return lines


def _where(fit, chosen):
    """(i, j): the l1_ratio's and the alpha's positions of (l1_ratio, alpha) `chosen`."""
    r = fit.result
    i = int(np.flatnonzero(r.l1_ratios == chosen[0])[0])
    return i, int(np.flatnonzero(r.alphas[i] == chosen[1])[0])


def summary(fit):
    lines = _what(fit)
    if fit.cv is not None:
        lines += _choices(fit)
    lines += ["", f"model at alpha {fit.alpha_:.6g}, l1_ratio {fit.l1_ratio_:g}: "
              f"{fit.nonzero} of {len(fit.features)} coefficients non-zero"]
    width = max(len(name) for name in ["intercept", *fit.features])
    lines.append(f"{'':<{width}}  {'coefficient':>14}")
    lines += [f"{name:<{width}}  {value + 0.0:>14.6g}" for name, value in fit.coefficients.items()]  # no "-0"
    lines += [NO_INFERENCE, f"proximal iterations along the path: {int(fit.iterations.sum())} with warm starts, "
              f"{int(fit.cold_iterations.sum())} with each fit from zero"]
    return "\n".join(lines)


def document(fit):
    """The fit as a JSON-ready dict (what `linreg fit --json` writes with a penalty)."""
    cv = fit.cv
    return {
        "target": fit.target,
        "features": fit.features,
        "n": fit.n,
        "rows_dropped": fit.table.dropped,
        "engine": fit.engine,
        "penalty": fit.penalty,
        "objective": OBJECTIVE,
        "standardize": fit.standardize,
        "alpha": fit.alpha_,
        "l1_ratio": fit.l1_ratio_,
        "select": fit.select,
        "alpha_min": fit.alpha_min,
        "alpha_1se": fit.alpha_1se,
        "coefficients": fit.coefficients,
        "nonzero": fit.nonzero,
        "std_errors": None,  # see NO_INFERENCE
        "path": {key: np.asarray(value).tolist() for key, value in fit.path.items()},
        "iterations": fit.iterations.tolist(),
        "cold_iterations": fit.cold_iterations.tolist(),
        "cv": None if cv is None else {key: np.asarray(value).tolist() for key, value in cv.items()},
        "timings": fit.timings,
    }
