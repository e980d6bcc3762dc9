"""Formulas: fit(formula=...) and linreg fit --formula, against statsmodels' formula API."""
import io
import json
import sys

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import linreg
from linreg.cli import main
from linreg.errors import LinregError

RTOL = 1e-9


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(7)
    n = 120
    data = pd.DataFrame({
        "x1": rng.normal(size=n),
        "x2": rng.uniform(0.5, 4.0, size=n),
        "g": rng.choice(["a", "b", "c"], size=n),
        "w": rng.uniform(0.5, 2.0, size=n),
    })
    data["y"] = (1.0 + 2.0 * data.x1 + 1.5 * np.log(data.x2) + 0.7 * (data.g == "b") - 0.4 * (data.g == "c")
                 + 0.3 * data.x1 * data.x2 + rng.normal(scale=0.5, size=n))  # fmt: skip
    return data


def by_name(series):
    """statsmodels' parameters keyed as linreg names them."""
    return {("intercept" if name == "Intercept" else name): value for name, value in series.items()}


def assert_like_statsmodels(fit, reference):
    expected = by_name(reference.params)
    assert set(fit.coefficients) == set(expected)
    for name, value in expected.items():
        assert fit.coefficients[name] == pytest.approx(value, rel=RTOL, abs=1e-12)
        assert fit.std_errors[name] == pytest.approx(by_name(reference.bse)[name], rel=RTOL)
    assert fit.r_squared == pytest.approx(reference.rsquared, rel=RTOL)


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x1 + x2",
        "y ~ x1 + C(g)",
        "y ~ np.log(x2) + x1",
        "y ~ x1 + x1:x2",
        "y ~ x1 * x2",
        "y ~ x1 + np.log(x2) - 1",
        "y ~ x1 + C(g) + np.log(x2) + x1:x2",
    ],
)
def test_coefficients_errors_and_r_squared_match_statsmodels(frame, formula):
    fit = linreg.fit(frame, formula=formula, progress=False)
    assert_like_statsmodels(fit, smf.ols(formula, frame).fit())
    assert fit.target == "y"


def test_no_intercept_in_the_formula_fits_through_the_origin(frame):
    fit = linreg.fit(frame, formula="y ~ x1 + x2 + 0", progress=False)
    assert "intercept" not in fit.coefficients
    reference = smf.ols("y ~ x1 + x2 - 1", frame).fit()
    assert_like_statsmodels(fit, reference)


def test_weights_match_weighted_least_squares(frame):
    formula = "y ~ x1 + C(g) + np.log(x2)"
    fit = linreg.fit(frame, formula=formula, weights="w", progress=False)
    assert_like_statsmodels(fit, smf.wls(formula, frame, weights=frame.w).fit())


def test_predict_designs_new_raw_rows_as_the_fit_did(frame, tmp_path):
    formula = "y ~ x1 + C(g) + np.log(x2) + x1:x2"
    fit = linreg.fit(frame, formula=formula, progress=False)
    new = pd.DataFrame({"x1": [0.5, -1.0, 2.0], "x2": [1.0, 3.0, 0.7], "g": ["c", "a", "b"]})
    expected = smf.ols(formula, frame).fit().predict(new).to_numpy()
    np.testing.assert_allclose(fit.predict(new), expected, rtol=RTOL)
    path = tmp_path / "new.csv"
    new.to_csv(path, index=False)
    np.testing.assert_allclose(fit.predict(path), expected, rtol=RTOL)

    fit.export(tmp_path / "model")
    model = linreg.load(tmp_path / "model")
    np.testing.assert_allclose(model.predict(new), expected, rtol=RTOL)
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(tmp_path / "model"), str(path), "--out", str(out)]) == 0
    np.testing.assert_allclose(pd.read_csv(out)["prediction"].to_numpy(), expected, rtol=RTOL)


def test_a_stateful_transform_keeps_the_fit_s_state(frame):
    """center() subtracts the fit's mean, not the new rows' own."""
    formula = "y ~ center(x1) + x2"
    fit = linreg.fit(frame, formula=formula, progress=False)
    new = frame.head(3).drop(columns="y")
    np.testing.assert_allclose(fit.predict(new), smf.ols(formula, frame).fit().predict(new).to_numpy(), rtol=RTOL)


def test_an_unseen_level_is_named_with_its_column_and_row(frame, tmp_path):
    fit = linreg.fit(frame, formula="y ~ x1 + C(g)", progress=False)
    new = pd.DataFrame({"x1": [0.0, 1.0], "g": ["a", "z"]})
    with pytest.raises(LinregError, match=r"row 1, column 'g': level 'z' was not seen in the fit"):
        fit.predict(new)
    fit.export(tmp_path / "model")
    path = tmp_path / "new.csv"
    path.write_text("x1,g\n0,a\n1,b\n2,z\n")
    with pytest.raises(LinregError, match=r"new.csv: line 4, column 'g': level 'z' was not seen"):
        linreg.load(tmp_path / "model").predict(path)


@pytest.mark.parametrize(
    "formula, message",
    [
        ("y ~ x1 +", r"the formula 'y ~ x1 \+': Operator `\+` has insuffient arguments"),
        ("y ~ x1 + nope", r"no column 'nope' that the formula reads; its columns are"),
        ("y ~ frobnicate(x1)", r"frobnicate\(x1\).*name 'frobnicate' is not defined"),
        ("x1 + x2", r"has no target: write it as 'y ~ x1 \+ x2'"),
    ],
)
def test_a_bad_formula_is_one_error_that_says_what_is_wrong(frame, tmp_path, capsys, formula, message):
    with pytest.raises(LinregError, match=message):
        linreg.fit(frame, formula=formula, progress=False)
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    assert main(["fit", str(path), "--formula", formula]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert len(list(tmp_path.iterdir())) == 1  # nothing written


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"target": "y"}, "give target"),
        ({"categorical": "g"}, r"give categorical.*C\(name\)"),
        ({"intercept": False}, r"has an intercept: leave it out in the formula itself with '- 1'"),
    ],
)
def test_a_formula_refuses_what_it_decides_itself(frame, arguments, message):
    with pytest.raises(LinregError, match=message):
        linreg.fit(frame, formula="y ~ x1", progress=False, **arguments)


# --- engine moments: the design made batch by batch (data/formula_stream.py) ---


@pytest.fixture(scope="module")
def parquet(frame, tmp_path_factory):
    """The frame in Parquet, with a column h of three values and level "d" of g only after the first 40 rows."""
    data = frame.assign(h=np.arange(len(frame)) % 3.0, g=frame.g.where(frame.index < 40, frame.g.replace("a", "d")))
    path = tmp_path_factory.mktemp("formula") / "data.parquet"
    data.to_parquet(path)
    return data, path


def digits(ours, expected):
    """Correct digits of `ours`, the worst over the coefficients."""
    expected = by_name(expected)
    assert set(ours) == set(expected)
    return min(-np.log10(abs(ours[name] - value) / abs(value)) if ours[name] != value else np.inf
               for name, value in expected.items())  # fmt: skip


@pytest.mark.parametrize("formula", ["y ~ x1 + C(g) + np.log(x2) + x1:x2", "y ~ C(h) * x1 + g - 1",
                                     "np.log(x2) ~ x1 + C(g):x1"])  # fmt: skip
def test_engine_moments_designs_a_formula_batch_by_batch_as_statsmodels(parquet, formula):
    data, path = parquet
    # Batches of 25 rows: the first holds neither level "d" nor, of h, every interaction.
    fit = linreg.fit(path, formula=formula, engine="moments", batch_rows=25, progress=False)
    reference = smf.ols(formula, data).fit()
    assert fit.engine == "moments" and digits(fit.coefficients, reference.params) >= 10
    assert digits(fit.std_errors, reference.bse) >= 10
    # New raw rows are designed as the fit designed its own.
    np.testing.assert_allclose(fit.predict(data.iloc[::7]), reference.predict(data.iloc[::7]), rtol=1e-10)


def test_engine_moments_formula_with_weights_and_a_robust_covariance(parquet):
    data, path = parquet
    formula = "y ~ x1 + C(g) + np.log(x2)"
    fit = linreg.fit(path, formula=formula, engine="moments", weights="w", cov_type="HC3", batch_rows=30,
                     progress=False)
    reference = smf.wls(formula, data, weights=data.w).fit(cov_type="HC3")
    assert digits(fit.coefficients, reference.params) >= 10 and digits(fit.std_errors, reference.bse) >= 10


@pytest.mark.parametrize("formula, engine, suffix, message", [
    ("y ~ x1", "moments", "csv", "engine moments designs a formula from Parquet files"),
    ("y ~ x1", "stream", "parquet", "engine stream designs no formula: use --engine moments"),
    ("y ~ center(x1) + x2", "moments", "parquet", r"center\(x1\) standardizes or expands with numbers of the whole"),
    ("scale(y) ~ x1", "moments", "parquet", r"scale\(y\) standardizes or expands"),
    ("y ~ C(np.round(x2))", "moments", "parquet", r"term 'C\(np.round\(x2\)\)' is categorical of a computed value"),
])  # fmt: skip
def test_what_a_streamed_formula_cannot_do_is_one_line(frame, tmp_path, capsys, formula, engine, suffix, message):
    path = tmp_path / f"data.{suffix}"
    frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path)
    with pytest.raises(LinregError, match=message):
        linreg.fit(path, formula=formula, engine=engine, progress=False)
    assert main(["fit", str(path), "--formula", formula, "--engine", engine]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err


def test_the_command_needs_a_target_or_a_formula(frame, tmp_path, capsys):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    assert main(["fit", str(path)]) == 2
    assert capsys.readouterr().err == (
        "error: name the column to predict with --target COL, or give the model as --formula 'y ~ ...'\n"
    )


def test_a_damaged_formula_in_an_export_is_one_error(frame, tmp_path):
    linreg.fit(frame, formula="y ~ x1 + C(g)", progress=False).export(tmp_path / "model")
    metadata = tmp_path / "model" / "linreg.json"
    document = json.loads(metadata.read_text())
    document["formula"]["model_spec"] = document["formula"]["model_spec"][:40]
    metadata.write_text(json.dumps(document))
    with pytest.raises(LinregError, match="is damaged: its formula cannot be read"):
        linreg.load(tmp_path / "model")


def test_categorical_is_the_shorthand_of_c(frame):
    coded = linreg.fit(frame, "y", features=["x1", "g"], categorical="g", progress=False).coefficients
    formula = linreg.fit(frame, formula="y ~ x1 + C(g)", progress=False).coefficients
    for level in "bc":
        assert formula[f"C(g)[T.{level}]"] == pytest.approx(coded[f"g[{level}]"], rel=RTOL)


def test_a_csv_with_a_text_column(frame, tmp_path):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    formula = "y ~ x1 + g + np.log(x2)"
    fit = linreg.fit(path, formula=formula, progress=False)
    assert_like_statsmodels(fit, smf.ols(formula, pd.read_csv(path)).fit())
    assert "g[T.b]" in fit.coefficients


def test_standard_input(frame, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(frame.to_csv(index=False).encode())))
    formula = "y ~ x1 + C(g)"
    fit = linreg.fit("-", formula=formula, progress=False)
    assert_like_statsmodels(fit, smf.ols(formula, frame).fit())


def test_missing_values_stop_the_fit_or_drop_their_rows(frame, tmp_path):
    data = frame.copy()
    data.loc[5, "x2"] = np.nan
    data.loc[9, "g"] = None
    path = tmp_path / "data.csv"
    data.to_csv(path, index=False)
    formula = "y ~ x1 + C(g) + np.log(x2)"
    with pytest.raises(LinregError, match=r"line 7, column 'x2' is empty"):
        linreg.fit(path, formula=formula, progress=False)
    with pytest.raises(LinregError, match=r"row 5, column 'x2' is missing"):
        linreg.fit(data.assign(g=frame.g), formula=formula, progress=False)
    with pytest.raises(LinregError, match=r"row 9, column 'g' is missing"):
        linreg.fit(data.assign(x2=frame.x2), formula=formula, progress=False)
    for source in (path, data):
        fit = linreg.fit(source, formula=formula, missing="drop", progress=False)
        assert fit.table.dropped == 2
        assert_like_statsmodels(fit, smf.ols(formula, data.dropna()).fit())
