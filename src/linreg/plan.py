"""The plan stage: what will run, decided once, before any data is read.

In: the arguments of `linreg.fit()` (or the CLI's flags, which become them).
Out: a Plan -- the engine that holds the data, the source of the files, the
workers (TF_CONFIG), the method that trains -- or a LinregError naming the
refused argument or combination and what to do instead.

This module is also the one registry of choices: the CLI's flags, the API's
checks and the refusals below all read the names from here. It imports
neither TensorFlow nor numpy, so `linreg fit --help` stays instant.
"""
import math
import numbers
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from linreg.errors import LinregError

# --- the registry -------------------------------------------------------------

DTYPES = ("float64", "float32")
# "auto" is orthogonal: QR makes the standardized columns orthonormal, one
# descent step lands, refinement rounds follow (engine/solve.py). The others
# are core/optimizers.py's rules on the standardized data.
OPTIMIZERS = ("auto", "orthogonal", "gd", "momentum", "nesterov", "cg")
ENGINES = ("auto", "memory", "moments", "stream")
COMPILE_CHOICES = ("auto", "none", "function", "xla")
MISSING = ("error", "drop")
# Every epoch of engine stream is a pass over the files: the rules that need
# only gradients, not the smallest eigenvalue of the Hessian.
STREAM_OPTIMIZERS = ("auto", "gd", "momentum", "nesterov")
# Past this many features the statistics ((d + 1)² numbers per worker, and a
# (d + 1)² matrix product per batch) cost more than the stream engine's epochs
# (Spark's normal solver stops at the same number): engine stream gathers only
# means and spreads, and trains with rules that need no λ_min.
MAX_MOMENTS_FEATURES = 4096
WIDE_OPTIMIZERS = ("auto", "gd", "nesterov")
DEFAULT_EPOCHS = 100_000
MAX_EPOCHS = 10**15  # the loop counts epochs in int64; 1e15 epochs would take years anyway
# A categorical column becomes a float64 column per level but one, so its
# memory is rows x levels x 8 bytes: 100,000 levels over 120,000 rows would
# take 89 GiB. Past this many levels a column is refused before anything is
# built; max_levels (--max-levels) raises the limit.
MAX_LEVELS = 1000

# Engine "auto" keeps the rows in memory when the reader's copy (about this many
# times the CSV's bytes, measured, or 8 bytes a number for Parquet, times 4)
# takes at most this share of the memory available.
CSV_MEMORY_FACTOR, PARQUET_MEMORY_FACTOR, MEMORY_SHARE = 13, 4, 0.5
# Optimizer "auto" on rows in memory trains on their statistics (gathered beyond float64) when
# the κ they reveal is below this line, where the normal equations gave QR's digits on every
# design measured (docs/engine-line.md: 71 below κ 42.5); not with a robust covariance (its
# sandwich is made from the rows' QR factor).
STATISTICS_LINE = 40.0


def method_of(optimizer, engine):
    """The method that trains: "auto" is orthogonal in memory and on the
    statistics, nesterov on engine stream (every epoch a pass over the files)."""
    if optimizer != "auto":
        return optimizer
    return "nesterov" if engine == "stream" else "orthogonal"


# --- the checks of single arguments ---------------------------------------------

def real(value):
    """A finite real number, and not a bool (True is 1 to Python, never to a user)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value, least, most=math.inf):
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and least <= value <= most


def _one_of(value, choices):
    return isinstance(value, str) and value in choices


def check_arguments(dtype, optimizer, learning_rate, epochs, tol, compile, progress, intercept, checkpoint, logdir,
                    max_levels, batch_rows, missing, penalty="none"):
    if not _one_of(dtype, DTYPES):
        raise LinregError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if not (_one_of(optimizer, OPTIMIZERS) or _registered(optimizer)):
        raise LinregError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {optimizer!r}")
    if learning_rate != "auto" and not (real(learning_rate) and learning_rate > 0):
        raise LinregError(f"learning_rate must be 'auto' or a number greater than 0, not {learning_rate!r}")
    if learning_rate != "auto" and optimizer == "cg":
        raise LinregError("optimizer cg finds its step length itself at every step; leave learning_rate at 'auto'")
    if not _whole(epochs, 1, MAX_EPOCHS):
        raise LinregError(f"epochs must be a whole number from 1 to {MAX_EPOCHS:.0e}, not {epochs!r}")
    if tol is not None and not (real(tol) and tol >= 0):
        raise LinregError(f"tol must be a number of at least 0, not {tol!r}")
    if not _one_of(compile, COMPILE_CHOICES):
        raise LinregError(f"compile must be one of {', '.join(COMPILE_CHOICES)}, not {compile!r}")
    if not (intercept is True or intercept is False):
        raise LinregError(f"intercept must be True or False, not {intercept!r}")
    if not (progress is True or progress is False or progress == "auto"):
        raise LinregError(f"progress must be True, False or 'auto', not {progress!r}")
    for name, folder in (("checkpoint", checkpoint), ("logdir", logdir)):
        if folder is not None and not isinstance(folder, (str, os.PathLike)):
            raise LinregError(f"{name} must be a folder's path (a string or a Path), not {folder!r}")
    if not _whole(max_levels, 2):
        raise LinregError(f"max_levels must be a whole number of at least 2, not {max_levels!r}")
    if batch_rows is not None and not _whole(batch_rows, 1):
        raise LinregError(f"batch_rows must be a whole number of at least 1, not {batch_rows!r}")
    if not _one_of(missing, MISSING):
        raise LinregError(f"missing must be one of {', '.join(MISSING)}, not {missing!r}")
    if _one_of(penalty, PENALTIES[1:]):
        _check_penalized(dtype, optimizer, learning_rate, epochs, tol, checkpoint, logdir)


# The coefficients' covariance types (statsmodels' names; analysis/covariance.py
# computes them) and the keywords each takes (its cov_kwds), with their defaults.
COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster", "HAC")
COV_KEYWORDS = {
    "cluster": {"groups": None, "use_correction": True, "df_correction": True},
    "HAC": {"maxlags": None, "kernel": "bartlett", "use_correction": False},
}
HAC_KERNELS = ("bartlett", "uniform")  # their lag weights: analysis/covariance.py's KERNELS


def covariance(cov_type, cov_kwds):
    """(name, keywords) of the coefficients' covariance type, its keywords'
    defaults filled in; cluster's groups are a column's name or one label per row."""
    name = cov_type_name(cov_type)
    if cov_kwds is not None and not isinstance(cov_kwds, Mapping):
        raise LinregError(f"cov_kwds must be a dict of the type's keywords (e.g. {{'maxlags': 4}}), not {cov_kwds!r}")
    kwds = cov_keywords(name, cov_kwds)
    groups = kwds.get("groups", ())
    if groups is None:
        raise LinregError("cov_type 'cluster' needs cov_kwds groups (--cov cluster:COL): a column's name, or one "
                          "cluster label per row")
    if not hasattr(groups, "__len__"):  # a column's name, or the labels
        raise LinregError(f"cov_kwds groups must be a column's name or one cluster label per row, not {groups!r}")
    return name, kwds


def cov_type_name(cov_type):
    """The type's name as users know it (any case accepted)."""
    names = {name.lower(): name for name in COV_TYPES}
    if not isinstance(cov_type, str) or cov_type.lower() not in names:
        raise LinregError(f"unknown covariance type {cov_type!r}; choose one of {', '.join(COV_TYPES)}")
    return names[cov_type.lower()]


def cov_keywords(cov_type, cov_kwds):
    """The keywords of `cov_type` (a name from COV_TYPES) with their defaults filled in, after the checks."""
    import numpy as np  # for its bool_ (here, not at the top: the module loads no numpy)

    given = dict(cov_kwds or {})
    allowed = COV_KEYWORDS.get(cov_type, {})
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        takes = f"takes only {', '.join(allowed)}" if allowed else "takes no cov_kwds"
        raise LinregError(f"cov_type {cov_type!r} {takes}, not {', '.join(map(repr, unknown))}")
    kwds = {**allowed, **given}
    for name in ("use_correction", "df_correction"):
        if name in kwds and not isinstance(kwds[name], (bool, np.bool_)):
            raise LinregError(f"cov_kwds {name} must be True or False, not {kwds[name]!r}")
    if cov_type == "HAC":
        lags = kwds["maxlags"]
        if lags is None:
            raise LinregError("cov_type 'HAC' needs cov_kwds maxlags, the number of lags to include (e.g. 4)")
        if not _whole(lags, 0):
            raise LinregError(f"HAC maxlags must be a whole number of lags, 0 or more, not {lags!r}")
        kwds["maxlags"] = int(lags)
        kernel = str(kwds["kernel"]).lower()
        if kernel not in HAC_KERNELS:
            raise LinregError(f"unknown HAC kernel {kwds['kernel']!r}; choose one of {', '.join(HAC_KERNELS)}")
        kwds["kernel"] = kernel
    return kwds


def _check_groups(cov, columns, source=None):
    """A cluster's groups named by a column must name one of `columns` (None: the data has no names) of
    the files of `source` (None: a frame or arrays)."""
    groups = cov[1].get("groups")
    if isinstance(groups, str) and (columns is None or groups not in columns):
        where = "the data" if source is None else source.describe()
        listed = f"; its columns are {', '.join(map(str, columns))}" if columns is not None else ""
        raise LinregError(f"{where} has no column {groups!r} for the cluster groups{listed}"
                          + ("" if columns is not None else ": give the groups as one label per row"))


def _registered(name):
    """Whether `name` is a rule of core/optimizers.py's REGISTRY -- where a new
    rule is added -- looked up only when that module is loaded (adding a rule
    loads it), so that checking the usual names needs no TensorFlow."""
    optimizers = sys.modules.get("linreg.core.optimizers")
    return optimizers is not None and isinstance(name, str) and name in optimizers.REGISTRY


def names(value, what):
    """None, or the list of column names `value` gives: one name, or a list (any iterable) of them."""
    if value is None or isinstance(value, str):
        return value if value is None else [value]
    if isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        listed = list(value)
        # A frame's column labels may be whole numbers.
        if all(isinstance(name, (str, numbers.Integral)) and not isinstance(name, bool) for name in listed):
            return listed
    raise LinregError(f"{what} must be a column name or a list of column names, not {value!r}")


# --- the penalty (penalized.py) -------------------------------------------------

PENALTIES = ("none", "l2", "l1", "elasticnet")
L1_RATIOS = {"l2": 0.0, "l1": 1.0}  # elasticnet's default is 0.5, or the l1_ratio given
SELECTIONS = ("min", "1se")
# The statistics of the rows in each fold are what every penalized fit and its
# cross-validation are solved from; engine stream gathers none.
STREAM_PENALTY = ("engine stream cannot fit a penalty: penalized fits are solved from the statistics (n, means, "
                  "cross-products, per fold), which engine stream does not gather; use --engine moments or memory")


@dataclass
class Penalty:
    """A checked penalty: scikit-learn's objective (engine/penalty.py) at one
    alpha, or along a path of them, with K-fold cross-validation."""

    name: str  # "l2", "l1" or "elasticnet"
    l1_ratios: list  # one, or several to cross-validate
    alphas: object  # the alphas (one without a path), or None for a grid of `grid` from alpha_max down
    grid: int
    cv: object  # K, or None
    cv_seed: int
    select: str  # "min" or "1se": the alpha the final model uses
    standardize: bool


def penalty(name, alpha, l1_ratio, standardize, alphas, cv, cv_seed, select, cov_type, intercept):
    """The Penalty of fit()'s penalty arguments, or None for an ordinary fit."""
    given = {"alpha": alpha, "l1_ratio": l1_ratio, "alphas": alphas, "cv": cv}
    if not _one_of(name, PENALTIES):
        raise LinregError(f"penalty must be one of {', '.join(PENALTIES)}, not {name!r}")
    if name == "none":
        extra = [key for key, value in given.items() if value is not None]
        if extra or select != "min":
            raise LinregError(f"{(extra or ['select'])[0]} needs a penalty: give penalty l2, l1 or elasticnet")
        return None
    if alpha is not None and alphas is not None:
        raise LinregError("give alpha (one fit) or alphas (a path), not both")
    if alpha is not None and not (real(alpha) and alpha >= 0):
        raise LinregError(f"alpha must be a number >= 0, not {alpha!r}")
    grid, listed = (alphas, None) if _whole(alphas, 1) else (0, alphas)
    if listed is not None and not (isinstance(listed, Iterable) and not isinstance(listed, (str, bytes))
                                   and (listed := list(listed)) and all(real(a) and a >= 0 for a in listed)):
        raise LinregError(f"alphas must be a whole number of alphas (a grid from alpha_max down) or a list of "
                          f"numbers >= 0, not {alphas!r}")
    if alphas is None:  # one fit, at scikit-learn's default alpha unless one is given
        listed = [1.0 if alpha is None else alpha]
    ratios = _l1_ratios(name, l1_ratio)
    if cv is not None and not _whole(cv, 2):
        raise LinregError(f"cv must be a whole number of folds, at least 2, not {cv!r}")
    if cv is not None and alphas is None:
        raise LinregError("cross-validation chooses among a path of alphas: give alphas (a number or a list), not alpha")
    if cv is None and len(ratios) > 1:
        raise LinregError("several l1_ratios are chosen among by cross-validation: give cv")
    if not _whole(cv_seed, 0, 2**63 - 1):
        raise LinregError(f"cv_seed must be a whole number from 0 to 2**63 - 1, not {cv_seed!r}")
    if not _one_of(select, SELECTIONS):
        raise LinregError(f"select must be one of {', '.join(SELECTIONS)}, not {select!r}")
    if select != "min" and cv is None:
        raise LinregError(f"select {select} picks an alpha by cross-validation: give cv")
    if not (standardize is True or standardize is False):
        raise LinregError(f"standardize must be True or False, not {standardize!r}")
    if cov_type != "nonrobust":
        raise LinregError(f"a penalized fit reports no standard errors, so cov_type {cov_type} means nothing for it; "
                          "leave cov_type at nonrobust")
    if not intercept:
        raise LinregError("a penalized fit always has its intercept (never penalized); leave intercept at True")
    return Penalty(name, ratios, listed, grid, cv, cv_seed, select, standardize)


def _l1_ratios(name, l1_ratio):
    if name in L1_RATIOS:
        if l1_ratio is not None:
            raise LinregError(f"l1_ratio goes with penalty elasticnet; penalty {name} is l1_ratio {L1_RATIOS[name]:g}")
        return [L1_RATIOS[name]]
    ratios = [0.5] if l1_ratio is None else list(l1_ratio) if isinstance(l1_ratio, Iterable) else [l1_ratio]
    if not ratios or not all(real(r) and 0 <= r <= 1 for r in ratios):
        raise LinregError(f"l1_ratio must be a number in [0, 1] (0: ridge, 1: lasso) or a list of them, not {l1_ratio!r}")
    return ratios


def _check_penalized(dtype, optimizer, learning_rate, epochs, tol, checkpoint, logdir):
    """The training options a penalized fit has no use for: it is solved by
    proximal gradient steps in float64 until they stop moving."""
    for option, value, default in (("dtype", dtype, "float64"), ("optimizer", optimizer, "auto"),
                                   ("learning_rate", learning_rate, "auto"), ("epochs", epochs, DEFAULT_EPOCHS),
                                   ("tol", tol, None), ("checkpoint", checkpoint, None), ("logdir", logdir, None)):
        if value != default:
            raise LinregError(f"a penalized fit is solved by proximal gradient (FISTA) in float64 to convergence; "
                              f"leave {option} out")


# --- the plan -------------------------------------------------------------------

@dataclass
class Plan:
    engine: str  # "memory", "moments" or "stream"
    source: object  # data/sources.py's Source of the files; None for frames, arrays, standard input
    cluster: object  # engine/cluster.py: this process's place among the workers (Single when alone)
    method: str  # what trains: "orthogonal" or an optimizer's name
    statistics: bool = False  # rows in memory: their statistics below STATISTICS_LINE, else QR (scaling.from_statistics)


def plan(data, engine, target, weights, categorical, optimizer, cov=("nonrobust", {}), penalized=False):
    """The Plan for fitting `data`, every refusal of a combination made here
    (`cov`: `covariance`'s (name, keywords); `penalized`: a Penalty is given)."""
    from linreg.engine import cluster as clusters

    if not _one_of(engine, ENGINES):
        raise LinregError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    # Settled from TF_CONFIG's size alone: a refused combination never joins a cluster.
    config = clusters.read_config()
    if isinstance(data, (str, Path)):  # a file, a folder, a glob, or "-" for standard input
        if target is None:
            raise LinregError("target is required with a CSV file: name the column to predict")
        if weights is not None and not isinstance(weights, str):
            raise LinregError("with a file, weights is the name of its weights column")
    is_path = isinstance(data, (str, Path)) and str(data) != "-"
    if not is_path:
        if engine in ("moments", "stream") or config.size > 1:
            raise LinregError(
                f"engine {engine if engine != 'auto' else 'moments'} streams files: give a CSV or Parquet path (a file, "
                "a folder or a glob); data frames, arrays and standard input are fitted in memory"
            )
        _check_groups(cov, list(data.columns) if hasattr(data, "columns") else None)
        first = _statistics_first("memory", optimizer, cov, penalized)
        return Plan("memory", None, clusters.current(config), method_of(optimizer, "memory"), first)
    from linreg.data.sources import open_source

    source = open_source(data)
    if engine == "auto":
        engine = "moments" if config.size > 1 or not _fits_in_memory(source) else "memory"
        if engine == "moments" and len(source.header) - 1 > MAX_MOMENTS_FEATURES:
            engine = "stream"
    _check_groups(cov, source.header, source)
    if engine != "memory" and not isinstance(cov[1].get("groups", ""), str):
        raise LinregError(f"engine {engine} reads the cluster groups with the rows, in the pass after training: "
                          "give the name of their column (--cov cluster:COL), not the labels")
    _refuse(engine, config.size, categorical, optimizer, wide=len(source.header) - 1 > MAX_MOMENTS_FEATURES,
            cov_type=cov[0], penalized=penalized)
    return Plan(engine, source, clusters.current(config), method_of(optimizer, engine),
                _statistics_first(engine, optimizer, cov, penalized))


def _statistics_first(engine, optimizer, cov, penalized):
    return engine == "memory" and optimizer == "auto" and cov[0] == "nonrobust" and not penalized


def _refuse(engine, workers, categorical, optimizer, wide, cov_type="nonrobust", penalized=False):
    """The combinations that cannot run, each with what to do instead."""
    if penalized and engine == "stream":
        raise LinregError(STREAM_PENALTY)
    if engine == "memory" and workers > 1:
        raise LinregError("several workers (TF_CONFIG) share the data with --engine moments or stream, not memory")
    if engine == "memory":
        return
    if cov_type != "nonrobust" and engine == "stream" and wide:
        raise LinregError(
            f"cov_type {cov_type} needs the cross-products of the features, which engine stream does not gather "
            f"past {MAX_MOMENTS_FEATURES} features; use fewer features, or cov_type nonrobust"
        )
    if categorical:
        raise LinregError(
            f"engine {engine} reads numeric columns only; one-hot code {categorical[0]!r} in the files, "
            "or use --engine memory"
        )
    if engine == "stream" and optimizer not in STREAM_OPTIMIZERS:
        raise LinregError(f"engine stream trains with gd, momentum or nesterov (default), not {optimizer}")
    if engine == "stream" and wide and optimizer not in WIDE_OPTIMIZERS:
        raise LinregError(
            f"with more than {MAX_MOMENTS_FEATURES} features engine stream trains with gd or nesterov "
            f"(default); {optimizer} needs the smallest eigenvalue of the Hessian, which needs their cross-products"
        )


def _fits_in_memory(source):
    from linreg.data.sources import count_rows

    csv = source.format == "csv"
    need = CSV_MEMORY_FACTOR * source.bytes if csv else PARQUET_MEMORY_FACTOR * 8 * len(source.header) * count_rows(source)
    return need <= MEMORY_SHARE * available_memory()


def available_memory():
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30
