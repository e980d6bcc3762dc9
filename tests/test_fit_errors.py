"""Every bad input to `linreg fit`: one `error: …` line naming the file (and
the line and column where they matter), exit code 2, nothing written."""
import os

import pytest

from linreg.cli import main

GOOD = "a,b,y\n1,2,3.5\n2,1,4.0\n3,5,9.5\n4,3,8.0\n5,8,13.5\n"


def run_fit(tmp_path, capsys, text=None, raw=None, extra=(), name="data.csv"):
    """Write the CSV (unless neither text nor raw), run fit with every output
    switched on, and return (exit code, stdout, stderr lines, csv path)."""
    path = tmp_path / name
    if raw is not None:
        path.write_bytes(raw)
    elif text is not None:
        path.write_text(text, encoding="utf-8")
    outputs = tmp_path / "outputs"
    outputs.mkdir(exist_ok=True)  # outputs go into existing folders; nothing is created behind the user's back
    args = [
        "fit", str(path), "--target", "y",
        "--json", str(outputs / "fit.json"),
        "--out", str(outputs / "plots"),
        "--logdir", str(outputs / "logs"),
        "--export", str(outputs / "model"),
        *extra,
    ]  # fmt: skip
    before = sorted(os.listdir(tmp_path))
    code = main(args)
    captured = capsys.readouterr()
    # Nothing written: no outputs folder, no temporary file left behind.
    assert sorted(os.listdir(tmp_path)) == before
    return code, captured.out, captured.err.splitlines(), path


def assert_one_error(code, out, err, *fragments):
    assert code == 2
    assert out == ""
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in err[0], (fragment, err[0])


# (name, csv text, fragments the message must contain besides the file name)
BAD_FILES = [
    ("empty file", "", ["empty"]),
    ("only blank lines", "\n\n  \n", ["empty"]),
    ("header only", "a,b,y\n", ["no data rows"]),
    ("target absent", "a,b,z\n1,2,3\n2,3,4\n3,4,6\n4,4,1\n", ["'y'", "--target"]),
    ("non-numeric cell", GOOD.replace("2,1,4.0", "2,one,4.0"), ["line 3", "column 'b'", "'one'"]),
    ("empty cell", GOOD.replace("3,5,9.5", "3,,9.5"), ["line 4", "column 'b'", "empty"]),
    ("blank cell", GOOD.replace("3,5,9.5", "3, ,9.5"), ["line 4", "column 'b'", "empty"]),
    ("NaN cell", GOOD.replace("4,3,8.0", "4,3,NaN"), ["line 5", "column 'y'", "NaN"]),
    ("inf cell", GOOD.replace("4,3,8.0", "-inf,3,8.0"), ["line 5", "column 'a'", "-inf"]),
    ("ragged row, short", GOOD.replace("2,1,4.0", "2,1"), ["line 3", "2 cells", "3 columns"]),
    ("ragged row, long", GOOD.replace("5,8,13.5", "5,8,13.5,7"), ["line 6", "4 cells"]),
    ("duplicate column names", "a,a,y\n1,2,3\n2,1,4\n3,5,9\n4,3,8\n", ["'a'", "twice"]),
    ("unnamed column", "a,,y\n1,2,3\n2,1,4\n3,5,9\n4,3,8\n", ["column 2", "no name"]),
    ("constant feature", "a,b,y\n1,7,3\n2,7,4\n3,7,9\n4,7,8\n5,7,1\n", ["'b'", "constant"]),
    ("constant target", "a,b,y\n1,2,3\n2,1,3\n3,5,3\n4,3,3\n5,8,3\n", ["'y'", "constant"]),
    ("fewer rows than coefficients", "a,b,y\n1,2,3\n2,1,4\n", ["2 data rows", "3 coefficients"]),
    ("as many rows as coefficients", "a,b,y\n1,2,3\n2,1,4\n3,5,9\n", ["3 data rows", "3 coefficients"]),
    (
        "exact linear combination",
        "a,b,c,y\n1,2,5,3\n2,1,4,4\n3,5,13,9\n4,3,10,8\n5,8,21,13\n6,1,8,2\n",  # c = a + 2·b
        ["'c'", "linear combination", "'a'", "'b'"],
    ),
    (
        "feature equal to another up to scale and shift",
        "a,b,y\n1,12,3\n2,22,4\n3,32,9\n4,42,8\n5,52,13\n",  # b = 10·a + 2
        ["'b'", "linear combination of 'a'"],
    ),
    ("unclosed quote", 'a,b,y\n1,2,3\n"2,1,4\n3,5,9\n4,3,8\n', ["not valid CSV"]),
]


@pytest.mark.parametrize("text, fragments", [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES])
def test_bad_file(tmp_path, capsys, text, fragments):
    code, out, err, path = run_fit(tmp_path, capsys, text)
    assert_one_error(code, out, err, str(path), *fragments)


def test_missing_file(tmp_path, capsys):
    code, out, err, path = run_fit(tmp_path, capsys, name="nowhere.csv")
    assert_one_error(code, out, err, str(path), "no such file")


def test_folder_instead_of_file(tmp_path, capsys):
    (tmp_path / "folder.csv").mkdir()
    code, out, err, path = run_fit(tmp_path, capsys, name="folder.csv")
    assert_one_error(code, out, err, str(path), "folder")


def test_not_utf8(tmp_path, capsys):
    raw = GOOD.replace("3,5,9.5", "3,5,9.5 \xb0C").encode("latin-1")
    code, out, err, path = run_fit(tmp_path, capsys, raw=raw)
    assert_one_error(code, out, err, str(path), "line 4", "UTF-8", "0xb0")


@pytest.mark.parametrize(
    "features, fragments",
    [
        ("a,nope", ["'nope'", "--features"]),
        ("a,y", ["target", "'y'"]),
        ("a,a", ["'a'", "twice"]),
        ("a,,b", ["--features"]),
    ],
)
def test_bad_features(tmp_path, capsys, features, fragments):
    code, out, err, path = run_fit(tmp_path, capsys, GOOD, extra=["--features", features])
    assert_one_error(code, out, err, *fragments)


def test_unused_columns_need_not_be_numeric(tmp_path, capsys):
    """With --features, other columns (names, ids, notes) are ignored."""
    text = "name,a,b,y\n" + "".join(f"row {i},{line}\n" for i, line in enumerate(GOOD.splitlines()[1:]))
    path = tmp_path / "named.csv"
    path.write_text(text, encoding="utf-8")
    assert main(["fit", str(path), "--target", "y", "--features", "a,b", "--dtype", "float64"]) == 0
    assert "error" not in capsys.readouterr().err
    # Without --features the text column would be a categorical feature, but
    # one value per row is an identifier, not a category: refused.
    assert main(["fit", str(path), "--target", "y"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert_one_error(2, "", err, "column 'name'", "'row 0'", "identifier", "--features")


def test_existing_export_folder_is_refused_without_force(tmp_path, capsys):
    data = tmp_path / "data.csv"
    data.write_text(GOOD, encoding="utf-8")
    model = tmp_path / "model"
    model.mkdir()
    (model / "keep.txt").write_text("mine", encoding="utf-8")
    code = main(["fit", str(data), "--target", "y", "--export", str(model), "--json", str(tmp_path / "fit.json")])
    captured = capsys.readouterr()
    assert_one_error(code, captured.out, captured.err.splitlines(), str(model), "--force")
    assert os.listdir(model) == ["keep.txt"]
    assert not (tmp_path / "fit.json").exists()


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--learning-rate", "fast"], "--learning-rate"),
        (["--learning-rate", "-0.1"], "--learning-rate"),
        (["--tol", "-1"], "--tol"),
        (["--epochs", "0"], "--epochs"),
        (["--dtype", "float16"], "--dtype"),
        (["--optimizer", "adam"], "--optimizer"),
        (["--compile", "fast"], "--compile"),
    ],
)
def test_bad_flag(tmp_path, capsys, flags, named):
    code, out, err, _ = run_fit(tmp_path, capsys, GOOD, extra=flags)
    assert_one_error(code, out, err, named)


def test_predict_bad_inputs(tmp_path, capsys):
    data = tmp_path / "data.csv"
    data.write_text(GOOD, encoding="utf-8")
    out = tmp_path / "pred.csv"
    # No such export folder.
    assert main(["predict", str(tmp_path / "none"), str(data), "--out", str(out)]) == 2
    assert_one_error(2, "", capsys.readouterr().err.splitlines(), str(tmp_path / "none"))
    # A folder that is not an export.
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(tmp_path / "empty"), str(data), "--out", str(out)]) == 2
    assert_one_error(2, "", capsys.readouterr().err.splitlines(), "not a linreg export")
    assert not out.exists()


@pytest.mark.parametrize(
    "flag, where",
    [
        ("--json", "data.csv/fit.json"),
        ("--out", "data.csv"),
        ("--checkpoint", "data.csv"),
    ],
)
def test_unwritable_outputs_are_refused_before_training(tmp_path, capsys, flag, where):
    path = tmp_path / "data.csv"
    path.write_text(GOOD, encoding="utf-8")
    before = sorted(os.listdir(tmp_path))
    code = main(["fit", str(path), "--target", "y", flag, str(tmp_path / where)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""  # no report: training never started
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and flag in lines[0]
    assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_json_never_replaces_a_device_or_a_fifo(tmp_path, capsys, kind):
    path = tmp_path / "data.csv"
    path.write_text(GOOD, encoding="utf-8")
    target = tmp_path / "out"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        os.mknod(target, 0o666 | __import__("stat").S_IFCHR, os.makedev(1, 3))  # like /dev/null
    code = main(["fit", str(path), "--target", "y", "--json", str(target)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1 and "not a regular file" in err[0]
    assert not target.is_file()  # still the device or FIFO it was


def test_json_through_a_link_writes_the_file_and_keeps_its_mode(tmp_path, capsys):
    path = tmp_path / "data.csv"
    path.write_text(GOOD, encoding="utf-8")
    real, link = tmp_path / "real.json", tmp_path / "link.json"
    real.write_text("{}", encoding="utf-8")
    real.chmod(0o600)
    link.symlink_to(real)
    assert main(["fit", str(path), "--target", "y", "--json", str(link), "--quiet"]) == 0
    capsys.readouterr()
    assert link.is_symlink() and '"coefficients"' in real.read_text(encoding="utf-8")
    assert real.stat().st_mode & 0o777 == 0o600


def test_epochs_beyond_the_counter_are_refused(tmp_path, capsys):
    path = tmp_path / "data.csv"
    path.write_text(GOOD, encoding="utf-8")
    assert main(["fit", str(path), "--target", "y", "--epochs", "99999999999999999999999"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "--epochs" in err[0]


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("a;b;y\n1;2;3\n2;1;4\n3;5;9\n4;3;8\n", ["separated by semicolons", "commas"]),
        ("a\tb\ty\n1\t2\t3\n2\t1\t4\n3\t5\t9\n4\t3\t8\n", ["separated by tabs"]),
        (",a,y\n0,1,2\n1,2,3\n2,3,5\n3,4,4\n", ["pandas index", "index=False"]),
        ("intercept,b,y\n1,1,2\n2,2,3\n3,1,5\n4,1,4\n", ["'intercept'", "rename"]),
        ("a,b,y\n9007199254740993,1,2\n9007199254740992,2,3\n9007199254740995,3,5\n9007199254740997,1,4\n",
         ["line 2", "2**53"]),
    ],
    ids=["semicolons", "tabs", "pandas index", "intercept name", "beyond 2**53"],
)
def test_files_that_need_a_hint(tmp_path, capsys, text, fragments):
    code, out, err, path = run_fit(tmp_path, capsys, text)
    assert_one_error(code, out, err, *fragments)


def test_a_fifo_is_refused_at_once_instead_of_hanging(tmp_path, capsys):
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)  # no writer: reading it would wait forever
    code = main(["fit", str(fifo), "--target", "y"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1 and "not a regular file" in err[0]


def test_stdin_is_read_with_a_dash(tmp_path, capsys, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(GOOD.encode())))
    assert main(["fit", "-", "--target", "y", "--quiet"]) == 0
    assert "linreg fit: -, target 'y', 2 features, 5 rows" in capsys.readouterr().out


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_tiny_and_huge_values_fit_like_their_rescaled_copy(tmp_path, capsys, scale):
    import json

    import numpy as np

    rng = np.random.default_rng(2)
    a, b = rng.normal(size=40), rng.normal(size=40)
    y = 2 * a - b + rng.normal(size=40)
    outputs = []
    for factor in (1.0, scale):
        path = tmp_path / f"data{factor!r}.csv"
        path.write_text("a,b,y\n" + "".join(f"{float(u * factor)!r},{float(v)!r},{float(w)!r}\n" for u, v, w in zip(a, b, y)))
        out = tmp_path / f"fit{factor!r}.json"
        assert main(["fit", str(path), "--target", "y", "--json", str(out), "--quiet"]) == 0
        outputs.append(json.loads(out.read_text()))
    capsys.readouterr()
    plain, scaled = outputs
    assert scaled["coefficients"]["a"] == pytest.approx(plain["coefficients"]["a"] / scale, rel=1e-10)
    assert scaled["std_errors"]["a"] == pytest.approx(plain["std_errors"]["a"] / scale, rel=1e-10)
    assert scaled["p_values"]["b"] == pytest.approx(plain["p_values"]["b"], rel=1e-8)


def test_a_column_near_another_is_fitted_not_called_exact(tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(5)
    a = rng.normal(size=50)
    b = a + 1e-9 * rng.normal(size=50)
    y = a + rng.normal(size=50)
    path = tmp_path / "near.csv"
    path.write_text("a,b,y\n" + "".join(f"{float(u)!r},{float(v)!r},{float(w)!r}\n" for u, v, w in zip(a, b, y)))
    assert main(["fit", str(path), "--target", "y", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "linear combination" not in out and "condition number of the standardized data" in out
