"""`linreg.fit`, `Fit` and `linreg.load` in process: the coefficients against
numpy's least squares, the statistics against statsmodels, predictions,
export, the JSON document against the command's, the report, the history,
and the errors for bad arguments."""
import csv
import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import linreg
from linreg.cli import main

FEATURES = ["area", "rooms", "age"]
TARGET = "price"
# float64 with momentum: quick to converge, and the default tol (1e-15) takes
# the coefficients to the bottom of the bowl.
FAST = dict(dtype="float64", optimizer="momentum", progress=False)


def make_data(n=80, seed=7):
    """Three correlated features of very different scales and offsets, plus noise."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 3)) @ np.array([[1.0, 0.6, 0.2], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    x = z * np.array([120.0, 1.5, 0.02]) + np.array([900.0, 4.0, 0.5])
    y = x @ np.array([0.8, -25.0, 3000.0]) + 150.0 + 40.0 * rng.standard_normal(n)
    return x, y


def write_csv(path, x, y, header=(*FEATURES, TARGET)):
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows([*map(repr, map(float, row)), repr(float(target))] for row, target in zip(x, y))


def lstsq(x, y):
    """numpy's float64 least squares on [1, x]: (intercept, W_1, ..., W_d)."""
    A = np.column_stack([np.ones(len(y)), x])
    return np.linalg.lstsq(A, y, rcond=None)[0]


def values(mapping):
    return np.array(list(mapping.values()), dtype=np.float64)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    x, y = make_data()
    path = tmp_path_factory.mktemp("api") / "houses.csv"
    write_csv(path, x, y)
    frame = pd.DataFrame({**{name: x[:, j] for j, name in enumerate(FEATURES)}, TARGET: y})
    return x, y, frame, path


@pytest.fixture(scope="module")
def fit(data):
    x, y, _, _ = data
    return linreg.fit((x, y), TARGET, features=FEATURES, **FAST)


@pytest.fixture(scope="module")
def ols(data):
    x, y, _, _ = data
    return sm.OLS(y, sm.add_constant(x)).fit()


# --- coefficients ---------------------------------------------------------------


def test_arrays_frame_and_csv_give_the_same_least_squares_coefficients(data, fit):
    x, y, frame, path = data
    from_frame = linreg.fit(frame, TARGET, **FAST)
    from_csv = linreg.fit(path, TARGET, **FAST)
    from_str_path = linreg.fit(str(path), target=TARGET, **FAST)
    expected = lstsq(x, y)
    for result in (fit, from_frame, from_csv, from_str_path):
        assert result.converged
        assert list(result.coefficients) == ["intercept", *FEATURES]
        assert all(isinstance(value, float) for value in result.coefficients.values())
        np.testing.assert_allclose(values(result.coefficients), expected, rtol=1e-9, atol=0)
    # The same float64 numbers, whatever the source: the same fit.
    np.testing.assert_allclose(values(from_frame.coefficients), values(fit.coefficients), rtol=1e-13)
    np.testing.assert_allclose(values(from_csv.coefficients), values(fit.coefficients), rtol=1e-13)


def test_arrays_without_names_and_a_subset_of_frame_columns(data):
    x, y, frame, _ = data
    plain = linreg.fit((x, y), **FAST)
    assert list(plain.coefficients) == ["intercept", "x1", "x2", "x3"]
    np.testing.assert_allclose(values(plain.coefficients), lstsq(x, y), rtol=1e-9)
    # A 1-d x is one feature.
    single = linreg.fit((x[:, 0], y), **FAST)
    assert list(single.coefficients) == ["intercept", "x1"]
    np.testing.assert_allclose(values(single.coefficients), lstsq(x[:, :1], y), rtol=1e-9)
    # features= picks columns, in the order given.
    subset = linreg.fit(frame, TARGET, features=["age", "area"], **FAST)
    assert list(subset.coefficients) == ["intercept", "age", "area"]
    np.testing.assert_allclose(values(subset.coefficients), lstsq(x[:, [2, 0]], y), rtol=1e-9)


# --- statistics -----------------------------------------------------------------


def test_statistics_match_statsmodels(fit, ols):
    names = ["intercept", *FEATURES]
    assert list(fit.std_errors) == names
    assert list(fit.t_values) == names
    assert list(fit.p_values) == names
    np.testing.assert_allclose(values(fit.coefficients), ols.params, rtol=1e-9)
    np.testing.assert_allclose(values(fit.std_errors), ols.bse, rtol=1e-8)
    np.testing.assert_allclose(values(fit.t_values), ols.tvalues, rtol=1e-8)
    np.testing.assert_allclose(values(fit.p_values), ols.pvalues, rtol=1e-8, atol=1e-300)
    assert fit.r_squared == pytest.approx(ols.rsquared, rel=1e-8)
    assert fit.adj_r_squared == pytest.approx(ols.rsquared_adj, rel=1e-8)
    assert fit.residual_sd == pytest.approx(math.sqrt(ols.scale), rel=1e-8)
    assert fit.n == int(ols.nobs)


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_confidence_intervals_match_statsmodels(fit, ols, alpha):
    intervals = fit.conf_int(alpha)
    assert list(intervals) == ["intercept", *FEATURES]
    expected = ols.conf_int(alpha=alpha)
    got = np.array([intervals[name] for name in intervals])
    np.testing.assert_allclose(got, expected, rtol=1e-8)


def test_default_interval_is_95_percent(fit, ols):
    np.testing.assert_allclose(np.array(list(fit.conf_int().values())), ols.conf_int(alpha=0.05), rtol=1e-8)


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5, float("nan")])
def test_conf_int_rejects_alpha_outside_0_1(fit, alpha):
    with pytest.raises(linreg.LinregError, match="alpha"):
        fit.conf_int(alpha)


# --- predictions and export -----------------------------------------------------


def test_predict_arrays_and_frames_against_numpy(data, fit):
    x, y, frame, _ = data
    coefficients = lstsq(x, y)
    rng = np.random.default_rng(1)
    new = x[:10] + rng.standard_normal((10, 3)) * np.array([50.0, 1.0, 0.01])
    expected = new @ coefficients[1:] + coefficients[0]
    np.testing.assert_allclose(fit.predict(new), expected, rtol=1e-9)
    np.testing.assert_allclose(fit.predict(x), x @ coefficients[1:] + coefficients[0], rtol=1e-9)
    # A data frame: columns by name, in any order, extra columns ignored.
    shuffled = pd.DataFrame({"note": ["a"] * 10, "age": new[:, 2], "area": new[:, 0], "rooms": new[:, 1]})
    np.testing.assert_allclose(fit.predict(shuffled), expected, rtol=1e-9)
    np.testing.assert_allclose(fit.predict(frame), fit.predict(x), rtol=1e-15)


def test_export_and_load_predict_the_same(data, fit, tmp_path):
    x, _, frame, _ = data
    folder = tmp_path / "model"
    fit.export(folder)
    loaded = linreg.load(folder)
    assert loaded.features == FEATURES
    assert loaded.target == TARGET
    rng = np.random.default_rng(2)
    new = x[:7] + rng.standard_normal((7, 3)) * np.array([50.0, 1.0, 0.01])
    for points in (x, new):
        np.testing.assert_allclose(loaded.predict(points), fit.predict(points), rtol=1e-10)
    np.testing.assert_allclose(loaded.predict(frame), fit.predict(x), rtol=1e-10)
    # An existing folder is not replaced without force.
    with pytest.raises(linreg.LinregError, match="already exists"):
        fit.export(folder)


# --- the JSON document ------------------------------------------------------------


def test_to_dict_is_json_and_is_what_the_command_writes(data, ols, tmp_path, capsys):
    _, _, _, path = data
    flags = ["--dtype", "float64", "--optimizer", "momentum", "--compile", "none"]
    out = tmp_path / "fit.json"
    code = main(["fit", str(path), "--target", TARGET, "--json", str(out), "--quiet", *flags])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    written = json.loads(out.read_text(encoding="utf-8"))

    result = linreg.fit(path, TARGET, dtype="float64", optimizer="momentum", compile="none", progress=False)
    document = result.to_dict()
    text = json.dumps(document, allow_nan=False)  # strict JSON: no NaN or Infinity either
    mine = json.loads(text)

    assert set(mine) == set(written)
    assert "training_seconds" in mine and list(mine["timings"]) == list(written["timings"])
    for key in mine:
        if key not in ("training_seconds", "timings"):  # seconds differ from run to run
            assert mine[key] == written[key], key
    # And the document says what the Fit says.
    assert mine["coefficients"] == result.coefficients
    assert mine["converged"] is True and mine["epochs"] == result.epochs
    assert mine["n"] == len(data[1])
    names = ["intercept", *FEATURES]
    np.testing.assert_allclose([mine["ci_95"][name] for name in names], ols.conf_int(alpha=0.05), rtol=1e-8)
    np.testing.assert_allclose([mine["std_errors"][name] for name in names], ols.bse, rtol=1e-8)
    np.testing.assert_allclose([mine["least_squares"][name] for name in names], lstsq(data[0], data[1]), rtol=1e-9)


# --- report and history -----------------------------------------------------------


def test_summary_names_every_coefficient_and_says_converged(fit):
    text = fit.summary()
    for name in ["intercept", *FEATURES]:
        assert name in text
    assert f"converged after {fit.epochs} epochs" in text
    assert "NOT converged" not in text
    assert fit.converged is True


def test_too_few_epochs_is_not_converged(data):
    x, y, _, _ = data
    short = linreg.fit((x, y), TARGET, features=FEATURES, epochs=3, **FAST)
    assert short.converged is False
    assert short.epochs == 3
    assert "NOT converged after 3 epochs" in short.summary()
    assert "NOT converged" in repr(short)
    history = short.history
    assert {key: len(value) for key, value in history.items()} == {"loss": 4, "gradient_norm": 4, "coefficients": 4,
                                                                   "round": 4}
    np.testing.assert_array_equal(history["coefficients"][-1], values(short.coefficients))


def test_history(data, fit, ols):
    x, y, _, _ = data
    history = fit.history
    assert set(history) == {"loss", "gradient_norm", "coefficients", "round"}
    rows = fit.epochs + 1
    assert history["loss"].shape == (rows,)
    assert history["gradient_norm"].shape == (rows,)
    assert history["coefficients"].shape == (rows, len(FEATURES) + 1)
    # The end is where training stopped ...
    np.testing.assert_array_equal(history["coefficients"][-1], values(fit.coefficients))
    # ... and the start is W = b = 0 on the standardized data: in original
    # units slopes 0 and the intercept at the target's mean, with the loss of
    # the standardized target (variance 1).
    np.testing.assert_allclose(history["coefficients"][0], [y.mean(), 0.0, 0.0, 0.0], rtol=1e-12, atol=1e-12)
    assert history["loss"][0] == pytest.approx(1.0, rel=1e-12)
    # At the bottom the standardized loss is the unexplained share, 1 - R².
    assert history["loss"][-1] == pytest.approx(1.0 - ols.rsquared, rel=1e-9)
    assert history["gradient_norm"][-1] <= fit.tol * history["gradient_norm"][0]


# --- bad arguments ----------------------------------------------------------------


BAD_SETTINGS = [
    ({"dtype": "float16"}, "dtype"),
    ({"optimizer": "adam"}, "optimizer"),
    ({"learning_rate": -1}, "learning_rate"),
    ({"learning_rate": "fast"}, "learning_rate"),
    ({"epochs": 0}, "epochs"),
    ({"epochs": 2.5}, "epochs"),
    ({"tol": -1}, "tol"),
    ({"compile": "jit"}, "compile"),
    ({"progress": "yes"}, "progress"),
]


@pytest.mark.parametrize("settings, argument", BAD_SETTINGS, ids=[f"{k}={v!r}" for (s, _) in BAD_SETTINGS for k, v in s.items()])
def test_bad_settings_raise_linreg_error_naming_the_argument(data, settings, argument):
    x, y, _, _ = data
    kwargs = {**FAST, **settings}
    with pytest.raises(linreg.LinregError) as raised:
        linreg.fit((x, y), **kwargs)
    assert not isinstance(raised.value, linreg.DivergenceError)
    message = str(raised.value)
    assert argument in message
    assert repr(next(iter(settings.values()))) in message  # and the value given


def test_bad_data_raises_linreg_error(data, tmp_path):
    x, y, frame, _ = data

    def error(*args, **kwargs):
        with pytest.raises(linreg.LinregError) as raised:
            linreg.fit(*args, **{**FAST, **kwargs})
        return str(raised.value)

    # Unsupported type: says what was given and what it accepts.
    message = error([x, y])
    assert "list" in message and "CSV path" in message and "tuple (x, y)" in message
    message = error(x)
    assert "ndarray" in message
    # x and y of different lengths.
    message = error((x, y[:-1]))
    assert "x must be" in message and "y" in message and str(list(x.shape)) in message and "[79]" in message
    # A data frame without the target column.
    message = error(frame.drop(columns=[TARGET]), TARGET)
    assert repr(TARGET) in message and "target" in message
    # A non-numeric column.
    words = frame.assign(rooms=["many"] * len(frame))
    message = error(words, TARGET)
    assert "'rooms'" in message and "not numeric" in message
    # A NaN in the arrays: the row and the column.
    holed = x.copy()
    holed[5, 1] = np.nan
    message = error((holed, y))
    assert "row 5" in message and "'x2'" in message and "missing (NaN)" in message
    holed_y = y.copy()
    holed_y[3] = np.inf
    message = error((x, holed_y))
    assert "row 3" in message and "'y'" in message
    # A CSV path that does not exist.
    missing = tmp_path / "nowhere.csv"
    message = error(missing, TARGET)
    assert str(missing) in message and "no such file" in message
    message = error(str(missing), TARGET)
    assert str(missing) in message


# --- once bugs: non-text column labels, unhashable and boolean settings --------------------


def test_frame_with_integer_column_labels(data):
    x, y, _, _ = data
    frame = pd.DataFrame(np.column_stack([x, y]))  # columns 0, 1, 2, 3
    result = linreg.fit(frame, 3, **FAST)
    np.testing.assert_allclose(values(result.coefficients), lstsq(x, y), rtol=1e-9)


def test_predict_on_a_frame_with_integer_column_labels(data):
    x, y, _, _ = data
    frame = pd.DataFrame({"0": x[:, 0], "1": x[:, 1], "2": x[:, 2], TARGET: y})
    result = linreg.fit(frame, TARGET, epochs=1, **FAST)
    np.testing.assert_allclose(result.predict(pd.DataFrame(x)), result.predict(x), rtol=1e-15)


@pytest.mark.parametrize("settings", [{"dtype": ["float64"]}, {"optimizer": ["momentum"]}])
def test_unhashable_dtype_or_optimizer(data, settings):
    x, y, _, _ = data
    with pytest.raises(linreg.LinregError, match=next(iter(settings))):
        linreg.fit((x, y), **{**FAST, **settings})


@pytest.mark.parametrize("settings", [{"tol": True}, {"learning_rate": True}])
def test_bool_tol_or_learning_rate(data, settings):
    x, y, _, _ = data
    with pytest.raises(linreg.LinregError, match=next(iter(settings))):
        linreg.fit((x, y), **{**FAST, **settings})


def test_conf_int_alpha_must_be_a_number(data):
    x, y, _, _ = data
    with pytest.raises(linreg.LinregError, match="alpha"):
        linreg.fit((x, y), **FAST).conf_int("0.1")


def test_an_unconverged_fit_is_not_exported_and_complex_data_is_refused(data, tmp_path):
    x, y, _, _ = data
    with pytest.raises(linreg.LinregError, match="not converged"):
        linreg.fit((x, y), epochs=1, **{k: v for k, v in FAST.items() if k != "epochs"}).export(tmp_path / "m")
    assert not (tmp_path / "m").exists()
    with pytest.raises(linreg.LinregError, match="real numbers"):
        linreg.fit((x + 1j, y), **FAST)
    fit = linreg.fit((x, y), **FAST)
    with pytest.raises(linreg.LinregError, match="NaN"):
        fit.predict(np.full((1, x.shape[1]), np.nan))


def test_a_stall_far_from_the_minimum_is_not_convergence():
    rng = np.random.default_rng(3)
    x1 = rng.normal(size=200)
    x = np.column_stack([x1, x1 + 1e-9 * rng.normal(size=200)])  # κ(H) about 1e18
    y = x1 + rng.normal(size=200)
    fit = linreg.fit((x, y), optimizer="gd", progress=False)
    assert not fit.converged and fit.result.stalled
    assert "far from the minimum" in fit.summary()


# --- the stages -------------------------------------------------------------------


def test_stage_timings_are_in_order_and_add_up_to_no_more_than_the_call(data):
    import time

    x, y, _, path = data
    started = time.perf_counter()
    fit = linreg.fit(path, TARGET, **FAST)
    elapsed = time.perf_counter() - started
    assert list(fit.timings) == ["plan", "read", "scale", "precondition", "train", "infer"]
    assert all(seconds >= 0 for seconds in fit.timings.values())
    assert sum(fit.timings.values()) <= elapsed
    assert fit.training_seconds == fit.timings["train"]


def test_the_comparison_column_is_the_closed_form_of_numpy(data, fit):
    """The report's closed form comes from the fit's own QR factors; numpy's SVD solver agrees."""
    x, y, _, _ = data
    np.testing.assert_allclose(values(fit.least_squares), lstsq(x, y), rtol=1e-12)


def test_a_refused_combination_is_refused_before_anything_is_read(tmp_path):
    # Had the reader gone past the header, the message would be about the text.
    path = tmp_path / "data.csv"
    path.write_text("y,x\n1,not a number\n")
    with pytest.raises(linreg.LinregError, match="engine stream trains with gd, momentum or nesterov"):
        linreg.fit(path, "y", engine="stream", optimizer="cg")
