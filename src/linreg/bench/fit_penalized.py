"""The fit benchmark's penalized case: K-fold cross-validation of the elastic
net over a path of alphas and several l1-ratios, linreg against scikit-learn's
ElasticNetCV, each in a fresh process, from a Parquet file to the chosen model.

    linreg bench --fit --penalized [--quick] [--cases N:D:parquet,...]

linreg        `linreg fit FILE --target y --engine moments --penalty elasticnet
              --l1-ratio 0.1,0.5,0.9 --alphas 100 --cv 5 --no-standardize`:
              one streamed pass gathers every fold's statistics, then every
              fit is on them (engine/penalty.py)
scikit-learn  pyarrow reads the file column by column into a float64 array;
              ElasticNetCV with the same l1-ratios, 100 alphas, n_jobs=2 and the
              same folds (data/folds.py's fold_of of the row numbers, as a
              PredefinedSplit), copy_X=False (its least memory: on a 23 GiB
              machine 1e7 x 64 still passed a 20 GiB cap), its other settings
              the defaults (tol 1e-4)

Both penalize the columns as they are (--no-standardize: scikit-learn does
not standardize), so they minimize the same objective over the same grid of
alphas. The figures are fit_runs' (wall seconds from launch to exit, the
process tree's peak memory, CPU seconds), the chosen (l1_ratio, alpha) of
each, and the largest difference between the two chosen models'
coefficients relative to the largest of them. Nothing here is a test.
"""
import json
import sys
import tempfile
import time
from pathlib import Path

from linreg.bench.fit_data import ensure_data
from linreg.bench.fit_report import gib
from linreg.bench.fit_runs import _launch, linreg_command

CASES = [(10**6, 50), (10**7, 64)]
QUICK_CASES = [(10**5, 50)]
L1_RATIOS, ALPHAS, FOLDS, SEED = (0.1, 0.5, 0.9), 100, 5, 0
SYSTEMS = ("linreg moments", "scikit-learn ElasticNetCV")


def command(name, path, d, out):
    if name == "linreg moments":
        return [*linreg_command(), "fit", str(path), "--target", "y", "--engine", "moments", "--penalty", "elasticnet",
                "--l1-ratio", ",".join(map(str, L1_RATIOS)), "--alphas", str(ALPHAS), "--cv", str(FOLDS),
                "--cv-seed", str(SEED), "--no-standardize", "--json", str(out), "--quiet"]  # fmt: skip
    return [sys.executable, "-m", "linreg.bench.fit_penalized", name, str(path), str(d), str(out)]


def run_case(n, d, data_dir, timeout, memory_cap, echo):
    """Every system on the file of (n, d): {name: figures}, and how far apart the chosen models are."""
    path, meta, _ = ensure_data(data_dir, n, d, "parquet", echo)
    systems = {}
    for name in SYSTEMS:
        with tempfile.TemporaryDirectory(prefix="linreg-fitbench-") as scratch:
            out = Path(scratch) / "out.json"
            figures, error = _launch(command(name, path, d, out), False, Path(scratch), timeout, memory_cap)
            result = json.loads(out.read_text()) if out.is_file() else {}
        figures["error"] = error
        figures["alpha"], figures["l1_ratio"] = result.get("alpha"), result.get("l1_ratio")
        figures["coefficients"] = result.get("coefficients")
        # linreg's proximal iterations along the paths on all the data, with warm starts and from zero, and its stages.
        figures.update({key: result.get(key) for key in ("iterations", "cold_iterations", "timings") if key in result})
        systems[name] = figures
        echo(f"  N={n:.0e} d={d} {name:28s} {_cell(figures)}", flush=True)
    return {"n": n, "d": d, "file": str(path), "file_bytes": meta["bytes"], "systems": systems,
            "max_rel_diff": _difference(systems)}  # fmt: skip


def _difference(systems):
    ours, theirs = (systems[name].get("coefficients") for name in SYSTEMS)
    if not ours or not theirs:
        return None
    top = max(abs(value) for value in theirs.values())
    return max(abs(ours[key] - theirs[key]) for key in theirs) / top


def _cell(figures):
    if figures["error"]:
        return f"failed: {figures['error']}"
    return (f"{figures['wall_s']:.1f} s ({gib(figures['peak_tree_rss_bytes'])} GiB, CPU {figures['cpu_s']:.0f} s), "
            f"l1_ratio {figures['l1_ratio']}, alpha {figures['alpha']:.4g}")


def format_report(cases):
    lines = ["| case | " + " | ".join(SYSTEMS) + " | chosen alpha equal | max rel diff of coefficients |",
             "|---" * (len(SYSTEMS) + 3) + "|"]
    for case in cases:
        figures = [case["systems"][name] for name in SYSTEMS]
        # The grids are computed apart, so their alphas agree to rounding only.
        same = all(f["alpha"] is not None for f in figures) and all(
            f["l1_ratio"] == figures[0]["l1_ratio"] and abs(f["alpha"] / figures[0]["alpha"] - 1) < 1e-9 for f in figures)
        close = f"{case['max_rel_diff']:.1e}" if case["max_rel_diff"] is not None else "-"
        lines.append(f"| N={case['n']:.0e} d={case['d']} parquet | " + " | ".join(_cell(f) for f in figures)
                     + f" | {'yes' if same else 'no'} | {close} |")
    return "\n".join(lines)


def benchmark(cases, data_dir, timeout, memory_cap, echo):
    return [run_case(n, d, data_dir, timeout, memory_cap, echo) for n, d in cases]


# --- the peers' process --------------------------------------------------------


def _read(path, d):
    import numpy as np
    import pyarrow.parquet as pq

    # A column at a time: the file's table and the array are never both whole in memory.
    rows = pq.ParquetFile(path).metadata.num_rows
    X = np.empty((rows, d))
    for j in range(d):
        X[:, j] = pq.read_table(path, columns=[f"x{j}"]).column(0).to_numpy()
    return X, pq.read_table(path, columns=["y"]).column(0).to_numpy()


def peer(path, d):
    """(l1_ratio, alpha, {name: coefficient}) of scikit-learn's cross-validated elastic net."""
    import numpy as np
    from sklearn.model_selection import PredefinedSplit

    from linreg.data.folds import fold_of

    X, y = _read(path, d)
    folds = PredefinedSplit(fold_of(np.arange(len(y)), FOLDS, SEED))
    from sklearn.linear_model import ElasticNetCV

    model = ElasticNetCV(l1_ratio=list(L1_RATIOS), alphas=ALPHAS, cv=folds, n_jobs=2, copy_X=False).fit(X, y)
    return float(model.l1_ratio_), float(model.alpha_), {"intercept": float(model.intercept_),
                                        **{f"x{j}": float(w) for j, w in enumerate(model.coef_)}}  # fmt: skip


def main(argv):
    _, path, d, out = argv
    started = time.monotonic()
    ratio, alpha, coefficients = peer(path, int(d))
    with open(out, "w") as sink:
        json.dump({"l1_ratio": ratio, "alpha": alpha, "coefficients": coefficients,
                   "seconds": time.monotonic() - started}, sink)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
