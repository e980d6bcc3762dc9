"""Penalized fits end to end -- linreg.fit, the CLI, the estimator, the outputs --
against scikit-learn (Ridge, Lasso, ElasticNet, ElasticNetCV) as the
independent answer, on the memory engine, on streamed CSV and Parquet files and on two workers."""
import json
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, ElasticNetCV, Lasso, enet_path
from sklearn.model_selection import PredefinedSplit
from sklearn.utils.estimator_checks import parametrize_with_checks
from test_penalty import DATA, _reference
from test_workers import DEADLINE, ENV, linreg_command

import linreg
from linreg.cli import main
from linreg.data.folds import fold_of
from linreg.errors import LinregError
from linreg.sklearn import LinearRegression

PENALTIES = {"l2": 0.0, "l1": 1.0, "elasticnet": 0.5}


def _frame(X, y):
    return pd.DataFrame({**{f"x{j}": X[:, j] for j in range(X.shape[1])}, "y": y})


def _write(frame, path):
    if path.suffix == ".csv":
        frame.to_csv(path, index=False, float_format="%.17g")
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


def _raw_diabetes(tmp_path, scaled=False):
    data = load_diabetes(scaled=scaled, as_frame=True).frame
    return data, _write(data, tmp_path / "diabetes.csv")


@pytest.mark.parametrize("source", ["memory", "csv", "parquet"])
@pytest.mark.parametrize("name", DATA)
def test_one_alpha_gives_scikit_learns_coefficients_on_every_engine(name, source, tmp_path):
    X, y = DATA[name]()  # "wide" has more features than rows: a penalized fit takes it on every engine
    data = (X, y) if source == "memory" else _write(_frame(X, y), tmp_path / f"data.{source}")
    engine = "memory" if source == "memory" else "moments"
    top = np.max(np.abs(X.T @ (y - y.mean()))) / len(y)  # α_max of the lasso on the columns as they are
    for penalty, l1_ratio in PENALTIES.items():
        alpha = 0.02 * top
        fit = linreg.fit(data, "y", penalty=penalty, alpha=alpha, l1_ratio=l1_ratio if penalty == "elasticnet" else None,
                         standardize=False, engine=engine)
        w_ref, b_ref = _reference(X, y, alpha, l1_ratio)
        assert np.max(np.abs(fit.coef_ - w_ref)) <= 1e-6 * np.max(np.abs(w_ref)), penalty
        assert abs(fit.intercept_ - b_ref) <= 1e-6 * max(abs(b_ref), np.max(np.abs(w_ref * X.mean(axis=0))))
        assert np.array_equal(fit.coef_ == 0, w_ref == 0), penalty
        np.testing.assert_allclose(fit.predict(X), X @ w_ref + b_ref, rtol=1e-6, atol=1e-6 * np.std(y))


def test_more_features_than_rows_in_a_file_read_whole_but_not_one_row(tmp_path, capsys):
    X, y = DATA["wide"]()
    path = _write(_frame(X, y), tmp_path / "wide.csv")
    alpha = float(0.05 * np.max(np.abs(X.T @ (y - y.mean()))) / len(y))
    code = main(["fit", str(path), "--target", "y", "--penalty", "l1", "--alpha", repr(alpha), "--no-standardize",
                 "--engine", "memory", "--json", str(tmp_path / "fit.json"), "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    document = json.loads((tmp_path / "fit.json").read_text())
    w_ref, b_ref = _reference(X, y, alpha, 1.0)
    coefficients = np.array(list(document["coefficients"].values()))
    np.testing.assert_allclose(coefficients[1:], w_ref, rtol=1e-6, atol=1e-6 * np.max(np.abs(w_ref)))
    assert linreg.fit(path, "y", penalty="l2", alpha=1.0, engine="memory").n == len(y)
    with pytest.raises(LinregError, match="estimate their errors"):  # least squares still needs the rows
        linreg.fit(path, "y", engine="memory", progress=False)
    with pytest.raises(LinregError, match="1 data row; a penalized fit needs at least 2"):
        linreg.fit(_frame(X[:1], y[:1]), "y", penalty="l2", alpha=1.0)


def test_standardized_columns_are_penalized_by_default_and_reported_in_original_units():
    X, y = DATA["longley"]()  # columns of very different spreads, highly correlated
    mean, sd = X.mean(axis=0), X.std(axis=0)
    for penalty, l1_ratio in PENALTIES.items():
        fit = linreg.fit(_frame(X, y), "y", penalty=penalty, alpha=0.01, l1_ratio=l1_ratio if l1_ratio == 0.5 else None)
        w_ref, b_ref = _reference((X - mean) / sd, y, 0.01, l1_ratio)
        np.testing.assert_allclose(fit.coef_, w_ref / sd, rtol=1e-6, atol=1e-6 * np.max(np.abs(w_ref / sd)))
        assert fit.intercept_ == pytest.approx(b_ref - mean @ (w_ref / sd), rel=1e-6)
        assert "penalty on the standardized columns" in fit.summary()


def test_observation_weights_are_scikit_learns_sample_weight():
    X, y = load_diabetes(return_X_y=True)
    w = 1 + np.arange(len(y)) % 3
    fit = linreg.fit((X, y), penalty="elasticnet", alpha=0.01, standardize=False, weights=w)
    reference = ElasticNet(alpha=0.01, l1_ratio=0.5, tol=1e-12, max_iter=10**7).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(fit.coef_, reference.coef_, rtol=1e-6, atol=1e-6 * np.abs(reference.coef_).max())


def _cv_reference(X, y, alphas, l1_ratios, K, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return ElasticNetCV(l1_ratio=l1_ratios, alphas=alphas, cv=PredefinedSplit(fold_of(np.arange(len(y)), K, seed)),
                            tol=1e-12, max_iter=10**6).fit(X, y)


def test_the_cli_cross_validates_as_elastic_net_cv_does_on_the_same_folds(tmp_path, capsys):
    # The columns scaled (as scikit-learn ships them): its coordinate descent then converges to 1e-15 quickly.
    data, path = _raw_diabetes(tmp_path, scaled=True)
    X, y = data.drop(columns="target").to_numpy(), data["target"].to_numpy()
    alphas = np.geomspace(1.0, 0.001, 15)
    listed = ",".join(repr(float(a)) for a in alphas)
    code = main(["fit", str(path), "--target", "target", "--penalty", "elasticnet", "--l1-ratio", "0.5,1",
                 "--alphas", listed, "--cv", "5", "--cv-seed", "3", "--no-standardize", "--engine", "moments",
                 "--json", str(tmp_path / "fit.json"), "--out", str(tmp_path / "plots")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    document = json.loads((tmp_path / "fit.json").read_text())
    reference = _cv_reference(X, y, alphas, [0.5, 1.0], 5, 3)
    assert (document["l1_ratio"], document["alpha"]) == (reference.l1_ratio_, reference.alpha_)
    assert f"alpha {reference.alpha_:<11.6g}(least mean error" in out
    np.testing.assert_allclose(document["coefficients"]["bmi"], reference.coef_[2], rtol=1e-6)
    # The curve fold by fold from the rows: each fold's training rows fitted by
    # scikit-learn, its held-out rows' mean squared error.
    folds = fold_of(np.arange(len(y)), 5, 3)
    cv = np.array(document["cv"]["per_fold"])
    for i, l1_ratio in enumerate([0.5, 1.0]):
        for k in range(5):
            train, held = folds != k, folds == k
            with warnings.catch_warnings():  # a duality gap of 1e-15 is past what it always reaches; enough
                warnings.simplefilter("ignore", ConvergenceWarning)
                _, paths, _ = enet_path(X[train] - X[train].mean(axis=0), y[train] - y[train].mean(),
                                        l1_ratio=l1_ratio, alphas=alphas, tol=1e-15, max_iter=10**6)  # fmt: skip
            b = y[train].mean() - X[train].mean(axis=0) @ paths
            direct = np.mean((y[held, None] - X[held] @ paths - b) ** 2, axis=0)
            np.testing.assert_allclose(cv[i, :, k], direct, rtol=1e-8)
    np.testing.assert_allclose(document["cv"]["mean"], cv.mean(axis=2), rtol=1e-14)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["cv_error.png", "penalty_path.png"]


def test_memory_and_streamed_files_make_the_same_folds_and_choice(tmp_path):
    data, path = _raw_diabetes(tmp_path)
    parquet = _write(data, tmp_path / "diabetes.parquet")
    kwargs = dict(penalty="l1", alphas=20, cv=4, cv_seed=9, select="1se")
    memory = linreg.fit(data, "target", **kwargs)
    streamed = linreg.fit(parquet, "target", engine="moments", batch_rows=37, **kwargs)
    np.testing.assert_allclose(streamed.cv["per_fold"], memory.cv["per_fold"], rtol=1e-10)
    # The same grid (to rounding: the statistics are merged in another order) and the same places on it.
    np.testing.assert_allclose(streamed.path["alphas"], memory.path["alphas"], rtol=1e-12)
    assert [fit.curve()[1].tolist().index(fit.alpha_min) for fit in (streamed, memory)] == [
        list(memory.path["alphas"][0]).index(memory.alpha_min)] * 2
    assert streamed.alpha_ == pytest.approx(memory.alpha_, rel=1e-12)
    # --select 1se: the model is the path's fit at the one-standard-error alpha.
    assert memory.alpha_ == memory.alpha_1se > memory.alpha_min
    j = list(memory.path["alphas"][0]).index(memory.alpha_)
    np.testing.assert_array_equal(memory.coef_, memory.path["coefficients"][0, j])


def test_two_workers_make_the_same_folds_as_one_process(tmp_path, processes):
    data, _ = _raw_diabetes(tmp_path)
    # Row groups of 100 rows: the two shards split the file in the middle of its rows.
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), tmp_path / "d.parquet", row_group_size=100)
    flags = ["--penalty", "elasticnet", "--l1-ratio", "0.5,0.9", "--alphas", "12", "--cv", "5", "--cv-seed", "2"]
    worker = processes(linreg_command("fit", tmp_path / "d.parquet", "--target", "target", "--workers", 2, *flags,
                                      "--json", tmp_path / "w.json", "--quiet"), env=ENV)  # fmt: skip
    _, err = worker.communicate(timeout=DEADLINE)
    assert worker.returncode == 0, err
    workers = json.loads((tmp_path / "w.json").read_text())
    alone = linreg.fit(data, "target", penalty="elasticnet", l1_ratio=[0.5, 0.9], alphas=12, cv=5, cv_seed=2)
    np.testing.assert_allclose(workers["cv"]["per_fold"], alone.cv["per_fold"], rtol=1e-10)
    assert (workers["l1_ratio"], workers["alpha"]) == pytest.approx((alone.l1_ratio_, alone.alpha_), rel=1e-12)
    np.testing.assert_allclose(list(workers["coefficients"].values()), list(alone.coefficients.values()), rtol=1e-9)


def test_a_formula_on_the_memory_engine(tmp_path):
    data, _ = _raw_diabetes(tmp_path)
    fit = linreg.fit(data, formula="target ~ bmi + bp + np.log(s5) + bmi:bp", penalty="l1", alpha=0.5,
                     standardize=False)
    X = np.column_stack([data.bmi, data.bp, np.log(data.s5), data.bmi * data.bp])
    reference = Lasso(alpha=0.5, tol=1e-12, max_iter=10**7).fit(X, data.target)
    np.testing.assert_allclose(fit.coef_, reference.coef_, rtol=1e-6)
    np.testing.assert_allclose(fit.predict(data.head(5)), reference.predict(X[:5]), rtol=1e-9)


def test_the_export_serves_the_chosen_model_and_refuses_intervals(tmp_path):
    data, _ = _raw_diabetes(tmp_path)
    fit = linreg.fit(data, "target", penalty="elasticnet", alphas=10, cv=3)
    fit.export(tmp_path / "model")
    model = linreg.load(tmp_path / "model")
    x = data.drop(columns="target").to_numpy()[:7]
    np.testing.assert_allclose(model.predict(x), x @ fit.coef_ + fit.intercept_, rtol=1e-12)
    assert model.metadata["penalty"] == {"penalty": "elasticnet", "alpha": fit.alpha_, "l1_ratio": 0.5}
    with pytest.raises(LinregError, match="penalized fit.*no valid intervals"):
        model.predict(x, interval="prediction")
    with pytest.raises(LinregError, match="penalized fit.*no valid intervals"):  # whatever the weights
        model.predict(data, interval="prediction", weights="age")


@parametrize_with_checks(
    [LinearRegression(penalty="elasticnet", alpha=0.01)],
    expected_failed_checks=lambda estimator: {"check_sample_weight_equivalence_on_dense_data": (
        "it gives cv a list of (train, test) index pairs; linreg's folds are a hash of the row number, the same on "
        "every engine, so its cv is their number")},
    xfail_strict=True,
)  # fmt: skip
def test_the_penalized_estimator_passes_scikit_learns_checks(estimator, check):
    check(estimator)


def test_the_estimator_takes_the_penalty():
    X, y = load_diabetes(return_X_y=True)
    model = LinearRegression(penalty="l1", alpha=0.1, standardize=False)
    assert model.get_params()["alpha"] == 0.1
    model.set_params(alpha=0.2).fit(X, y)
    reference = Lasso(alpha=0.2, tol=1e-12, max_iter=10**7).fit(X, y)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-6, atol=1e-6 * np.abs(reference.coef_).max())
    assert model.predict(X[:3]) == pytest.approx(reference.predict(X[:3]), rel=1e-8)


BAD = [
    (["--penalty", "l1", "--alpha", "-1"], "alpha must be a number >= 0"),
    (["--penalty", "elasticnet", "--l1-ratio", "1.5"], "l1_ratio must be a number in [0, 1]"),
    (["--penalty", "l1", "--alphas", "5", "--cv", "1"], "at least 2, not 1"),
    (["--penalty", "l1", "--alphas", "5", "--cv", "8"], "cannot make 8 folds of 6 rows"),
    (["--penalty", "l1", "--alphas", "5", "--cv", "6"], "has no rows"),
    (["--penalty", "l1", "--cov", "HC1"], "leave cov_type at nonrobust"),
    (["--penalty", "l1", "--alpha", "1", "--alphas", "5"], "not both"),
    (["--penalty", "l1", "--cv", "3"], "give alphas"),
    (["--alpha", "1"], "alpha needs a penalty"),
    (["--penalty", "lasso"], "invalid choice: 'lasso'"),
    (["--penalty", "l1", "--engine", "stream"], "engine stream cannot fit a penalty"),
    (["--penalty", "l1", "--workers", "2", "--engine", "stream"], "engine stream cannot fit a penalty"),
    (["--penalty", "l2", "--l1-ratio", "0.3"], "l1_ratio goes with penalty elasticnet"),
    (["--penalty", "l1", "--optimizer", "momentum"], "leave optimizer out"),
    (["--penalty", "l1", "--no-intercept"], "always has its intercept"),
    (["--penalty", "l1", "--select", "1se"], "give cv"),
    (["--penalty", "l2", "--alphas", "5"], "give the alphas"),
]


@pytest.mark.parametrize("flags, message", BAD, ids=[" ".join(flags) for flags, _ in BAD])
def test_bad_input_is_one_error_line(flags, message, tmp_path, capsys):
    path = tmp_path / "small.csv"
    path.write_text("a,b,y\n" + "".join(f"{k},{k * k % 7},{k % 3 + 0.5 * k}\n" for k in range(6)))
    code = main(["fit", str(path), "--target", "y", "--quiet", *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert list(tmp_path.iterdir()) == [path]


def test_the_api_raises_the_same_errors():
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(LinregError, match="penalty must be one of none, l2, l1, elasticnet, not 'ridge'"):
        linreg.fit((X, y), penalty="ridge")
    with pytest.raises(LinregError, match="cv must be a whole number of folds"):
        linreg.fit((X, y), penalty="l1", alphas=5, cv=2.5)
    with pytest.raises(LinregError, match="cv_seed must be a whole number"):
        linreg.fit((X, y), penalty="l1", alphas=5, cv=3, cv_seed=-1)


HOSTILE_DATA = [  # (rows of a,b,y; flags; what the one line says)
    ([(k, 5.0, k % 3 + 0.5 * k) for k in range(9)], ["--engine", "moments", "--alphas", "5"],
     "feature column 'b' is constant"),
    ([(k, 5.0, k % 3 + 0.5 * k) for k in range(9)], ["--engine", "memory", "--alpha", "1"],
     "feature column 'b' is constant"),
    ([(k * 1e-300, (k * k % 7) * 1e-300, (k % 3 + 0.5 * k) * 1e-300) for k in range(9)],
     ["--alphas", "5", "--no-standardize"], "rescale the columns"),
    ([(k, k * k % 7, (k % 3 + 0.5 * k) * 1e300) for k in range(9)], ["--alphas", "5", "--cv", "3"],
     "divide the target by a power of ten"),
    ([(k, k * k % 7, k % 3 + 0.5 * k) for k in range(9)], ["--alphas", "3", "--cv", "3", "--cv-seed", str(2**64)],
     "cv_seed must be a whole number from 0 to 2**63 - 1"),
    ([(k, k * k % 7, k % 3 + 0.5 * k) for k in range(3)], ["--alphas", "3", "--cv", "2"], "use fewer folds"),
]


@pytest.mark.filterwarnings("error")  # a RuntimeWarning would be lines of stderr beside the one error line
@pytest.mark.parametrize("rows, flags, message", HOSTILE_DATA, ids=[m for _, _, m in HOSTILE_DATA])
def test_data_a_penalty_cannot_fit_is_one_error_line_naming_what_to_do(rows, flags, message, tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n" + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows))
    code = main(["fit", str(path), "--target", "y", "--quiet", "--penalty", "l1", *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
