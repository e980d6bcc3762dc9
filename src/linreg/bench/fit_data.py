"""The files the fit benchmark times, and the answer every system should reach.

In: a data folder and a case (N rows, d features, "csv" or "parquet"). Out:
the file, written once in chunks and reused while its sidecar `FILE.json`
matches this recipe, and the sidecar, which holds the reference -- the
float64 least-squares fit of y on [1, X] of the numbers as read back from
the file, by a streamed TSQR that no system measured shares -- with the
problem's condition numbers. `max_relative_difference` says how far a
system's coefficients are from it.

The data: x normal with correlated columns (AR(1), rho = 0.6) of different
scales (0.1 to 1000) and means (up to 100), y = x·W + 5 + noise, fixed seeds.
"""
import json
import sys
import time
from pathlib import Path

SEED = 20240601
GENERATOR = 1  # bump when the data's recipe changes: cached files are then made anew
CHUNK_ROWS = 2**20
FORMATS = ("csv", "parquet")
# How the reference reads a file back: CSV in blocks of this many bytes,
# Parquet in batches of this many rows (bounded memory for any file).
CSV_BLOCK_BYTES, PARQUET_BATCH_ROWS = 64 * 2**20, 2**18


def columns(d):
    return [f"x{j}" for j in range(d)] + ["y"]


def problem(d, seed=SEED):
    """The model every file of width d is drawn from (the same for every N)."""
    import numpy as np

    rng = np.random.default_rng([seed, d])
    scales = rng.permutation(np.geomspace(0.1, 1000.0, d))
    means = np.clip(scales * rng.uniform(-5.0, 5.0, d), -100.0, 100.0)
    lags = np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
    mix = np.linalg.cholesky(0.6**lags)  # AR(1) correlation between neighbouring columns
    W = rng.choice([-1.0, 1.0], d) * rng.uniform(0.5, 2.0, d) / scales  # every term of about the same weight
    return {"scales": scales, "means": means, "mix": mix, "W": W, "b": 5.0, "noise": 1.0}


def chunk(model, d, index, rows, seed=SEED):
    """Rows [index * CHUNK_ROWS, index * CHUNK_ROWS + rows) of every file of width d, as (x, y)."""
    import numpy as np

    rng = np.random.default_rng([seed, d, index])
    z = rng.standard_normal((rows, d))
    x = np.asfortranarray(z @ model["mix"].T * model["scales"] + model["means"])
    y = x @ model["W"] + model["b"] + model["noise"] * rng.standard_normal(rows)
    return x, y


def data_path(data_dir, n, d, fmt):
    return Path(data_dir) / f"fit-n{n}-d{d}.{fmt}"


def sidecar_path(path):
    return path.with_name(path.name + ".json")


def _identity(n, d, fmt):
    return {"generator": GENERATOR, "seed": SEED, "n": n, "d": d, "format": fmt, "columns": columns(d)}


def cached(path, n, d, fmt):
    """The sidecar of `path` if the file is there and is the one asked for, else None."""
    try:
        meta = json.loads(sidecar_path(path).read_text())
    except (OSError, ValueError):
        return None
    same = all(meta.get(key) == value for key, value in _identity(n, d, fmt).items())
    if not same or not path.is_file() or path.stat().st_size != meta.get("bytes") or "reference" not in meta:
        return None
    return meta


def ensure_data(data_dir, n, d, fmt, echo):
    """The file for (n, d, fmt), its sidecar, and whether it was made now (missing or stale)."""
    from linreg.io import files

    path = data_path(data_dir, n, d, fmt)
    meta = cached(path, n, d, fmt)
    if meta is not None:
        return path, meta, False
    files.make_dir(path.parent)
    echo(f"  generating {path} ...", flush=True)
    started = time.perf_counter()
    exact = write_data(path, n, d, fmt)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    reference = reference_solution(path, d, fmt)
    meta = {
        **_identity(n, d, fmt),
        "bytes": path.stat().st_size,
        "chunk_rows": CHUNK_ROWS,
        "csv_round_trip_exact": exact,
        "generation_s": generated,
        "reference_s": time.perf_counter() - started,
        "true": coefficients_dict(problem(d)["b"], problem(d)["W"], d),
        **reference,
    }
    files.write_json(sidecar_path(path), meta)
    echo(
        f"  generated {path.name}: {meta['bytes'] / 2**20:.0f} MiB in {generated:.1f} s, "
        f"reference in {meta['reference_s']:.1f} s",
        flush=True,
    )
    return path, meta, True


def write_data(path, n, d, fmt):
    """Write the file chunk by chunk (bounded memory); for CSV, return whether the
    first chunk's text parsed back to the very same float64 values."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from linreg.io import files

    model = problem(d)
    names = columns(d)
    schema = pa.schema([(name, pa.float64()) for name in names])
    sidecar_path(path).unlink(missing_ok=True)
    exact = None
    with files.atomic_path(path) as tmp:
        writer = pacsv.CSVWriter(tmp, schema) if fmt == "csv" else pq.ParquetWriter(tmp, schema)
        try:
            for index, start in enumerate(range(0, n, CHUNK_ROWS)):
                x, y = chunk(model, d, index, min(CHUNK_ROWS, n - start))
                table = pa.Table.from_arrays([*(x[:, j] for j in range(d)), y], schema=schema)
                if fmt == "csv":
                    writer.write_table(table)
                    if exact is None:
                        sink = pa.BufferOutputStream()
                        pacsv.write_csv(table, sink)
                        back = pacsv.read_csv(pa.BufferReader(sink.getvalue()))
                        exact = all(np.array_equal(back.column(i).to_numpy(), table.column(i).to_numpy())
                                    for i in range(len(names)))  # fmt: skip
                else:
                    writer.write_table(table, row_group_size=CHUNK_ROWS)
        finally:
            writer.close()
    return exact


def _batches(path, fmt):
    """The file's record batches as read back by pyarrow, in bounded memory."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt == "csv":
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES))
        yield from reader
    else:
        yield from pq.ParquetFile(path).iter_batches(batch_size=PARQUET_BATCH_ROWS)


def reference_solution(path, d, fmt):
    """The float64 least-squares fit of y on [1, X] for the numbers in the file,
    by a streamed TSQR: R = qr([R; 1 X y] for each batch), then R11 beta = r12."""
    import numpy as np
    from scipy.linalg import solve_triangular

    names = columns(d)
    R = np.zeros((0, d + 2))
    rows = 0
    for batch in _batches(path, fmt):
        m = batch.num_rows
        block = np.empty((m, d + 2))
        block[:, 0] = 1.0
        for j, name in enumerate(names):
            block[:, j + 1] = batch.column(name).to_numpy(zero_copy_only=False)
        R = np.linalg.qr(np.vstack([R, block]), mode="r")
        rows += m
    R11, r12 = R[: d + 1, : d + 1], R[: d + 1, d + 1]
    beta = solve_triangular(R11, r12)
    scaled = R11 / np.linalg.norm(R11, axis=0)  # columns of unit length: the scale-free condition number
    return {
        "rows_read": rows,
        "reference": coefficients_dict(beta[0], beta[1:], d),
        "reference_method": "streamed TSQR of [1, X, y] (numpy.linalg.qr, mode r), then a triangular solve",
        "residual_sum_of_squares": float(R[d + 1, d + 1] ** 2) if R.shape[0] > d + 1 else 0.0,
        "condition_number": float(np.linalg.cond(R11)),
        "condition_number_unit_columns": float(np.linalg.cond(scaled)),
    }


def coefficients_dict(intercept, W, d):
    return {"intercept": float(intercept), **{f"x{j}": float(W[j]) for j in range(d)}}


def max_relative_difference(coefficients, reference):
    """Largest |c - r| / |r| over the intercept and the coefficients (as `linreg fit` reports it)."""
    missing = [name for name in reference if name not in coefficients]
    if missing:
        raise ValueError(f"no coefficient for {', '.join(missing[:3])}")
    return max(
        abs(float(coefficients[name]) - r) / max(abs(r), sys.float_info.min) for name, r in reference.items()
    )
