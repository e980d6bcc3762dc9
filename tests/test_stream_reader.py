"""The readers of linreg.data (sources, csv_reader, parquet, read): batches
and whole reads hold exactly the numbers written in the files, shards split
the rows without loss or overlap, and every problem is one message naming
the file, the line (or row) and the column."""
import os
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from linreg.data import csv_reader, read, sources
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


def written(body, features=("a", "b", "c"), weights=True, header=HEADER):
    """(x, y, w) of text cells, read by Python's float(): the numbers the file holds."""
    def column(name):
        return np.array([float(cells[header.index(name)].strip().strip('"')) for cells in body])

    x = np.column_stack([column(name) for name in features])
    return x, column("y"), column("w") if weights else None


def whole(path, target="y", features=None, weights="w", missing="error"):
    """The Table a fit in memory reads."""
    return read.read_table(path, sources.open_source(path), target, features, missing, None, weights)


def write_csv(path, body, header=HEADER, newline="\n"):
    path.write_text(newline.join([",".join(header), *(",".join(cells) for cells in body)]) + newline)
    return path


def collect(source, target="y", features=None, weights="w", **options):
    found = list(read.batches(source, target, features, weights, **options))
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
    monkeypatch.setattr(csv_reader, "CSV_CHUNK", 2048)


# --- the numbers ------------------------------------------------------------


@pytest.mark.parametrize("batch_rows", [1, 7, 1000, None])
def test_csv_batches_hold_the_written_numbers(tmp_path, small_chunks, batch_rows):
    body = rows(600)
    path = write_csv(tmp_path / "data.csv", body, newline="\r\n")
    want_x, want_y, want_w = written(body)
    x, y, w, dropped, sizes = collect(path, batch_rows=batch_rows)
    same(x, want_x)
    same(y, want_y)
    same(w, want_w)
    assert dropped == 0
    if batch_rows:
        assert sizes[:-1] == [batch_rows] * (len(sizes) - 1) and 0 < sizes[-1] <= batch_rows
    else:  # and the whole read of a fit in memory
        table = whole(path)
        same(table.x, want_x)
        same(table.y, want_y)
        same(table.weights, want_w)


def test_a_whole_read_whose_lines_get_shorter_holds_every_row(tmp_path, small_chunks):
    # The first chunk's long lines make the reader expect few rows; the short ones after exceed it.
    body = [[repr(k * 1.000000000000001), repr(-k / 3), repr(k / 7), repr(k * 0.1 + 0.3), "1.25"] for k in range(100)]
    body += [[str(k % 9), str(k % 4), str(k % 5), str(k % 11), "1"] for k in range(3000)]
    path = write_csv(tmp_path / "data.csv", body)
    want_x, want_y, want_w = written(body)
    table = whole(path)
    same(table.x, want_x)
    same(table.y, want_y)
    same(table.weights, want_w)


def test_features_in_the_order_asked_and_without_weights(tmp_path):
    body = rows(200)
    path = write_csv(tmp_path / "data.csv", body)
    want_x, want_y, _ = written(body, ["c", "a"], weights=False)
    x, y, w, _, _ = collect(path, features=["c", "a"], weights=None)
    same(x, want_x)
    same(y, want_y)
    assert w is None and whole(path, features=["c", "a"], weights=None).features == ["c", "a"]


def test_parquet_batches_hold_the_same_numbers(tmp_path):
    want_x, want_y, want_w = written(rows(1000))
    columns = dict(zip(["a", "b", "c"], want_x.T)) | {"y": want_y, "w": want_w}
    pq.write_table(pa.table(columns), tmp_path / "data.parquet", row_group_size=128)
    for batch_rows in (1, 100, 300, None):
        x, y, w, _, _ = collect(tmp_path / "data.parquet", batch_rows=batch_rows)
        same(x, want_x)
        same(y, want_y)
        same(w, want_w)
    assert all(b.x.flags.f_contiguous for b in list(read.batches(tmp_path / "data.parquet", "y", batch_rows=300))[:-1])
    table = whole(tmp_path / "data.parquet")
    same(table.x, want_x)
    same(table.weights, want_w)


def test_parquet_integers_and_float32_become_float64(tmp_path):
    ints = np.arange(-50, 50, dtype=np.int64) * 3
    pq.write_table(pa.table({"i": ints, "f": np.linspace(0, 1, 100, dtype=np.float32), "y": ints.astype(np.int32) % 7}),
                   tmp_path / "t.parquet")  # fmt: skip
    x, y, _, _, _ = collect(tmp_path / "t.parquet", weights=None)
    same(x, np.column_stack([ints.astype(float), np.linspace(0, 1, 100, dtype=np.float32).astype(float)]))
    same(y, (ints.astype(np.int32) % 7).astype(float))


def test_folder_and_pattern_read_every_file_in_name_order(tmp_path):
    body = rows(900)
    want_x, want_y, want_w = written(body)
    folder = tmp_path / "parts"
    folder.mkdir()
    for k in range(3):  # written out of order: the reader sorts by name
        write_csv(folder / f"part-{2 - k}.csv", body[(2 - k) * 300 : (3 - k) * 300])
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-0.csv.crc").write_text("junk")
    (folder / "notes.md").write_text("not data")
    for data, described in ((folder, f"{folder} (3 csv files)"), (str(folder / "part-*.csv"), f"{folder}/part-*.csv (3 csv files)")):
        source = sources.open_source(data)
        assert source.describe() == described and [p.name for p in source.paths] == ["part-0.csv", "part-1.csv", "part-2.csv"]
        x, y, w, _, _ = collect(source, batch_rows=250)
        same(x, want_x)
        same(y, want_y)
        same(w, want_w)
        same(whole(source).x, want_x)
    pq_folder = tmp_path / "pq"
    pq_folder.mkdir()
    for k in range(3):
        rows_k = slice(k * 300, (k + 1) * 300)
        columns = dict(zip("abc", want_x[rows_k].T)) | {"y": want_y[rows_k], "w": want_w[rows_k]}
        pq.write_table(pa.table(columns), pq_folder / f"part-{k}.parquet" if k != 1 else pq_folder / "part-1.pq")
    (pq_folder / "_SUCCESS").write_text("")
    source = sources.open_source(pq_folder)
    assert source.format == "parquet" and source.describe() == f"{pq_folder} (3 parquet files)"
    assert sources.count_rows(source) == 900
    x, y, w, _, _ = collect(source, batch_rows=1000)
    same(x, want_x)
    same(y, want_y)
    same(w, want_w)


def test_format_from_the_first_bytes_when_the_name_does_not_tell(tmp_path):
    pq.write_table(pa.table({"a": [1.0, 2.0, 4.0], "y": [1.0, 3.0, 2.0]}), tmp_path / "data.bin")
    write_csv(tmp_path / "data.dat", [["1", "2"], ["2", "5"]], header=["a", "y"])
    assert sources.open_source(tmp_path / "data.bin").format == "parquet"
    assert sources.open_source(tmp_path / "data.dat").format == "csv"


def test_blank_lines_are_no_rows_lines_of_empty_cells_are(tmp_path, small_chunks):
    body = rows(300)
    path = tmp_path / "data.csv"
    text = "\n".join([",".join(HEADER), *(",".join(cells) for cells in body)]) + "\n"
    path.write_text(text.replace("\n", "\n\n  \n , ,,,\n", 5))
    want_x, _, _ = written(body)
    assert whole(path, missing="drop").dropped == 5 == collect(path, missing="drop")[3]
    same(whole(path, missing="drop").x, want_x)
    assert message(lambda: whole(path)).startswith(f"{path}: line 4, column 'y' is empty")
    pq.write_table(pa.table({"a": np.arange(1234.0), "y": np.arange(1234.0)}), tmp_path / "d.parquet", row_group_size=100)
    assert sources.count_rows(tmp_path / "d.parquet") == 1234


# --- shards -----------------------------------------------------------------


def test_csv_shards_split_one_file_by_bytes(tmp_path, small_chunks):
    body = rows(2000)
    path = write_csv(tmp_path / "data.csv", body)
    want_x, want_y, want_w = written(body)
    source = sources.open_source(path)
    for shards in range(1, 5):
        parts = sources.shard_parts(source, shards)
        ranges = [(p.start, p.end) for shard in parts for p in shard]
        assert ranges[0][0] == source.starts[0] and ranges[-1][1] == path.stat().st_size
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))  # contiguous
        assert max(p.bytes for p in (s[0] for s in parts)) < 1.1 * path.stat().st_size / shards  # balanced
        pieces = [collect(source, shard=k, shards=shards, batch_rows=97) for k in range(shards)]
        for _, _, _, _, sizes in pieces:
            assert len(sizes) > 1  # several batches per part
        same(np.concatenate([p[0] for p in pieces]), want_x)
        same(np.concatenate([p[1] for p in pieces]), want_y)
        same(np.concatenate([p[2] for p in pieces]), want_w)


def test_csv_shards_whole_files_or_ranges_across_files(tmp_path):
    body = rows(600)
    want_x, _, _ = written(body)
    folder = tmp_path / "parts"
    folder.mkdir()
    for k in range(3):
        write_csv(folder / f"part-{k}.csv", body[k * 200 : (k + 1) * 200])
    source = sources.open_source(folder)
    for shards in (1, 2, 3, 5, 8):
        parts = sources.shard_parts(source, shards)
        assert len(parts) == shards
        if shards <= 3:  # whole files, at least one each
            assert all(shard for shard in parts)
            assert all(p.start == source.starts[0] and p.end == p.path.stat().st_size for shard in parts for p in shard)
        x = np.concatenate([collect(source, shard=k, shards=shards, batch_rows=33)[0] for k in range(shards)])
        same(x, want_x)


def test_parquet_shards_split_by_row_groups(tmp_path):
    n = 1000
    data = {"a": np.arange(n, dtype=float), "b": np.sin(np.arange(n)), "y": np.cos(np.arange(n)), "w": np.full(n, 2.0)}
    pq.write_table(pa.table(data), tmp_path / "data.parquet", row_group_size=100)
    source = sources.open_source(tmp_path / "data.parquet")
    for shards in range(1, 5):
        parts = sources.shard_parts(source, shards)
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
    parts = sources.shard_parts(sources.open_source(path), 4)
    for shard in range(4):
        if any(7 in p.row_groups for p in parts[shard]):
            text = message(lambda: collect(path, weights=None, shard=shard, shards=4, batch_rows=30))
            assert text.startswith(f"{path}: row 777, column 'y' is inf; only finite numbers")
        else:
            collect(path, weights=None, shard=shard, shards=4)


# --- checks while reading: CSV ------------------------------------------------


NOT_A_NUMBER = "is not a number; correct it or remove the row"
NOT_FINITE = "; only finite numbers can be fitted, fill it in or remove the row"
MISSING = "; fill it in or remove the row (linreg fit --missing drop leaves such rows out)"
BAD_CELLS = {
    "abc": ": 'abc' " + NOT_A_NUMBER, "": " is empty" + MISSING, "NA": " is missing ('NA')" + MISSING,
    " n/a ": " is missing ('n/a')" + MISSING, "None": " is missing ('None')" + MISSING, "inf": " is 'inf'" + NOT_FINITE,
    "-Infinity": " is '-Infinity'" + NOT_FINITE, "1e400": " is '1e400'" + NOT_FINITE, "-nan": " is '-nan'" + NOT_FINITE,
    "nan(1)": ": 'nan(1)' " + NOT_A_NUMBER, "0x10": ": '0x10' " + NOT_A_NUMBER, "1_000": ": '1_000' " + NOT_A_NUMBER,
    "9007199254740993": ": 9007199254740993 has more digits than a float64 keeps (whole numbers above 2**53 = "
    "9007199254740992 are rounded, so different values could look equal); subtract a common offset or rescale the column",
}  # fmt: skip


@pytest.mark.parametrize("cell", BAD_CELLS)
def test_csv_cell_errors(tmp_path, small_chunks, cell):
    body = rows(400)
    body[300][1] = cell  # line 302, in a later chunk
    path = write_csv(tmp_path / "data.csv", body)
    want = f"{path}: line 302, column 'b'{BAD_CELLS[cell]}"
    assert message(lambda: whole(path)) == want
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
    want = message(lambda: whole(path))
    assert want == f"{path}: line 355, column 'a': 'oops' {NOT_A_NUMBER}"
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
    assert text == message(lambda: whole(path))
    assert text.startswith(f"{path}: line 15, column 'y': 9007199254740993 has more digits than a float64 keeps")


def test_csv_row_with_the_wrong_number_of_cells(tmp_path, small_chunks):
    body = rows(300)
    body[250] = body[250][:4]
    path = write_csv(tmp_path / "data.csv", body)
    want = message(lambda: whole(path))
    assert want == f"{path}: line 252 has 4 cells but the header has 5 columns; every row needs one value per column"
    assert message(lambda: collect(path)) == want


def test_csv_weights_must_be_positive(tmp_path, small_chunks):
    body = rows(300)
    body[200][4] = "-1.5"
    path = write_csv(tmp_path / "data.csv", body)
    assert message(lambda: collect(path)) == f"{path}: line 202: weight -1.5 is not a positive finite number"
    assert message(lambda: whole(path)) == f"{path}: line 202: weight -1.5 is not a positive finite number"
    body[200][4] = "0"
    write_csv(path, body)
    assert message(lambda: collect(path, batch_rows=3)) == f"{path}: line 202: weight 0.0 is not a positive finite number"


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,y\n1,2\n2,3\n3,\xff4\n4,1\n")
    want = message(lambda: whole(path, weights=None))
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
    kept = [cells for cells in body if not any(cell.strip().lower() in ("", "na", "n/a", "null", "nan", "none") for cell in cells)]
    want_x, want_y, want_w = written(kept)
    table = whole(path, missing="drop")
    assert table.dropped == 45
    same(table.x, want_x)
    same(table.weights, want_w)
    for batch_rows in (16, None):
        x, y, w, dropped, _ = collect(path, missing="drop", batch_rows=batch_rows)
        same(x, want_x)
        same(y, want_y)
        same(w, want_w)
        assert dropped == 45
    got = [collect(path, missing="drop", shard=k, shards=3, batch_rows=50) for k in range(3)]
    same(np.concatenate([g[0] for g in got]), want_x)
    assert sum(g[3] for g in got) == 45
    # A missing value in a column left out is no reason to drop a row.
    kept = [cells for cells in body if not any(cells[i].strip().lower() in ("", "na", "n/a", "null", "nan", "none") for i in (1, 2, 3, 4))]
    x, _, _, dropped, _ = collect(path, features=["b", "c"], missing="drop")
    same(x, written(kept, ["b", "c"])[0])
    assert dropped == whole(path, features=["b", "c"], missing="drop").dropped == len(body) + 2 - len(kept) < 43


def test_everything_dropped(tmp_path):
    path = write_csv(tmp_path / "data.csv", [["1", "NA", "3", "4", "1"], ["2", "", "1", "2", "1"]])
    want = f"{path}: every row has a missing value in the columns used; nothing is left to fit"
    assert message(lambda: collect(path, missing="drop")) == want == message(lambda: whole(path, missing="drop"))
    # A shard cannot tell: it hands its count on in a batch of no rows.
    found = [b for k in range(2) for b in read.batches(path, "y", None, "w", missing="drop", shard=k, shards=2)]
    assert [b.x.shape for b in found] == [(0, 3)] * len(found) and sum(b.dropped for b in found) == 2


def test_a_line_break_inside_quotes_gives_the_right_rows_or_an_error(tmp_path, monkeypatch):
    body = [[str(k), f'"note {k}\nline ""two"""' if k % 5 == 0 else "x", str(k % 7), str((k * 7) % 11), "1"] for k in range(200)]
    body[7][3] = "oops"
    path = write_csv(tmp_path / "data.csv", body)
    for chunk in (10**6, 5000, 1000, 333, 100, 10):
        monkeypatch.setattr(csv_reader, "CSV_CHUNK", chunk)
        # Chunks end outside quotes: a whole read is right, lines counted as lines.
        assert message(lambda: whole(path, features=["a", "c"], weights=None)) == f"{path}: line 11, column 'y': 'oops' {NOT_A_NUMBER}"
        assert message(lambda: collect(path, features=["a", "c"], weights=None)) == f"{path}: line 11, column 'y': 'oops' {NOT_A_NUMBER}"
    body[7][3] = "7"
    write_csv(path, body)
    want_x = written(body, ["a", "c"], weights=False)[0]
    for chunk in (10**6, 5000, 1000, 333, 100, 10):
        monkeypatch.setattr(csv_reader, "CSV_CHUNK", chunk)
        same(whole(path, features=["a", "c"], weights=None).x, want_x)
        for shards in (1, 3):
            try:
                x = np.concatenate([collect(path, features=["a", "c"], weights=None, shard=k, shards=shards)[0] for k in range(shards)])
            except LinregError as error:
                # Where a shard is cut inside the quotes.
                assert shards > 1 and ("not valid CSV" in str(error) or "cells but the header has 5 columns" in str(error))
                assert "\n" not in str(error)
            else:
                same(x, want_x)


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
    text = message(lambda: read.check_columns(sources.open_source(path), "y"))
    assert text.startswith(f"{path}: column 'b' is of type {column.type}, not numbers; streamed data must be numeric")
    assert message(lambda: read.batches(path, "y")) == text
    if not pa.types.is_string(column.type):  # read whole, a column of text is categorical (tests/test_fit.py)
        assert message(lambda: whole(path, weights=None)) == text
    assert read.check_columns(sources.open_source(path), "y", ["a"]) == ["a"]  # a column not used is not read


# --- opening and columns -------------------------------------------------------


def test_columns_are_checked(tmp_path):
    path = write_csv(tmp_path / "data.csv", rows(20))
    source = sources.open_source(path)
    assert read.check_columns(source, "y", weights="w") == ["a", "b", "c"]
    columns = "its columns are a, b, c, y, w"
    for target, features, weights, want in [
        ("z", None, None, f"{path} has no column 'z' for --target; {columns}"),
        ("y", ["a", "y"], None, "features include the target 'y'; a column cannot predict itself"),
        ("y", ["a", "zz"], None, f"{path} has no column 'zz' given in --features; {columns}"),
        ("y", ["a", "a"], None, "features name 'a' twice; name each feature once"),
        ("y", ["a", "w"], "w", "the weights column 'w' is also a feature; leave it out of --features"),
        ("y", None, "v", f"{path} has no column 'v' for --weights besides the target; {columns}"),
        ("y", [], None, f"{path} has only the target column 'y'; a fit needs at least one feature"),
    ]:  # fmt: skip
        assert message(lambda: read.check_columns(source, target, features, weights)) == want
        assert message(lambda: whole(path, target, features, weights)) == want


def test_opening_errors(tmp_path):
    assert message(lambda: sources.open_source(tmp_path / "nothere.csv")) == f"{tmp_path / 'nothere.csv'}: no such file"
    assert message(lambda: sources.open_source(str(tmp_path / "*.csv"))) == f"{tmp_path / '*.csv'}: no file matches this pattern"
    assert "is a folder with no .csv, .parquet or .pq files" in message(lambda: sources.open_source(tmp_path))
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    assert message(lambda: sources.open_source(fifo)).startswith(f"{fifo} is not a regular file")
    fifo.unlink()
    empty = tmp_path / "empty.csv"
    empty.write_text("\n \n")
    assert message(lambda: sources.open_source(empty)) == (
        f"{empty} is empty; expected a header row with column names, then rows of numbers"
    )
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,y\n\n \n")
    assert message(lambda: sources.open_source(header_only)) == (
        f"{header_only} has a header but no data rows; add at least one row of numbers"
    )
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text("a;y\n1;2\n")
    assert message(lambda: sources.open_source(semicolons)) == (
        f"{semicolons}: line 1: the header is one column, 'a;y', separated by semicolons; linreg reads "
        "comma-separated files: save the file with commas between the values"
    )
    index = tmp_path / "index.csv"
    index.write_text(",a,y\n0,1,2\n1,2,3\n2,3,5\n")
    assert message(lambda: sources.open_source(index)) == (
        f"{index}: line 1: column 1 of the header has no name (it looks like a pandas index: write the file with "
        "to_csv(..., index=False)); name every column"
    )


def test_header_only_found_while_reading(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("a,y\n" + " \n" * 40000)  # past the first 64 KiB the opening looks at
    assert message(lambda: collect(path, weights=None)) == f"{path} has a header but no data rows; add at least one row of numbers"


def test_unreadable_file(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "data.csv", rows(5))
    if os.geteuid() == 0:  # root reads every file: pretend

        def refuse(name, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(name))

        monkeypatch.setattr(sources, "open", refuse, raising=False)
    else:
        path.chmod(0)
    assert message(lambda: sources.open_source(path)) == f"cannot read {path}: Permission denied"


def test_small_data_small_batches(tmp_path):
    # Not 1 Mi rows, 64 MiB, as the default batch holds: no more than the file can fill.
    path = write_csv(tmp_path / "data.csv", rows(50))
    before = pa.total_allocated_bytes()
    (batch,) = read.batches(path, "y", weights="w")
    assert batch.x.shape == (50, 3) and pa.total_allocated_bytes() - before < path.stat().st_size * 8
    pq.write_table(pa.table({"a": np.arange(50.0), "y": np.arange(50.0) % 3}), tmp_path / "d.parquet")
    before = pa.total_allocated_bytes()
    (batch,) = read.batches(tmp_path / "d.parquet", "y")
    assert batch.x.shape == (50, 1) and batch.x.flags.f_contiguous and pa.total_allocated_bytes() - before < 4096


def test_mixed_formats_and_different_headers(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_csv(folder / "a.csv", rows(5))
    pq.write_table(pa.table({"a": [1.0]}), folder / "b.parquet")
    assert message(lambda: sources.open_source(folder)).startswith(
        f"{folder}: mixes CSV and Parquet files ({folder / 'a.csv'} and {folder / 'b.parquet'})"
    )
    folder = tmp_path / "headers"
    folder.mkdir()
    write_csv(folder / "1.csv", rows(5))
    write_csv(folder / "2.csv", rows(5), header=["a", "b", "d", "y", "w"])
    assert message(lambda: sources.open_source(folder)).startswith(
        f"{folder / '2.csv'}: its columns differ from those of {folder / '1.csv'}: its column 3 is 'd' where "
        f"{folder / '1.csv'} has 'c'"
    )
    write_csv(folder / "2.csv", [cells[:4] for cells in rows(5)], header=HEADER[:4])
    assert "it has 4 columns, " in message(lambda: sources.open_source(folder))
    pq.write_table(pa.table({"a": [1.0], "y": [2.0]}), tmp_path / "p1.parquet")
    pq.write_table(pa.table({"y": [1.0], "a": [2.0]}), tmp_path / "p2.parquet")
    assert "its column 1 is 'y' where" in message(lambda: sources.open_source(str(tmp_path / "p*.parquet")))


def test_damaged_parquet(tmp_path):
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"a": np.arange(1000.0), "y": np.arange(1000.0) % 7}), path)
    good = path.read_bytes()
    path.write_bytes(b"not parquet at all")
    assert message(lambda: sources.open_source(path)).startswith(f"{path}: not a readable Parquet file (")
    path.write_bytes(good[: len(good) // 2])
    assert message(lambda: sources.open_source(path)).startswith(f"{path}: not a readable Parquet file (")
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
    for batch in read.batches(path, "y", batch_rows=10_000):
        peak = max(peak, pa.total_allocated_bytes() - before)
        rows_read += len(batch.y)
    assert rows_read == 400_000
    # A few chunks of 4 MiB in flight and one batch: nothing like the 50 MB read.
    assert peak < 24 << 20, peak


def test_threads_end_with_the_reading(tmp_path):
    path = parquet(tmp_path, y=np.arange(1000.0))
    before = threading.active_count()
    reading = read.batches(path, "y", batch_rows=10)
    next(reading)
    reading.close()  # a consumer that stops early
    csv_reading = read.batches(write_csv(tmp_path / "data.csv", rows(100)), "y", batch_rows=10)
    next(csv_reading)
    csv_reading.close()
    assert threading.active_count() == before


# --- text columns ------------------------------------------------------------------


def test_a_text_column_is_read_by_pyarrow_and_coded_with_sorted_levels(tmp_path, small_chunks):
    """A column of text, found in the first chunk or only in a later one (its
    first rows missing), is categorical; one with a number is refused at its
    first text, however far the text is from the number."""
    body = rows(400)
    levels = ["Oslo", "Bergen", " Tromsø "]
    for k, cells in enumerate(body):
        cells[2] = levels[k % 3]
    for k in range(200):
        body[k][2] = "NA"  # the text starts in a later chunk on the rows kept
    path = write_csv(tmp_path / "data.csv", body)
    table = whole(path, missing="drop")
    kept = body[200:]
    city = np.array([cells[2].strip() for cells in kept])
    x, y, w = written(kept, ["a", "b"])
    same(table.x, np.column_stack([x[:, 0], x[:, 1], city == "Oslo", city == "Tromsø"]).astype(float))
    same(table.y, y)
    assert table.categories == {"c": ["Bergen", "Oslo", "Tromsø"]} and table.dropped == 200
    assert table.features == ["a", "b", "c[Oslo]", "c[Tromsø]"] and "treated as categorical" in table.notes[0]
    assert message(lambda: whole(path)) == f"{path}: line 2, column 'c' is missing ('NA')" + MISSING
    body[350][2] = "2.5"
    write_csv(path, body)
    assert message(lambda: whole(path, missing="drop")) == f"{path}: line 202, column 'c': 'Tromsø' {NOT_A_NUMBER}"


def test_a_number_column_with_text_far_down_is_refused_at_that_line(tmp_path, small_chunks):
    body = rows(400)
    body[390][0] = "many"
    path = write_csv(tmp_path / "data.csv", body)
    assert message(lambda: whole(path)) == f"{path}: line 392, column 'a': 'many' {NOT_A_NUMBER}"
    # Named categorical, the numbers are levels like any text.
    table = read.read_table(path, sources.open_source(path), "y", ["a", "b"], "error", ["a"], "w", max_levels=10**4)
    assert "many" in table.categories["a"] and len(table.categories["a"]) == len({cells[0].strip() for cells in body})


def test_standard_input_is_read_as_a_csv(tmp_path, monkeypatch):
    import io
    import sys

    body = rows(300)
    text = "\n".join([",".join(HEADER), *(",".join(cells) for cells in body)]) + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    table = read.read_table("-", None, "y", None, "error", None, "w")
    want_x, want_y, want_w = written(body)
    same(table.x, want_x)
    same(table.weights, want_w)
    body[200][3] = "oops"
    text = "\n".join([",".join(HEADER), *(",".join(cells) for cells in body)]) + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert message(lambda: read.read_table("-", None, "y", None, "error", None, "w")) == (
        f"-: line 202, column 'y': 'oops' {NOT_A_NUMBER}"
    )
