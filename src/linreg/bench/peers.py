"""The process a peer fits one file in, for the fit benchmark.

    python -m linreg.bench.peers SYSTEM PATH FORMAT D OUT.json LAUNCHED [SPARK_MEMORY]

SYSTEM is "statsmodels" (pandas reads, sm.OLS fits), "sklearn" (pandas
reads, LinearRegression fits), "lstsq" (pyarrow reads, numpy's lstsq fits),
"spark" (a local Spark session reads, MLlib fits) or "pyarrow" (pyarrow
reads, nothing fits). The file has the columns x0 ... x{D-1} and y; LAUNCHED
is the parent's time.monotonic() at launch. OUT.json gets the coefficients
("intercept", "x0", ...), the phases (seconds from the launch to: started,
imported, read, Spark's session ready, fitted), the rows read (pyarrow and
lstsq) and the process's peak resident memory. Each peer imports only its
own libraries, inside its function, so that it pays for nothing else.
"""
import json
import sys
import time

from linreg.bench import memory


def pandas_peer(system, path, fmt, features, mark):
    import pandas as pd

    if system == "statsmodels":
        import statsmodels.api as sm
    else:
        from sklearn.linear_model import LinearRegression
    mark("imported_s")
    frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    mark("read_s")
    if system == "statsmodels":
        params = sm.OLS(frame["y"], sm.add_constant(frame[features])).fit().params
        return {"intercept": params["const"], **{f: params[f] for f in features}}
    model = LinearRegression().fit(frame[features], frame["y"])
    return {"intercept": model.intercept_, **dict(zip(features, model.coef_))}


def arrow_peer(system, path, fmt, features, mark, result):
    import numpy as np

    if fmt == "csv":
        import pyarrow.csv as pacsv

        read = pacsv.read_csv
    else:
        import pyarrow.parquet as pq

        read = pq.read_table
    mark("imported_s")
    table = read(path)
    mark("read_s")
    result["rows"] = table.num_rows
    if system == "pyarrow":
        return None
    A = np.empty((table.num_rows, len(features) + 1))
    A[:, 0] = 1.0
    for j, name in enumerate(features):
        A[:, j + 1] = table.column(name).to_numpy()
    y = table.column("y").to_numpy()
    del table
    beta = np.linalg.lstsq(A, y, rcond=None)[0]
    return {"intercept": beta[0], **dict(zip(features, beta[1:]))}


def spark_session(driver_memory):
    """A local Spark session on the machine's two cores, without UI, quiet but for errors."""
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("linreg-fitbench")
        .config("spark.driver.memory", driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_peer(path, fmt, features, mark, driver_memory):
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import LinearRegression
    from pyspark.sql.types import DoubleType, StructField, StructType

    mark("imported_s")
    spark = spark_session(driver_memory)
    mark("session_s")
    if fmt == "csv":
        schema = StructType([StructField(name, DoubleType()) for name in features + ["y"]])
        frame = spark.read.csv(path, header=True, inferSchema=False, schema=schema)
    else:
        frame = spark.read.parquet(path)
    assembled = VectorAssembler(inputCols=features, outputCol="features").transform(frame)
    model = LinearRegression(
        featuresCol="features", labelCol="y", solver="normal", regParam=0.0, elasticNetParam=0.0,
        standardization=True,
    ).fit(assembled)  # fmt: skip
    return {"intercept": model.intercept, **dict(zip(features, model.coefficients.toArray()))}


def fit_file(system, path, fmt, d, mark, result, spark_memory=None):
    """The coefficients ({name: value}) of one peer fitted to the file; None for "pyarrow", which only reads.

    mark(phase) is called as each phase ends; `result` gets the rows read (pyarrow and lstsq)."""
    features = [f"x{j}" for j in range(d)]
    if system in ("statsmodels", "sklearn"):
        return pandas_peer(system, path, fmt, features, mark)
    if system in ("lstsq", "pyarrow"):
        return arrow_peer(system, path, fmt, features, mark, result)
    if system == "spark":
        return spark_peer(path, fmt, features, mark, spark_memory)
    raise SystemExit(f"unknown system {system}")


def main(argv):
    system, path, fmt, d, out, launched, *spark_memory = argv
    d, launched = int(d), float(launched)
    phases = {"started_s": time.monotonic() - launched}

    def mark(name):
        phases[name] = time.monotonic() - launched

    result = {}
    coefficients = fit_file(system, path, fmt, d, mark, result, *spark_memory)
    mark("fitted_s")
    if coefficients is not None:
        result["coefficients"] = {name: float(value) for name, value in coefficients.items()}
    result["phases"] = phases
    result["vmhwm_bytes"] = memory()[1]
    with open(out, "w") as sink:
        json.dump(result, sink)


if __name__ == "__main__":
    main(sys.argv[1:])
