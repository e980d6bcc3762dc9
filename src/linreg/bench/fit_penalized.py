"""The fit benchmark's penalized case: K-fold cross-validation of the elastic
net over a path of alphas and several l1-ratios, linreg against scikit-learn's
ElasticNetCV, glum's GeneralizedLinearRegressorCV and Spark MLlib's
CrossValidator, each in a fresh process, from a Parquet file to the chosen model.

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
glum          the same array and folds; GeneralizedLinearRegressorCV, family
              normal, the same l1-ratios, 100 alphas down to 1e-3 times the
              largest (min_alpha_ratio: its default would go further), P1/P2
              identity, n_jobs=2, its other settings the defaults
Spark MLlib   fit_runs' local[2] session reads the file (spark.read.parquet,
              VectorAssembler); CrossValidator(numFolds=5, seed 0, metric MSE)
              over LinearRegression(standardization=False) with a grid of
              regParam = alpha x elasticNetParam = l1_ratio: for each l1-ratio
              the 100 alphas of linreg's path (from its JSON). Spark draws its
              folds itself, so its choice may differ from the others'.

Every one penalizes the columns as they are (--no-standardize; the peers'
defaults), so they minimize the same objective, scikit-learn and glum over
grids computed as linreg's is (alpha_max per l1-ratio down to 1e-3 of it).
The figures are fit_runs' (wall seconds from launch to exit, the process
tree's peak memory, CPU seconds), the chosen (l1_ratio, alpha) of each, and
the largest difference between each peer's chosen model's coefficients and
linreg's, relative to the largest of linreg's. A peer whose library is not
installed is reported unavailable. Nothing here is a test.
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
SYSTEMS = ("linreg moments", "scikit-learn ElasticNetCV", "glum GeneralizedLinearRegressorCV",
           "Spark MLlib CrossValidator")  # fmt: skip
UNAVAILABLE = 3  # the exit code of a peer whose library is not installed


def command(name, path, d, out, grid):
    if name == "linreg moments":
        return [*linreg_command(), "fit", str(path), "--target", "y", "--engine", "moments", "--penalty", "elasticnet",
                "--l1-ratio", ",".join(map(str, L1_RATIOS)), "--alphas", str(ALPHAS), "--cv", str(FOLDS),
                "--cv-seed", str(SEED), "--no-standardize", "--json", str(out), "--quiet"]  # fmt: skip
    return [sys.executable, "-m", "linreg.bench.fit_penalized", name, str(path), str(d), str(out), str(grid)]


def run_case(n, d, data_dir, timeout, memory_cap, echo, systems=SYSTEMS):
    """Every system on the file of (n, d): {name: figures}, with how far each peer's chosen model is from linreg's."""
    path, meta, _ = ensure_data(data_dir, n, d, "parquet", echo)
    figured = {}
    with tempfile.TemporaryDirectory(prefix="linreg-fitbench-") as case_dir:
        grid = Path(case_dir) / "grid.json"  # linreg's alphas for each l1-ratio, which Spark's grid takes
        for name in systems:
            figured[name] = _run(name, path, d, grid, timeout, memory_cap)
            echo(f"  N={n:.0e} d={d} {name:34s} {_cell(figured[name])}", flush=True)
    ours = figured.get(SYSTEMS[0], {}).get("coefficients")
    for name, figures in figured.items():
        figures["max_rel_diff"] = None if name == SYSTEMS[0] else _difference(ours, figures["coefficients"])
    return {"n": n, "d": d, "file": str(path), "file_bytes": meta["bytes"], "systems": figured}


def _run(name, path, d, grid, timeout, memory_cap):
    with tempfile.TemporaryDirectory(prefix="linreg-fitbench-") as scratch:
        out = Path(scratch) / "out.json"
        figures, error = _launch(command(name, path, d, out, grid), False, Path(scratch), timeout, memory_cap)
        result = json.loads(out.read_text()) if out.is_file() else {}
    if figures["exit_code"] == UNAVAILABLE:
        error = error.removeprefix("error: ")
    if "path" in result:
        grid.write_text(json.dumps({key: result["path"][key] for key in ("l1_ratios", "alphas")}))
    figures["error"] = error
    figures["alpha"], figures["l1_ratio"] = result.get("alpha"), result.get("l1_ratio")
    figures["coefficients"] = result.get("coefficients")
    # linreg's proximal iterations along the paths on all the data, with warm starts and from zero, and its stages.
    figures.update({key: result.get(key) for key in ("iterations", "cold_iterations", "timings") if key in result})
    return figures


def _difference(ours, theirs):
    if not ours or not theirs:
        return None
    return max(abs(ours[key] - theirs[key]) for key in ours) / max(abs(value) for value in ours.values())


def _cell(figures):
    if figures["error"]:
        return f"failed: {figures['error']}"
    return (f"{figures['wall_s']:.1f} s ({gib(figures['peak_tree_rss_bytes'])} GiB, CPU {figures['cpu_s']:.0f} s), "
            f"l1_ratio {figures['l1_ratio']}, alpha {figures['alpha']:.4g}")


def _same_choice(figures, ours):
    # The grids are computed apart, so their alphas agree to rounding only.
    return (ours["alpha"] is not None and figures["l1_ratio"] == ours["l1_ratio"]
            and abs(figures["alpha"] / ours["alpha"] - 1) < 1e-9)  # fmt: skip


def format_report(cases):
    lines = ["| case | system | time, peak memory, chosen model | same choice as linreg | max rel diff to linreg |",
             "|---|---|---|---|---|"]
    for case in cases:
        ours = case["systems"].get(SYSTEMS[0], {"alpha": None})
        for name, figures in case["systems"].items():
            close = f"{figures['max_rel_diff']:.1e}" if figures["max_rel_diff"] is not None else "-"
            same = "-" if figures is ours or figures["alpha"] is None else ("yes" if _same_choice(figures, ours) else "no")
            lines.append(f"| N={case['n']:.0e} d={case['d']} parquet | {name} | {_cell(figures)} | {same} | {close} |")
    return "\n".join(lines)


def benchmark(cases, data_dir, timeout, memory_cap, echo, systems=SYSTEMS):
    return [run_case(n, d, data_dir, timeout, memory_cap, echo, systems) for n, d in cases]


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


def _folds(rows):
    """linreg's folds of the rows (data/folds.py), as a scikit-learn splitter."""
    import numpy as np
    from sklearn.model_selection import PredefinedSplit

    from linreg.data.folds import fold_of

    return PredefinedSplit(fold_of(np.arange(rows), FOLDS, SEED))


def _chosen(ratio, alpha, intercept, coef):
    return float(ratio), float(alpha), {"intercept": float(intercept), **{f"x{j}": float(w) for j, w in enumerate(coef)}}


def sklearn_peer(path, d, grid):
    from sklearn.linear_model import ElasticNetCV

    X, y = _read(path, d)
    model = ElasticNetCV(l1_ratio=list(L1_RATIOS), alphas=ALPHAS, cv=_folds(len(y)), n_jobs=2, copy_X=False).fit(X, y)
    return _chosen(model.l1_ratio_, model.alpha_, model.intercept_, model.coef_)


def glum_peer(path, d, grid):
    from glum import GeneralizedLinearRegressorCV

    X, y = _read(path, d)
    # Given alphas, glum would use one list for every l1-ratio; its own grid is linreg's per l1-ratio.
    model = GeneralizedLinearRegressorCV(family="normal", l1_ratio=list(L1_RATIOS), n_alphas=ALPHAS,
                                         min_alpha_ratio=1e-3, cv=_folds(len(y)), n_jobs=2).fit(X, y)  # fmt: skip
    return _chosen(model.l1_ratio_, model.alpha_, model.intercept_, model.coef_)


def spark_peer(path, d, grid):
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import LinearRegression
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

    from linreg.bench.fit_runs import SPARK_DRIVER_MEMORY
    from linreg.bench.peers import spark_session

    path_alphas = json.loads(Path(grid).read_text())  # linreg's run wrote it
    spark = spark_session(SPARK_DRIVER_MEMORY)
    features = [f"x{j}" for j in range(d)]
    frame = VectorAssembler(inputCols=features, outputCol="features").transform(spark.read.parquet(path))
    model = LinearRegression(featuresCol="features", labelCol="y", fitIntercept=True, standardization=False)
    maps = [m for ratio, alphas in zip(path_alphas["l1_ratios"], path_alphas["alphas"])
            for m in ParamGridBuilder().baseOn({model.elasticNetParam: ratio}).addGrid(model.regParam, alphas).build()]
    best = CrossValidator(estimator=model, estimatorParamMaps=maps, numFolds=FOLDS, seed=SEED,
                          evaluator=RegressionEvaluator(labelCol="y", metricName="mse")).fit(frame).bestModel  # fmt: skip
    return _chosen(best.getElasticNetParam(), best.getRegParam(), best.intercept, best.coefficients.toArray())


PEERS = dict(zip(SYSTEMS[1:], (sklearn_peer, glum_peer, spark_peer)))


def main(argv):
    name, path, d, out, grid = argv
    started = time.monotonic()
    try:
        ratio, alpha, coefficients = PEERS[name](path, int(d), grid)
    except ModuleNotFoundError as missing:
        print(f"error: unavailable: {missing.name} is not installed (pip install -e '.[bench]')", file=sys.stderr)
        sys.exit(UNAVAILABLE)
    with open(out, "w") as sink:
        json.dump({"l1_ratio": ratio, "alpha": alpha, "coefficients": coefficients,
                   "seconds": time.monotonic() - started}, sink)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
