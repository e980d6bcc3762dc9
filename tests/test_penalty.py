"""Ridge, lasso and elastic net from the statistics (engine/penalty.py), their
folds (data/folds.py), checked against scikit-learn and against fits made
fold by fold from the rows."""
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_linnerud
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, ElasticNetCV, Lasso, Ridge
from sklearn.model_selection import PredefinedSplit

from linreg.data.folds import fold_moments, fold_of
from linreg.data.moments import Moments
from linreg.engine import penalty
from linreg.errors import LinregError


def _statsmodels(name):
    data = getattr(sm.datasets, name).load_pandas().data.to_numpy(np.float64)
    return data[:, 1:], data[:, 0]


def _wide():
    # 20 rows, 30 features: more features than rows, many nearly collinear
    # (radius, perimeter and area of the same cells).
    X, y = load_breast_cancer(return_X_y=True)
    return X[:20], y[:20] + X[:20, 1] / 10


DATA = {
    "diabetes": lambda: load_diabetes(return_X_y=True),
    "longley": lambda: _statsmodels("longley"),  # condition number ~1e8 in its own units
    "stackloss": lambda: _statsmodels("stackloss"),
    "linnerud": lambda: (load_linnerud().data, load_linnerud().target[:, 0]),
    "wide": _wide,
}
SOLVERS = {}


def _solver(d):
    # One compiled loop per width, shared by the tests.
    if d not in SOLVERS:
        SOLVERS[d] = penalty.Solver(d)
    return SOLVERS[d]


def _reference(X, y, alpha, l1_ratio):
    """scikit-learn's answer, tightened: Ridge's direct solve for ρ = 0 (its
    α multiplies ‖w‖² beside ‖r‖², not (1/2n)‖r‖²: α_ridge = n·α), Lasso for ρ = 1."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if l1_ratio == 0:
            model = Ridge(alpha=len(y) * alpha, solver="cholesky")
        elif l1_ratio == 1:
            model = Lasso(alpha=alpha, tol=1e-12, max_iter=10**7)
        else:
            model = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-12, max_iter=10**7)
        model.fit(X, y)
    return model.coef_, model.intercept_


def _objective(X, y, W, b, alpha, l1_ratio, scale):
    """scikit-learn's objective straight from the rows, on the penalized columns' coefficients."""
    w = W * scale
    return (np.mean((y - X @ W - b) ** 2) / 2 + alpha * l1_ratio * np.sum(np.abs(w))
            + alpha * (1 - l1_ratio) / 2 * np.sum(w**2))


@pytest.mark.parametrize("standardize", [True, False], ids=["standardized", "original"])
@pytest.mark.parametrize("name", DATA)
def test_the_same_answer_as_scikit_learn(name, standardize):
    X, y = DATA[name]()
    mean, sd = X.mean(axis=0), X.std(axis=0)
    # scikit-learn penalizes the columns it is given: the standardized ones, mapped back.
    Xp = (X - mean) / sd if standardize else X
    scale = sd if standardize else np.ones_like(sd)
    top = np.max(np.abs(Xp.T @ (y - y.mean()))) / len(y)  # α_max of the lasso, from its definition
    moments = Moments.of(X, y)
    for l1_ratio in (0.0, 0.5, 1.0):
        for alpha in (0.05 * top, 0.005 * top):
            W, b, _ = penalty.path(moments, [alpha], l1_ratio, standardize, solver=_solver(X.shape[1]))
            W, b = W[0], b[0]
            w_ref, b_ref = _reference(Xp, y, alpha, l1_ratio)
            w_ref = w_ref / scale
            b_ref = b_ref - (mean @ w_ref if standardize else 0.0)
            assert np.max(np.abs(W - w_ref)) <= 1e-6 * np.max(np.abs(w_ref)), (l1_ratio, alpha)
            assert abs(b - b_ref) <= 1e-6 * max(abs(b_ref), np.max(np.abs(w_ref * mean)))
            assert np.array_equal(W == 0, w_ref == 0)
            ours, theirs = (_objective(X, y, w, c, alpha, l1_ratio, scale) for w, c in ((W, b), (w_ref, b_ref)))
            assert abs(ours - theirs) <= 1e-10 * theirs
            assert penalty.objective(moments, W, b, alpha, l1_ratio, standardize) == pytest.approx(ours, rel=1e-10)


def test_alpha_max_is_where_the_last_coefficient_leaves_zero():
    X, y = load_diabetes(return_X_y=True)
    moments = Moments.of(X, y)
    for l1_ratio in (0.3, 1.0):
        top = penalty.alpha_max(moments, l1_ratio)
        Xs = (X - X.mean(axis=0)) / X.std(axis=0)
        assert top == pytest.approx(np.max(np.abs(Xs.T @ (y - y.mean()))) / (len(y) * l1_ratio), rel=1e-12)
        # At α_max itself the largest coefficient sits on the edge, where rounding decides.
        W, _, _ = penalty.path(moments, [top * (1 + 1e-10), 0.99 * top], l1_ratio, solver=_solver(10))
        assert np.all(W[0] == 0) and np.count_nonzero(W[1]) == 1


def _batches(X, y, sizes):
    edges = np.cumsum([0, *sizes])
    return [(int(a), X[a:b], y[a:b]) for a, b in zip(edges[:-1], edges[1:])]


def test_folds_depend_on_the_row_number_only():
    X, y = load_diabetes(return_X_y=True)
    whole = fold_of(np.arange(len(y)), 5, seed=11)
    assert np.array_equal(fold_of(np.arange(100, 200), 5, seed=11), whole[100:200])
    assert not np.array_equal(fold_of(np.arange(len(y)), 5, seed=12), whole)
    # Every fold about n/K rows: a binomial count within five standard deviations.
    counts = np.bincount(whole, minlength=5)
    assert np.all(np.abs(counts - len(y) / 5) < 5 * np.sqrt(len(y) * 0.2 * 0.8))
    one = fold_moments(_batches(X, y, [len(y)]), 5, seed=11)
    many = fold_moments(_batches(X, y, [1, 100, 37, 304]), 5, seed=11)
    for k in range(5):
        rows = whole == k
        assert one[k].rows == many[k].rows == rows.sum()
        direct = Moments.of(X[rows], y[rows])
        np.testing.assert_allclose(many[k].mean, direct.mean, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(many[k].C, direct.C, rtol=1e-11, atol=1e-12 * np.abs(direct.C).max())


def test_cross_validation_equals_fits_made_fold_by_fold_from_the_rows():
    X, y = load_diabetes(return_X_y=True)
    K, seed = 4, 7
    folds = fold_moments(_batches(X, y, [50, 200, 192]), K, seed)
    result = penalty.cross_validate(folds, l1_ratio=[0.5, 1.0], n_alphas=12)
    fold = fold_of(np.arange(len(y)), K, seed)
    for i, l1_ratio in enumerate(result.l1_ratios):
        for k in range(K):
            train, held = fold != k, fold == k
            W, b, _ = penalty.path(Moments.of(X[train], y[train]), result.alphas[i], l1_ratio, solver=_solver(10))
            direct = [np.mean((y[held] - X[held] @ w - c) ** 2) for w, c in zip(W, b)]
            np.testing.assert_allclose(result.cv_folds[i, :, k], direct, rtol=1e-8)
    np.testing.assert_allclose(result.cv_mean, result.cv_folds.mean(axis=2), rtol=1e-14)
    # The one-standard-error rule: the largest α of the best l1_ratio within one standard error.
    i = list(result.l1_ratios).index(result.best[0])
    j = list(result.alphas[i]).index(result.best[1])
    limit = result.cv_mean[i, j] + result.cv_error[i, j]
    assert result.one_se[1] == max(a for a, e in zip(result.alphas[i], result.cv_mean[i]) if e <= limit)
    assert result.cv_error[i, j] == pytest.approx(np.std(result.cv_folds[i, j], ddof=1) / np.sqrt(K), rel=1e-12)
    # The final fits are on all the data, at the chosen α's.
    W, b, _ = penalty.path(Moments.of(X, y), [result.best[1], result.one_se[1]], result.best[0], solver=_solver(10))
    np.testing.assert_allclose(result.W, W[0], rtol=1e-9, atol=1e-9 * np.abs(W[0]).max())
    np.testing.assert_allclose(result.W_one_se, W[1], rtol=1e-9, atol=1e-9 * np.abs(W[1]).max())


def test_cross_validation_chooses_what_elastic_net_cv_chooses():
    X, y = load_diabetes(return_X_y=True)
    K, seed = 5, 3
    folds = fold_moments(_batches(X, y, [len(y)]), K, seed)
    alphas = penalty.alpha_grid(Moments.of(X, y), 1.0, 25, standardize=False)
    result = penalty.cross_validate(folds, l1_ratio=[0.5, 1.0], alphas=alphas, standardize=False)
    reference = ElasticNetCV(l1_ratio=[0.5, 1.0], alphas=alphas, cv=PredefinedSplit(fold_of(np.arange(len(y)), K, seed)),
                             tol=1e-12, max_iter=10**6).fit(X, y)
    # mse_path_: [l1_ratio, alpha, fold], the mean squared error of each held-out fold.
    np.testing.assert_allclose(result.cv_folds, reference.mse_path_, rtol=1e-6)
    assert result.best == (reference.l1_ratio_, reference.alpha_)
    np.testing.assert_allclose(result.W, reference.coef_, rtol=1e-6, atol=1e-6 * np.abs(reference.coef_).max())


def test_warm_starts_reach_the_same_path_in_fewer_iterations():
    X, y = _wide()
    folds = fold_moments(_batches(X, y, [len(y)]), 2, seed=1)
    result = penalty.cross_validate(folds, l1_ratio=1.0, n_alphas=20)
    cold, _, _ = penalty.path(Moments.of(X, y), result.alphas[0], 1.0, warm=False, solver=_solver(30))
    np.testing.assert_allclose(result.coefficients[0], cold, rtol=1e-7, atol=1e-7 * np.abs(cold).max())
    assert result.iterations.sum() < result.cold_iterations.sum()


@pytest.mark.parametrize("call, message", [
    (lambda m: penalty.path(m, [-0.1], 0.5), "alpha must be a finite number >= 0"),
    (lambda m: penalty.path(m, [0.1], 1.5), "l1_ratio must lie in [0, 1]"),
    (lambda m: penalty.cross_validate([m], 0.5), "at least 2"),
    (lambda m: penalty.alpha_max(m, 0.0), "give the alphas"),
])  # fmt: skip
def test_bad_penalties(call, message):
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(LinregError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call(Moments.of(X, y))


def test_bad_folds():
    X, y = np.arange(12.0).reshape(6, 2) ** 1.5, np.arange(6.0)
    with pytest.raises(LinregError, match="at least 2, not 1"):
        fold_moments(_batches(X, y, [6]), 1)
    with pytest.raises(LinregError, match="cannot make 7 folds of 6 rows"):
        fold_moments(_batches(X, y, [2, 4]), 7)
    # Six rows in six folds by a hash: some fold is empty for this seed.
    assert len(set(fold_of(np.arange(6), 6, seed=0))) < 6
    with pytest.raises(LinregError, match="has no rows"):
        fold_moments(_batches(X, y, [6]), 6, seed=0)


def test_a_constant_column_is_refused():
    X, y = load_diabetes(return_X_y=True)
    X[:, 3] = 2.5
    with pytest.raises(LinregError, match="feature 4 is constant"):
        penalty.path(Moments.of(X, y), [0.1], 0.5)
