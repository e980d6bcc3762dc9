"""A fit as a notebook shows it and a program uses it: the statistics as
attributes (against statsmodels' OLS and WLS results), the summary as text and
HTML, the kind of fit in the report's header, weighted prediction intervals
(against statsmodels' get_prediction), the SavedModel's variables for
intervals in plain TensorFlow, and no TensorFlow log line on stderr."""
import html
import io
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import tensorflow as tf
from statsmodels.stats.stattools import durbin_watson

import linreg
from linreg import plan
from linreg.cli import main
from linreg.errors import LinregError
from linreg.io.report import summary
from linreg.results import NotConvergedError

ATTRIBUTES = ("f_statistic", "f_pvalue", "log_likelihood", "aic", "bic", "durbin_watson", "condition_number_raw",
              "rsquared", "rsquared_adj")  # fmt: skip


def make_data(n=150, seed=3):
    """Features in assorted units and offsets, noise whose variance is 1/w."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1] + [5.0, -2.0, 100.0]
    w = rng.uniform(0.5, 3.0, n)
    y = x @ [1.5, -0.2, 3.0] + 4.0 + rng.normal(size=n) / np.sqrt(w)
    return x, y, w


def statsmodels_values(results):
    return {"f_statistic": results.fvalue, "f_pvalue": results.f_pvalue, "log_likelihood": results.llf,
            "aic": results.aic, "bic": results.bic, "durbin_watson": durbin_watson(results.wresid),
            "condition_number_raw": results.condition_number, "rsquared": results.rsquared,
            "rsquared_adj": results.rsquared_adj}  # fmt: skip


def reference(x, y, w, intercept, cov="nonrobust", cov_kwds=None):
    design = sm.add_constant(x) if intercept else x
    model = sm.OLS(y, design) if w is None else sm.WLS(y, design, weights=w)
    return model.fit(cov_type=cov, cov_kwds=cov_kwds)


@pytest.mark.parametrize("intercept", [True, False], ids=["intercept", "origin"])
@pytest.mark.parametrize("weighted", [False, True], ids=["ols", "wls"])
@pytest.mark.parametrize("cov", ["nonrobust", "HC1", "HAC", "cluster"])
def test_the_statistics_are_statsmodels(intercept, weighted, cov):
    x, y, w = make_data()
    w = w if weighted else None
    groups = np.arange(len(y)) % 25
    kwds = {"HAC": {"maxlags": 3}, "cluster": {"groups": groups}}.get(cov)
    fit = linreg.fit((x, y), intercept=intercept, weights=w, cov_type=cov, cov_kwds=kwds, progress=False)
    expected = statsmodels_values(reference(x, y, w, intercept, cov, kwds))
    for name in ATTRIBUTES:
        assert getattr(fit, name) == pytest.approx(expected[name], rel=1e-9), name


@pytest.fixture
def few_is_many(monkeypatch):
    monkeypatch.setattr(plan, "MAX_MOMENTS_FEATURES", 2)


def write(path, x, y, w=None):
    columns = {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y, **({} if w is None else {"w": w})}
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("weighted", [False, True], ids=["ols", "wls"])
def test_a_streamed_fit_has_the_statistics_of_the_loss_and_refuses_those_of_the_rows(tmp_path, weighted):
    x, y, w = make_data(400)
    w = w if weighted else None
    moments = linreg.fit(write(tmp_path / "d.csv", x, y, w), "y", weights="w" if weighted else None,
                         engine="moments", progress=False)  # fmt: skip
    expected = statsmodels_values(reference(x, y, w, True))
    for name in ("f_statistic", "f_pvalue", "log_likelihood", "aic", "bic", "rsquared", "rsquared_adj"):
        assert getattr(moments, name) == pytest.approx(expected[name], rel=1e-9), name
    if not weighted:  # from the cross-products alone
        assert moments.condition_number_raw == pytest.approx(expected["condition_number_raw"], rel=1e-9)
    with pytest.raises(LinregError, match="no Durbin-Watson statistic: engine moments gathers statistics of the rows"):
        moments.durbin_watson


def test_without_the_cross_products_only_the_statistics_of_the_loss_are_known(tmp_path, few_is_many):
    x, y, _ = make_data(400)
    wide = linreg.fit(write(tmp_path / "wide.csv", x, y), "y", engine="stream", epochs=20_000, progress=False)
    assert wide.converged and not wide.scaled.cross_products
    expected = statsmodels_values(reference(x, y, None, True))
    for name in ("f_statistic", "f_pvalue", "log_likelihood", "aic", "bic", "rsquared", "rsquared_adj"):
        assert getattr(wide, name) == pytest.approx(expected[name], rel=1e-8), name
    for name in ("durbin_watson", "condition_number_raw"):
        with pytest.raises(LinregError, match="cross-products of the features"):
            getattr(wide, name)
    shown = wide._repr_html_()
    assert "std err" not in shown and "Coefficients only" in shown


def test_a_fit_that_has_not_converged_has_no_statistics():
    x, y, _ = make_data()
    short = linreg.fit((x, y), optimizer="gd", epochs=3, progress=False)
    assert not short.converged
    for name in ATTRIBUTES[:7]:
        with pytest.raises(NotConvergedError, match="has not converged"):
            getattr(short, name)
    assert "NOT CONVERGED" in short._repr_html_()


def test_the_summary_is_the_text_and_shows_as_html():
    x, y, _ = make_data()
    names = ["<b>area</b>", "rooms & baths", 'say "hi"']
    frame = pd.DataFrame({**{name: x[:, j] for j, name in enumerate(names)}, "price": y})
    fit = linreg.fit(frame, "price", progress=False)
    shown = fit.summary()
    assert str(shown) == summary(fit) and repr(shown) == summary(fit) and shown == summary(fit)
    assert type(str(shown)) is str
    page = fit._repr_html_()
    assert page == shown._repr_html_()
    for name in names:  # escaped, never markup
        assert f"<th>{html.escape(name)}</th>" in page
    assert "<b>area</b>" not in page
    results = reference(x, y, None, True)
    cells = page.split("<td>")
    for value in (f"{results.rsquared:.6g}", f"{results.fvalue:.6g}", f"{results.llf:.6g}", f"{results.aic:.6g}"):
        assert f"{value}</td>" in cells or any(cell.startswith(value + "</td>") for cell in cells), value
    for j, coefficient in enumerate(results.params):
        assert any(cell.startswith(f"{coefficient:.7g}</td>") for cell in cells)
        assert any(cell.startswith(f"{results.bse[j]:.4g}</td>") for cell in cells)


def test_ipython_shows_the_text_not_its_quoted_repr():
    pretty = pytest.importorskip("IPython.lib.pretty")
    x, y, _ = make_data()
    shown = linreg.fit((x, y), progress=False).summary()
    assert pretty.pretty(shown) == str(shown)
    penalized = linreg.fit((x, y), penalty="l2", alpha=0.1).summary()  # the same for a penalized fit's
    assert pretty.pretty(penalized) == repr(penalized) == str(penalized) and "\n" in penalized


def lines_of(fit):
    return str(fit.summary()).splitlines()


def test_the_report_says_what_kind_of_fit_it_is():
    x, y, w = make_data()
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y, "w": w})
    weighted = linreg.fit(frame, "y", features=["a", "b", "c"], weights="w", cov_type="HC3", progress=False)
    text = lines_of(weighted)
    assert "  weighted least squares (as statsmodels' WLS), weights from column 'w'" in text
    assert any(line.startswith("  covariance HC3: ") for line in text)
    page = weighted._repr_html_()
    assert "<td>WLS</td>" in page and "<td>column &#x27;w&#x27;</td>" in page and "<td>HC3</td>" in page

    origin = linreg.fit((x, y), intercept=False, progress=False)
    results = reference(x, y, None, False)
    text = lines_of(origin)
    assert any(line.startswith("  through the origin (no intercept): R² and adjusted R² uncentered") for line in text)
    assert any(line.startswith(f"R² (uncentered)  {results.rsquared:.6f}   adjusted R² (uncentered)  "
                               f"{results.rsquared_adj:.6f}") for line in text)  # fmt: skip
    assert "R-squared (uncentered):" in origin._repr_html_()

    formula = "y ~ a + np.log(c) + a:b"
    designed = linreg.fit(frame, formula=formula, progress=False)
    assert f"  formula {formula}" in lines_of(designed)
    assert html.escape(formula) in designed._repr_html_()

    plain = lines_of(linreg.fit((x, y), progress=False))
    kinds = ("  weighted", "  through the origin", "  formula", "  covariance")
    assert not any(line.startswith(kinds) for line in plain)
    assert any(line.startswith("R²  ") for line in plain)


# --- weighted prediction ---------------------------------------------------------------


@pytest.fixture(scope="module")
def weighted_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weighted")
    x, y, w = make_data()
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y, "w": w})
    fit = linreg.fit(frame, "y", features=["a", "b", "c"], weights="w", progress=False)
    fit.export(folder / "model")
    rng = np.random.default_rng(9)
    new = pd.DataFrame({"a": rng.normal(5, 1, 7), "b": rng.normal(-2, 10, 7), "c": rng.normal(100, 0.1, 7),
                        "w": rng.uniform(0.2, 4.0, 7)})  # fmt: skip
    new.to_csv(folder / "new.csv", index=False)
    new.to_parquet(folder / "new.parquet", index=False)
    return fit, folder, x, y, w, new


@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_weighted_prediction_intervals_are_statsmodels(weighted_export, alpha, capsys):
    fit, folder, x, y, w, new = weighted_export
    rows = new[["a", "b", "c"]].to_numpy()
    expected = reference(x, y, w, True).get_prediction(sm.add_constant(rows), weights=new["w"].to_numpy())
    frame = expected.summary_frame(alpha=alpha)
    model = linreg.load(folder / "model")
    answers = [fit.predict(rows, "prediction", alpha, weights=new["w"].to_numpy()),
               fit.predict(new, "prediction", alpha, weights="w"),
               model.predict(folder / "new.csv", "prediction", alpha, weights="w")]
    for data in ("new.csv", "new.parquet"):
        assert main(["predict", str(folder / "model"), str(folder / data), "--interval", "prediction",
                     "--alpha", str(alpha), "--weights", "w"]) == 0  # fmt: skip
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == "prediction,lower,upper"
        answers.append(np.array([line.split(",") for line in lines[1:]], dtype=np.float64).T)
    for mean, low, high in answers:
        np.testing.assert_allclose(mean, frame["mean"], rtol=1e-11)
        np.testing.assert_allclose(low, frame["obs_ci_lower"], rtol=1e-10)
        np.testing.assert_allclose(high, frame["obs_ci_upper"], rtol=1e-10)


def test_an_unweighted_model_takes_weights_too(weighted_export):
    _, _, x, y, _, new = weighted_export
    rows, weights = new[["a", "b", "c"]].to_numpy(), new["w"].to_numpy()
    fit = linreg.fit((x, y), progress=False)
    frame = reference(x, y, None, True).get_prediction(sm.add_constant(rows), weights=weights).summary_frame()
    _, low, high = fit.predict(rows, "prediction", weights=weights)
    np.testing.assert_allclose(low, frame["obs_ci_lower"], rtol=1e-10)
    np.testing.assert_allclose(high, frame["obs_ci_upper"], rtol=1e-10)


@pytest.mark.parametrize("argv, message", [
    ([], "fitted with weights"),
    (["--weights", "bad"], "weight -1.0 is not a positive finite number"),
    (["--weights", "gap"], "column 'gap'"),
    (["--weights", "zero"], "weight 0.0 is not a positive finite number"),
    (["--weights", "nowhere"], "no column 'nowhere'"),
], ids=["none", "negative", "missing", "zero", "no such column"])  # fmt: skip
def test_bad_or_missing_weights_are_one_error_line(weighted_export, tmp_path, capsys, argv, message):
    _, folder, *_ = weighted_export
    data = tmp_path / "rows.csv"
    data.write_text("a,b,c,bad,gap,zero\n5,-2,100,1,1,1\n5,-2,100,-1,,0\n", encoding="utf-8")
    out = tmp_path / "pred.csv"
    code = main(["predict", str(folder / "model"), str(data), "--interval", "prediction", "--out", str(out), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_weights_from_standard_input_are_refused_not_read_as_nothing(weighted_export, capsys, monkeypatch):
    _, folder, *_ = weighted_export
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a,b,c,w\n5,-2,100,2\n")))
    code = main(["predict", str(folder / "model"), "-", "--interval", "prediction", "--weights", "w"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err == ("error: the weights' column 'w' would be a second reading of standard input, which has "
                            "been read; save the rows to a file and give its path\n")


def test_bad_weights_in_the_api_raise(weighted_export):
    fit, folder, *_, new = weighted_export
    rows = new[["a", "b", "c"]].to_numpy()
    model = linreg.load(folder / "model")
    for predictor in (fit, model):
        with pytest.raises(LinregError, match="fitted with weights"):
            predictor.predict(rows, interval="prediction")
        with pytest.raises(LinregError, match="only set the width of prediction intervals"):
            predictor.predict(rows, interval="confidence", weights=np.ones(len(rows)))
        with pytest.raises(LinregError, match="row 2 of the new data: weight nan"):
            predictor.predict(rows, interval="prediction", weights=[1.0, np.nan, *[1.0] * (len(rows) - 2)])
        with pytest.raises(LinregError, match="one per row"):
            predictor.predict(rows, interval="prediction", weights=[1.0])
        with pytest.raises(LinregError, match="x is an array"):
            predictor.predict(rows, interval="prediction", weights="w")
    # Without an interval or for the mean, no weights are needed.
    np.testing.assert_allclose(model.predict(rows), fit.predict(rows), rtol=1e-12)
    np.testing.assert_allclose(model.predict(rows, "confidence")[1], fit.predict(rows, "confidence")[1], rtol=1e-12)


# --- the SavedModel ------------------------------------------------------------------


@pytest.mark.parametrize("intercept, cov", [(True, "nonrobust"), (False, "nonrobust"), (True, "HC2")])
def test_plain_tensorflow_computes_intervals_from_the_saved_variables(tmp_path, intercept, cov):
    x, y, w = make_data()
    fit = linreg.fit((x, y), intercept=intercept, weights=w, cov_type=cov, progress=False)
    fit.export(tmp_path / "m")
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    assert bool(loaded.use_t.numpy()) == (cov == "nonrobust")
    rows = x[:6] + 0.5
    weights = w[:6]
    inputs = {key: tf.constant(rows[:, j]) for j, key in enumerate(["x1", "x2", "x3"])}
    mean = loaded.signatures["serving_default"](**inputs)["prediction"]
    design = tf.concat([tf.ones([6, 1], tf.float64), tf.constant(rows)], axis=1)
    variance = tf.einsum("ij,jk,ik->i", design, loaded.covariance, design) + loaded.residual_variance / weights
    from scipy import stats

    distribution = stats.t(int(loaded.df_residual.numpy())) if loaded.use_t.numpy() else stats.norm()
    half = distribution.ppf(0.975) * tf.sqrt(variance).numpy()
    expected = linreg.load(tmp_path / "m").predict(rows, interval="prediction", weights=weights)
    np.testing.assert_allclose(mean.numpy(), expected[0], rtol=1e-12)
    np.testing.assert_allclose(mean.numpy() - half, expected[1], rtol=1e-12)
    np.testing.assert_allclose(mean.numpy() + half, expected[2], rtol=1e-12)
    # ... which are statsmodels' WLS intervals.
    frame = reference(x, y, w, intercept, cov).get_prediction(sm.add_constant(rows) if intercept else rows,
                                                              weights=weights).summary_frame()
    np.testing.assert_allclose(mean.numpy() - half, frame["obs_ci_lower"], rtol=1e-10)


def test_the_signatures_take_vectors_of_any_length_and_scalars(tmp_path):
    x, y, _ = make_data()
    fit = linreg.fit((x, y), progress=False)
    fit.export(tmp_path / "m")
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    for name, dtype, rtol in (("serving_default", tf.float64, 1e-12), ("serving_float32", tf.float32, 1e-5)):
        serve = loaded.signatures[name]
        for rows in (x[:0], x[:1], x[:5]):
            answer = serve(**{f"x{j + 1}": tf.constant(rows[:, j], dtype) for j in range(3)})["prediction"]
            assert answer.dtype == dtype and answer.shape == (len(rows),)
            expected = fit.stats.coefficients[0] + rows.astype(dtype.as_numpy_dtype) @ fit.stats.coefficients[1:]
            np.testing.assert_allclose(answer.numpy(), expected, rtol=rtol)
        scalar = serve(**{f"x{j + 1}": tf.constant(x[0, j], dtype) for j in range(3)})["prediction"]
        assert scalar.dtype == dtype and scalar.shape == (1,)
        rows = loaded.predict(tf.constant(x[:4], dtype))  # the loaded object's own, on rows of either dtype
        assert rows.dtype == tf.float64
        np.testing.assert_allclose(rows.numpy(), fit.predict(x[:4].astype(dtype.as_numpy_dtype)), rtol=rtol)


def test_the_export_says_what_each_signature_input_is(tmp_path):
    x, y, _ = make_data()
    frame = pd.DataFrame({"area m2": x[:, 0], "c": x[:, 2], "g": np.array(["x", "y", "z"])[np.arange(len(y)) % 3],
                          "y": y})  # fmt: skip
    linreg.fit(frame, "y", progress=False).export(tmp_path / "categorical")
    found = json.loads((tmp_path / "categorical" / "linreg.json").read_text(encoding="utf-8"))
    assert found["signature_inputs"] == [
        {"input": "area_m2", "feature": "area m2", "is": "the column 'area m2'"},
        {"input": "c", "feature": "c", "is": "the column 'c'"},
        {"input": "g_y_", "feature": "g[y]", "is": "1 where the column 'g' is 'y', else 0"},
        {"input": "g_z_", "feature": "g[z]", "is": "1 where the column 'g' is 'z', else 0"},
    ]
    loaded = tf.saved_model.load(str(tmp_path / "categorical"))
    assert sorted(loaded.signatures["serving_default"].structured_input_signature[1]) == sorted(found["inputs"])
    linreg.fit(frame, formula="y ~ np.log(c) + g", progress=False).export(tmp_path / "formula")
    found = json.loads((tmp_path / "formula" / "linreg.json").read_text(encoding="utf-8"))
    assert [entry["input"] for entry in found["signature_inputs"]] == found["inputs"]
    assert found["signature_inputs"][0] == {
        "input": "np_log_c_", "feature": "np.log(c)",
        "is": "the column 'np.log(c)' that the formula 'y ~ np.log(c) + g' makes of the raw columns"}  # fmt: skip


# --- quiet ---------------------------------------------------------------------------

QUIET = """
import logging, os, sys
logging.basicConfig(level=logging.INFO)  # a user who wants INFO lines: of their own loggers
logging.getLogger("tensorflow").setLevel(logging.INFO)
import numpy as np, linreg
rng = np.random.default_rng(0)
x = rng.normal(size=(50, 2)); y = x @ [1.0, 2.0] + rng.normal(size=50)
fit = linreg.fit((x, y), progress=False)
fit.export(sys.argv[1])
linreg.load(sys.argv[1]).predict(x[:3], interval="prediction")
print(logging.getLogger("tensorflow").level, logging.getLogger("absl").level, os.environ["TF_CPP_MIN_LOG_LEVEL"])
"""


def test_fit_export_and_load_print_nothing_on_stderr(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "1"  # the user's own: kept (it lets TensorFlow's warnings through)
    done = subprocess.run([sys.executable, "-c", QUIET, str(tmp_path / "m")], capture_output=True, text=True,
                          env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.split() == [str(logging.INFO), str(logging.NOTSET), "1"]
