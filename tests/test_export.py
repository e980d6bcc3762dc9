"""Export -> predict: the SavedModel gives the fit's predictions, in this
process through `linreg predict` and in a fresh one through plain
tf.saved_model.load."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from linreg.cli import main
from linreg.data.synthetic import correlated

NAMES = ["floor area", "rooms", "2nd.feature"]  # not valid TensorFlow names as they stand


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    x, y, _, _ = correlated(300, 3, correlation=0.7, seed=6)
    data = folder / "data.csv"
    with open(data, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([*NAMES, "price"])
        writer.writerows([*map(repr, map(float, row)), repr(float(target))] for row, target in zip(x, y))
    model = folder / "model"
    code = main(["fit", str(data), "--target", "price", "--dtype", "float64", "--export", str(model),
                 "--json", str(folder / "fit.json")])  # fmt: skip
    assert code == 0
    result = json.loads((folder / "fit.json").read_text(encoding="utf-8"))
    W = np.array([result["coefficients"][name] for name in NAMES])
    return folder, model, data, x, x @ W + result["coefficients"]["intercept"]


def test_predict_round_trip(exported, capsys):
    folder, model, data, x, expected = exported
    capsys.readouterr()
    out = folder / "predictions.csv"
    assert main(["predict", str(model), str(data), "--out", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "prediction"
    np.testing.assert_allclose(np.array(lines[1:], dtype=np.float64), expected, rtol=1e-12)
    # Without --out, the same text goes to stdout.
    assert main(["predict", str(model), str(data)]) == 0
    assert capsys.readouterr().out.splitlines() == lines


def test_predict_needs_only_the_feature_columns(exported, capsys):
    folder, model, _, x, expected = exported
    shuffled = folder / "features_only.csv"
    with open(shuffled, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["id", NAMES[2], NAMES[0], NAMES[1]])
        writer.writerows([f"row{i}", *(repr(float(row[j])) for j in (2, 0, 1))] for i, row in enumerate(x[:5]))
    out = folder / "five.csv"
    assert main(["predict", str(model), str(shuffled), "--out", str(out)]) == 0
    values = np.array(out.read_text(encoding="utf-8").splitlines()[1:], dtype=np.float64)
    np.testing.assert_allclose(values, expected[:5], rtol=1e-12)


def test_fresh_process_loads_with_plain_tensorflow(exported):
    folder, model, _, x, expected = exported
    metadata = json.loads((model / "linreg.json").read_text(encoding="utf-8"))
    assert metadata["features"] == NAMES
    script = (
        "import json, sys\n"
        "import numpy as np, tensorflow as tf\n"
        "serve = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "columns = json.loads(sys.stdin.read())\n"
        "inputs = {key: tf.constant(value, tf.float64) for key, value in columns.items()}\n"
        "print(json.dumps(serve(**inputs)['prediction'].numpy().tolist()))\n"
    )
    columns = {key: x[:, j].tolist() for j, key in enumerate(metadata["inputs"])}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", script, str(model)],
        input=json.dumps(columns), capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(json.loads(done.stdout), expected, rtol=1e-12)


def test_force_replaces_an_export(exported, capsys, tmp_path):
    import shutil

    folder, model, data, _, _ = exported
    target = tmp_path / "model"
    shutil.copytree(model, target)  # an earlier export, all of it as TensorFlow and linreg wrote it
    assert main(["fit", str(data), "--target", "price", "--features", "rooms", "--export", str(target), "--force"]) == 0
    assert json.loads((target / "linreg.json").read_text(encoding="utf-8"))["features"] == ["rooms"]
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no temporary folders left behind
    # The export is an ordinary folder, with the mode os.mkdir gives under this umask (mkdtemp's is 0700).
    (tmp_path / "plain").mkdir()
    assert target.stat().st_mode == (tmp_path / "plain").stat().st_mode


@pytest.mark.parametrize("extra", ["old.txt", "notes/", "variables/copy.index", "assets/readme.md"])
def test_force_never_replaces_an_export_with_something_else_in_it(exported, capsys, tmp_path, extra):
    import shutil

    folder, model, data, _, _ = exported
    target = tmp_path / "model"
    shutil.copytree(model, target)
    if extra.endswith("/"):
        (target / extra).mkdir()
    else:
        (target / extra).write_text("mine", encoding="utf-8")
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    code = main(["fit", str(data), "--target", "price", "--export", str(target), "--force"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {target} is not a linreg export")
    assert f"holding {extra}" in lines[0] and "untouched" in lines[0]
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
    assert sorted(os.listdir(tmp_path)) == ["model"]


@pytest.mark.parametrize("kind", ["folder of data", "file"])
def test_force_never_replaces_what_is_not_an_export(exported, capsys, tmp_path, kind):
    folder, model, data, _, _ = exported
    target = tmp_path / "mine"
    if kind == "file":
        target.write_text("precious", encoding="utf-8")
    else:
        target.mkdir()
        (target / "good.csv").write_text("precious", encoding="utf-8")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code = main(["fit", str(data), "--target", "price", "--export", str(target), "--force"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith("error: ") and len(captured.err.splitlines()) == 1
    assert ("not a linreg export" in captured.err and "untouched" in captured.err) or "not a folder" in captured.err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("damage", ["no variables", "truncated variables", "empty metadata", "list metadata"])
def test_a_damaged_export_is_one_error_line(exported, capsys, tmp_path, damage):
    import shutil

    folder, model, data, _, _ = exported
    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    variables = next((broken / "variables").glob("variables.data-*"))
    if damage == "no variables":
        variables.unlink()
    elif damage == "truncated variables":
        variables.write_bytes(variables.read_bytes()[:10])
    else:
        (broken / "linreg.json").write_text("{}" if damage == "empty metadata" else "[1, 2]", encoding="utf-8")
    code = main(["predict", str(broken), str(data)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: the export {broken} is damaged")


# What intervals and new rows are read by, damaged by hand in linreg.json.
DAMAGED_KEYS = {
    "covariance of another size": {"covariance": [[1.0, 0.0], [0.0, 1.0]]},
    "covariance of text": {"covariance": "oops"},
    "covariance with NaN": {"covariance": [[float("nan")] * 4] * 4},
    "residual_sd text": {"residual_sd": "oops"},
    "residual_sd negative": {"residual_sd": -1.0},
    "df_residual missing": {"df_residual": None},
    "weighted text": {"weighted": "yes"},
    "categories not lists": {"columns": NAMES, "categories": {NAMES[0]: 5}},
}


@pytest.mark.parametrize("damage", DAMAGED_KEYS)
def test_damaged_interval_metadata_is_one_error_line(exported, capsys, tmp_path, damage):
    import shutil

    folder, model, data, _, _ = exported
    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    metadata = json.loads((broken / "linreg.json").read_text(encoding="utf-8"))
    for key, value in DAMAGED_KEYS[damage].items():
        metadata.pop(key) if value is None else metadata.__setitem__(key, value)
    (broken / "linreg.json").write_text(json.dumps(metadata), encoding="utf-8")
    out = tmp_path / "pred.csv"
    code = main(["predict", str(broken), str(data), "--interval", "prediction", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and not out.exists()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: the export {broken} is damaged"), lines


def test_float32_inputs_are_served_too(exported):
    import tensorflow as tf

    folder, model, data, x, expected = exported
    loaded = tf.saved_model.load(str(model))
    meta = json.loads((model / "linreg.json").read_text(encoding="utf-8"))
    x32 = x.astype(np.float32)
    # What float32 inputs can say: the same prediction as float64 inputs rounded to float32.
    reference = loaded.signatures["serving_default"](
        **{key: tf.constant(x32[:, j].astype(np.float64)) for j, key in enumerate(meta["inputs"])}
    )["prediction"].numpy()
    served = loaded.signatures["serving_float32"](
        **{key: tf.constant(x32[:, j]) for j, key in enumerate(meta["inputs"])}
    )["prediction"].numpy()
    assert served.dtype == np.float32  # answered in the dtype it was asked in
    np.testing.assert_allclose(served, reference.astype(np.float32), rtol=0)
    # One row given as a scalar per feature is served as that row.
    one = loaded.signatures["serving_default"](
        **{key: tf.constant(x[0, j], tf.float64) for j, key in enumerate(meta["inputs"])}
    )["prediction"].numpy()
    np.testing.assert_allclose(one, expected[:1], rtol=1e-12)
    np.testing.assert_allclose(loaded.predict(tf.constant(x32)).numpy(), reference, rtol=1e-12)
    np.testing.assert_allclose(loaded.predict(tf.constant(x)).numpy(), expected, rtol=1e-9)


@pytest.mark.parametrize("interval, prefix", [("confidence", "mean_ci"), ("prediction", "obs_ci")])
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_intervals_match_statsmodels_get_prediction(exported, tmp_path, capsys, interval, prefix, alpha):
    import statsmodels.api as sm

    import linreg

    folder, model, data, x, _ = exported
    rows = np.genfromtxt(data, delimiter=",", skip_header=1)
    ols = sm.OLS(rows[:, -1], sm.add_constant(rows[:, :-1])).fit()
    frame = ols.get_prediction(sm.add_constant(x)).summary_frame(alpha=alpha)
    mean, low, high = linreg.load(model).predict(x, interval=interval, alpha=alpha)
    # statsmodels solves on the raw columns (scales 0.1 to 5e5): about 8 digits of the target's size.
    close = dict(rtol=1e-7, atol=1e-8 * np.max(np.abs(rows[:, -1])))
    np.testing.assert_allclose(mean, frame["mean"], **close)
    np.testing.assert_allclose(low, frame[f"{prefix}_lower"], **close)
    np.testing.assert_allclose(high, frame[f"{prefix}_upper"], **close)
    np.testing.assert_array_less(low, high)
    out = tmp_path / "pred.csv"
    code = main(["predict", str(model), str(data), "--interval", interval, "--alpha", str(alpha), "--out", str(out)])
    assert code == 0
    written = np.genfromtxt(out, delimiter=",", names=True)
    assert written.dtype.names == ("prediction", "lower", "upper")
    np.testing.assert_allclose(written["lower"], frame[f"{prefix}_lower"], **close)


def test_a_concurrent_export_to_the_same_folder_is_an_error_not_a_silent_loss(exported, tmp_path, monkeypatch):
    import shutil

    import tensorflow as tf

    from linreg.io import export as export_module

    folder, model, data, _, _ = exported
    target = tmp_path / "shared"
    real_save = tf.saved_model.save

    def save_while_another_run_finishes(*args, **kwargs):
        real_save(*args, **kwargs)
        shutil.copytree(model, target)  # the other run's export lands first

    import linreg

    fit = linreg.fit(str(data), "price", progress=False)
    monkeypatch.setattr(export_module.tf.saved_model, "save", save_while_another_run_finishes)
    with pytest.raises(linreg.LinregError, match="another run wrote"):
        fit.export(target)
    assert json.loads((target / "linreg.json").read_text(encoding="utf-8"))["features"] == NAMES  # theirs, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared"]  # nothing of ours left behind


def test_a_file_given_as_the_export_is_named_a_file(tmp_path, capsys):
    data = tmp_path / "houses.csv"
    data.write_text("area,price\n1,2\n2,4\n3,7\n")
    assert main(["predict", str(data), str(data)]) == 2
    assert capsys.readouterr().err == f"error: {data} is a file, not an export folder; give the folder linreg fit --export made\n"
