"""The streaming reader (linreg.data.stream): its batches hold exactly the
numbers table.read_table reads, shards split the rows without loss or
overlap, and every problem is reported as table.py reports it."""
import os
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from linreg.data import stream, table
from linreg.errors import LinregError

HEADER = ["a", "b", "c", "y", "w"]


def rows(n, seed=0):
    """n rows of text cells in the many ways a CSV writes numbers."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a, b, c = (rng.standard_normal(3) * [1, 1e6, 1e-6]).tolist()
        y = a + 2 * b * 1e-6 + 3 * c * 1e6 + float(rng.standard_normal())
        w = float(rng.uniform(0.5, 2))
        cells = [repr(a), f"{b:.6e}", repr(c), repr(y), f"{w:.3f}"]
        if k % 7 == 0:
            cells[0] = f"{int(a * 1000)}"  # a whole number
        if k % 11 == 0:
            cells[1] = f'"{cells[1]}"'  # quoted
        if k % 13 == 0:
            cells[2] = f" {cells[2]} "  # padded
        out.append(cells)
    return out


def write_csv(path, body, header=HEADER, newline="\n"):
    path.write_text(newline.join([",".join(header), *(",".join(cells) for cells in body)]) + newline)
    return path


def collect(source, target="y", features=None, weights="w", **options):
    found = list(stream.batches(source, target, features, weights, **options))
    d = found[0].x.shape[1] if found else 0
    x = np.concatenate([b.x for b in found]) if found else np.empty((0, d))
    y = np.concatenate([b.y for b in found]) if found else np.empty(0)
    w = np.concatenate([b.w for b in found]) if found and weights else None
    return x, y, w, sum(b.dropped for b in found), [len(b.y) for b in found]


def same(got, want):
    """Bitwise equal (NaN never appears: the reader refuses it)."""
    assert got.shape == want.shape
    assert np.array_equal(got.view(np.uint64), np.ascontiguousarray(want).view(np.uint64))


def message(call):
    with pytest.raises(LinregError) as caught:
        call()
    text = str(caught.value)
    assert "\n" not in text
    return text


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 2 KiB, so that a small file is read in many of them."""
    monkeypatch.setattr(stream, "CSV_CHUNK", 2048)


# --- the numbers ------------------------------------------------------------


@pytest.mark.parametrize("batch_rows", [1, 7, 1000, None])
def test_csv_batches_hold_read_tables_numbers(tmp_path, small_chunks, batch_rows):
    path = write_csv(tmp_path / "data.csv", rows(600), newline="\r\n")
    want = table.read_table(path, "y", weights="w")
    x, y, w, dropped, sizes = collect(path, batch_rows=batch_rows)
    same(x, want.x)
    same(y, want.y)
    same(w, want.weights)
    assert dropped == 0
    if batch_rows:
        assert sizes[:-1] == [batch_rows] * (len(sizes) - 1) and 0 < sizes[-1] <= batch_rows


def test_features_in_the_order_asked_and_without_weights(tmp_path):
    path = write_csv(tmp_path / "data.csv", rows(200))
    want = table.read_table(path, "y", features=["c", "a"])
    x, y, w, _, _ = collect(path, features=["c", "a"], weights=None)
    same(x, want.x)
    same(y, want.y)
    assert w is None and want.features == ["c", "a"]


def test_parquet_batches_hold_the_same_numbers(tmp_path):
    want = table.read_table(write_csv(tmp_path / "data.csv", rows(1000)), "y", weights="w")
    columns = dict(zip(["a", "b", "c"], want.x.T)) | {"y": want.y, "w": want.weights}
    pq.write_table(pa.table(columns), tmp_path / "data.parquet", row_group_size=128)
    for batch_rows in (1, 100, 300, None):
        x, y, w, _, _ = collect(tmp_path / "data.parquet", batch_rows=batch_rows)
        same(x, want.x)
        same(y, want.y)
        same(w, want.weights)
    assert all(b.x.flags.f_contiguous for b in list(stream.batches(tmp_path / "data.parquet", "y", batch_rows=300))[:-1])


def test_parquet_integers_and_float32_become_float64(tmp_path):
    ints = np.arange(-50, 50, dtype=np.int64) * 3
    pq.write_table(pa.table({"i": ints, "f": np.linspace(0, 1, 100, dtype=np.float32), "y": ints.astype(np.int32) % 7}),
                   tmp_path / "t.parquet")  # fmt: skip
    x, y, _, _, _ = collect(tmp_path / "t.parquet", weights=None)
    same(x, np.column_stack([ints.astype(float), np.linspace(0, 1, 100, dtype=np.float32).astype(float)]))
    same(y, (ints.astype(np.int32) % 7).astype(float))


def test_folder_and_pattern_read_every_file_in_name_order(tmp_path):
    body = rows(900)
    whole = table.read_table(write_csv(tmp_path / "whole.csv", body), "y", weights="w")
    folder = tmp_path / "parts"
    folder.mkdir()
    for k in range(3):  # written out of order: the reader sorts by name
        write_csv(folder / f"part-{2 - k}.csv", body[(2 - k) * 300 : (3 - k) * 300])
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-0.csv.crc").write_text("junk")
    (folder / "notes.md").write_text("not data")
    for data, described in ((folder, f"{folder} (3 csv files)"), (str(folder / "part-*.csv"), f"{folder}/part-*.csv (3 csv files)")):
        source = stream.open_source(data)
        assert source.describe() == described and [p.name for p in source.paths] == ["part-0.csv", "part-1.csv", "part-2.csv"]
        x, y, w, _, _ = collect(source, batch_rows=250)
        same(x, whole.x)
        same(y, whole.y)
        same(w, whole.weights)
    pq_folder = tmp_path / "pq"
    pq_folder.mkdir()
    for k in range(3):
        rows_k = slice(k * 300, (k + 1) * 300)
        columns = dict(zip("abc", whole.x[rows_k].T)) | {"y": whole.y[rows_k], "w": whole.weights[rows_k]}
        pq.write_table(pa.table(columns), pq_folder / f"part-{k}.parquet" if k != 1 else pq_folder / "part-1.pq")
    (pq_folder / "_SUCCESS").write_text("")
    source = stream.open_source(pq_folder)
    assert source.format == "parquet" and source.describe() == f"{pq_folder} (3 parquet files)"
    assert stream.count_rows(source) == 900
    x, y, w, _, _ = collect(source, batch_rows=1000)
    same(x, whole.x)
    same(y, whole.y)
    same(w, whole.weights)


def test_format_from_the_first_bytes_when_the_name_does_not_tell(tmp_path):
    pq.write_table(pa.table({"a": [1.0, 2.0, 4.0], "y": [1.0, 3.0, 2.0]}), tmp_path / "data.bin")
    write_csv(tmp_path / "data.dat", [["1", "2"], ["2", "5"]], header=["a", "y"])
    assert stream.open_source(tmp_path / "data.bin").format == "parquet"
    assert stream.open_source(tmp_path / "data.dat").format == "csv"


def test_count_rows(tmp_path):
    body = rows(300)
    path = tmp_path / "data.csv"
    text = "\n".join([",".join(HEADER), *(",".join(cells) for cells in body)]) + "\n"
    path.write_text(text.replace("\n", "\n\n  \n , ,,,\n", 5))  # blank lines are no rows, lines of empty cells are
    assert stream.count_rows(path) == 305 == len(table.read_rows(path)[1])
    pq.write_table(pa.table({"a": np.arange(1234.0), "y": np.arange(1234.0)}), tmp_path / "d.parquet", row_group_size=100)
    assert stream.count_rows(tmp_path / "d.parquet") == 1234


# --- shards -----------------------------------------------------------------


def test_csv_shards_split_one_file_by_bytes(tmp_path, small_chunks):
    path = write_csv(tmp_path / "data.csv", rows(2000))
    want = table.read_table(path, "y", weights="w")
    source = stream.open_source(path)
    for shards in range(1, 5):
        parts = stream.shard_parts(source, shards)
        ranges = [(p.start, p.end) for shard in parts for p in shard]
        assert ranges[0][0] == source.starts[0] and ranges[-1][1] == path.stat().st_size
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))  # contiguous
        assert max(p.bytes for p in (s[0] for s in parts)) < 1.1 * path.stat().st_size / shards  # balanced
        pieces = [collect(source, shard=k, shards=shards, batch_rows=97) for k in range(shards)]
        for _, _, _, _, sizes in pieces:
            assert len(sizes) > 1  # several batches per part
        same(np.concatenate([p[0] for p in pieces]), want.x)
        same(np.concatenate([p[1] for p in pieces]), want.y)
        same(np.concatenate([p[2] for p in pieces]), want.weights)


def test_csv_shards_whole_files_or_ranges_across_files(tmp_path):
    body = rows(600)
    whole = table.read_table(write_csv(tmp_path / "whole.csv", body), "y", weights="w")
    folder = tmp_path / "parts"
    folder.mkdir()
    for k in range(3):
        write_csv(folder / f"part-{k}.csv", body[k * 200 : (k + 1) * 200])
    source = stream.open_source(folder)
    for shards in (1, 2, 3, 5, 8):
        parts = stream.shard_parts(source, shards)
        assert len(parts) == shards
        if shards <= 3:  # whole files, at least one each
            assert all(shard for shard in parts)
            assert all(p.start == source.starts[0] and p.end == p.path.stat().st_size for shard in parts for p in shard)
        x = np.concatenate([collect(source, shard=k, shards=shards, batch_rows=33)[0] for k in range(shards)])
        same(x, whole.x)


def test_parquet_shards_split_by_row_groups(tmp_path):
    n = 1000
    data = {"a": np.arange(n, dtype=float), "b": np.sin(np.arange(n)), "y": np.cos(np.arange(n)), "w": np.full(n, 2.0)}
    pq.write_table(pa.table(data), tmp_path / "data.parquet", row_group_size=100)
    source = stream.open_source(tmp_path / "data.parquet")
    for shards in range(1, 5):
        parts = stream.shard_parts(source, shards)
        groups = [g for shard in parts for p in shard for g in (range(10) if p.row_groups is None else p.row_groups)]
        assert groups == list(range(10))
        got = [collect(source, shard=k, shards=shards, batch_rows=64) for k in range(shards)]
        same(np.concatenate([g[0] for g in got]), np.column_stack([data["a"], data["b"]]))
        same(np.concatenate([g[1] for g in got]), data["y"])
    # Fewer row groups than shards: some shards read nothing, the rest everything once.
    pq.write_table(pa.table(data), tmp_path / "two.parquet", row_group_size=500)
    got = [collect(tmp_path / "two.parquet", shard=k, shards=4) for k in range(4)]
    assert sorted(len(g[1]) for g in got) == [0, 0, 500, 500]
    same(np.concatenate([g[1] for g in got]), data["y"])


def test_parquet_row_numbers_count_from_the_files_first_row_in_every_shard(tmp_path):
    y = np.arange(1000, dtype=float)
    y[777] = np.inf
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"a": np.sin(np.arange(1000)), "y": y}), path, row_group_size=100)
    parts = stream.shard_parts(stream.open_source(path), 4)
    for shard in range(4):
        if any(7 in p.row_groups for p in parts[shard]):
            text = message(lambda: collect(path, weights=None, shard=shard, shards=4, batch_rows=30))
            assert text.startswith(f"{path}: row 777, column 'y' is inf; only finite numbers")
        else:
            collect(path, weights=None, shard=shard, shards=4)


# --- checks while reading: CSV ------------------------------------------------


BAD_CELLS = ["abc", "", "NA", " n/a ", "None", "inf", "-Infinity", "1e400", "-nan", "nan(1)", "9007199254740993", "0x10"]


@pytest.mark.parametrize("cell", BAD_CELLS)
def test_csv_cell_errors_are_table_pys(tmp_path, small_chunks, cell):
    body = rows(400)
    body[300][1] = cell  # line 302, in a later chunk
    path = write_csv(tmp_path / "data.csv", body)
    want = message(lambda: table.read_table(path, "y", weights="w"))
    assert "line 302, column 'b'" in want
    assert message(lambda: collect(path)) == want
    # A shard that starts mid-file still names the file's line.
    assert message(lambda: collect(path, shard=2, shards=3)) == want


def test_csv_errors_name_the_true_line_past_blank_lines(tmp_path, small_chunks):
    body = rows(400)
    body[350][0] = "oops"
    path = tmp_path / "data.csv"
    lines = [",".join(HEADER), *(",".join(cells) for cells in body)]
    lines[100:100] = ["", "  ", '" "']  # blank lines count as lines
    path.write_text("\n".join(lines) + "\n")
    want = message(lambda: table.read_table(path, "y", weights="w"))
    assert "line 355, column 'a': 'oops'" in want
    assert message(lambda: collect(path)) == want
    assert message(lambda: collect(path, shard=3, shards=4, batch_rows=10)) == want


def test_whole_numbers_too_long_for_a_float64(tmp_path):
    fine = ["9007199254740992", "18014398509481984", "-18014398509481984", "1e20", "12345678901234567890.5"]
    body = [[str(k), str(k % 3), str(k * k % 5), v, "1"] for k, v in enumerate(fine * 4)]
    path = write_csv(tmp_path / "data.csv", body)
    same(collect(path)[1], np.array([float(v) for v in fine * 4]))
    body[13][3] = "9007199254740993"
    write_csv(path, body)
    text = message(lambda: collect(path))
    assert text == message(lambda: table.read_table(path, "y", weights="w"))
    assert text.startswith(f"{path}: line 15, column 'y': 9007199254740993 has more digits than a float64 keeps")


def test_csv_row_with_the_wrong_number_of_cells(tmp_path, small_chunks):
    body = rows(300)
    body[250] = body[250][:4]
    path = write_csv(tmp_path / "data.csv", body)
    want = message(lambda: table.read_table(path, "y", weights="w"))
    assert want == f"{path}: line 252 has 4 cells but the header has 5 columns; every row needs one value per column"
    assert message(lambda: collect(path)) == want


def test_csv_weights_must_be_positive(tmp_path, small_chunks):
    body = rows(300)
    body[200][4] = "-1.5"
    path = write_csv(tmp_path / "data.csv", body)
    assert message(lambda: collect(path)) == f"{path}: line 202: weight -1.5 is not a positive finite number"
    assert "line 202: weight" in message(lambda: table.read_table(path, "y", weights="w"))
    body[200][4] = "0"
    write_csv(path, body)
    assert message(lambda: collect(path, batch_rows=3)) == f"{path}: line 202: weight 0.0 is not a positive finite number"


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,y\n1,2\n2,3\n3,\xff4\n4,1\n")
    want = message(lambda: table.read_table(path, "y"))
    assert message(lambda: collect(path, weights=None)) == want == f"{path}: line 4 is not valid UTF-8 (byte 0xff); save the file as UTF-8 and try again"


def test_missing_drop_leaves_rows_out_and_counts_them(tmp_path, small_chunks):
    body = rows(500)
    for k, (column, text) in enumerate([(0, "NA"), (1, ""), (3, " null "), (4, "NaN"), (0, "none")] * 8):
        body[10 + 12 * k][column] = text
    for k in (50, 51, 400):  # every used cell missing: dropped, not a blank line
        body[k] = ["NA", "", "n/a", "NA", ""]
    path = tmp_path / "data.csv"
    lines = [",".join(HEADER), *(",".join(cells) for cells in body)]
    # Blank lines are no rows; lines of empty cells are rows of missing values, dropped.
    lines[30:30] = [",,,,", "", " , , ,,", "  "]
    path.write_text("\n".join(lines) + "\n")
    want = table.read_table(path, "y", weights="w", missing="drop")
    assert want.dropped == 45
    for batch_rows in (16, None):
        x, y, w, dropped, _ = collect(path, missing="drop", batch_rows=batch_rows)
        same(x, want.x)
        same(y, want.y)
        same(w, want.weights)
        assert dropped == 45
    got = [collect(path, missing="drop", shard=k, shards=3, batch_rows=50) for k in range(3)]
    same(np.concatenate([g[0] for g in got]), want.x)
    assert sum(g[3] for g in got) == 45
    # A missing value in a column left out is no reason to drop a row.
    want = table.read_table(path, "y", features=["b", "c"], weights="w", missing="drop")
    x, _, _, dropped, _ = collect(path, features=["b", "c"], missing="drop")
    same(x, want.x)
    assert dropped == want.dropped < 43


def test_everything_dropped(tmp_path):
    path = write_csv(tmp_path / "data.csv", [["1", "NA", "3", "4", "1"], ["2", "", "1", "2", "1"]])
    want = message(lambda: table.read_table(path, "y", weights="w", missing="drop"))
    assert message(lambda: collect(path, missing="drop")) == want
    # A shard cannot tell: it hands its count on in a batch of no rows.
    found = [b for k in range(2) for b in stream.batches(path, "y", None, "w", missing="drop", shard=k, shards=2)]
    assert [b.x.shape for b in found] == [(0, 3)] * len(found) and sum(b.dropped for b in found) == 2


def test_a_line_break_inside_quotes_gives_the_right_rows_or_an_error(tmp_path, monkeypatch):
    body = [[str(k), f'"note {k}\nline two"' if k % 5 == 0 else "x", str(k % 7), str((k * 7) % 11), "1"] for k in range(200)]
    path = write_csv(tmp_path / "data.csv", body)
    want = table.read_table(path, "y", features=["a", "c"])
    for chunk in (10**6, 5000, 1000, 333, 100):
        monkeypatch.setattr(stream, "CSV_CHUNK", chunk)
        for shards in (1, 3):
            try:
                x = np.concatenate([collect(path, features=["a", "c"], weights=None, shard=k, shards=shards)[0] for k in range(shards)])
            except LinregError as error:
                # Where a chunk or shard is cut inside the quotes.
                assert "not valid CSV" in str(error) or "cells but the header has 5 columns" in str(error)
                assert "\n" not in str(error)
            else:
                same(x, want.x)
    monkeypatch.setattr(stream, "CSV_CHUNK", 10**6)
    same(collect(path, features=["a", "c"], weights=None)[0], want.x)  # in one chunk, read right


# --- checks while reading: Parquet -------------------------------------------


def parquet(tmp_path, **columns):
    n = len(next(iter(columns.values())))
    data = {"a": np.sin(np.arange(n)), **columns}
    pq.write_table(pa.table(data), tmp_path / "data.parquet", row_group_size=40)
    return tmp_path / "data.parquet"


def test_parquet_missing_and_non_finite(tmp_path):
    y = pa.array([1.0, 2.0, None, 4.0] * 25)
    path = parquet(tmp_path, y=y)
    assert message(lambda: collect(path, weights=None)) == (
        f"{path}: row 2, column 'y' is missing (null); fill it in or remove the row "
        "(linreg fit --missing drop leaves such rows out)"
    )
    x, got, _, dropped, _ = collect(path, weights=None, missing="drop", batch_rows=7)
    assert dropped == 25 and len(got) == 75 and not np.isnan(got).any()
    values = np.arange(100.0)
    values[63] = np.nan
    path = parquet(tmp_path, y=values)
    assert message(lambda: collect(path, weights=None)).startswith(f"{path}: row 63, column 'y' is missing (NaN); fill it in")
    assert collect(path, weights=None, missing="drop")[3] == 1
    values[63] = -np.inf
    path = parquet(tmp_path, y=values)
    assert message(lambda: collect(path, weights=None, missing="drop")) == (
        f"{path}: row 63, column 'y' is -inf; only finite numbers can be fitted, fill it in or remove the row"
    )


def test_parquet_integers_too_long_for_a_float64(tmp_path):
    values = np.arange(100, dtype=np.int64) * 2**11 + 2**60  # multiples of 2**11 above 2**60 fit exactly
    path = parquet(tmp_path, y=values)
    same(collect(path, weights=None)[1], values.astype(float))
    values[50] += 1
    path = parquet(tmp_path, y=values)
    assert message(lambda: collect(path, weights=None)).startswith(
        f"{path}: row 50, column 'y': {values[50]} has more digits than a float64 keeps"
    )
    unsigned = pa.array(np.full(100, 2**64 - 1, dtype=np.uint64))
    assert "row 0, column 'y': 18446744073709551615 has more digits" in message(
        lambda: collect(parquet(tmp_path, y=unsigned), weights=None)
    )


def test_parquet_weights(tmp_path):
    w = np.ones(100)
    w[70] = 0.0
    path = parquet(tmp_path, y=np.arange(100.0), w=w)
    assert message(lambda: collect(path)) == f"{path}: row 70: weight 0.0 is not a positive finite number"


@pytest.mark.parametrize("column", [pa.array(["1.5"] * 10), pa.array([True] * 10), pa.array(np.full(10, np.datetime64("2024-01-01", "D")))])
def test_parquet_columns_must_be_numeric(tmp_path, column):
    path = parquet(tmp_path, b=column, y=np.arange(10.0))
    text = message(lambda: stream.check_columns(stream.open_source(path), "y"))
    assert text.startswith(f"{path}: column 'b' is of type {column.type}, not numbers; streamed data must be numeric")
    assert message(lambda: stream.batches(path, "y")) == text
    assert stream.check_columns(stream.open_source(path), "y", ["a"]) == ["a"]  # a column not used is not read


# --- opening and columns -------------------------------------------------------


def test_columns_are_checked_as_read_table_checks_them(tmp_path):
    path = write_csv(tmp_path / "data.csv", rows(20))
    source = stream.open_source(path)
    assert stream.check_columns(source, "y", weights="w") == ["a", "b", "c"]
    for target, features, weights in [("z", None, None), ("y", ["a", "y"], None), ("y", ["a", "zz"], None),
                                      ("y", ["a", "a"], None), ("y", ["a", "w"], "w"), ("y", None, "v"), ("y", [], None)]:  # fmt: skip
        want = message(lambda: table.read_table(path, target, features, weights=weights))
        assert message(lambda: stream.check_columns(source, target, features, weights)) == want


def test_opening_errors(tmp_path):
    assert message(lambda: stream.open_source(tmp_path / "nothere.csv")) == f"{tmp_path / 'nothere.csv'}: no such file"
    assert message(lambda: stream.open_source(str(tmp_path / "*.csv"))) == f"{tmp_path / '*.csv'}: no file matches this pattern"
    assert "is a folder with no .csv, .parquet or .pq files" in message(lambda: stream.open_source(tmp_path))
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    assert message(lambda: stream.open_source(fifo)).startswith(f"{fifo} is not a regular file")
    fifo.unlink()
    empty = tmp_path / "empty.csv"
    empty.write_text("\n \n")
    assert message(lambda: stream.open_source(empty)) == message(lambda: table.read_table(empty, "y"))
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,y\n\n \n")
    assert message(lambda: stream.open_source(header_only)) == message(lambda: table.read_table(header_only, "y"))
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text("a;y\n1;2\n")
    assert message(lambda: stream.open_source(semicolons)) == message(lambda: table.read_table(semicolons, "y"))
    index = tmp_path / "index.csv"
    index.write_text(",a,y\n0,1,2\n1,2,3\n2,3,5\n")
    assert message(lambda: stream.open_source(index)) == message(lambda: table.read_table(index, "y"))


def test_header_only_found_while_reading(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("a,y\n" + " \n" * 40000)  # past the first 64 KiB the opening looks at
    assert message(lambda: collect(path, weights=None)) == f"{path} has a header but no data rows; add at least one row of numbers"


def test_unreadable_file(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "data.csv", rows(5))
    if os.geteuid() == 0:  # root reads every file: pretend

        def refuse(name, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(name))

        monkeypatch.setattr(stream, "open", refuse, raising=False)
    else:
        path.chmod(0)
    assert message(lambda: stream.open_source(path)) == f"cannot read {path}: Permission denied"


def test_small_data_small_batches(tmp_path):
    # Not 1 Mi rows, 64 MiB, as the default batch holds: no more than the file can fill.
    path = write_csv(tmp_path / "data.csv", rows(50))
    before = pa.total_allocated_bytes()
    (batch,) = stream.batches(path, "y", weights="w")
    assert batch.x.shape == (50, 3) and pa.total_allocated_bytes() - before < path.stat().st_size * 8
    pq.write_table(pa.table({"a": np.arange(50.0), "y": np.arange(50.0) % 3}), tmp_path / "d.parquet")
    before = pa.total_allocated_bytes()
    (batch,) = stream.batches(tmp_path / "d.parquet", "y")
    assert batch.x.shape == (50, 1) and batch.x.flags.f_contiguous and pa.total_allocated_bytes() - before < 4096


def test_mixed_formats_and_different_headers(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_csv(folder / "a.csv", rows(5))
    pq.write_table(pa.table({"a": [1.0]}), folder / "b.parquet")
    assert message(lambda: stream.open_source(folder)).startswith(
        f"{folder}: mixes CSV and Parquet files ({folder / 'a.csv'} and {folder / 'b.parquet'})"
    )
    folder = tmp_path / "headers"
    folder.mkdir()
    write_csv(folder / "1.csv", rows(5))
    write_csv(folder / "2.csv", rows(5), header=["a", "b", "d", "y", "w"])
    assert message(lambda: stream.open_source(folder)).startswith(
        f"{folder / '2.csv'}: its columns differ from those of {folder / '1.csv'}: its column 3 is 'd' where "
        f"{folder / '1.csv'} has 'c'"
    )
    write_csv(folder / "2.csv", [cells[:4] for cells in rows(5)], header=HEADER[:4])
    assert "it has 4 columns, " in message(lambda: stream.open_source(folder))
    pq.write_table(pa.table({"a": [1.0], "y": [2.0]}), tmp_path / "p1.parquet")
    pq.write_table(pa.table({"y": [1.0], "a": [2.0]}), tmp_path / "p2.parquet")
    assert "its column 1 is 'y' where" in message(lambda: stream.open_source(str(tmp_path / "p*.parquet")))


def test_damaged_parquet(tmp_path):
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"a": np.arange(1000.0), "y": np.arange(1000.0) % 7}), path)
    good = path.read_bytes()
    path.write_bytes(b"not parquet at all")
    assert message(lambda: stream.open_source(path)).startswith(f"{path}: not a readable Parquet file (")
    path.write_bytes(good[: len(good) // 2])
    assert message(lambda: stream.open_source(path)).startswith(f"{path}: not a readable Parquet file (")
    # Damage to a page shows only while reading (its header: snappy data has no checksum).
    damaged = bytearray(good)
    damaged[4:40] = b"\x07" * 36
    path.write_bytes(bytes(damaged))
    text = message(lambda: collect(path, weights=None))
    assert text.startswith(f"{path}: ") and "Parquet" in text


# --- resources -------------------------------------------------------------------


def test_memory_does_not_grow_with_the_file(tmp_path):
    rng = np.random.default_rng(3)
    block = "".join(",".join(map(repr, row)) + "\n" for row in rng.standard_normal((10_000, 6)).tolist())
    path = tmp_path / "big.csv"
    with open(path, "w") as f:
        f.write("a,b,c,d,e,y\n")
        for _ in range(40):
            f.write(block)
    assert path.stat().st_size > 45e6
    before, peak, rows_read = pa.total_allocated_bytes(), 0, 0
    for batch in stream.batches(path, "y", batch_rows=10_000):
        peak = max(peak, pa.total_allocated_bytes() - before)
        rows_read += len(batch.y)
    assert rows_read == 400_000
    # A few chunks of 4 MiB in flight and one batch: nothing like the 50 MB read.
    assert peak < 24 << 20, peak


def test_threads_end_with_the_reading(tmp_path):
    path = parquet(tmp_path, y=np.arange(1000.0))
    before = threading.active_count()
    reading = stream.batches(path, "y", batch_rows=10)
    next(reading)
    reading.close()  # a consumer that stops early
    csv_reading = stream.batches(write_csv(tmp_path / "data.csv", rows(100)), "y", batch_rows=10)
    next(csv_reading)
    csv_reading.close()
    assert threading.active_count() == before
