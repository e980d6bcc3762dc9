"""Covariance types (analysis/covariance.py, analysis/sandwich.py) against independent answers:
statsmodels' OLS and WLS `fit(cov_type=..., cov_kwds=...)` on data sets
statsmodels ships; R's `sandwich`, Stata and Petersen's published values, as
statsmodels keeps them in its own tests; 60-digit mpmath where statsmodels
itself is the less accurate of the two; and, for the streamed accumulator,
the in-memory answer.

Every comparison uses the same fitted coefficients on both sides: the float64
closed form (numpy's lstsq), handed to statsmodels' results too, so that only
the covariance arithmetic is compared.
"""
import math
from pathlib import Path

import mpmath
import numpy as np
import pytest
import statsmodels
import statsmodels.api as sm
from statsmodels.regression.linear_model import RegressionResults
from statsmodels.regression.tests.results import results_grunfeld_ols_robust_cluster as stata_grunfeld
from statsmodels.regression.tests.results import results_macro_ols_robust as stata_macro

from linreg.analysis.covariance import FEW_CLUSTERS, KERNELS
from linreg.analysis.sandwich import Sandwich, covariance, factor_from_moments
from linreg.data.moments import Moments, merge_all
from linreg.errors import LinregError
from linreg.plan import COV_TYPES, HAC_KERNELS, cov_keywords

TARGET_DIGITS = 10


# --- the data sets ------------------------------------------------------------------


class Case:
    """Features x (no intercept column), target y, cluster labels, weights, HAC lags."""

    def __init__(self, x, y, groups, maxlags, weights=None):
        self.x, self.y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        self.groups, self.maxlags, self.weights = np.asarray(groups), maxlags, weights

    def design(self, intercept):
        return np.column_stack([np.ones(len(self.y)), self.x]) if intercept else self.x

    def kwds(self, cov_type):
        return {"cluster": {"groups": self.groups}, "HAC": {"maxlags": self.maxlags}}.get(cov_type, {})


def _frame(name):
    return getattr(sm.datasets, name).load_pandas().data


def _macro_growth():
    """The regression of statsmodels' robust-covariance tests (and their Stata and R
    references): investment growth on GDP growth and the lagged real interest rate."""
    d = _frame("macrodata")
    g_gdp = 400 * np.diff(np.log(d["realgdp"].to_numpy()))
    g_inv = 400 * np.diff(np.log(d["realinv"].to_numpy()))
    return np.column_stack([g_gdp, d["realint"].to_numpy()[:-1]]), g_inv, d["year"].to_numpy()[1:]


def _load(name):
    if name == "longley":  # annual: clusters of four years
        d = _frame(name)
        return Case(d.drop(columns="TOTEMP"), d["TOTEMP"], d["YEAR"] // 4, maxlags=2)
    if name == "stackloss":  # 21 days: clusters of three consecutive days
        d = _frame(name)
        return Case(d.drop(columns="STACKLOSS"), d["STACKLOSS"], np.arange(len(d)) // 3, maxlags=2)
    if name == "grunfeld":  # a panel of 11 firms, clustered by firm (text labels)
        d = _frame(name)
        return Case(d[["value", "capital"]], d["invest"], d["firm"].astype(str), maxlags=4)
    if name == "grunfeld WLS":  # the weights of Stata's example: aw = 1/mvalue
        d = _frame("grunfeld")
        return Case(d[["value", "capital"]], d["invest"], d["firm"].astype(str), maxlags=4, weights=1 / d["value"])
    if name == "macrodata":  # quarterly: clustered by year
        x, y, year = _macro_growth()
        return Case(x, y, year, maxlags=4)
    if name == "fair":
        d = _frame(name)
        return Case(d.drop(columns=["affairs", "religious"]), d["affairs"], d["religious"], maxlags=3)
    if name == "star98":  # 20 features, clusters of ten districts
        d = _frame(name)
        return Case(d.drop(columns=["NABOVE", "NBELOW"]), d["NABOVE"], np.arange(len(d)) // 10, maxlags=3)
    if name == "ccard WLS":  # Greene's credit-card example, weighted by 1/income
        d = _frame("ccard")
        return Case(d.drop(columns=["AVGEXP", "OWNRENT"]), d["AVGEXP"], d["OWNRENT"] * 100 + d["AGE"] // 5, maxlags=2,
                    weights=1 / d["INCOME"])
    if name == "spector":
        d = _frame(name)
        return Case(d.drop(columns="GRADE"), d["GRADE"], d["TUCE"], maxlags=2)
    raise ValueError(name)


SETS = ("longley", "stackloss", "grunfeld", "grunfeld WLS", "macrodata", "fair", "star98", "ccard WLS", "spector")
_CASES = {}


def case(name):
    if name not in _CASES:
        _CASES[name] = _load(name)
    return _CASES[name]


# --- the references ---------------------------------------------------------------


def lstsq_fit(design, y, weights=None):
    """The float64 closed-form coefficients (weighted least squares: on rows times √w)."""
    root = np.ones(len(y)) if weights is None else np.sqrt(np.asarray(weights, np.float64))
    return np.linalg.lstsq(design * root[:, None], y * root, rcond=None)[0]


def statsmodels_results(design, y, beta, cov_type, kwds, weights=None, use_t=None):
    """statsmodels' results for the coefficients `beta` (its own bread, leverages and sandwiches)."""
    model = sm.OLS(y, design) if weights is None else sm.WLS(y, design, weights=np.asarray(weights))
    fitted = model.fit()
    residuals = model.wendog - model.wexog @ beta
    scale = residuals @ residuals / fitted.df_resid
    return RegressionResults(model, beta, fitted.normalized_cov_params, scale, cov_type=cov_type,
                             cov_kwds=dict(kwds) or None, use_t=use_t)


def exact_covariance(design, y, cov_type, kwds, weights=None):
    """The covariance of the exact least-squares fit of the float64 data, in 60 digits."""
    with mpmath.workdps(60):
        root = [mpmath.sqrt(mpmath.mpf(float(w))) for w in (np.ones(len(y)) if weights is None else weights)]
        X = mpmath.matrix([[v * r for v in row] for row, r in zip(design.tolist(), root)])
        Y = mpmath.matrix([v * r for v, r in zip(y.tolist(), root)])
        n, k = X.rows, X.cols
        bread = (X.T * X) ** -1
        e = Y - X * (bread * (X.T * Y))
        power = {"HC2": 0.5, "HC3": 1}.get(cov_type, 0)
        u = [X[i, :] * (e[i] / (1 - (X[i, :] * bread * X[i, :].T)[0]) ** power) for i in range(n)]
        if cov_type == "nonrobust":
            return np.array((bread * (sum(v**2 for v in e) / (n - k))).tolist(), dtype=float)
        if cov_type == "cluster":
            labels = list(kwds["groups"])
            sums = {g: sum((u[i] for i in range(n) if labels[i] == g), mpmath.zeros(1, k)) for g in set(labels)}
            G = len(sums)
            meat = sum((s.T * s for s in sums.values()), mpmath.zeros(k, k)) * G / (G - 1) * (n - 1) / (n - k)
        else:
            meat = sum((v.T * v for v in u), mpmath.zeros(k, k))
            lags = kwds.get("maxlags", 0)
            for lag in range(1, lags + 1):
                lagged = sum((u[t].T * u[t - lag] for t in range(lag, n)), mpmath.zeros(k, k))
                meat += (1 - mpmath.mpf(lag) / (lags + 1)) * (lagged + lagged.T)
            meat *= mpmath.mpf(n) / (n - k) if cov_type == "HC1" else 1
        return np.array((bread * meat * bread).tolist(), dtype=float)


def digits(ours, reference):
    """Correct digits: -log10 of the worst relative error of the standard errors,
    and of the matrix's entries relative to the matrix's norm (the smaller)."""
    ours, reference = np.asarray(ours), np.asarray(reference)
    se, se_ref = np.sqrt(np.diag(ours)), np.sqrt(np.diag(reference))
    worst = max(np.max(np.abs(se - se_ref) / se_ref), np.max(np.abs(ours - reference)) / np.linalg.norm(reference, 2))
    return min(-math.log10(worst), 16.0) if worst > 0 else 16.0


def digit_row(name, intercept):
    """{cov_type: (digits against statsmodels, digits against mpmath or None)} for one data set."""
    data = case(name)
    design = data.design(intercept)
    beta = lstsq_fit(design, data.y, data.weights)
    residuals = data.y - design @ beta
    row = {}
    for cov_type in COV_TYPES:
        kwds = data.kwds(cov_type)
        ours = covariance(design, residuals, cov_type, kwds, data.weights, intercept).matrix
        reference = statsmodels_results(design, data.y, beta, cov_type, kwds, data.weights).cov_params()
        against_exact = None
        if digits(ours, reference) < TARGET_DIGITS:  # which of the two is wrong? ask 60 digits
            against_exact = digits(ours, exact_covariance(design, data.y, cov_type, kwds, data.weights))
        row[cov_type] = (digits(ours, reference), against_exact)
    return row


# --- every type against statsmodels ---------------------------------------------------


@pytest.mark.parametrize("intercept", [True, False], ids=["intercept", "no intercept"])
@pytest.mark.parametrize("name", SETS)
def test_every_type_agrees_with_statsmodels(name, intercept):
    """At least 10 digits, or -- where statsmodels' own pinv-based bread and
    leverages lose digits (longley, κ ≈ 5e9) -- at least 10 against the exact
    covariance of the data, and closer to it than statsmodels."""
    row = digit_row(name, intercept)
    for cov_type, (against_statsmodels, against_exact) in row.items():
        if against_exact is None:
            assert against_statsmodels >= TARGET_DIGITS, (cov_type, row)
        else:
            assert against_exact >= TARGET_DIGITS and against_exact > against_statsmodels, (cov_type, row)


@pytest.mark.parametrize(
    "cov_type, kwds",
    [("cluster", {"use_correction": False}), ("HAC", {"use_correction": True}), ("HAC", {"kernel": "uniform"}),
     ("HAC", {"maxlags": 0}), ("HAC", {"maxlags": 300})],
    ids=["cluster uncorrected", "HAC corrected", "HAC uniform", "HAC no lags", "HAC lags beyond the rows"],
)
def test_options_agree_with_statsmodels(cov_type, kwds):
    data = case("grunfeld WLS")
    design = data.design(True)
    beta = lstsq_fit(design, data.y, data.weights)
    kwds = {**data.kwds(cov_type), **kwds}
    ours = covariance(design, data.y - design @ beta, cov_type, kwds, data.weights).matrix
    reference = statsmodels_results(design, data.y, beta, cov_type, kwds, data.weights).cov_params()
    assert digits(ours, reference) >= TARGET_DIGITS


@pytest.mark.parametrize("use_t", [None, True], ids=["default", "use_t"])
@pytest.mark.parametrize("intercept", [True, False], ids=["intercept", "no intercept"])
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_tests_and_intervals_follow_the_type_as_in_statsmodels(cov_type, intercept, use_t):
    """z (robust types) or t (nonrobust, or use_t), p-values, 95% intervals and the
    Wald F test of the slopes with its degrees of freedom (G - 1 for cluster)."""
    data = case("grunfeld")
    design = data.design(intercept)
    beta = lstsq_fit(design, data.y)
    kwds = data.kwds(cov_type)
    ours = covariance(design, data.y - design @ beta, cov_type, kwds, intercept=intercept, use_t=use_t)
    reference = statsmodels_results(design, data.y, beta, cov_type, kwds, use_t=use_t)
    tests = ours.inference(beta)
    assert tests.distribution == ("t" if reference.use_t else "normal")
    np.testing.assert_allclose(ours.std_errors, reference.bse, rtol=1e-10)
    np.testing.assert_allclose(tests.statistic, reference.tvalues, rtol=1e-10)
    np.testing.assert_allclose(tests.p_values, reference.pvalues, rtol=1e-8, atol=1e-300)
    np.testing.assert_allclose(np.column_stack([tests.ci_low, tests.ci_high]), reference.conf_int(), rtol=1e-10)
    wald = ours.wald_test(beta)
    assert wald.df_num == reference.df_model
    assert wald.df_denom == getattr(reference, "df_resid_inference", reference.df_resid)
    np.testing.assert_allclose(wald.statistic, reference.fvalue, rtol=1e-9)
    np.testing.assert_allclose(wald.p_value, reference.f_pvalue, rtol=1e-8, atol=1e-300)


def test_the_f_test_is_nan_without_slopes():
    """An intercept alone: nothing to test (statsmodels' fvalue is nan too)."""
    y = case("stackloss").y
    design = np.ones((len(y), 1))
    fit = covariance(design, y - y.mean(), "HC1")
    assert math.isnan(fit.wald_test([y.mean()]).statistic)
    assert math.isnan(statsmodels_results(design, y, np.array([y.mean()]), "HC1", {}).fvalue)


# --- R's sandwich, Stata and Petersen, as statsmodels ships them ----------------------------


def _macro_fit():
    x, y, _ = _macro_growth()
    design = np.column_stack([np.ones(len(y)), x])
    beta = lstsq_fit(design, y)
    return design, beta, y - design @ beta


# In Stata's order (the intercept last); ours puts it first.
STATA = [2, 0, 1]


@pytest.mark.parametrize("adjust", [True, False])
def test_hac_matches_r_sandwich_newey_west(adjust):
    """R: NeweyWest(fm, lag = 4, prewhite = FALSE, sandwich = TRUE, adjust = ...),
    from statsmodels/stats/tests/test_sandwich.py (test_hac_simple); adjust = TRUE
    is statsmodels' use_correction."""
    r_values = {
        True: [[+1.40643899878678802, -0.3180328707083329709, -0.060621111216488610],
               [-0.31803287070833292, 0.1097308348999818661, +0.000395311760301478],
               [-0.06062111121648865, 0.0003953117603014895, +0.087511528912470993]],
        False: [[+1.3855512908840137, -0.313309610252268500, -0.059720797683570477],
                [-0.3133096102522685, +0.108101169035130618, +0.000389440793564339],
                [-0.0597207976835705, +0.000389440793564336, +0.086211852740503622]],
    }  # fmt: skip
    design, _, residuals = _macro_fit()
    ours = covariance(design, residuals, "HAC", {"maxlags": 4, "use_correction": adjust})
    assert digits(ours.matrix, r_values[adjust]) >= 13


@pytest.mark.parametrize(
    "reference, cov_type, kwds",
    [(stata_macro.results_hc0, "HC1", {}), (stata_macro.results_newey4, "HAC", {"maxlags": 4, "use_correction": True})],
    ids=["regress vce(robust)", "newey lag(4)"],
)
def test_macro_matches_stata(reference, cov_type, kwds):
    """statsmodels/regression/tests/results/results_macro_ols_robust.py: Stata's
    covariance, standard errors and F (with its degrees of freedom)."""
    design, beta, residuals = _macro_fit()
    ours = covariance(design, residuals, cov_type, kwds)
    assert digits(ours.matrix, reference.cov[np.ix_(STATA, STATA)]) >= 12
    wald = ours.wald_test(beta)
    assert (wald.df_num, wald.df_denom) == (reference.df_m, reference.df_r)
    np.testing.assert_allclose(wald.statistic, reference.F, rtol=1e-10)


@pytest.mark.parametrize("weighted", [False, True], ids=["OLS", "WLS aw=1/mvalue"])
def test_grunfeld_cluster_matches_stata(weighted):
    """statsmodels/regression/tests/results/results_grunfeld_ols_robust_cluster.py:
    Stata's `regress invest mvalue kstock [aw=1/mvalue], vce(cluster company)`, on
    the first 200 rows (10 firms), with F on G - 1 = 9 degrees of freedom. Stata's
    copy of the data gives coefficients that differ from these in the 8th digit
    (statsmodels' own test allows 1e-6), so 7 digits is what agreement means here."""
    reference = stata_grunfeld.results_cluster_wls_small if weighted else stata_grunfeld.results_cluster
    d = _frame("grunfeld").iloc[:200]
    design = np.column_stack([np.ones(len(d)), d["value"], d["capital"]])
    weights = 1 / d["value"].to_numpy() if weighted else None
    y = d["invest"].to_numpy()
    beta = lstsq_fit(design, y, weights)
    ours = covariance(design, y - design @ beta, "cluster", {"groups": d["firm"]}, weights)
    assert digits(ours.matrix, reference.cov[np.ix_(STATA, STATA)]) >= 7
    assert ours.clusters == reference.N_clust
    wald = ours.wald_test(beta)
    assert (wald.df_num, wald.df_denom) == (reference.df_m, reference.df_r)
    np.testing.assert_allclose(wald.statistic, reference.F, rtol=1e-6)


def test_petersen_standard_errors():
    """Petersen's test data and his published standard errors (to 4 decimals), from
    statsmodels/stats/tests/test_sandwich.py (test_cov_cluster_2groups) and its
    test_data.txt: White's, clustered by firm (500) and by year (10)."""
    path = Path(statsmodels.__file__).parent / "stats" / "tests" / "test_data.txt"
    firm, year, x, y = np.loadtxt(path).T
    design = np.column_stack([np.ones(len(y)), x])
    residuals = y - design @ lstsq_fit(design, y)
    published = {("HC0", None): [0.0284, 0.0284], ("cluster", "firm"): [0.0670, 0.0506],
                 ("cluster", "year"): [0.0234, 0.0334]}  # fmt: skip
    for (cov_type, by), se in published.items():
        kwds = {"groups": {"firm": firm, "year": year}[by]} if by else {}
        ours = covariance(design, residuals, cov_type, kwds).std_errors
        np.testing.assert_allclose(ours, se, atol=0.5e-4)


# --- streamed: batches, workers, the factor from the moments ---------------------------------


def _in_memory(data, cov_type, intercept=True):
    design = data.design(intercept)
    beta = lstsq_fit(design, data.y, data.weights)
    root = np.sqrt(data.weights if data.weights is not None else np.ones(len(data.y)))
    R = np.linalg.qr(design * np.asarray(root)[:, None], mode="r")
    whole = covariance(design, data.y - design @ beta, cov_type, data.kwds(cov_type), data.weights, intercept)
    return design, beta, R, whole


def _batches(data, design, edges):
    w = None if data.weights is None else np.asarray(data.weights)
    for a, b in zip(edges, edges[1:]):
        yield design[a:b], data.y[a:b], None if w is None else w[a:b], data.groups[a:b]


def _edges(rows, size):
    return [*range(0, rows, size), rows]


def _close(ours, reference):
    return np.max(np.abs(ours - reference)) <= 1e-12 * np.linalg.norm(reference, 2)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_streamed_batches_equal_the_in_memory_covariance(cov_type):
    """Batches of 1, 3 (fewer rows than the 4 lags), 17 and all rows; weighted,
    clusters split across batches."""
    data = case("grunfeld WLS")
    kwds = {} if cov_type != "HAC" else {"maxlags": data.maxlags}
    design, beta, R, whole = _in_memory(data, cov_type)
    for size in (1, 3, 17, len(data.y)):
        sandwich = Sandwich(cov_type, beta, R, cov_keywords(cov_type, kwds))
        for x, y, w, groups in _batches(data, design, _edges(len(data.y), size)):
            sandwich.add(x, y, w, groups)
        assert _close(sandwich.result().matrix, whole.matrix), size


@pytest.mark.parametrize("cov_type", ["HC3", "cluster", "HAC"])
def test_workers_merged_in_rank_order_equal_one_process(cov_type):
    """Contiguous shards (one empty, one shorter than the lags), each summed by its
    own worker, packed into zero-padded vectors of one length as a collective
    exchanges them, unpacked and merged in rank order."""
    data = case("grunfeld WLS")
    kwds = {} if cov_type != "HAC" else {"maxlags": data.maxlags}
    design, beta, R, whole = _in_memory(data, cov_type)
    shards = [0, 0, 2, 70, 71, 150, 220]
    vectors = []
    for a, b in zip(shards, shards[1:]):
        worker = Sandwich(cov_type, beta, R, cov_keywords(cov_type, kwds))
        for x, y, w, groups in _batches(data, design, [a, *range(a + 1, b, 25), b]):
            worker.add(x, y, w, groups)
        vectors.append(worker.vector())
    width = max(map(len, vectors))
    gathered = np.array([np.pad(v, (0, width - len(v))) for v in vectors])
    template = Sandwich(cov_type, beta, R, cov_keywords(cov_type, kwds))
    merged = template.from_vector(gathered[0])
    for row in gathered[1:]:
        merged.merge(template.from_vector(row))
    assert _close(merged.result().matrix, whole.matrix)
    if cov_type == "cluster":  # text labels came through the vectors
        assert set(merged.clusters) == set(data.groups)


@pytest.mark.parametrize("intercept", [True, False], ids=["intercept", "no intercept"])
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC2", "HAC"])
@pytest.mark.parametrize("name", ["macrodata", "grunfeld WLS"])
def test_the_factor_from_streamed_moments(name, cov_type, intercept):
    """R from the moments of the batches (never the raw cross-products) gives the
    in-memory covariance, to the digits the cross-products keep."""
    data = case(name)
    design, beta, _, whole = _in_memory(data, cov_type, intercept)
    w = None if data.weights is None else np.asarray(data.weights)
    edges = _edges(len(data.y), 50)
    moments = merge_all(Moments.of(data.x[a:b], data.y[a:b], None if w is None else w[a:b])
                        for a, b in zip(edges, edges[1:]))
    R = factor_from_moments(moments, intercept)
    sandwich = Sandwich(cov_type, beta, R, cov_keywords(cov_type, data.kwds(cov_type) if cov_type == "HAC" else {}))
    sandwich.add(design, data.y, w)
    assert digits(sandwich.result().matrix, whole.matrix) >= 12


def test_too_many_clusters_are_refused():
    data = case("stackloss")
    design, beta, R, _ = _in_memory(data, "cluster")
    sandwich = Sandwich("cluster", beta, R, cov_keywords("cluster", {}), max_clusters=5)
    sandwich.add(design[:15], data.y[:15], groups=data.groups[:15])  # 5 clusters: fine
    with pytest.raises(LinregError, match="more than 5 distinct clusters") as error:
        sandwich.add(design[15:], data.y[15:], groups=data.groups[15:])
    assert "\n" not in str(error.value)


def test_a_note_below_about_thirty_clusters():
    data = case("grunfeld")
    design = data.design(True)
    residuals = data.y - design @ lstsq_fit(design, data.y)
    few = covariance(design, residuals, "cluster", {"groups": data.groups})
    assert few.clusters == len(np.unique(data.groups)) < FEW_CLUSTERS
    assert f"Only {few.clusters} clusters" in few.note
    many = covariance(design, residuals, "cluster", {"groups": np.arange(len(residuals)) // 5})
    assert many.clusters == len(residuals) // 5 >= FEW_CLUSTERS and many.note is None
    assert covariance(design, residuals, "HC1").note is None


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cov_type, kwds, message",
    [
        ("HC4", {}, "unknown covariance type 'HC4'"),
        ("cluster", {}, "needs cov_kwds groups"),
        ("cluster", {"groups": np.arange(5)}, "groups has 5 labels for 21 rows"),
        ("cluster", {"groups": [None] + [1] * 20}, "groups has 1 missing labels"),
        ("cluster", {"groups": [math.nan] * 2 + [1.0] * 19}, "groups has 2 missing labels"),
        ("cluster", {"groups": [1] * 21}, "a cluster covariance needs at least 2 clusters"),
        ("cluster", {"groups": np.zeros((21, 2))}, "one cluster label per row"),
        ("cluster", {"groups": np.arange(21), "use_correction": "no"}, "must be True or False"),
        ("HAC", {}, "needs cov_kwds maxlags"),
        ("HAC", {"maxlags": -1}, "HAC maxlags must be a whole number of lags, 0 or more, not -1"),
        ("HAC", {"maxlags": 2.5}, "not 2.5"),
        ("HAC", {"maxlags": 2, "kernel": "parzen"}, "unknown HAC kernel 'parzen'"),
        ("HC1", {"groups": np.arange(21)}, "cov_type 'HC1' takes no cov_kwds, not 'groups'"),
        ("HAC", {"maxlags": 2, "lags": 3}, "takes only maxlags, kernel, use_correction, not 'lags'"),
    ],
)
def test_bad_input_is_one_clear_line(cov_type, kwds, message):
    data = case("stackloss")
    design = data.design(True)
    with pytest.raises(LinregError, match=message) as error:
        covariance(design, data.y - design @ lstsq_fit(design, data.y), cov_type, kwds)
    assert "\n" not in str(error.value)


def test_every_kernel_the_plan_accepts_has_lag_weights():
    assert set(KERNELS) == set(HAC_KERNELS)


def test_streamed_cluster_needs_each_batch_groups():
    data = case("stackloss")
    design, beta, R, _ = _in_memory(data, "cluster")
    with pytest.raises(LinregError, match="with each batch"):
        Sandwich("cluster", beta, R, cov_keywords("cluster", {"groups": data.groups}))
    with pytest.raises(LinregError, match="needs the groups of every batch"):
        Sandwich("cluster", beta, R, cov_keywords("cluster", {})).add(design, data.y)
