"""A fit's report: the text table `linreg fit` prints and the JSON document it writes.

A fit that has not converged must not look like a result: its table is
headed NOT CONVERGED and shows no standard errors, t, p or intervals, and its
JSON has them as null. An exact fit (zero residuals) says so instead of
printing t ≈ 1e16 and p = 0.
"""
import math

import numpy as np


def _plural(count, noun):
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _method_line(fit):
    solution = fit.solution
    if fit.method == "orthogonal":
        rounds = solution.rounds - 1
        first = fit.result.epochs - rounds  # the first run's epochs
        if not solution.first_converged:
            descent = f"ran {_plural(first, 'epoch')} without converging"
        elif fit.result.stalled:
            descent = f"reached the rounding floor in {_plural(first, 'epoch')}"
        else:  # the last epoch measured the gradient where the steps before it had landed
            descent = f"landed in {_plural(first - 1, 'step')} (one more epoch saw it there)"
        data = "the data" if fit.scaled.represents is None else "the statistics' pseudo-rows"
        how = (f"optimizer {fit.optimizer_name} ({solution.name}): {data} orthogonalized by QR, where descent "
               f"from zero {descent}")
        if solution.first_converged:
            how += f", then {_plural(rounds, 'refinement round')} (a step each) on extended-precision residuals"
    else:
        how = f"optimizer {solution.name}"
    beta = f", momentum beta {float(fit.optimizer.beta):.6g}" if hasattr(fit.optimizer, "beta") else ""
    rate, bound = fit.solution.learning_rate, fit.solution.divergence_rate
    if math.isinf(bound):
        return f"  {how}; step length from an exact line search at every epoch (the last {rate:.6g})"
    return f"  {how}; learning rate {rate:.6g} (divergence above {bound:.6g}){beta}"


def _ending(fit):
    result, solution = fit.result, fit.solution
    if result.converged and result.stalled:
        how = f"the gradient stopped falling at the rounding floor of {fit.dtype}"
    elif result.converged:
        how = f"gradient norm <= tol {fit.tol:g} x its first value"
    if result.converged:
        return f"converged after {result.epochs} epochs ({how}); {fit.training_seconds:.2f} s"
    if fit.solution.result.converged:  # training ended, but at a point known to less than one digit
        return (
            f"NOT converged: training ended after {result.epochs} epochs, but its coefficients cannot be trusted to "
            f"one correct digit (expect {fit.estimated_digits:.1f}, a bound set by the {fit.bounds.dominant()}); "
            f"{fit.advice()}"
        )
    if solution.first_converged and not solution.refined:
        from linreg.engine.solve import MAX_REFINEMENTS

        rounds = solution.rounds - 1
        cap = f"its cap of {MAX_REFINEMENTS} rounds" if rounds == MAX_REFINEMENTS else "the epoch cap"
        return (
            f"NOT converged after {result.epochs} epochs: {cap} stopped the refinement after "
            f"{_plural(rounds, 'round')}, while its corrections were still shrinking; {fit.advice()}"
        )
    if result.stalled:
        return (
            f"NOT converged after {result.epochs} epochs: the gradient stopped falling at the rounding floor of "
            f"{fit.dtype} with the weights still far from the minimum (relative gradient norm "
            f"{fit.relative_gradient:.3g}, Hessian condition number {fit.curvature.condition_number:.3g}); "
            f"{fit.advice()}"
        )
    return (
        f"NOT converged after {result.epochs} epochs (relative gradient norm {fit.relative_gradient:.3g} > tol "
        f"{fit.tol:g}); {fit.advice()}"
    )


def _zero_note(fit):
    """Coefficients zero to rounding, which the digits do not count: their
    relative error says nothing (an exact 0 computed as 1e-19 is 100% off)."""
    first = 0 if fit.scaled.intercept else 1
    zero = [label for label, flag in zip(fit.names, fit.zero_to_rounding[first:]) if flag]
    return f" but {', '.join(zero)}, zero to rounding" if zero else ""


def _engine_line(fit):
    where = {"memory": "rows in memory", "moments": "trained on streamed statistics (one pass)",
             "stream": "one streamed pass over the data per epoch"}[fit.engine]
    if fit.engine == "memory" and fit.scaled.represents is not None:
        from linreg.plan import STATISTICS_LINE

        where += (f", trained on their statistics (condition number {fit.condition_number:.3g} < "
                  f"{STATISTICS_LINE:g}: QR's digits)")
    workers = "" if fit.cluster is None or fit.cluster.size == 1 else f", {fit.cluster.size} workers"
    return f"engine {fit.engine}: {where}{workers}"


def summary(fit):
    """The report of a Fit as text, laid out like statistical software's OLS summary."""
    table, stats, result = fit.table, fit.stats, fit.result
    known = fit.scaled.cross_products  # False: only the coefficients and the loss are known
    n, d = stats.n, len(fit.features)
    labels = fit.names
    first = 0 if fit.scaled.intercept else 1  # the arrays' slot 0 is the intercept
    width = max(12, *(len(label) for label in labels))
    resumed = "" if fit.resumed_at is None else f" (resumed from a checkpoint at epoch {fit.resumed_at})"
    lines = [
        f"linreg fit: {table.path}, target {table.target!r}, {d} feature{'s' if d > 1 else ''}, {n} rows"
        + (f" ({table.dropped} with missing values left out)" if table.dropped else ""),
        *_kind_lines(fit),
        f"  features and target standardized; {fit.dtype}; compile {result.compile}; {_engine_line(fit)}",
        f"  condition number of the standardized data {fit.condition_number:.4g} (the loss's Hessian: "
        f"{fit.condition_number * fit.condition_number:.4g}); expect {fit.estimated_digits:.1f} correct digits or more "
        f"in every coefficient{_zero_note(fit)}"
        if known
        else f"  {d} features: too many to gather their cross-products, so the condition number, the standard "
        f"errors and the closed-form answer are not known; steepest curvature {fit.curvature.largest:.4g} "
        "(Lanczos over the files)",
        _method_line(fit),
        *_covariance_line(fit),
        f"  {_ending(fit)}{resumed}",
        *_timings_line(fit),
        "",
    ]
    if not result.converged or not known:
        lines += [
            "NOT CONVERGED: these coefficients are not the least-squares solution; no standard errors, t, p or "
            "intervals are shown"
            if not result.converged
            else "coefficients only: standard errors, t, p and intervals need the features' cross-products, and "
            "so does a check for collinear columns (of exactly collinear ones, these are one of many equal fits)",
            f"{'':<{width}} {'coef' if result.converged else 'coef (not converged)':>22}",
        ]
        lines += [f"{label:<{width}} {value:>22.7g}" for label, value in zip(labels, stats.coefficients[first:])]
    else:
        z = "t" if fit.covariance.use_t else "z"
        lines.append(f"{'':<{width}} {'coef':>14} {'std err':>11} {z:>9} {f'P>|{z}|':>9} {'[0.025':>14} {'0.975]':>14}")
        for i, label in enumerate(labels, start=first):
            t = "—" if stats.exact else f"{stats.t[i]:.3f}"
            p = "—" if stats.exact else f"{stats.p_values[i]:.3g}"
            lines.append(
                f"{label:<{width}} {stats.coefficients[i]:>14.7g} {stats.std_errors[i]:>11.4g} {t:>9} "
                f"{p:>9} {stats.ci_low[i]:>14.7g} {stats.ci_high[i]:>14.7g}"
            )
        if fit.estimated_digits < 2:
            lines.append(
                f"note: expect about {fit.estimated_digits:.1f} correct digits: these coefficients may be far from the "
                "least-squares solution of exact arithmetic (see the comparison below)"
                + ("; float64 (--dtype float64) gives more" if fit.dtype == "float32" else "")
            )
        if fit.condition_number > 1e6:
            lines.append(
                f"note: with condition number {fit.condition_number:.3g}, the standard errors (and t, p, intervals) "
                "of the intercept and of nearly collinear coefficients carry fewer digits than the coefficients"
            )
        if stats.exact:
            lines.append(
                "exact fit: the residuals are zero to rounding, so the standard errors are 0 and t and p are not "
                "meaningful"
            )
    uncentered = "" if fit.scaled.intercept else " (uncentered)"
    lines += [
        "",
        f"R²{uncentered}  {stats.r_squared:.6f}   adjusted R²{uncentered}  {stats.adj_r_squared:.6f}   residual SD  "
        f"{stats.residual_sd:.6g}"
        f"   n  {stats.n}   df  {stats.df_residual}",
    ]
    if result.converged:
        lines += _diagnostic_lines(fit.diagnostics, streamed=fit.engine != "memory")
    if not known:
        return "\n".join(lines)
    name = fit.solution.name
    column = max(22, len(name))
    lines += [
        "",
        f"{name} beside the closed-form least-squares solution (float64):",
        f"{'':<{width}} {name:>{column}} {'least squares':>22} {'rel. difference':>16}",
    ]
    reference = [None] * first + list(fit.least_squares.values())
    for i, label in enumerate(labels, start=first):
        lines.append(
            f"{label:<{width}} {stats.coefficients[i]:>{column}.15g} {reference[i]:>22.15g} "
            f"{fit.relative_difference[i]:>16.3g}"
        )
    worst = float(np.max(fit.relative_difference))
    lines.append(
        f"largest relative difference {worst:.3g} (about {-math.log10(worst):.1f} matching digits)" if worst > 0
        else "identical to the last digit"
    )
    return "\n".join(lines)


def weights_source(fit):
    """Where a weighted fit's weights came from; None for an unweighted fit."""
    if not fit.scaled.weighted:
        return None
    column = fit.table.weights_column
    return f"column {column!r}" if isinstance(column, str) else "an array"


def _kind_lines(fit):
    """What sets this fit apart from ordinary least squares with an intercept (no line for that)."""
    lines = []
    if fit.formula is not None:
        lines.append(f"  formula {fit.formula.text}")
    if fit.scaled.weighted:
        lines.append(f"  weighted least squares (as statsmodels' WLS), weights from {weights_source(fit)}")
    if not fit.scaled.intercept:
        lines.append("  through the origin (no intercept): R² and adjusted R² uncentered, against Σy² instead of "
                     "Σ(y - ȳ)², as statsmodels reports them without a constant")
    return lines


def _covariance_line(fit):
    """The covariance type, when it is not the classical one (no line then)."""
    if fit.cov_type == "nonrobust":
        return []
    what = {"HC0": "heteroskedasticity-robust (White)", "HC1": "heteroskedasticity-robust, times n/(n - k)",
            "HC2": "heteroskedasticity-robust, each row's term over 1 - its leverage",
            "HC3": "heteroskedasticity-robust, each row's term over (1 - its leverage)²",
            "HAC": f"heteroskedasticity- and autocorrelation-robust (Newey-West, {fit.cov_kwds.get('maxlags')} lags)",
            "cluster": f"cluster-robust, {fit.covariance.clusters} clusters"
            + (f" of {fit.cov_kwds['groups']!r}" if fit.cov_kwds.get("groups") else "")}[fit.cov_type]
    test = "Student's t" if fit.covariance.use_t else "the normal (z)"
    return [f"  covariance {fit.cov_type}: {what}; tests and intervals from {test}, the F test a Wald test"]


def _timings_line(fit):
    """The seconds each stage of the fit took, in the order they ran (none known: no line)."""
    timings = getattr(fit, "timings", {})
    return [f"  time: {', '.join(f'{stage} {seconds:.2f} s' for stage, seconds in timings.items())}"] if timings else []


def _diagnostic_lines(found, streamed=False):
    lines = [
        f"F-statistic  {found.f_statistic:.6g} (p = {found.f_p_value:.3g})   log-likelihood  "
        f"{found.log_likelihood:.6g}   AIC  {found.aic:.6g}   BIC  {found.bic:.6g}",
        "Durbin-Watson, Omnibus, Jarque-Bera, skew, kurtosis: not known (streamed: the residuals were not held)"
        if streamed
        else f"Durbin-Watson  {found.durbin_watson:.4f}   Omnibus  {found.omnibus:.4g} (p = {found.omnibus_p_value:.3g})"
        f"   Jarque-Bera  {found.jarque_bera:.4g} (p = {found.jarque_bera_p_value:.3g})   skew  {found.skew:.4g}"
        f"   kurtosis  {found.kurtosis:.4g}",
    ]
    if math.isnan(found.condition_number_standardized):
        pass  # nothing known: too many features for their cross-products
    elif math.isnan(found.condition_number_raw):
        lines.append(f"condition number  {found.condition_number_standardized:.4g} (standardized columns)")
    else:
        lines.append(
            f"condition number  {found.condition_number_raw:.4g} (statsmodels' Cond. No., raw columns); "
            f"{found.condition_number_standardized:.4g} (standardized columns)"
        )
    note = found.condition_note
    return lines + ([f"note: {note}"] if note else [])


DIAGNOSTICS = ("f_statistic", "f_p_value", "log_likelihood", "aic", "bic", "durbin_watson", "omnibus",
               "omnibus_p_value", "jarque_bera", "jarque_bera_p_value", "skew", "kurtosis",
               "condition_number_raw", "condition_number_standardized")  # fmt: skip


def _finite_or_none(value):
    return float(value) if math.isfinite(value) else None


def document(fit):
    """The fit as a JSON-ready dict (what `linreg fit --json` writes)."""
    stats = fit.stats
    valid = fit.converged

    first = 0 if fit.scaled.intercept else 1

    known = fit.scaled.cross_products  # False: no statistics beyond the loss, no closed form

    def by_name(values):
        return {name: _finite_or_none(v) for name, v in zip(fit.names, values[first:])} if valid and known else None

    return {
        "target": fit.target,
        "features": fit.features,
        "intercept": fit.scaled.intercept,
        "weights": fit.table.weights_column,
        "converged": fit.converged,
        "exact_fit": stats.exact,
        "estimated_digits": _finite_or_none(fit.estimated_digits),
        "coefficients": fit.coefficients,
        "std_errors": by_name(stats.std_errors),
        "t": by_name(stats.t),
        "p_values": by_name(stats.p_values),
        "cov_type": fit.cov_type,
        "cov_kwds": fit.cov_kwds,  # the groups' column (null for labels given) or the lags
        "clusters": fit.covariance.clusters,
        "statistic": "t" if fit.covariance.use_t else "z",  # what "t" holds: Student's t, or z for a robust type
        "ci_95": {n: [float(lo), float(hi)] for n, lo, hi in zip(fit.names, stats.ci_low[first:], stats.ci_high[first:])}
        if valid and known
        else None,
        "r_squared": stats.r_squared,
        "adj_r_squared": stats.adj_r_squared,
        "residual_sd": stats.residual_sd,
        "n": stats.n,
        "rows_dropped": fit.table.dropped,
        "diagnostics": {name: _finite_or_none(getattr(fit.diagnostics, name)) for name in DIAGNOSTICS}
        if valid
        else None,
        "epochs": fit.epochs,
        "stalled_at_rounding_floor": fit.result.stalled,
        "least_squares": fit.least_squares if known else None,
        "max_relative_difference": float(np.max(fit.relative_difference)) if known else None,
        "learning_rate": float(fit.optimizer.learning_rate),
        "momentum": float(getattr(fit.optimizer, "beta", 0.0)),
        "optimizer": fit.optimizer_name,
        "method": fit.method,
        "rule": fit.solution.name,
        "refinement_rounds": fit.solution.rounds - 1,
        "dtype": fit.dtype,
        "tol": fit.tol,
        "condition_number": _finite_or_none(fit.condition_number),
        "hessian_condition_number": _finite_or_none(fit.condition_number * fit.condition_number),
        "compile": fit.compile,
        "resumed_at_epoch": fit.resumed_at,
        "training_seconds": fit.training_seconds,
        "engine": fit.engine,
        # What training saw: the rows (streamed, with engine stream), or the
        # pseudo-rows of their statistics (engine moments; engine memory below
        # plan.STATISTICS_LINE).
        "trained_on": "statistics" if fit.scaled.represents is not None and fit.engine != "stream" else "rows",
        "workers": 1 if fit.cluster is None else fit.cluster.size,
        "pass_seconds": fit.pass_seconds,
        "timings": dict(getattr(fit, "timings", {})),
    }
