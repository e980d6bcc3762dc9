"""Robust covariance types in a fit (`cov_type=`, `--cov`) against statsmodels'
`OLS`/`WLS(...).fit(cov_type=..., cov_kwds=...)` on the Grunfeld investment
data it ships: standard errors, z (or t), p-values, intervals, the F (Wald)
test and the confidence intervals of predictions; and the bad inputs. Then
every type on the streamed engines (one more pass over the files after
training) against statsmodels on six of its data sets, in Parquet files."""
import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import linreg
from linreg.cli import main
from linreg.errors import LinregError

RTOL = 1e-8
TYPES = [("nonrobust", None), ("HC0", None), ("HC1", None), ("HC2", None), ("HC3", None),
         ("cluster", {"groups": "firm"}), ("HAC", {"maxlags": 4})]  # fmt: skip
FEATURES = ["value", "capital"]


@pytest.fixture(scope="module")
def grunfeld():
    data = sm.datasets.grunfeld.load_pandas().data
    # Positive weights that vary, for weighted least squares.
    return data.assign(w=1.0 + (data["year"] - 1935.0) / 10.0)


def reference(data, cov_type, cov_kwds, intercept=True, weighted=False):
    """statsmodels' fit of the same model with the same covariance type."""
    x = data[FEATURES]
    x = sm.add_constant(x) if intercept else x
    kwds = {"groups": pd.factorize(data["firm"])[0]} if cov_type == "cluster" else cov_kwds
    model = sm.WLS(data["invest"], x, weights=data["w"]) if weighted else sm.OLS(data["invest"], x)
    return model.fit(cov_type=cov_type, cov_kwds=kwds)


def ours(data, cov_type, cov_kwds, intercept=True, weighted=False):
    return linreg.fit(data, "invest", features=FEATURES, cov_type=cov_type, cov_kwds=cov_kwds, intercept=intercept,
                      weights="w" if weighted else None, progress=False, warn=lambda message: None)


def values(mapping):
    return np.array(list(mapping.values()))


@pytest.mark.parametrize("intercept, weighted", [(True, False), (False, False), (True, True)],
                         ids=["intercept", "through-origin", "weighted"])
@pytest.mark.parametrize("cov_type, cov_kwds", TYPES, ids=[name for name, _ in TYPES])
def test_statistics_follow_the_covariance_type_as_statsmodels(grunfeld, cov_type, cov_kwds, intercept, weighted):
    fit = ours(grunfeld, cov_type, cov_kwds, intercept, weighted)
    expected = reference(grunfeld, cov_type, cov_kwds, intercept, weighted)
    assert fit.converged and fit.cov_type == cov_type
    np.testing.assert_allclose(values(fit.std_errors), expected.bse, rtol=RTOL)
    np.testing.assert_allclose(values(fit.t_values), expected.tvalues, rtol=RTOL)
    np.testing.assert_allclose(values(fit.p_values), expected.pvalues, rtol=RTOL)
    for alpha in (0.05, 0.1):
        np.testing.assert_allclose(np.array(list(fit.conf_int(alpha).values())), expected.conf_int(alpha), rtol=RTOL)
    np.testing.assert_allclose(fit.diagnostics.f_statistic, expected.fvalue, rtol=RTOL)
    np.testing.assert_allclose(fit.diagnostics.f_p_value, expected.f_pvalue, rtol=RTOL)
    # Predictions' confidence intervals, from the same covariance and distribution.
    new = grunfeld[FEATURES].iloc[::37]
    mean, low, high = fit.predict(new.to_numpy(), interval="confidence", alpha=0.1)
    frame = expected.get_prediction(sm.add_constant(new, has_constant="add") if intercept else new).summary_frame(0.1)
    np.testing.assert_allclose(mean, frame["mean"], rtol=RTOL)
    np.testing.assert_allclose(low, frame["mean_ci_lower"], rtol=RTOL)
    np.testing.assert_allclose(high, frame["mean_ci_upper"], rtol=RTOL)


def test_cluster_groups_may_be_labels_and_few_clusters_are_noted(grunfeld):
    notes = []
    labels = grunfeld["firm"].to_numpy()
    fit = linreg.fit(grunfeld, "invest", features=FEATURES, cov_type="cluster", cov_kwds={"groups": labels},
                     progress=False, warn=notes.append)
    expected = reference(grunfeld, "cluster", None)
    np.testing.assert_allclose(values(fit.std_errors), expected.bse, rtol=RTOL)
    assert fit.covariance.clusters == 11 and any("11 clusters" in note for note in notes)
    assert fit.to_dict()["cov_kwds"] == {"groups": None}


def grunfeld_csv(grunfeld, tmp_path):
    path = tmp_path / "grunfeld.csv"
    grunfeld.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("flag, cov_type, cov_kwds, described",
                         [("HC3", "HC3", None, {}), ("cluster:firm", "cluster", {"groups": "firm"}, {"groups": "firm"}),
                          ("hac:4", "HAC", {"maxlags": 4}, {"maxlags": 4})])  # fmt: skip
def test_cli_cov_flag(grunfeld, tmp_path, capsys, flag, cov_type, cov_kwds, described):
    out = tmp_path / "fit.json"
    code = main(["fit", str(grunfeld_csv(grunfeld, tmp_path)), "--target", "invest", "--features", ",".join(FEATURES),
                 "--cov", flag, "--json", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    expected = reference(grunfeld, cov_type, cov_kwds)
    document = json.loads(out.read_text())
    assert (document["cov_type"], document["cov_kwds"], document["statistic"]) == (cov_type, described, "z")
    np.testing.assert_allclose(values(document["std_errors"]), expected.bse, rtol=RTOL)
    np.testing.assert_allclose(values(document["t"]), expected.tvalues, rtol=RTOL)
    np.testing.assert_allclose(document["diagnostics"]["f_statistic"], expected.fvalue, rtol=RTOL)
    # The table says which covariance and names its statistic z.
    assert f"covariance {cov_type}:" in captured.out and "P>|z|" in captured.out and "P>|t|" not in captured.out
    assert ("11 clusters" in captured.err) == (cov_type == "cluster")
    if cov_type == "cluster":
        assert "11 clusters of 'firm'" in captured.out


@pytest.mark.parametrize("cov_type, cov_kwds, message", [
    ("HC4", None, "unknown covariance type 'HC4'"),
    ("cluster", None, "needs cov_kwds groups"),
    ("cluster", {"groups": "plant"}, "no column 'plant' for the cluster groups"),
    ("HAC", None, "needs cov_kwds maxlags"),
    ("HAC", {"maxlags": -1}, "whole number of lags"),
    ("HAC", {"maxlags": 2.5}, "whole number of lags"),
    ("HAC", {"maxlags": True}, "whole number of lags"),
    ("HC1", {"maxlags": 4}, "takes no cov_kwds"),
    ("nonrobust", {"groups": "firm"}, "takes no cov_kwds"),
    ("HC0", [4], "cov_kwds must be a dict"),
])  # fmt: skip
def test_bad_covariance_arguments_are_refused_before_training(grunfeld, cov_type, cov_kwds, message):
    with pytest.raises(LinregError, match=message):
        linreg.fit(grunfeld, "invest", features=FEATURES, cov_type=cov_type, cov_kwds=cov_kwds)


def test_cluster_groups_from_a_parquet_column_of_text(grunfeld, tmp_path):
    path = tmp_path / "grunfeld.parquet"
    grunfeld.to_parquet(path)
    fit = linreg.fit(path, "invest", features=FEATURES, cov_type="cluster", cov_kwds={"groups": "firm"},
                     progress=False, warn=lambda message: None)
    np.testing.assert_allclose(values(fit.std_errors), reference(grunfeld, "cluster", None).bse, rtol=RTOL)


def test_groups_by_name_are_refused_when_rows_were_dropped(grunfeld, tmp_path):
    path = tmp_path / "gaps.csv"
    grunfeld.assign(value=grunfeld["value"].where(grunfeld.index != 5)).to_csv(path, index=False)
    with pytest.raises(LinregError, match=r"need every row, and the rows with missing values \(1\) were left out"):
        linreg.fit(path, "invest", features=FEATURES, missing="drop", cov_type="cluster", cov_kwds={"groups": "firm"},
                   progress=False)


def test_an_exact_fit_has_no_robust_tests():
    x = np.arange(20.0)
    fit = linreg.fit((x[:, None], 2.0 * x + 1.0), cov_type="HC1", progress=False)
    assert fit.exact and np.isnan(values(fit.t_values)).all() and np.isnan(values(fit.p_values)).all()


def test_groups_by_name_need_a_named_column():
    x = np.arange(10.0)
    with pytest.raises(LinregError, match="give the groups as one label per row"):
        linreg.fit((x[:, None], 2 * x + 1), cov_type="cluster", cov_kwds={"groups": "g"})


@pytest.mark.parametrize("flags, message", [
    (["--cov", "HAC:x"], "HAC maxlags must be a whole number of lags, 0 or more, not 'x'"),
    (["--cov", "cluster:plant"], "has no column 'plant' for the cluster groups"),
    (["--cov", "HC3:2"], "--cov HC3 takes no ':2'"),
    (["--cov", "cluster:plant", "--engine", "moments"], "has no column 'plant' for the cluster groups"),
    (["--cov", "HAC:-2", "--engine", "stream"], "whole number of lags"),
])  # fmt: skip
def test_cli_bad_cov_is_one_error_line_and_nothing_written(grunfeld, tmp_path, capsys, flags, message):
    out = tmp_path / "fit.json"
    code = main(["fit", str(grunfeld_csv(grunfeld, tmp_path)), "--target", "invest", "--features", ",".join(FEATURES),
                 "--json", str(out), *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert not out.exists()


def test_an_export_gives_the_intervals_of_its_covariance_type(grunfeld, tmp_path):
    fit = ours(grunfeld, "HC3", None)
    fit.export(tmp_path / "model")
    loaded = linreg.load(tmp_path / "model")
    new = grunfeld[FEATURES].iloc[::37].to_numpy()
    expected = reference(grunfeld, "HC3", None).get_prediction(sm.add_constant(new, has_constant="add"))
    frame = expected.summary_frame(0.1)
    _, low, high = loaded.predict(new, interval="confidence", alpha=0.1)
    np.testing.assert_allclose(low, frame["mean_ci_lower"], rtol=RTOL)
    np.testing.assert_allclose(high, frame["mean_ci_upper"], rtol=RTOL)


# --- the streamed engines: the sandwich's sums from one more pass over the files ---

STREAMED_DIGITS = 10  # correct digits, the worst over the coefficients
# Data sets statsmodels ships: (target, features, the cluster column; None:
# clusters of three neighbouring rows).
DATASETS = {
    "grunfeld": ("invest", ["value", "capital"], "firm"),
    "fair": ("affairs", ["rate_marriage", "age", "yrs_married", "children", "religious", "educ"], None),
    "stackloss": ("STACKLOSS", ["AIRFLOW", "WATERTEMP", "ACIDCONC"], None),
    "ccard": ("AVGEXP", ["AGE", "INCOME", "INCOMESQ", "OWNRENT"], None),
    "statecrime": ("murder", ["poverty", "single", "urban", "hs_grad"], None),
    "star98": ("PERASIAN", ["LOWINC", "PERBLACK", "PERHISP", "PERMINTE", "AVYRSEXP", "AVSALK", "PERSPENK", "PTRATIO",
                            "PCTAF", "PCTCHRT", "PCTYRRND"], None),
}  # fmt: skip


def correct_digits(ours, expected):
    """−log10 of the largest relative error (equal numbers, zeros too, have none)."""
    ours, expected = np.asarray(ours, np.float64), np.asarray(expected, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.max(np.where(ours == expected, 0.0, np.abs(ours - expected) / np.abs(expected)))
    return np.inf if error == 0 else -np.log10(error)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """Each data set's columns in a Parquet file: {name: (frame, path, cluster column)}."""
    folder, found = tmp_path_factory.mktemp("shipped"), {}
    for name, (target, features, groups) in DATASETS.items():
        frame = getattr(sm.datasets, name).load_pandas().data
        frame = frame[[target, *features]].astype(float).assign(g=np.arange(len(frame)) // 3 if groups is None
                                                                 else frame[groups])
        frame.to_parquet(folder / f"{name}.parquet")
        found[name] = frame, folder / f"{name}.parquet"
    return found


@pytest.mark.parametrize("intercept", [True, False], ids=["intercept", "through-origin"])
@pytest.mark.parametrize("name", DATASETS)
def test_every_type_on_engine_moments_agrees_with_statsmodels_and_memory(shipped, name, intercept):
    frame, path = shipped[name]
    target, features, _ = DATASETS[name]
    # Batches of 50 rows: HAC's lags and the clusters cross their boundaries.
    for cov_type, cov_kwds in [*TYPES[:-2], ("cluster", {"groups": "g"}), ("HAC", {"maxlags": 3})]:
        x = sm.add_constant(frame[features]) if intercept else frame[features]
        kwds = {"groups": pd.factorize(frame["g"])[0]} if cov_type == "cluster" else cov_kwds
        expected = sm.OLS(frame[target], x).fit(cov_type=cov_type, cov_kwds=kwds)
        fits = {engine: linreg.fit(path, target, features=features, cov_type=cov_type, cov_kwds=cov_kwds,
                                   intercept=intercept, engine=engine, batch_rows=50, progress=False,
                                   warn=lambda message: None) for engine in ("memory", "moments")}  # fmt: skip
        for engine, fit in fits.items():
            where = f"{cov_type} on {engine}"
            assert fit.cov_type == cov_type and fit.engine == engine, where
            assert correct_digits(values(fit.std_errors), expected.bse) >= STREAMED_DIGITS, where
            assert correct_digits(values(fit.t_values), expected.tvalues) >= STREAMED_DIGITS, where
            assert correct_digits(values(fit.p_values), expected.pvalues) >= STREAMED_DIGITS - 2, where
            assert correct_digits(np.array(list(fit.conf_int(0.05).values())), expected.conf_int(0.05)) \
                >= STREAMED_DIGITS, where
            assert correct_digits(fit.diagnostics.f_statistic, expected.fvalue) >= STREAMED_DIGITS, where
        assert correct_digits(values(fits["moments"].std_errors), values(fits["memory"].std_errors)) \
            >= STREAMED_DIGITS, cov_type


@pytest.mark.parametrize("engine", ["moments", "stream"])
def test_weighted_streamed_fits_agree_with_statsmodels_wls(grunfeld, tmp_path, engine):
    path = tmp_path / "grunfeld.parquet"
    # The firms as a categorical column, whose dictionary also holds a firm no row has.
    firms = pd.Categorical(grunfeld["firm"], categories=[*sorted(grunfeld["firm"].unique()), "Nobody Inc."])
    grunfeld.assign(firm=firms).to_parquet(path)
    for cov_type, cov_kwds in TYPES:
        fit = linreg.fit(path, "invest", features=FEATURES, weights="w", cov_type=cov_type, cov_kwds=cov_kwds,
                         engine=engine, batch_rows=100, progress=False, warn=lambda message: None)
        expected = reference(grunfeld, cov_type, cov_kwds, weighted=True)
        assert correct_digits(values(fit.std_errors), expected.bse) >= STREAMED_DIGITS, cov_type
        assert correct_digits(fit.diagnostics.f_statistic, expected.fvalue) >= STREAMED_DIGITS, cov_type


def test_streamed_cluster_labels_of_a_csv_text_column_and_the_note(grunfeld, tmp_path, capsys):
    out = tmp_path / "fit.json"
    code = main(["fit", str(grunfeld_csv(grunfeld, tmp_path)), "--target", "invest", "--features", ",".join(FEATURES),
                 "--engine", "moments", "--batch-rows", "33", "--cov", "cluster:firm", "--json", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads(out.read_text())
    assert correct_digits(values(document["std_errors"]), reference(grunfeld, "cluster", None).bse) >= STREAMED_DIGITS
    assert "11 clusters" in captured.err and document["cov_kwds"] == {"groups": "firm"}


def test_streamed_cluster_groups_must_be_a_column(grunfeld, tmp_path):
    path = tmp_path / "grunfeld.parquet"
    grunfeld.to_parquet(path)
    with pytest.raises(LinregError, match="give the name of their column"):
        linreg.fit(path, "invest", features=FEATURES, engine="moments", cov_type="cluster",
                   cov_kwds={"groups": grunfeld["firm"].to_numpy()})


def test_more_clusters_than_the_memory_set_aside_are_one_line(grunfeld, tmp_path, monkeypatch, capsys):
    from linreg.analysis import sandwich

    path = tmp_path / "grunfeld.parquet"
    grunfeld.assign(row=np.arange(len(grunfeld))).to_parquet(path)
    # Room for 100 clusters of 3 numbers; the rows are 220 clusters of one.
    monkeypatch.setattr(sandwich, "CLUSTER_BYTES", 100 * (8 * 3 + sandwich.CLUSTER_OVERHEAD))
    code = main(["fit", str(path), "--target", "invest", "--features", ",".join(FEATURES), "--engine", "moments",
                 "--batch-rows", "64", "--cov", "cluster:row", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: the groups have more than 100 distinct clusters") and "--cov HC1" in err, err


def test_robust_types_past_the_cross_products_are_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from linreg.plan import MAX_MOMENTS_FEATURES

    path = tmp_path / "wide.parquet"
    pq.write_table(pa.table({f"x{j}": np.zeros(3) for j in range(MAX_MOMENTS_FEATURES + 2)}), path)
    with pytest.raises(LinregError, match=f"engine stream does not gather past {MAX_MOMENTS_FEATURES} features"):
        linreg.fit(path, "x0", engine="stream", cov_type="HC1")
