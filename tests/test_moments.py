"""The streamed engines: sufficient statistics, their pseudo-rows, and fits from files.

Independent answers: statistics recomputed directly in float64 and with exact
fractions, statsmodels' OLS on the same numbers, and the in-memory engine.
"""
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import linreg
from linreg.data.moments import Moments, merge_all, pseudo_rows, standardized
from linreg.errors import LinregError


def make_data(n, d, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * rng.uniform(0.1, 100, d) + rng.uniform(-50, 50, d) + offset
    y = x @ rng.normal(size=d) + 3.0 + rng.normal(size=n) * 2.0
    return x, y


def write_parquet(path, x, y, row_group_size=None, w=None):
    columns = {f"x{j}": x[:, j] for j in range(x.shape[1])}
    columns["y"] = y
    if w is not None:
        columns["w"] = w
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def write_csv(path, x, y):
    header = ",".join([*(f"x{j}" for j in range(x.shape[1])), "y"])
    rows = [",".join(repr(float(v)) for v in row) for row in np.column_stack([x, y])]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


# --- the statistics --------------------------------------------------------------


def test_merged_batches_equal_the_statistics_of_all_rows_exactly_on_integers():
    rng = np.random.default_rng(1)
    z = rng.integers(-1000, 1000, size=(97, 4)).astype(np.float64)
    parts = [Moments.of(z[a:b, :3], z[a:b, 3]) for a, b in ((0, 10), (10, 11), (11, 60), (60, 97))]
    merged = merge_all(parts)
    exact = [[Fraction(int(v)) for v in row] for row in z]
    n = len(exact)
    mean = [sum(row[j] for row in exact) / n for j in range(4)]
    for j in range(4):
        assert merged.mean[j] == pytest.approx(float(mean[j]), rel=1e-15, abs=1e-13)
        for k in range(4):
            c = sum((row[j] - mean[j]) * (row[k] - mean[k]) for row in exact)
            assert merged.C[j, k] == pytest.approx(float(c), rel=1e-13)
    assert merged.rows == 97 and merged.weight == 97.0


def test_centring_keeps_digits_that_plain_sums_lose():
    # Columns of 1e9 + noise: Σx² - n·x̄² would keep about no digits of the spread.
    rng = np.random.default_rng(2)
    x = 1e9 + rng.normal(size=(10_000, 1))
    y = x[:, 0] * 2.0 + rng.normal(size=10_000)
    merged = merge_all(Moments.of(x[k : k + 1000], y[k : k + 1000]) for k in range(0, 10_000, 1000))
    centred = x[:, 0] - x[:, 0].mean()
    assert merged.C[0, 0] == pytest.approx(float(centred @ centred), rel=1e-9)


def test_weighted_statistics_match_numpy():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(50, 2)), rng.normal(size=50)
    w = rng.uniform(0.5, 3.0, 50)
    merged = Moments.of(x[:20], y[:20], w[:20]).merge(Moments.of(x[20:], y[20:], w[20:]))
    z = np.column_stack([x, y])
    mean = w @ z / w.sum()
    assert np.allclose(merged.mean, mean, rtol=1e-14)
    assert np.allclose(merged.C, ((z - mean) * w[:, None]).T @ (z - mean), rtol=1e-12)
    assert merged.log_weights == pytest.approx(np.log(w).sum())


def test_pack_round_trips_bit_for_bit():
    m = Moments.of(*make_data(30, 3)[::1])
    back = Moments.unpack(m.pack(), 4)
    assert back.rows == m.rows and back.weight == m.weight
    assert np.array_equal(back.mean, m.mean) and np.array_equal(back.C, m.C)


def _exact_statistics(z, w):
    """Σw, the weighted means and centred cross-products of the rows z, in rationals."""
    rows = [[Fraction(float(v)) for v in row] for row in z]
    weights = [Fraction(float(v)) for v in w]
    total = sum(weights)
    mean = [sum(a * row[j] for a, row in zip(weights, rows)) / total for j in range(z.shape[1])]
    C = [[sum(a * (row[j] - mean[j]) * (row[k] - mean[k]) for a, row in zip(weights, rows)) for k in range(z.shape[1])]
         for j in range(z.shape[1])]
    return mean, C


def _extended_error(value, exact, size=None):
    """|value − exact| / size (default |exact|) for an extended-precision value, in rationals."""
    high = float(value)
    return float(abs(Fraction(high) + Fraction(float(value - np.longdouble(high))) - exact) / abs(size or exact))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("diagonal", [False, True])
def test_statistics_are_exact_to_extended_precision(weighted, diagonal):
    """Columns of unlike sizes and offsets (1e4 ± 100, ±1e-3) in batches merged
    in order: the means and cross-products agree with rational arithmetic to
    the long double's ε (1.1e-19), where float64 sums keep about 1e-16 --
    what lets the normal equations give QR's digits (docs/engine-line.md).
    Off the diagonal the error is measured against √(C_jj·C_kk)."""
    if np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        pytest.skip("numpy's long double is float64 on this platform")
    rng = np.random.default_rng(21)
    n = 700
    x = rng.normal(size=(n, 3)) * [1.0, 100.0, 1e-3] + [5.0, 1e4, 0.0]
    y = x @ [1.0, 2.0, 3.0] + 1e-3 * rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, n) if weighted else np.ones(n)
    parts = [Moments.of(np.asfortranarray(x[a:b]), y[a:b], w[a:b] if weighted else None, diagonal)
             for a, b in ((0, 250), (250, 251), (251, n))]
    merged = merge_all(parts)
    mean, C = _exact_statistics(np.column_stack([x, y]), w)
    eps = 8 * float(np.finfo(np.longdouble).eps)
    for j in range(4):
        spread = Fraction(float(C[j][j] / sum(Fraction(float(v)) for v in w))) ** 0.5
        # Against its size and the spread: a mean near 0 has no relative error to speak of.
        assert _extended_error(merged.extended_mean[j], mean[j], abs(mean[j]) + Fraction(spread)) < eps
        pairs = [(j, j)] if diagonal else [(j, k) for k in range(4)]
        for a, b in pairs:
            found = merged.extended_C[a] if diagonal else merged.extended_C[a, b]
            # Off the diagonal, against the size the correlation is measured by.
            size = (C[a][a] * C[b][b]) ** 0.5
            assert _extended_error(found, C[a][b], Fraction(size)) < eps, (a, b)
    # The float64 parts are the extended values rounded: what other readers see.
    assert np.array_equal(merged.mean, merged.extended_mean.astype(np.float64))
    back = Moments.unpack(merged.pack(), 4)
    assert np.array_equal(back.extended_C, merged.extended_C) and np.array_equal(back.extended_mean, merged.extended_mean)


def test_moments_engine_gives_qrs_digits_where_the_conditioning_allows(tmp_path):
    """statsmodels' longley (κ 111 standardized): from float64 sums the
    normal equations kept 12.2 digits against QR's 15.6; from the extended
    statistics, with their Cholesky factor and refinement in extended
    precision too, 14.8. And on a well-conditioned design (κ about 1, noise
    100 times the signal, where a rounded centring alone cost a digit) the
    same digits as QR. Both against the exact answer in rationals."""
    if np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        pytest.skip("numpy's long double is float64 on this platform")
    import statsmodels.api as sm

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    import digits_family

    accuracy = digits_family.load_accuracy()
    data = sm.datasets.longley.load_pandas().data
    y, x = data["TOTEMP"].to_numpy(float), data.drop(columns="TOTEMP").to_numpy(float)
    rng = np.random.default_rng(5)
    line = rng.uniform(-9, -3, 60)
    cases = {"longley": (x, y, 14.5), "a line": (line[:, None], 2.0 * line + 100 * rng.normal(size=60), 15.5)}
    for name, (x, y, least) in cases.items():
        path = write_csv(tmp_path / "data.csv", x, y)
        fit = linreg.fit(path, "y", engine="moments", progress=False, compile="none")
        digits = accuracy.correct_digits(fit.stats.coefficients, accuracy.exact_least_squares(x, y))
        assert digits >= least, name
        assert digits >= fit.estimated_digits - 0.5, name  # the promise is kept


def test_pseudo_rows_have_the_loss_of_all_the_data_for_any_weights():
    x, y = make_data(500, 3, seed=4)
    m = Moments.of(x, y)
    mean, scale, S = standardized(m)
    px, py = pseudo_rows(S, m.weight)
    assert len(py) == 2 * 4
    xs, ys = (x - mean[:-1]) / scale[:-1], (y - mean[-1]) / scale[-1]
    rng = np.random.default_rng(5)
    for _ in range(5):
        W, b = rng.normal(size=3), rng.normal()
        data_loss = np.mean((ys - xs @ W - b) ** 2)
        pseudo_loss = np.mean((py - px @ W - b) ** 2)
        assert pseudo_loss == pytest.approx(data_loss, rel=1e-12)


# --- fits from files ---------------------------------------------------------------


@pytest.fixture(scope="module")
def parquet_file(tmp_path_factory):
    x, y = make_data(3000, 4, seed=6)
    return write_parquet(tmp_path_factory.mktemp("data") / "d.parquet", x, y, row_group_size=700), x, y


def test_moments_engine_matches_statsmodels(parquet_file):
    sm = pytest.importorskip("statsmodels.api")
    path, x, y = parquet_file
    fit = linreg.fit(path, "y", engine="moments", progress=False)
    ref = sm.OLS(y, sm.add_constant(x)).fit()
    names = ["intercept", "x0", "x1", "x2", "x3"]
    assert np.allclose([fit.coefficients[k] for k in names], ref.params, rtol=1e-10)
    assert np.allclose([fit.std_errors[k] for k in names], ref.bse, rtol=1e-8)
    assert np.allclose([fit.p_values[k] for k in names], ref.pvalues, rtol=1e-6, atol=1e-300)
    assert fit.stats.r_squared == pytest.approx(ref.rsquared, rel=1e-10)
    assert fit.diagnostics.f_statistic == pytest.approx(ref.fvalue, rel=1e-8)
    assert fit.diagnostics.aic == pytest.approx(ref.aic, rel=1e-10)
    assert fit.diagnostics.log_likelihood == pytest.approx(ref.llf, rel=1e-10)
    assert np.isnan(fit.diagnostics.durbin_watson)  # the residuals were never held
    assert fit.engine == "moments" and fit.stats.n == 3000


def test_weighted_moments_match_wls(tmp_path):
    sm = pytest.importorskip("statsmodels.api")
    x, y = make_data(400, 2, seed=7)
    w = np.random.default_rng(8).uniform(0.2, 5.0, 400)
    path = write_parquet(tmp_path / "w.parquet", x, y, row_group_size=100, w=w)
    fit = linreg.fit(path, "y", weights="w", engine="moments", progress=False)
    ref = sm.WLS(y, sm.add_constant(x), weights=w).fit()
    assert np.allclose(list(fit.coefficients.values()), ref.params, rtol=1e-10)
    assert np.allclose(list(fit.std_errors.values()), ref.bse, rtol=1e-8)
    assert fit.diagnostics.log_likelihood == pytest.approx(ref.llf, rel=1e-10)


def test_no_intercept_moments_match_statsmodels(tmp_path):
    sm = pytest.importorskip("statsmodels.api")
    x, y = make_data(300, 2, seed=9)
    path = write_parquet(tmp_path / "n.parquet", x, y)
    fit = linreg.fit(path, "y", intercept=False, engine="moments", progress=False)
    ref = sm.OLS(y, x).fit()
    assert np.allclose(list(fit.coefficients.values()), ref.params, rtol=1e-9)
    assert np.allclose(list(fit.std_errors.values()), ref.bse, rtol=1e-7)
    assert fit.stats.r_squared == pytest.approx(ref.rsquared, rel=1e-9)


def test_stream_engine_agrees_with_memory(tmp_path):
    x, y = make_data(2000, 3, seed=10)
    path = write_csv(tmp_path / "s.csv", x, y)
    memory = linreg.fit(path, "y", engine="memory", progress=False)
    streamed = linreg.fit(path, "y", engine="stream", progress=False)
    assert streamed.converged and streamed.epochs > 1
    for name, value in memory.coefficients.items():
        assert streamed.coefficients[name] == pytest.approx(value, rel=1e-9)
    for name, value in memory.std_errors.items():
        assert streamed.std_errors[name] == pytest.approx(value, rel=1e-8)


def test_stream_epoch_gradient_is_the_full_batch_gradient(tmp_path):
    # One epoch of gd over batches equals one step on all rows in memory.
    x, y = make_data(1000, 2, seed=11)
    path = write_csv(tmp_path / "g.csv", x, y)
    one = linreg.fit(path, "y", engine="stream", optimizer="gd", epochs=1, progress=False)
    mem = linreg.fit(path, "y", engine="memory", optimizer="gd", epochs=1, progress=False, learning_rate=float(one.optimizer.learning_rate))
    assert one.history["loss"][0] == pytest.approx(mem.history["loss"][0], rel=1e-13)
    assert np.allclose(one.history["coefficients"], mem.history["coefficients"], rtol=1e-11, atol=1e-12)
    assert one.history["gradient_norm"][0] == pytest.approx(mem.history["gradient_norm"][0], rel=1e-12)


def test_streamed_engines_refuse_what_they_cannot_do(tmp_path, parquet_file):
    path = parquet_file[0]
    with pytest.raises(LinregError, match="numeric columns only"):
        linreg.fit(path, "y", engine="moments", categorical=["x0"], progress=False)
    with pytest.raises(LinregError, match="streams files"):
        linreg.fit((np.ones((5, 1)), np.ones(5)), engine="moments", progress=False)
    with pytest.raises(LinregError, match="engine must be one of"):
        linreg.fit(path, "y", engine="spark", progress=False)


def test_moments_checks_give_one_line(tmp_path):
    x, y = make_data(100, 2, seed=12)
    x[:, 1] = 7.25
    with pytest.raises(LinregError, match="'x1' is constant"):
        linreg.fit(write_parquet(tmp_path / "c.parquet", x, y), "y", engine="moments", progress=False)
    x, y = make_data(100, 3, seed=13)
    x[:, 2] = 2 * x[:, 0] - x[:, 1]
    with pytest.raises(LinregError, match="'x2' is an exact linear combination of 'x0', 'x1'"):
        linreg.fit(write_parquet(tmp_path / "l.parquet", x, y), "y", engine="moments", progress=False)
    x, y = make_data(3, 2, seed=14)
    with pytest.raises(LinregError, match="3 data rows"):
        linreg.fit(write_parquet(tmp_path / "f.parquet", x, y), "y", engine="moments", progress=False)


def test_shards_merged_in_order_are_what_several_workers_compute(parquet_file, monkeypatch):
    """A single process standing in for worker 0 of 2 -- the other worker's row
    of the gather made from its shard -- gets the same Moments as merging the
    two shards directly; the cluster test (test_workers.py) checks real workers."""
    from linreg.engine import streamed

    path = parquet_file[0]
    from linreg.data import sources

    source = sources.open_source(path)
    features = ["x0", "x1", "x2", "x3"]
    mine, _ = streamed.shard_moments(source, "y", features, None, "error", 0, 2)
    other, _ = streamed.shard_moments(source, "y", features, None, "error", 1, 2)
    direct = mine.merge(other)

    class Worker0:
        rank, size, is_chief = 0, 2, True

        def lockstep(self, items):
            return items

        def gather(self, vector):
            return np.stack([vector, np.append(other.pack(), 0.0)])

    gathered, _ = streamed.gather_moments(source, "y", features, None, "error", Worker0())
    assert np.array_equal(gathered.pack(), direct.pack())
    whole, _ = streamed.shard_moments(source, "y", features, None, "error", 0, 1)
    assert np.allclose(whole.C, direct.C, rtol=1e-12) and np.allclose(whole.mean, direct.mean, rtol=1e-14)


@pytest.mark.parametrize("factor", [1e-300, 1e-160, 1e200, 1e300])
def test_columns_far_from_one_fit_as_their_rescaled_copies(tmp_path, factor):
    """Squares of 1e-160 underflow and of 1e200 overflow; counted in their own
    powers of two, such columns fit as the rows in memory fit them."""
    x, y = make_data(500, 3, seed=15)
    scaled_x = x.copy()
    scaled_x[:, 1] *= factor
    path = write_parquet(tmp_path / "far.parquet", scaled_x, y)
    far = linreg.fit(path, "y", engine="moments", progress=False)
    memory = linreg.fit(path, "y", engine="memory", progress=False)  # rows in memory: rescaled column by column
    for name in memory.coefficients:
        assert far.coefficients[name] == pytest.approx(memory.coefficients[name], rel=1e-11)
        assert far.std_errors[name] == pytest.approx(memory.std_errors[name], rel=1e-10)
    assert far.estimated_digits > 10
    # and batches of different sizes merge in any units
    merged = merge_all(Moments.of(scaled_x[k : k + 97], y[k : k + 97]) for k in range(0, 500, 97))
    mean, scale, _ = standardized(merged)
    # (numpy's own std of the scaled column under- or overflows: compare with the column at size 1)
    assert scale[1] == pytest.approx(np.std(x[:, 1]) * factor, rel=1e-13)
    assert mean[1] == pytest.approx(np.mean(x[:, 1]) * factor, rel=1e-12)


def test_values_whose_differences_overflow_a_float_still_fit(tmp_path):
    """±1.7e308: their differences overflow float64, in units of 2**1024 they
    do not. Scaling by a power of two is exact, so the same data at size 1
    must give the same fit, scaled back."""
    x, y = make_data(50, 2, seed=16)
    x[:, 0] = np.where(np.arange(50) % 2, 1.7e308, -1.7e308) + np.where(np.arange(50) % 3, 1e306, 0.0)
    small = x.copy()
    small[:, 0] = np.ldexp(x[:, 0], -1000)
    huge = linreg.fit(write_parquet(tmp_path / "huge.parquet", x, y), "y", engine="moments", progress=False)
    plain = linreg.fit(write_parquet(tmp_path / "small.parquet", small, y), "y", engine="moments", progress=False)
    assert np.ldexp(huge.coefficients["x0"], 1000) == pytest.approx(plain.coefficients["x0"], rel=1e-14)
    assert huge.coefficients["x1"] == pytest.approx(plain.coefficients["x1"], rel=1e-14)
