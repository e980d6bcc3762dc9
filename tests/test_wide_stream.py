"""Engine stream past MAX_MOMENTS_FEATURES: means and spreads from one pass,
λ_max by Lanczos over the files, restarted Nesterov, coefficients and the
statistics the loss alone gives.

The threshold is lowered for the tests, so a few columns count as "many";
the code paths are those of 4097 and more. Independent answers: numpy's
least squares and eigenvalues in float64, and the in-memory engine.
"""
import numpy as np
import pytest
import tensorflow as tf

import linreg
from linreg.core import optimizers
from linreg.core.model import LinearModel
from linreg.data.moments import Moments, merge_all
from linreg import plan
from linreg.engine import driver, solve, streamed
from linreg.errors import LinregError
from tests.test_moments import make_data, write_csv, write_parquet


@pytest.fixture
def few_is_many(monkeypatch):
    monkeypatch.setattr(plan, "MAX_MOMENTS_FEATURES", 3)


def values(mapping):
    return np.array(list(mapping.values()))


def correlated(n, d, seed):
    """Columns sharing a common factor, in assorted units and offsets: κ(H) in
    the tens, so descent reaches float64's floor in a few hundred epochs.
    (make_data's κ(H) of 1e6 would leave gradient methods 1e-8 from the
    answer, as docs/accuracy.md explains.)"""
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, d)) + 0.7 * rng.normal(size=(n, 1))) * rng.uniform(0.1, 100, d) + rng.uniform(-50, 50, d)
    y = x @ rng.normal(size=d) + 3.0 + rng.normal(size=n) * 2.0
    return x, y


def test_diagonal_moments_are_the_diagonal_of_the_full_ones():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 4)) * [1.0, 1e-200, 1e200, 3.0] + [5.0, 0.0, 1e201, -2.0]
    y = rng.normal(size=500)
    w = rng.uniform(0.5, 2.0, 500)
    cuts = [(0, 7), (7, 8), (8, 300), (300, 500)]
    for weights in (None, w):
        part = (lambda a, b, diagonal: Moments.of(x[a:b], y[a:b], None if weights is None else weights[a:b], diagonal))
        full = merge_all(part(a, b, False) for a, b in cuts)
        diagonal = merge_all(part(a, b, True) for a, b in cuts)
        assert diagonal.diagonal and diagonal.C.shape == (5,)
        np.testing.assert_array_equal(diagonal.exponents, full.exponents)
        np.testing.assert_allclose(diagonal.mean, full.mean, rtol=1e-14)
        np.testing.assert_allclose(diagonal.C, np.diag(full.C), rtol=1e-13)
        again = Moments.unpack(diagonal.pack(), 5)
        np.testing.assert_array_equal(again.C, diagonal.C)
        np.testing.assert_array_equal(again.mean, diagonal.mean)


@pytest.mark.parametrize("intercept", [True, False])
def test_wide_stream_agrees_with_memory(tmp_path, few_is_many, intercept):
    x, y = correlated(3000, 6, seed=21)
    path = write_csv(tmp_path / "wide.csv", x, y)
    memory = linreg.fit(path, "y", engine="memory", intercept=intercept, progress=False)
    wide = linreg.fit(path, "y", engine="stream", intercept=intercept, batch_rows=700,
                      epochs=20_000, progress=False)
    assert not wide.scaled.cross_products and wide.engine == "stream"
    assert wide.converged and wide.optimizer_name == "auto" and wide.method == "nesterov"
    np.testing.assert_allclose(values(wide.coefficients), values(memory.coefficients), rtol=1e-9)
    assert wide.r_squared == pytest.approx(memory.r_squared, rel=1e-12)
    assert wide.adj_r_squared == pytest.approx(memory.adj_r_squared, rel=1e-12)
    assert wide.residual_sd == pytest.approx(memory.residual_sd, rel=1e-9)
    for name in ("f_statistic", "log_likelihood", "aic", "bic"):
        assert getattr(wide.diagnostics, name) == pytest.approx(getattr(memory.diagnostics, name), rel=1e-9)
    assert np.isnan(wide.diagnostics.condition_number_standardized)


def test_wide_stream_with_weights_matches_weighted_least_squares(tmp_path, few_is_many):
    x, y = correlated(2000, 5, seed=22)
    w = np.random.default_rng(23).uniform(0.2, 5.0, len(y))
    path = write_parquet(tmp_path / "w.parquet", x, y, row_group_size=300, w=w)
    wide = linreg.fit(path, "y", weights="w", engine="stream", optimizer="nesterov", epochs=20_000, progress=False)
    root = np.sqrt(w)
    reference = np.linalg.lstsq(np.column_stack([np.ones(len(y)), x]) * root[:, None], y * root, rcond=None)[0]
    assert wide.converged
    np.testing.assert_allclose(values(wide.coefficients), reference, rtol=1e-9)


def test_largest_curvature_from_the_files_is_the_hessians(tmp_path):
    # λ_max itself, not a lower eigenvalue an iteration settled on (the
    # learning rate is 1/λ_max).
    x, y = correlated(1500, 6, seed=24)
    path = write_parquet(tmp_path / "c.parquet", x, y, row_group_size=400)
    from linreg.data import sources
    from linreg.data.moments import problem
    from linreg.engine.cluster import Single

    source = sources.open_source(path)
    features = [f"x{j}" for j in range(6)]
    moments, _ = streamed.gather_moments(source, "y", features, None, "error", Single(), diagonal=True)
    scaled = problem(moments, features, "y")
    found = streamed.largest_curvature(source, "y", features, None, "error", scaled, Single())
    xs = (x - x.mean(axis=0)) / x.std(axis=0)
    exact = max(np.linalg.eigvalsh(2.0 * xs.T @ xs / len(y))[-1], 2.0)
    assert found == pytest.approx(exact, rel=1e-6)


def test_restarted_nesterov_reaches_least_squares_without_the_smallest_eigenvalue():
    x, y = make_data(800, 8, seed=25)
    from linreg.data.scaling import standardize

    scaled = standardize(x, y)
    H = 2.0 * scaled.x.T @ scaled.x / len(y)
    eigenvalues = np.linalg.eigvalsh(H)
    model = LinearModel(8, dtype=tf.float64)
    rule = solve.make("nesterov", model, max(eigenvalues[-1], 2.0), None)
    assert isinstance(rule, optimizers.RestartedNesterov)
    result = driver.train(model, rule, scaled.x, scaled.y, 20_000, tol=1e-13, compile="none", patience=20_000)
    exact = np.linalg.lstsq(scaled.x, scaled.y, rcond=None)[0]
    assert result.converged
    np.testing.assert_allclose(model.W.numpy(), exact, rtol=1e-9)
    # It needed far fewer epochs than plain descent's κ(H)·ln(1/ε) estimate.
    kappa = eigenvalues[-1] / eigenvalues[0]
    assert result.epochs < kappa * np.log(1e13) / 5


def test_wide_fit_says_what_it_does_not_know(tmp_path, few_is_many):
    x, y = correlated(600, 5, seed=26)
    path = write_csv(tmp_path / "u.csv", x, y)
    wide = linreg.fit(path, "y", engine="stream", epochs=20_000, progress=False)
    for ask in (lambda: wide.std_errors, lambda: wide.p_values, lambda: wide.conf_int(),
                lambda: wide.predict(x[:2], interval="prediction")):
        with pytest.raises(LinregError, match="cross-products of the features"):
            ask()
    text = wide.summary()
    assert "coefficients only" in text and "std err" not in text and "nan" not in text.lower()
    # Without λ_min, nesterov is the restarted rule, and the report names it.
    assert type(wide.optimizer) is optimizers.RestartedNesterov
    assert "  optimizer nesterov with restarts; learning rate" in text
    document = wide.to_dict()
    assert document["rule"] == "nesterov with restarts"
    assert document["std_errors"] is None and document["least_squares"] is None and document["ci_95"] is None
    assert document["estimated_digits"] is None and document["r_squared"] == pytest.approx(wide.r_squared)
    np.testing.assert_allclose(wide.predict(x[:3]), linreg.fit(path, "y", progress=False).predict(x[:3]), rtol=1e-9)
    wide.export(tmp_path / "model")
    np.testing.assert_allclose(linreg.load(tmp_path / "model").predict(x[:3]), wide.predict(x[:3]), rtol=1e-12)
    with pytest.raises(LinregError, match="gd or nesterov"):
        linreg.fit(path, "y", engine="stream", optimizer="momentum", progress=False)


def test_wide_run_continues_from_its_checkpoint_to_the_same_answer(tmp_path, few_is_many):
    x, y = correlated(800, 5, seed=27)
    path = write_parquet(tmp_path / "k.parquet", x, y, row_group_size=200)
    straight = linreg.fit(path, "y", engine="stream", epochs=20_000, progress=False)
    first = linreg.fit(path, "y", engine="stream", epochs=25, checkpoint=tmp_path / "ck", progress=False)
    assert not first.converged
    resumed = linreg.fit(path, "y", engine="stream", epochs=20_000, checkpoint=tmp_path / "ck", progress=False)
    assert resumed.resumed_at == 25 and resumed.converged
    # The restart counter and the velocity were saved with the weights, so the
    # resumed run takes the very steps of the uninterrupted one.
    assert resumed.epochs == straight.epochs
    np.testing.assert_array_equal(values(resumed.coefficients), values(straight.coefficients))


def test_a_float32_wide_fit_stops_near_its_floor_instead_of_running_on(tmp_path, few_is_many):
    x, y = correlated(3000, 6, seed=28)
    path = write_csv(tmp_path / "f.csv", x, y)
    memory = linreg.fit(path, "y", progress=False)
    wide = linreg.fit(path, "y", engine="stream", dtype="float32", epochs=20_000, progress=False)
    assert wide.converged and wide.epochs < 2_000
    np.testing.assert_allclose(values(wide.coefficients), values(memory.coefficients), rtol=1e-3)


def test_a_blown_up_stream_run_gives_the_drivers_advice(tmp_path):
    """The stream engine's epochs are judged by the same rules, and a blow-up
    ends with the same message as in memory: half the rate, at most."""
    x, y = correlated(300, 3, seed=29)
    path = write_csv(tmp_path / "d.csv", x, y)
    with pytest.raises(linreg.DivergenceError) as raised:
        linreg.fit(path, "y", engine="stream", optimizer="gd", learning_rate=40.0, progress=False)
    with pytest.raises(linreg.DivergenceError) as in_memory:
        linreg.fit(path, "y", engine="memory", optimizer="gd", learning_rate=40.0, progress=False)
    bound = 2.0 / np.linalg.eigvalsh(2.0 * np.cov(x.T, bias=True) / np.outer(x.std(0), x.std(0)))[-1]
    for message in (str(raised.value), str(in_memory.value)):
        assert message.startswith("training diverged at epoch ")
        assert message.endswith(f"try --learning-rate {min(bound, 40.0) / 2:.3g}")
