"""Bad data is refused, never fitted: damaged Parquet pages, missing values in
categorical columns, columns of dates or other things that are not numbers,
categorical columns with too many levels, arguments of the wrong kind. Each is
one LinregError (one `error:` line from the command); the good paths beside
them are checked against numpy's least squares and statsmodels."""
import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
import tensorflow as tf

import linreg
from linreg.cli import build_parser, main
from linreg.data import design, read, sources

QUIET = dict(progress=False)


def lstsq(x, y, intercept=True):
    """numpy's float64 least squares: (intercept, W_1, ..., W_d), or W without an intercept."""
    design = np.column_stack([np.ones(len(y)), x]) if intercept else x
    return np.linalg.lstsq(design, y, rcond=None)[0]


def values(mapping):
    return np.array(list(mapping.values()), dtype=np.float64)


def raised(call):
    """The message of the LinregError that `call` raises: one line."""
    with pytest.raises(linreg.LinregError) as caught:
        call()
    text = str(caught.value)
    assert text and "\n" not in text
    return text


def run(capsys, *args):
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


def one_error(result, *fragments):
    code, out, err = result
    assert code == 2 and out == "" and len(err) == 1 and err[0].startswith("error: "), (code, out, err)
    for fragment in fragments:
        assert fragment in err[0], (fragment, err[0])


def numbers(n, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.uniform(1, 5, n)
    return a, b, 1.5 * a - 0.7 * b + 2.0 + 0.1 * rng.normal(size=n)


def cities(n=90, seed=3):
    """A categorical column, a number and a target with an effect per city."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["Bergen", "Oslo", "Tromsø"], n).astype(object)
    area = rng.uniform(30, 150, n)
    price = 10 + 2.5 * area + np.select([city == "Oslo", city == "Tromsø"], [40.0, -15.0], 0.0) + rng.normal(0, 5, n)
    return city, area, price


def city_reference(city, area, price):
    """Least squares on the one-hot columns built by hand, Bergen the baseline."""
    return lstsq(np.column_stack([city == "Oslo", city == "Tromsø", area]).astype(float), price)


def write_csv(path, columns):
    names = list(columns)
    rows = zip(*(columns[name] for name in names))
    path.write_text(",".join(names) + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows), encoding="utf-8")
    return path


# --- Parquet page checksums ---------------------------------------------------


def test_a_damaged_parquet_page_is_one_error_not_a_fit(tmp_path, capsys):
    a, b, y = numbers(2000)
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"a": a, "b": b, "y": y}), path, write_page_checksum=True, compression="none",
                   use_dictionary=False)  # fmt: skip
    # Change eight bytes in the middle of the first column's values (not a page
    # header). Bytes of 0x3f cannot make a NaN or inf out of numbers near 1.
    chunk = pq.read_metadata(path).row_group(0).column(0)
    middle = chunk.data_page_offset + chunk.total_compressed_size // 2
    raw = bytearray(path.read_bytes())
    raw[middle : middle + 8] = b"\x3f" * 8
    path.write_bytes(bytes(raw))
    # Without verification the damage reads as ordinary numbers: they would have been fitted.
    unverified = pq.read_table(path).column("a").to_numpy()
    assert np.isfinite(unverified).all() and not np.array_equal(unverified, a)
    one_error(run(capsys, "fit", path, "--target", "y", "--quiet"), f"{path}: damaged Parquet file (")
    for engine in ("memory", "moments"):
        assert raised(lambda: linreg.fit(path, "y", engine=engine, **QUIET)).startswith(f"{path}: damaged Parquet file (")


# --- predict reads what fit reads ----------------------------------------------


def test_predict_reads_parquet_files_folders_and_globs(tmp_path, capsys):
    a, b, y = numbers(300)
    x = np.column_stack([a, b])
    folder = tmp_path / "parts"
    folder.mkdir()
    for k in range(3):
        rows = slice(100 * k, 100 * (k + 1))
        pq.write_table(pa.table({"a": a[rows], "b": b[rows], "y": y[rows]}), folder / f"part-{k}.parquet",
                       write_page_checksum=True)  # fmt: skip
    model = tmp_path / "model"
    code, _, err = run(capsys, "fit", folder, "--target", "y", "--export", model, "--quiet")
    assert code == 0, err
    coefficients = lstsq(x, y)
    want = coefficients[0] + x @ coefficients[1:]
    fit, loaded = linreg.fit(folder, "y", **QUIET), linreg.load(model)
    for data in (folder, str(folder / "*.parquet")):
        np.testing.assert_allclose(fit.predict(data), want, rtol=1e-9)
        np.testing.assert_allclose(loaded.predict(data), want, rtol=1e-9)
    code, out, err = run(capsys, "predict", model, folder / "part-1.parquet")
    assert code == 0, err
    np.testing.assert_allclose(np.array(out.split()[1:], float), want[100:200], rtol=1e-9)
    # A missing value, a missing column, a column of dates: one line each.
    holed = tmp_path / "holed.parquet"
    pq.write_table(pa.table({"a": pa.array([1.0, None, 3.0]), "b": [1.0, 2.0, 3.0]}), holed)
    one_error(run(capsys, "predict", model, holed), f"{holed}: row 1, column 'a' is missing (null)")
    pq.write_table(pa.table({"a": [1.0, 2.0]}), holed)
    one_error(run(capsys, "predict", model, holed), f"{holed} has no column 'b'")
    pq.write_table(pa.table({"a": [1.0, 2.0], "b": np.array(["2024-01-01", "2024-01-02"], "datetime64[ms]")}), holed)
    one_error(run(capsys, "predict", model, holed), f"{holed}: column 'b' is of type timestamp[ms], not numbers")


def test_predict_reads_standard_input_as_a_csv(tmp_path, capsys, monkeypatch):
    import io
    import sys

    a, b, y = numbers(40)
    fit = linreg.fit((np.column_stack([a, b]), y), features=["a", "b"], **QUIET)
    fit.export(tmp_path / "model")
    text = "b,a\n" + "".join(f"{v!r},{u!r}\n" for u, v in zip(a.tolist(), b.tolist()))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, out, err = run(capsys, "predict", tmp_path / "model", "-")
    assert code == 0, err
    coefficients = lstsq(np.column_stack([a, b]), y)
    np.testing.assert_allclose(np.array(out.split()[1:], float), coefficients[0] + a * coefficients[1] + b * coefficients[2],
                               rtol=1e-9)  # fmt: skip


def test_a_model_with_categories_predicts_from_a_single_csv_or_parquet(tmp_path):
    city, area, price = cities()
    path = write_csv(tmp_path / "flats.csv", {"city": city, "area": area, "price": price})
    fit = linreg.fit(path, "price", **QUIET)
    pq.write_table(pa.table({"city": city.astype(str), "area": area}), tmp_path / "flats.parquet")
    coefficients = city_reference(city, area, price)
    design = np.column_stack([city == "Oslo", city == "Tromsø", area]).astype(float)
    np.testing.assert_allclose(fit.predict(path), coefficients[0] + design @ coefficients[1:], rtol=1e-9)
    np.testing.assert_allclose(fit.predict(tmp_path / "flats.parquet"), fit.predict(path), rtol=1e-15)
    (tmp_path / "two").mkdir()
    for name in ("a.csv", "b.csv"):
        write_csv(tmp_path / "two" / name, {"city": city, "area": area})
    assert "'city' as categories, which are read from a single CSV file or Parquet files" in raised(
        lambda: fit.predict(tmp_path / "two")
    )
    # A missing level is a missing value, not a level the fit has not seen.
    city[4] = ""
    holed = write_csv(tmp_path / "holed.csv", {"city": city, "area": area})
    assert raised(lambda: fit.predict(holed)).startswith(f"{holed}: line 6, column 'city' is empty; fill it in")
    frame = pd.DataFrame({"city": city, "area": area}).replace("", None)
    assert raised(lambda: fit.predict(frame)).startswith("the data frame: row 4, column 'city' is missing")


# --- blank lines and lines of empty cells ----------------------------------------


# Two lines of empty cells (rows whose values are all missing) among blank
# lines (no rows): lines that pyarrow reads as they are (an empty line,
# commas), and lines it refuses until the blank ones are emptied (spaces, quotes).
@pytest.mark.parametrize("inserted", [[",,", "", ",,"], [",,", "", "   ", " , ,", '""']], ids=["pyarrow", "tidied"])
def test_a_line_of_empty_cells_is_a_row_of_missing_values_in_memory_and_streamed(tmp_path, capsys, inserted):
    a, b, y = numbers(80)
    lines = ["a,b,y", *(f"{u!r},{v!r},{w!r}" for u, v, w in zip(a.tolist(), b.tolist(), y.tolist()))]
    lines[11:11] = inserted
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # Dropped: the same rows in memory and streamed, and the same fit.
    memory = read.read_table(path, sources.open_source(path), "y", None, "drop", None, None)
    streamed = list(read.batches(path, "y", missing="drop"))
    assert memory.dropped == sum(batch.dropped for batch in streamed) == 2
    np.testing.assert_array_equal(memory.x, np.column_stack([a, b]))
    np.testing.assert_array_equal(np.concatenate([batch.x for batch in streamed]), np.column_stack([a, b]))
    reference = lstsq(np.column_stack([a, b]), y)
    for engine in ("memory", "moments"):
        fit = linreg.fit(path, "y", missing="drop", engine=engine, **QUIET)
        assert fit.table.dropped == 2 and fit.n == 80
        np.testing.assert_allclose(values(fit.coefficients), reference, rtol=1e-9)
    # Not dropped: the first is refused, by its line.
    want = f"{path}: line 12, column 'y' is empty"
    assert raised(lambda: read.read_table(path, sources.open_source(path), "y", None, "error", None, None)).startswith(want)
    assert raised(lambda: list(read.batches(path, "y"))).startswith(want)
    one_error(run(capsys, "fit", path, "--target", "y", "--quiet"), want)


# --- missing values are never a level ----------------------------------------------


@pytest.mark.parametrize("cell, what", [("", "empty"), ("NA", "missing ('NA')"), ("null", "missing ('null')")])
@pytest.mark.parametrize("named", [True, False], ids=["--categorical", "detected"])
def test_a_missing_cell_in_a_categorical_csv_column_follows_missing(tmp_path, capsys, cell, what, named):
    city, area, price = cities()
    holed = city.copy()
    holed[7] = cell
    path = write_csv(tmp_path / "flats.csv", {"city": holed, "area": area, "price": price})
    flags = ["--categorical", "city"] if named else []
    one_error(run(capsys, "fit", path, "--target", "price", *flags, "--quiet"), f"{path}: line 9, column 'city' is {what}")
    fit = linreg.fit(path, "price", categorical=["city"] if named else None, missing="drop", warn=lambda _: None,
                     **QUIET)  # fmt: skip
    keep = np.arange(len(price)) != 7
    assert fit.table.dropped == 1 and fit.table.categories == {"city": ["Bergen", "Oslo", "Tromsø"]}
    assert list(fit.coefficients) == ["intercept", "city[Oslo]", "city[Tromsø]", "area"]
    np.testing.assert_allclose(values(fit.coefficients), city_reference(city[keep], area[keep], price[keep]), rtol=1e-9)


@pytest.mark.parametrize("text, what", [(None, "missing ('null')"), ("", "empty")], ids=["null", "empty"])
def test_a_null_in_a_parquet_text_column_is_named_a_null_not_empty(tmp_path, capsys, text, what):
    city, area, price = cities()
    holed = city.astype(object)
    holed[7] = text
    path = tmp_path / "flats.parquet"
    pq.write_table(pa.table({"city": pa.array(holed, pa.string()), "area": area, "price": price}), path)
    one_error(run(capsys, "fit", path, "--target", "price", "--quiet"), f"{path}: row 7, column 'city' is {what}")
    fit = linreg.fit(path, "price", missing="drop", warn=lambda _: None, **QUIET)
    assert fit.table.dropped == 1 and list(fit.coefficients) == ["intercept", "city[Oslo]", "city[Tromsø]", "area"]


@pytest.mark.parametrize("value", [None, np.nan, "NA", "", " null "], ids=["None", "NaN", "NA", "empty", "null"])
@pytest.mark.parametrize("categorical", [["city"], None], ids=["named", "detected"])
def test_a_missing_value_in_a_frames_text_column_follows_missing(value, categorical):
    city, area, price = cities()
    holed = city.copy()
    holed[7] = value
    frame = pd.DataFrame({"city": holed, "area": area, "price": price})
    message = raised(lambda: linreg.fit(frame, "price", categorical=categorical, warn=lambda _: None, **QUIET))
    assert message.startswith("the data frame: row 7, column 'city' is ") and "--missing drop" in message
    fit = linreg.fit(frame, "price", categorical=categorical, missing="drop", warn=lambda _: None, **QUIET)
    keep = np.arange(len(price)) != 7
    assert fit.table.dropped == 1 and list(fit.coefficients) == ["intercept", "city[Oslo]", "city[Tromsø]", "area"]
    np.testing.assert_allclose(values(fit.coefficients), city_reference(city[keep], area[keep], price[keep]), rtol=1e-9)


def test_levels_and_weights_come_from_the_rows_kept(tmp_path):
    """A level seen only on a dropped row is no level (it would be a column of
    zeros), and weights given as an array follow their rows."""
    city, area, price = cities()
    city[5], area[5] = "Bodø", np.nan
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(price))
    frame = pd.DataFrame({"city": city, "area": area, "price": price})
    fit = linreg.fit(frame, "price", missing="drop", weights=weights, warn=lambda _: None, **QUIET)
    keep = np.arange(len(price)) != 5
    assert fit.table.categories == {"city": ["Bergen", "Oslo", "Tromsø"]} and fit.table.dropped == 1
    design = sm.add_constant(np.column_stack([city[keep] == "Oslo", city[keep] == "Tromsø", area[keep]]).astype(float))
    wls = sm.WLS(price[keep], design, weights=weights[keep]).fit()
    np.testing.assert_allclose(values(fit.coefficients), wls.params, rtol=1e-9)
    np.testing.assert_allclose(values(fit.std_errors), wls.bse, rtol=1e-8)


MISSING_IN_ARRAYS = {"None": (None, "missing ('None')"), "NaN": (np.nan, "missing ('nan')"), "NA": ("NA", "missing ('NA')"),
                     "empty": ("", "empty")}  # fmt: skip


@pytest.mark.parametrize("value, what", MISSING_IN_ARRAYS.values(), ids=MISSING_IN_ARRAYS.keys())
def test_a_missing_value_in_arrays_follows_missing(value, what):
    a, b, y = numbers(60)
    x = np.column_stack([a, b]).astype(object)
    x[4, 1] = value
    assert raised(lambda: linreg.fit((x, y), **QUIET)).startswith(f"arrays: row 4, column 'x2' is {what}; fill it in")
    fit = linreg.fit((x, y), missing="drop", **QUIET)
    keep = np.arange(len(y)) != 4
    assert fit.table.dropped == 1
    np.testing.assert_allclose(values(fit.coefficients), lstsq(np.column_stack([a, b])[keep], y[keep]), rtol=1e-9)


def test_arrays_hold_numbers_only():
    a, b, y = numbers(60)
    x = np.column_stack([a, b])
    message = raised(lambda: linreg.fit((x, y), categorical="x1", **QUIET))
    assert "arrays hold numbers only" in message and "data frame" in message
    words = x.astype(object)
    words[3, 0] = "many"
    message = raised(lambda: linreg.fit((words, y), **QUIET))
    assert "column 'x1' holds the text 'many'" in message and "arrays hold numbers only" in message


# --- what is not a number is refused, by column -------------------------------------

DAYS = pd.date_range("2024-01-01", periods=60, freq="D")
NOT_NUMBERS = {
    "datetime64": (DAYS, "holds dates or times (datetime64"),
    "datetime64 with a time zone": (DAYS.tz_localize("UTC"), "holds dates or times (datetime64"),
    "timedelta64": (DAYS - DAYS[0], "holds durations (timedelta64"),
    "complex": (np.arange(60) + 1j, "holds complex numbers"),
    "timestamps among objects": (pd.Series(list(DAYS), dtype=object), "row 0, column 'd' holds Timestamp"),
}


@pytest.mark.parametrize("column, fragment", NOT_NUMBERS.values(), ids=NOT_NUMBERS.keys())
def test_columns_that_are_not_numbers_are_refused_by_name(column, fragment):
    a, b, y = numbers(60)
    frame = pd.DataFrame({"a": a, "d": column, "y": y})
    assert fragment in raised(lambda: linreg.fit(frame, "y", **QUIET))
    assert fragment in raised(lambda: linreg.fit(frame, "y", categorical=["d"], **QUIET))
    fit = linreg.fit(frame.assign(d=b), "y", **QUIET)
    assert fragment in raised(lambda: fit.predict(frame))


def test_dates_in_arrays_and_parquet_are_refused_by_name(tmp_path):
    a, b, y = numbers(60)
    days = np.arange(60).astype("datetime64[D]")
    assert "arrays: column 'x1' holds dates or times (datetime64[D])" in raised(lambda: linreg.fit((days, y), **QUIET))
    assert "arrays: column 'y' holds durations" in raised(lambda: linreg.fit((a, days - days[0]), **QUIET))
    fit = linreg.fit((a, y), **QUIET)
    assert "x must be real numbers" in raised(lambda: fit.predict(days))
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"a": a, "d": days, "y": y}), path)
    assert raised(lambda: linreg.fit(path, "y", **QUIET)).startswith(f"{path}: column 'd' is of type date32[day], not numbers")


# --- too many levels --------------------------------------------------------------


def test_a_categorical_column_with_too_many_levels_is_refused_before_coding(tmp_path, capsys, monkeypatch):
    rows, levels = 3000, 1001
    rng = np.random.default_rng(5)
    path = write_csv(tmp_path / "codes.csv", {"code": [f"c{k % levels}" for k in range(rows)],
                                              "x": rng.normal(size=rows), "y": rng.normal(size=rows)})  # fmt: skip
    gib = f"{rows * (levels - 1) * 8 / 2**30:.3g} GiB"
    one_error(run(capsys, "fit", path, "--target", "y", "--categorical", "code", "--quiet"),
              f"{path}: column 'code' has 1001 levels, more than the limit of 1000", f"1000 columns of 3000 rows ({gib}",
              "--max-levels")  # fmt: skip
    monkeypatch.setattr(design, "encode", lambda *args, **kwargs: pytest.fail("coded before the refusal"))
    assert "has 1001 levels" in raised(lambda: linreg.fit(path, "y", **QUIET))  # detected as categorical too
    one_error(run(capsys, "fit", path, "--target", "y", "--max-levels", "1"), "--max-levels")
    assert build_parser(["fit"]).parse_args(["fit", "data.csv", "--target", "y"]).max_levels == design.MAX_LEVELS


def test_max_levels_raises_the_limit():
    city, area, price = cities()
    frame = pd.DataFrame({"city": city, "area": area, "price": price})
    assert "has 3 levels, more than the limit of 2" in raised(lambda: linreg.fit(frame, "price", max_levels=2, **QUIET))
    fit = linreg.fit(frame, "price", categorical="city", max_levels=3, **QUIET)
    np.testing.assert_allclose(values(fit.coefficients), city_reference(city, area, price), rtol=1e-9)


# --- arguments of the wrong kind -----------------------------------------------------

BAD_ARGUMENTS = [
    ("checkpoint", 123), ("logdir", ["a"]), ("features", 5), ("features", [1.5]), ("categorical", 5),
    ("max_levels", 1), ("max_levels", True), ("max_levels", 2.5),
]  # fmt: skip


@pytest.mark.parametrize("name, value", BAD_ARGUMENTS, ids=[f"{n}={v!r}" for n, v in BAD_ARGUMENTS])
def test_an_argument_of_the_wrong_kind_is_one_linreg_error(name, value):
    a, b, y = numbers(60)
    message = raised(lambda: linreg.fit(pd.DataFrame({"a": a, "b": b, "y": y}), "y", **{name: value}, **QUIET))
    assert message.startswith(f"{name} must be") and repr(value) in message


def test_features_may_be_any_list_of_names():
    a, b, y = numbers(60)
    frame = pd.DataFrame({"a": a, "b": b, "y": y})
    want = lstsq(np.column_stack([b, a]), y)
    for features in (("b", "a"), pd.Index(["b", "a"]), (name for name in ["b", "a"])):
        np.testing.assert_allclose(values(linreg.fit(frame, "y", features=features, **QUIET).coefficients), want, rtol=1e-9)


def test_whole_number_labels_name_features_and_categorical_columns():
    city, area, price = cities()
    frame = pd.DataFrame({0: city, 1: area, 2: price})
    fit = linreg.fit(frame, 2, features=[0, 1], categorical=[0], **QUIET)
    assert list(fit.coefficients) == ["intercept", "0[Oslo]", "0[Tromsø]", "1"]
    np.testing.assert_allclose(values(fit.coefficients), city_reference(city, area, price), rtol=1e-9)


def test_a_frame_with_two_columns_of_one_name_is_refused():
    a, b, y = numbers(60)
    good = pd.DataFrame({"a": a, "b": b, "y": y})
    frame = pd.concat([good, pd.DataFrame({"a": b})], axis=1)
    want = "the data frame has two columns named 'a'; give every column its own name"
    assert raised(lambda: linreg.fit(frame, "y", **QUIET)) == want
    fit = linreg.fit(good, "y", **QUIET)
    assert raised(lambda: fit.predict(frame)) == want


# --- no intercept: a constant column is a column -------------------------------------


def test_without_an_intercept_a_constant_column_is_fitted_like_any_other(tmp_path, capsys):
    a, _, y = numbers(60)
    frame = pd.DataFrame({"a": a, "k": np.full(60, 2.0), "y": y})
    ols = sm.OLS(y, frame[["a", "k"]].to_numpy()).fit()  # statsmodels without a constant
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    for data in (frame, path):
        fit = linreg.fit(data, "y", intercept=False, **QUIET)
        assert list(fit.coefficients) == ["a", "k"]
        np.testing.assert_allclose(values(fit.coefficients), ols.params, rtol=1e-9)
        np.testing.assert_allclose(values(fit.std_errors), ols.bse, rtol=1e-8)
        # With an intercept the column is refused: the intercept plays its role.
        assert "'k' is constant" in raised(lambda: linreg.fit(data, "y", **QUIET))
    assert run(capsys, "fit", path, "--target", "y", "--no-intercept", "--quiet")[0] == 0
    # The one-pass statistics follow the same rule.
    fit = linreg.fit(path, "y", intercept=False, engine="moments", **QUIET)
    np.testing.assert_allclose(values(fit.coefficients), ols.params, rtol=1e-9)
    np.testing.assert_allclose(values(fit.std_errors), ols.bse, rtol=1e-8)
    assert "'k' is constant" in raised(lambda: linreg.fit(path, "y", engine="moments", **QUIET))


# --- pickling ---------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["auto", "cg", "momentum"])
def test_a_fit_pickles_and_comes_back_the_same(tmp_path, optimizer):
    city, area, price = cities()
    frame = pd.DataFrame({"city": city, "area": area, "price": price})
    fit = linreg.fit(frame, "price", optimizer=optimizer, warn=lambda _: None, **QUIET)
    back = pickle.loads(pickle.dumps(fit))
    assert back.coefficients == fit.coefficients and back.std_errors == fit.std_errors
    assert back.summary() == fit.summary() and back.to_dict() == fit.to_dict()
    for key, value in fit.history.items():
        np.testing.assert_array_equal(back.history[key], value)
    np.testing.assert_allclose(values(back.coefficients), city_reference(city, area, price), rtol=1e-9)
    back.export(tmp_path / "model")
    np.testing.assert_allclose(linreg.load(tmp_path / "model").predict(frame), fit.predict(frame), rtol=1e-12)


def test_a_workers_fit_pickles_with_its_number_of_workers():
    from linreg.engine.cluster import Cluster

    a, b, y = numbers(60)
    fit = linreg.fit((np.column_stack([a, b]), y), **QUIET)
    workers = Cluster.__new__(Cluster)  # as one of three workers would hold it, with its connection to them
    workers.rank, workers.size, workers.is_chief, workers._tf = 0, 3, True, tf
    fit.cluster = workers
    back = pickle.loads(pickle.dumps(fit))
    assert (back.cluster.rank, back.cluster.size, back.cluster.is_chief) == (0, 3, True)
    assert back.summary() == fit.summary()


def test_levels_past_the_memory_are_one_error_not_a_memory_error(tmp_path, monkeypatch):
    """Raising --max-levels past what the machine holds is refused with the size, never a MemoryError."""
    import numpy

    real_zeros = numpy.zeros

    def no_memory(shape, *args, **kwargs):
        if isinstance(shape, tuple) and len(shape) == 2 and shape[1] >= 3:
            raise MemoryError("Unable to allocate")
        return real_zeros(shape, *args, **kwargs)

    path = tmp_path / "levels.csv"
    path.write_text("y,g\n" + "".join(f"{k % 7},{'abcd'[k % 4]}\n" for k in range(40)))
    monkeypatch.setattr("linreg.data.design.np.zeros", no_memory)
    with pytest.raises(linreg.LinregError, match=r"one-hot columns of 40 rows would take .* GiB"):
        linreg.fit(path, "y", categorical=["g"], progress=False)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_sums_past_float64_neither_warn_nor_hide_a_bad_value(tmp_path, fmt):
    """A column whose values sum past 1.8e308 is read without a numpy warning
    (the readers' quick finiteness checks use sums), and an infinity or a
    non-positive weight beside such values is still named by its row."""
    import warnings

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200), "w": rng.uniform(1, 2, 200)})
    frame.loc[[7, 8], "x"] = 1e308

    def write(frame):
        path = tmp_path / f"d.{fmt}"
        frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
        return path

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            linreg.fit(write(frame), target="y", features=["x"], **QUIET)
        except linreg.LinregError:
            pass  # a refusal is an answer too; a warning is not
        bad = frame.copy()
        bad.loc[150, "x"] = np.inf
        assert "inf" in raised(lambda: linreg.fit(write(bad), target="y", features=["x"], **QUIET))
        bad = frame.copy()
        bad.loc[120, "w"] = -1.0
        message = raised(lambda: linreg.fit(write(bad), target="y", features=["x"], weights="w", **QUIET))
        assert "-1" in message and ("line 122" if fmt == "csv" else "row 120") in message
