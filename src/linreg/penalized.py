"""The penalized fit: ridge, lasso and elastic net at one alpha or along a
path of them, with K-fold cross-validation -- the branch `linreg.fit()`
takes when a penalty is given.

    fit = linreg.fit("diabetes.csv", target="y", penalty="elasticnet",
                     l1_ratio=[0.1, 0.5, 0.9], alphas=100, cv=5)
    fit.alpha_, fit.l1_ratio_, fit.coefficients, fit.cv["mean"]
    fit.predict(x); fit.export("model")

Its stages, after plan.py's: read (the rows in memory, or one streamed pass
over the files, engine moments), each fold's statistics from that same pass
(data/folds.py: a row's fold is a hash of its row number, 0..n-1 in file
order, so both engines make the same folds), then every fit on the
statistics (engine/penalty.py: the heart's model and loss on pseudo-rows,
proximal gradient steps), then a PenalizedFit.
"""
# This module is imported with linreg.api, so numpy and TensorFlow are
# imported where they are used: `linreg --help` stays instant.

# The share of the largest alpha at which a grid of alphas stops (glmnet's and
# scikit-learn's eps for n > d).
EPS = 1e-3


def fit(spec, plan, data, reading, formula, warn, clock):
    """The PenalizedFit of plan.py's Penalty `spec` on the data."""
    from linreg.data.cells import everything_dropped
    from linreg.data.folds import checked_folds, shard_folds
    from linreg.data.moments import Moments, checked_columns, gathered, merge_all
    from linreg.engine import penalty as solving
    from linreg.threads import one_blas_thread

    table, batches, counted = _rows(plan, data, reading, formula)
    width = len(table.features) + 1
    # One BLAS thread for the batches' products while the reader fills the next
    # (engine/streamed.py's shard_moments says why).
    with one_blas_thread(plan.engine != "memory"):
        if spec.cv:
            parts = shard_folds(batches, spec.cv, spec.cv_seed) or [Moments.empty(width)] * spec.cv
        else:
            parts = [merge_all([Moments.empty(width), *(Moments.of(x, y, w) for _, x, y, w in batches)])]
    parts, table.dropped = gathered(plan.cluster, parts, counted.get("dropped", table.dropped))
    folds = checked_folds(parts, spec.cv) if spec.cv else None
    total = merge_all(folds) if folds else parts[0]
    if total.rows == 0 and table.dropped:
        raise everything_dropped(table.path)
    for note in table.notes:
        warn(note)
    # A constant column, one too wide for float64 or too narrow: named, as the other engines do.
    checked_columns(total, table.features, table.target, True, table.path)
    clock.lap("read")
    if folds:
        result = solving.cross_validate(folds, spec.l1_ratios, spec.alphas, spec.grid, EPS, spec.standardize)
    else:
        result = _path(solving, spec, total)
    clock.lap("train")
    return PenalizedFit(spec, plan, table, total, result, clock.laps)


def _rows(plan, data, r, formula):
    """(Table, batches (first_row, x, y, w), counts filled in as they are read)."""
    from linreg.data import read

    if plan.engine == "memory":  # more features than rows is allowed: no errors are estimated
        if formula is not None:
            from linreg.data import formula as formulas

            table = formulas.table(data, plan.source, formula, r.missing, r.weights, r.max_levels, penalized=True)
        else:
            table = read.read_table(data, plan.source, r.target, r.features, r.missing, r.categorical, r.weights,
                                    True, r.max_levels, penalized=True)  # fmt: skip
        return table, [(0, table.x, table.y, table.weights)], {}
    from linreg.data.design import Table

    features = read.check_columns(plan.source, r.target, r.features, r.weights)
    table = Table(plan.source.describe(), features, r.target, None, None, None, columns=features,
                  weights_column=r.weights, unit="row")  # fmt: skip
    cluster = plan.cluster

    def shard():  # this worker's rows, checking in with the others as it goes (engine/cluster.py)
        return cluster.lockstep(read.batches(plan.source, r.target, features, r.weights, r.missing, shard=cluster.rank,
                                             shards=cluster.size, batch_rows=r.batch_rows))  # fmt: skip

    first = 0
    if cluster.size > 1:  # a row's number counts the rows of the shards before its own: one pass counts them
        counts = cluster.gather([sum(len(batch.y) for batch in shard())])[:, 0]
        first = int(counts[: cluster.rank].sum())
    counted = {"rows": first, "dropped": 0}

    def numbered():  # each batch with the row number of its first row, as the rows are read
        for batch in shard():
            yield counted["rows"], batch.x, batch.y, batch.w
            counted["rows"] += len(batch.y)
            counted["dropped"] += batch.dropped

    return table, numbered(), counted


def _path(solving, spec, total):
    """The fits along the alphas without cross-validation (one l1_ratio), as a
    PenaltyResult whose model is at the last (smallest) alpha."""
    import numpy as np

    ratio = spec.l1_ratios[0]
    if spec.alphas is None:
        alphas = solving.alpha_grid(total, ratio, spec.grid, EPS, spec.standardize)
    else:
        alphas = np.sort(np.asarray(spec.alphas, np.float64))[::-1]
    W, b, warm = solving.path(total, alphas, ratio, spec.standardize)
    cold = solving.path(total, alphas, ratio, spec.standardize, warm=False)[2] if len(alphas) > 1 else warm
    last = (float(ratio), float(alphas[-1]))
    return solving.PenaltyResult(np.array([ratio]), alphas[None], W[None], b[None], None, None, None, warm[None],
                                 cold[None], last, None, W[-1], float(b[-1]), None, None)  # fmt: skip


class PenalizedFit:
    """A penalized fit: the model at the chosen alpha, the path, the cross-validation.

    coef_, intercept_:   the model's coefficients [d] and intercept, original units
    coefficients:        the same as {"intercept": b, feature: w, ...}
    alpha_, l1_ratio_:   where the model is (with cv: chosen by `select`)
    alpha_min, alpha_1se: with cv, the alpha of least mean validation error, and the
                          largest within one standard error of it (same l1_ratio)
    path:                {"l1_ratios", "alphas" [L, N], "coefficients" [L, N, d], "intercepts" [L, N]}
    cv:                  None, or {"folds": K, "seed", "mean" [L, N], "std_error" [L, N], "per_fold" [L, N, K]}
    iterations:          proximal iterations per alpha on all the data [L, N], with warm
                         starts; cold_iterations the same, each fit from zero
    """

    def __init__(self, spec, plan, table, total, result, timings):
        import numpy as np

        from linreg.engine import penalty as solving

        self.penalty, self.standardize, self.select = spec.name, spec.standardize, spec.select
        self.table, self.engine, self.timings = table, plan.engine, dict(timings)
        self.formula = getattr(table, "formula", None)  # data/formula.py's, fitted: it designs new rows
        self.features, self.target, self.n = list(table.features), table.target, total.rows
        self.result = result
        # The way between the original units and the standardized ones the export serves in.
        self.scaled = solving.Problem.of(total, spec.standardize).scaled
        one_se = spec.select == "1se"
        self.l1_ratio_, self.alpha_ = result.one_se if one_se else result.best
        self.coef_ = np.asarray(result.W_one_se if one_se else result.W)
        self.intercept_ = float(result.b_one_se if one_se else result.b)
        self.cv_folds, self.cv_seed = spec.cv, spec.cv_seed
        self.converged = True  # the solver raises when a fit does not converge

    @property
    def coefficients(self):
        return {"intercept": self.intercept_, **dict(zip(self.features, map(float, self.coef_)))}

    @property
    def nonzero(self):
        return int((self.coef_ != 0).sum())

    @property
    def alpha_min(self):
        return None if self.cv is None else self.result.best[1]

    @property
    def alpha_1se(self):
        return None if self.cv is None else self.result.one_se[1]

    @property
    def path(self):
        r = self.result
        return {"l1_ratios": r.l1_ratios, "alphas": r.alphas, "coefficients": r.coefficients, "intercepts": r.intercepts}

    @property
    def cv(self):
        r = self.result
        if r.cv_mean is None:
            return None
        return {"folds": self.cv_folds, "seed": self.cv_seed, "mean": r.cv_mean, "std_error": r.cv_error,
                "per_fold": r.cv_folds}  # fmt: skip

    @property
    def iterations(self):
        return self.result.iterations

    @property
    def cold_iterations(self):
        return self.result.cold_iterations

    def curve(self):
        """(i, alphas): the model's l1_ratio's position and its path's alphas."""
        i = int((self.result.l1_ratios == self.l1_ratio_).argmax())
        return i, self.result.alphas[i]

    def marked(self):
        """The chosen alphas as (label, alpha), the model's first."""
        if self.cv is None:
            return [("the model", self.alpha_)]
        both = [("least mean CV error", self.alpha_min), ("one standard error", self.alpha_1se)]
        return both[::-1] if self.select == "1se" else both

    def predict(self, x):
        """Predictions at rows x (an array [N, d], a data frame, or a file as `linreg fit` reads it)."""
        from linreg.results import _features

        x = _features(x, self.features, self.table.columns, self.table.categories, self.formula)
        return x @ self.coef_ + self.intercept_

    def summary(self):
        from linreg.io.html import Text
        from linreg.io.penalty_report import summary

        return Text(summary(self))

    def to_dict(self):
        """The document `linreg fit --json` writes: the model, the whole path and the CV table."""
        from linreg.io.penalty_report import document

        return document(self)

    def export(self, path, force=False):
        """Save the model as `Fit.export` does (see `linreg.load`), marked penalized:
        it carries no covariance, so it serves no intervals."""
        from linreg.core.model import LinearModel
        from linreg.io import export

        s = self.scaled  # the model in standardized units: u_j = w_j·σ_j/s_y, and b is 0 there
        model = LinearModel(len(self.features), W=self.coef_ * s.x_scale / s.y_scale, dtype="float64")
        export.save(path, model, s, self.features, self.target, force=force, columns=self.table.columns,
                    categories=self.table.categories, formula=self.formula,
                    penalty={"penalty": self.penalty, "alpha": self.alpha_, "l1_ratio": self.l1_ratio_})  # fmt: skip

    def __repr__(self):
        return (f"<linreg.PenalizedFit {self.target!r} ~ {len(self.features)} features, n={self.n}, {self.penalty} "
                f"alpha={self.alpha_:.4g} l1_ratio={self.l1_ratio_:g}, {self.nonzero} non-zero>")
