"""`linreg fit` end to end, in process: the coefficients against numpy's
least squares, the JSON, the TensorBoard events, the plots, the warnings."""
import csv
import json
import math

import numpy as np
import pytest
import tensorflow as tf

from linreg.cli import main
from linreg.data.synthetic import correlated

FEATURES = 12


def write_csv(path, x, y):
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([f"x{j + 1}" for j in range(x.shape[1])] + ["y"])
        writer.writerows([*map(repr, map(float, row)), repr(float(target))] for row, target in zip(x, y))


def reference(x, y):
    """numpy's lstsq, on columns scaled to unit length first.

    Scaling columns does not change the solution (it is undone afterwards),
    but an SVD-based solver's accuracy depends on the columns' relative
    sizes: on this data, with scales from 0.1 to 500,000, lstsq on the raw
    columns agrees with itself-after-scaling to only about 8 digits.
    """
    A = np.column_stack([np.ones(len(y)), x])
    lengths = np.linalg.norm(A, axis=0)
    return np.linalg.lstsq(A / lengths, y, rcond=None)[0] / lengths


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    """1000 rows, 12 features pairwise correlated 0.99, scales 0.1 to 500,000."""
    x, y, W, b = correlated(1000, FEATURES, correlation=0.99, seed=11)
    path = tmp_path_factory.mktemp("hard") / "hard.csv"
    write_csv(path, x, y)
    return path, x, y


def fit_json(tmp_path, capsys, path, *flags):
    out = tmp_path / "fit.json"
    code = main(["fit", str(path), "--target", "y", "--json", str(out), *flags])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(out.read_text(encoding="utf-8")), captured


def coefficients(result, key="coefficients"):
    return np.array([result[key]["intercept"]] + [result[key][f"x{j + 1}"] for j in range(FEATURES)])


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov"])
def test_float64_recovers_least_squares_to_1e_8(tmp_path, capsys, hard, optimizer):
    path, x, y = hard
    result, captured = fit_json(tmp_path, capsys, path, "--dtype", "float64", "--optimizer", optimizer)
    expected = reference(x, y)
    assert result["converged"] is True
    assert result["epochs"] < 5000
    assert np.max(np.abs(coefficients(result) - expected) / np.abs(expected)) <= 1e-8
    # The closed form the command prints beside it agrees with numpy too.
    assert np.max(np.abs(coefficients(result, "least_squares") - expected) / np.abs(expected)) <= 1e-11
    assert result["max_relative_difference"] <= 1e-8
    assert "converged after" in captured.out
    assert captured.err == ""


def test_plain_gradient_descent_float64(tmp_path, capsys):
    """Plain gradient descent on milder data (κ in the tens)."""
    x, y, _, _ = correlated(500, 5, correlation=0.8, seed=4)
    path = tmp_path / "mild.csv"
    write_csv(path, x, y)
    result, _ = fit_json(tmp_path, capsys, path, "--optimizer", "gd")
    names = ["intercept"] + [f"x{j}" for j in range(1, 6)]
    expected = np.array([result["least_squares"][name] for name in names])
    found = np.array([result["coefficients"][name] for name in names])
    np.testing.assert_allclose(expected, reference(x, y), rtol=1e-11)
    np.testing.assert_allclose(found, expected, rtol=1e-9)
    assert result["converged"] and result["optimizer"] == "gd"


def test_float32_warns_and_suggests_float64(tmp_path, capsys):
    x, y, _, _ = correlated(1000, FEATURES, correlation=0.999, seed=12)  # κ about 10⁴
    path = tmp_path / "harder.csv"
    write_csv(path, x, y)
    result, captured = fit_json(tmp_path, capsys, path, "--dtype", "float32", "--optimizer", "momentum")
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "--dtype float64" in lines[0]
    promised = int(lines[0].split("about ")[1].split()[0])
    assert promised == 4
    # float32 lands near the answer with about the digits promised, not 8.
    expected = reference(x, y)
    error = np.max(np.abs(coefficients(result) - expected) / np.abs(expected))
    assert 10.0 ** -(promised + 2) < error < 10.0 ** -(promised - 1)


def test_no_float32_warning_on_better_conditioned_data(tmp_path, capsys):
    x, y, _, _ = correlated(300, 3, correlation=0.9, seed=1)
    path = tmp_path / "easy.csv"
    write_csv(path, x, y)
    result, captured = fit_json(tmp_path, capsys, path, "--dtype", "float32", "--optimizer", "gd")
    assert captured.err == ""
    assert result["converged"] and result["dtype"] == "float32"
    assert result["max_relative_difference"] < 1e-3


def test_json_has_every_field_and_statistics_agree_with_statsmodels(tmp_path, capsys):
    import statsmodels.api as sm

    x, y, _, _ = correlated(200, 3, correlation=0.5, noise=5.0, seed=8)
    path = tmp_path / "three.csv"
    write_csv(path, x, y)
    result, captured = fit_json(tmp_path, capsys, path, "--dtype", "float64", "--features", "x3,x1")
    for key in ("target", "features", "coefficients", "std_errors", "r_squared", "residual_sd", "n", "epochs",
                "converged", "least_squares"):  # fmt: skip
        assert key in result
    assert result["target"] == "y" and result["features"] == ["x3", "x1"]
    assert list(result["coefficients"]) == ["intercept", "x3", "x1"]
    ols = sm.OLS(y, sm.add_constant(x[:, [2, 0]])).fit()
    np.testing.assert_allclose(list(result["coefficients"].values()), ols.params, rtol=1e-9)
    np.testing.assert_allclose(list(result["std_errors"].values()), ols.bse, rtol=1e-7)
    np.testing.assert_allclose(list(result["p_values"].values()), ols.pvalues, rtol=1e-5)
    assert result["r_squared"] == pytest.approx(ols.rsquared, rel=1e-9)
    assert result["residual_sd"] == pytest.approx(math.sqrt(ols.scale), rel=1e-7)
    assert result["n"] == 200
    # The printed table carries the same numbers.
    assert f"{ols.params[1]:.7g}" in captured.out
    assert f"R²  {ols.rsquared:.6f}" in captured.out


def test_not_converged_is_reported_and_exits_4_without_statistics(tmp_path, capsys, hard):
    path, _, _ = hard
    out, export = tmp_path / "fit.json", tmp_path / "model"
    flags = ["--optimizer", "gd", "--epochs", "50", "--compile", "none", "--json", str(out), "--export", str(export)]
    code = main(["fit", str(path), "--target", "y", *flags])
    captured = capsys.readouterr()
    assert code == 4
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["converged"] is False and result["epochs"] == 50
    assert result["std_errors"] is None and result["p_values"] is None and result["ci_95"] is None
    assert 0 <= result["estimated_digits"] < 15
    assert "NOT converged after 50 epochs" in captured.out
    assert "NOT CONVERGED" in captured.out and "P>|t|" not in captured.out and "std err" not in captured.out
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the fit has NOT converged") and "--epochs" in lines[0]
    assert not export.exists()


def test_tensorboard_events_hold_the_scalars(tmp_path, capsys):
    x, y, _, _ = correlated(100, 2, correlation=0.5, seed=3)
    path = tmp_path / "two.csv"
    write_csv(path, x, y)
    logdir = tmp_path / "logs"
    result, _ = fit_json(tmp_path, capsys, path, "--logdir", str(logdir), "--optimizer", "gd")
    files = list(logdir.iterdir())
    assert len(files) == 1 and files[0].name.startswith("events.out.tfevents")
    scalars = {}
    for event in tf.compat.v1.train.summary_iterator(str(files[0])):
        for value in event.summary.value:
            assert value.metadata.plugin_data.plugin_name == "scalars"
            scalars.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    tags = {"loss", "gradient_norm", "learning_rate", "coefficient/intercept", "coefficient/x1", "coefficient/x2"}
    assert set(scalars) == tags
    epochs = result["epochs"]
    for tag in tags:
        assert sorted(scalars[tag]) == list(range(epochs + 1))
    assert scalars["learning_rate"][0] == pytest.approx(result["learning_rate"])
    assert scalars["loss"][epochs] < scalars["loss"][0]
    # Training starts from W = 0, b = 0 in the standardized space: in the
    # original units, zero weights and the intercept at the target's mean.
    assert scalars["coefficient/x2"][0] == 0.0
    # TensorBoard stores scalars as float32: seven significant digits.
    assert scalars["coefficient/intercept"][0] == pytest.approx(np.mean(y), rel=1e-7)
    assert scalars["coefficient/x1"][epochs] == pytest.approx(result["coefficients"]["x1"], rel=1e-7)
    assert scalars["coefficient/intercept"][epochs] == pytest.approx(result["coefficients"]["intercept"], rel=1e-7)


def test_plots_are_written(tmp_path, capsys):
    x, y, _, _ = correlated(100, 2, correlation=0.5, seed=3)
    path = tmp_path / "two.csv"
    write_csv(path, x, y)
    out = tmp_path / "plots"
    fit_json(tmp_path, capsys, path, "--out", str(out))
    names = sorted(p.name for p in out.iterdir())
    assert names == ["loss.png", "predicted_vs_actual.png", "residuals_vs_fitted.png"]
    for name in names:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_too_large_learning_rate_diverges_with_exit_code_3_and_writes_nothing(tmp_path, capsys):
    x, y, _, _ = correlated(100, 2, correlation=0.5, seed=3)
    path = tmp_path / "two.csv"
    write_csv(path, x, y)
    out = tmp_path / "fit.json"
    plots = str(tmp_path / "plots")
    code = main(["fit", str(path), "--target", "y", "--learning-rate", "5", "--json", str(out), "--out", plots])
    captured = capsys.readouterr()
    assert code == 3
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: training diverged")
    assert not out.exists() and not (tmp_path / "plots").exists()


def test_float32_warning_never_crashes_on_a_huge_or_infinite_condition_number(tmp_path, capsys):
    from linreg.train import float32_warning

    for method in ("orthogonal", "gd"):
        for kappa in (1e300, math.inf):
            message = float32_warning(method, kappa)
            assert message is None or "about 0 correct digits" in message
    # A degree-10 polynomial design in float32: it warns (or not) in one line, and fits.
    t = np.linspace(-9.0, -3.0, 40)
    x = np.column_stack([t**k for k in range(1, 11)])
    y = x @ np.ones(10) + np.random.default_rng(0).normal(size=40)
    path = tmp_path / "poly.csv"
    write_csv(path, x, y)
    for optimizer in ("auto", "gd"):
        code = main(["fit", str(path), "--target", "y", "--dtype", "float32", "--optimizer", optimizer,
                     "--epochs", "300", "--quiet"])
        captured = capsys.readouterr()
        assert code in (0, 4), captured.err
        assert all(line.startswith(("warning: ", "error: ")) for line in captured.err.splitlines())


def test_missing_values_stop_the_fit_or_their_rows_are_dropped(tmp_path, capsys):
    import statsmodels.api as sm

    x, y, _, _ = correlated(60, 2, correlation=0.5, seed=9)
    path = tmp_path / "holes.csv"
    write_csv(path, x, y)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[0], "", 1)  # an empty cell in row 3
    lines[7] = ",".join(lines[7].split(",")[:-1] + ["NA"])  # NA as the target of row 7
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = main(["fit", str(path), "--target", "y"])
    err = capsys.readouterr().err
    assert code == 2 and "line 4, column 'x1' is empty" in err and "--missing drop" in err
    result, captured = fit_json(tmp_path, capsys, path, "--missing", "drop")
    assert result["rows_dropped"] == 2 and result["n"] == 58 and "(2 with missing values left out)" in captured.out
    keep = np.ones(60, bool)
    keep[[2, 6]] = False
    found = list(result["coefficients"].values())
    np.testing.assert_allclose(found, reference(x[keep], y[keep]), rtol=1e-9)
    ols = sm.OLS(y[keep], sm.add_constant(x[keep])).fit()  # on raw columns of scales 0.1 and 5e5: 8 digits
    np.testing.assert_allclose(found, ols.params, rtol=1e-7)


def test_categorical_columns_are_one_hot_coded_as_statsmodels_does(tmp_path, capsys):
    import pandas as pd
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(4)
    city = rng.choice(["Oslo", "Bergen", "Tromsø"], 90)
    rooms = rng.integers(1, 4, 90)  # numbers, but named as categorical below
    area = rng.uniform(30, 150, 90)
    effect = {"Bergen": 0.0, "Oslo": 40.0, "Tromsø": -15.0}
    price = 10 + 2.5 * area + np.array([effect[c] for c in city]) + 7 * rooms**2 + rng.normal(0, 5, 90)
    frame = pd.DataFrame({"city": city, "rooms": rooms, "area": area, "price": price})
    path = tmp_path / "flats.csv"
    frame.to_csv(path, index=False)
    model, out = tmp_path / "model", tmp_path / "fit.json"
    code = main(["fit", str(path), "--target", "price", "--categorical", "rooms", "--json", str(out),
                 "--export", str(model), "--quiet"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err.startswith("note: column 'city' is not numeric") and len(captured.err.splitlines()) == 1
    result = json.loads(out.read_text(encoding="utf-8"))
    ols = smf.ols("price ~ C(city) + C(rooms) + area", frame).fit()
    expected = {"intercept": ols.params["Intercept"], "city[Oslo]": ols.params["C(city)[T.Oslo]"],
                "city[Tromsø]": ols.params["C(city)[T.Tromsø]"], "rooms[2]": ols.params["C(rooms)[T.2]"],
                "rooms[3]": ols.params["C(rooms)[T.3]"], "area": ols.params["area"]}  # fmt: skip
    assert list(result["coefficients"]) == ["intercept", "city[Oslo]", "city[Tromsø]", "rooms[2]", "rooms[3]", "area"]
    for name, value in expected.items():
        assert result["coefficients"][name] == pytest.approx(value, rel=1e-9), name
    # predict codes new rows with the fit's levels; an unseen level is one error line
    new = tmp_path / "new.csv"
    frame.head(5).drop(columns="price").to_csv(new, index=False)
    assert main(["predict", str(model), str(new)]) == 0
    predicted = np.array(capsys.readouterr().out.split()[1:], float)
    np.testing.assert_allclose(predicted, ols.predict(frame.head(5)), rtol=1e-9)
    frame.loc[2, "city"] = "Bodø"
    frame.head(5).drop(columns="price").to_csv(new, index=False)
    assert main(["predict", str(model), str(new)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "line 4, column 'city': level 'Bodø' was not seen in the fit" in err[0]


@pytest.mark.parametrize("intercept", [True, False])
def test_weights_and_no_intercept_match_statsmodels(tmp_path, capsys, intercept):
    import statsmodels.api as sm

    rng = np.random.default_rng(8)
    x = rng.normal(size=(120, 2)) + 3.0
    w = rng.uniform(0.2, 4.0, 120)
    y = x @ [1.5, -2.0] + (4.0 if intercept else 0.0) + rng.normal(size=120) / np.sqrt(w)
    path = tmp_path / "weighted.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["x1", "x2", "w", "y"])
        writer.writerows([repr(float(a)), repr(float(b)), repr(float(c)), repr(float(d))] for (a, b), c, d in zip(x, w, y))
    flags = ["--weights", "w"] + ([] if intercept else ["--no-intercept"])
    model = tmp_path / "model"
    result, captured = fit_json(tmp_path, capsys, path, *flags, "--export", str(model), "--quiet")
    design = sm.add_constant(x) if intercept else x
    ols = sm.WLS(y, design, weights=w).fit()
    names = (["intercept"] if intercept else []) + ["x1", "x2"]
    assert list(result["coefficients"]) == names and result["intercept"] is intercept and result["weights"] == "w"
    np.testing.assert_allclose([result["coefficients"][n] for n in names], ols.params, rtol=1e-10)
    np.testing.assert_allclose([result["std_errors"][n] for n in names], ols.bse, rtol=1e-9)
    np.testing.assert_allclose([result["p_values"][n] for n in names], ols.pvalues, rtol=1e-6)
    assert result["r_squared"] == pytest.approx(ols.rsquared, rel=1e-10)
    assert result["adj_r_squared"] == pytest.approx(ols.rsquared_adj, rel=1e-10)
    assert result["residual_sd"] == pytest.approx(math.sqrt(ols.scale), rel=1e-10)
    assert result["diagnostics"]["f_statistic"] == pytest.approx(ols.fvalue, rel=1e-9)
    assert result["diagnostics"]["log_likelihood"] == pytest.approx(ols.llf, rel=1e-10)
    assert result["diagnostics"]["aic"] == pytest.approx(ols.aic, rel=1e-10)
    # The export predicts with the same line (weights only shape the fit).
    assert main(["predict", str(model), str(path)]) == 0
    predicted = np.array(capsys.readouterr().out.split()[1:], float)
    np.testing.assert_allclose(predicted, ols.predict(design), rtol=1e-9)


@pytest.mark.parametrize("categories", [False, True], ids=["strings", "dictionary"])
def test_a_parquet_column_of_text_is_categorical_as_a_csvs_is(tmp_path, categories):
    """Grunfeld's firm names, as Parquet strings or Parquet categories: the
    memory engine codes them as statsmodels' C(firm) does, with and without a
    formula, predicts on the same file, and a null firm is a missing value."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    import linreg

    frame = sm.datasets.grunfeld.load_pandas().data
    frame["firm"] = frame["firm"].astype("category" if categories else str)
    path = tmp_path / "grunfeld.parquet"
    frame.to_parquet(path)
    assert pa.types.is_dictionary(pq.read_schema(path).field("firm").type) == categories
    reference = smf.ols("invest ~ value + capital + C(firm)", frame).fit()
    expected = np.concatenate([reference.params.iloc[:1], reference.params.iloc[-2:], reference.params.iloc[1:-2]])
    fit = linreg.fit(path, target="invest", features=["value", "capital", "firm"], warn=lambda _: None)
    np.testing.assert_allclose(list(fit.coefficients.values()), expected, rtol=1e-10)
    np.testing.assert_allclose(list(fit.std_errors.values()),
                               np.concatenate([reference.bse.iloc[:1], reference.bse.iloc[-2:], reference.bse.iloc[1:-2]]),
                               rtol=1e-9)  # fmt: skip
    formula = linreg.fit(path, formula="invest ~ value + capital + C(firm)")
    np.testing.assert_allclose(list(formula.coefficients.values()), expected, rtol=1e-10)  # formulaic's term order
    fit.export(tmp_path / "model")
    np.testing.assert_allclose(linreg.load(tmp_path / "model").predict(path), reference.fittedvalues, rtol=1e-10)
    holed = pa.Table.from_pandas(frame).to_pandas()
    holed["firm"] = holed["firm"].astype(object)
    holed.loc[7, "firm"] = None
    holed.to_parquet(tmp_path / "holed.parquet")
    with pytest.raises(linreg.LinregError, match=r"row 7, column 'firm' is missing \('null'\); fill it in or remove the row"):
        linreg.fit(tmp_path / "holed.parquet", target="invest", warn=lambda _: None)
    dropped = linreg.fit(tmp_path / "holed.parquet", target="invest", missing="drop", warn=lambda _: None)
    assert dropped.n == len(frame) - 1
