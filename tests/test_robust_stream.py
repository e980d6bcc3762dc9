"""Robust covariance types on two workers (`--workers 2`): each worker reads
its share of the files once more after training, and their sums are combined
through the same collective as the statistics. Fresh processes, since the
point is a real cluster of two; the data is statsmodels' Grunfeld set in row
groups of 45 rows, so the shards split a firm (20 rows, a cluster) between
the workers."""
import json
import subprocess

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from test_workers import ENV, linreg_command

FEATURES = ["value", "capital"]
DIGITS = 10  # correct digits of every standard error


@pytest.fixture(scope="module")
def grunfeld():
    return sm.datasets.grunfeld.load_pandas().data


@pytest.mark.parametrize("flag, cov_type, cov_kwds", [("HC1", "HC1", None), ("cluster:firm", "cluster", "firm")])
def test_two_workers_give_statsmodels_robust_standard_errors(grunfeld, tmp_path, flag, cov_type, cov_kwds):
    path = tmp_path / "grunfeld.parquet"
    grunfeld.to_parquet(path, row_group_size=45)
    out = tmp_path / "fit.json"
    run = subprocess.run(linreg_command("fit", path, "--target", "invest", "--features", ",".join(FEATURES),
                                        "--engine", "moments", "--workers", 2, "--cov", flag, "--json", out, "--quiet"),
                         env=ENV, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    # The only line on stderr is cluster's note on few clusters (11 firms).
    assert run.stderr.strip() == ("" if cov_type == "HC1" else
                                  "note: Only 11 clusters: with fewer than about 30, cluster-robust standard errors "
                                  "tend to be too small and their p-values too optimistic."), run.stderr
    document = json.loads(out.read_text())
    kwds = {"groups": pd.factorize(grunfeld[cov_kwds])[0]} if cov_kwds else None
    expected = sm.OLS(grunfeld["invest"], sm.add_constant(grunfeld[FEATURES])).fit(cov_type=cov_type, cov_kwds=kwds)
    ours = np.array(list(document["std_errors"].values()))
    assert np.max(np.abs(ours - expected.bse) / expected.bse) < 10.0**-DIGITS
    assert abs(document["diagnostics"]["f_statistic"] / expected.fvalue - 1) < 10.0**-DIGITS
    assert document["cov_type"] == cov_type and document["statistic"] == "z"
