"""The design of a formula: raw columns become the model matrix formulaic makes.

In: a formula in Wilkinson's notation as formulaic reads it ("y ~ x1 + C(g)
+ np.log(x2) + x1:x2"; "- 1" or "+ 0" leaves the intercept out) and the raw
columns of a file, folder, glob, standard input or data frame. Out: for a
fit, design.py's Table, its features named as formulaic names its columns
("C(g)[T.b]", "np.log(x2)", "x1:x2"), and the Formula the fit keeps:
formulaic's ModelSpec of the right side, which holds every categorical's
levels and every stateful transform's state (center, scale, poly, ...), so
new rows are designed exactly as the fit's were (Formula.design). On engine
moments the rows are designed batch by batch instead (data/formula_stream.py).

The raw columns follow the rules of every other source (design.py): a
missing value stops the read or drops its row, a column of text is
categorical, every other value is a finite number.
"""
import ast
import base64
import pickle
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from linreg.data.cells import described, everything_dropped, missing_error, missing_texts
from linreg.data.design import (MAX_LEVELS, Table, _numbers, check_feature_names, check_fittable, check_weights,
                                find_categories)  # fmt: skip
from linreg.data.frames import _column, frame_labels, real_array
from linreg.errors import LinregError

# What a formula may call besides formulaic's own transforms (C, center, scale, poly, ...).
CONTEXT = {"np": np}


@dataclass
class Formula:
    """A formula, parsed, and once fitted the ModelSpec that designs new rows."""

    text: str
    target: str  # the left side, as the report names it
    intercept: bool
    parsed: object = None  # formulaic's Formula
    spec: object = None  # formulaic's ModelSpec of the right side, after the fit
    columns: tuple = ()  # the raw columns the right side reads
    texts: tuple = ()  # those of them that held text in the fit: read as text again

    def design(self, data):
        """The design matrix [N, d] of new raw rows (a path or a data frame)."""
        columns, rows, _ = _raw(data, None, self.columns, self.texts, "error")
        if len(rows.positions) == 0:
            raise LinregError(f"{rows.source} has no data rows; give at least one row to predict")
        frame = _frame(columns, rows, self.texts)
        from formulaic.errors import DataMismatchWarning

        with _formulaic(self.text):
            try:
                rhs = self.spec.get_model_matrix(frame, context=CONTEXT, na_action="ignore")
            except DataMismatchWarning as warning:
                raise _unseen(self.spec, frame, rows, warning) from None
        return _finite(rhs.drop(columns="Intercept", errors="ignore"), rows)

    def to_json(self):
        """The formula for an export's metadata: the ModelSpec pickled (the
        one form formulaic saves it in), beside its text for people."""
        document = {name: getattr(self, name) for name in ("text", "target", "intercept")}
        spec = base64.b64encode(pickle.dumps(self.spec)).decode("ascii")
        return {**document, "columns": list(self.columns), "texts": list(self.texts), "model_spec": spec}

    @classmethod
    def from_json(cls, document, path):
        """The Formula of an export's metadata (to_json); `path` the export's, for the message."""
        try:
            spec = pickle.loads(base64.b64decode(document["model_spec"]))
            return cls(document["text"], document["target"], document["intercept"], None, spec,
                       tuple(document["columns"]), tuple(document["texts"]))  # fmt: skip
        except Exception as error:  # anything an edited or truncated file raises
            raise LinregError(f"the export {path} is damaged: its formula cannot be read ({type(error).__name__}); "
                              "export the model again") from None


def check_streamed(plan, penalized):
    """The refusals of a formula off the memory engine (data/formula_stream.py
    designs it there), before anything is read."""
    if plan.engine == "stream":
        raise LinregError("engine stream designs no formula: use --engine moments, whose one pass designs each batch "
                          "(or memory)")
    if penalized:
        raise LinregError("a penalized fit with a formula needs the rows in memory: use --engine memory")
    if plan.source.format != "parquet":
        raise LinregError(f"{plan.source.describe()}: engine moments designs a formula from Parquet files, whose "
                          "columns keep their types from batch to batch; convert the CSV to Parquet, or use --engine "
                          "memory")


def parse(text, target=None, features=None, categorical=None, intercept=True):
    """The Formula of `text`, checked before any data is read: one target on
    the left, no target, features or categorical given beside it, and an
    intercept left out in the formula itself."""
    given = [name for name, value in (("target", target), ("features", features), ("categorical", categorical))
             if value is not None]  # fmt: skip
    if given:
        instead = "; write a categorical column as C(name) in it" if given[0] == "categorical" else ""
        raise LinregError(f"a formula names its target and features itself: give {given[0]} (--{given[0]}) "
                          f"or a formula, not both{instead}")  # fmt: skip
    if not isinstance(text, str) or not text.strip():
        raise LinregError(f"formula must be text such as 'y ~ x1 + C(g)', not {text!r}")
    from formulaic import Formula as Parsed

    with _formulaic(text):
        parsed = Parsed(text)
    lhs = getattr(parsed, "lhs", None)
    if lhs is None:
        raise LinregError(f"the formula {text!r} has no target: write it as 'y ~ {text.strip()}'")
    if len(lhs) != 1:
        raise LinregError(f"the formula {text!r} has {len(lhs)} terms on its left; give one target: 'y ~ ...'")
    has_intercept = any(term.degree == 0 for term in parsed.rhs)
    if has_intercept and not intercept:
        raise LinregError(f"intercept=False (--no-intercept), but the formula {text!r} has an intercept: "
                          "leave it out in the formula itself with '- 1' (y ~ x - 1)")  # fmt: skip
    return Formula(text, str(lhs[0]), has_intercept, parsed)


def table(data, source, formula, missing="error", weights=None, max_levels=MAX_LEVELS, penalized=False):
    """The checked Table of `formula` on the raw columns of `data` (`source`:
    the plan's Source of its files, or None), with the fitted Formula as
    `table.formula`; `penalized`: more features than rows are allowed."""
    if isinstance(data, tuple):
        raise LinregError("a formula names columns: give a CSV path or a data frame, not arrays")
    named = weights if isinstance(weights, str) else None
    variables = sorted(_values(formula.parsed.lhs) | _values(formula.parsed.rhs))
    names = variables + [named] * (named is not None and named not in variables)
    columns, rows, dropped = _raw(data, source, names, (), missing, named)
    values = None if weights is None or named else real_array(weights, "weights").reshape(-1)
    if values is not None and len(values) != len(rows.positions):
        raise LinregError(f"{rows.source}: {len(values)} weights for {len(rows.positions)} rows; "
                          "give one weight per row")  # fmt: skip
    if missing == "drop":  # a CSV's reader has left its rows out already, a frame's are left out here
        missed = [np.isnan(v) if isinstance(v, np.ndarray) else missing_texts(v) for v in columns.values()]
        keep = ~np.logical_or.reduce(missed + ([np.isnan(values)] if values is not None else []))
        if not keep.any():
            raise everything_dropped(rows.source)
        if not keep.all():
            columns = {name: v[keep] if isinstance(v, np.ndarray) else v.filter(keep) for name, v in columns.items()}
            values = None if values is None else values[keep]
            rows, dropped = replace(rows, positions=rows.positions[keep]), dropped + int((~keep).sum())
    # Columns of text are categorical (the weights are numbers, checked as such).
    texts = {name: v for name, v in columns.items() if not isinstance(v, np.ndarray) and name != named}
    categories, _ = find_categories(texts, (), rows.source, rows.unit, rows.positions, max_levels)
    frame = _frame(columns, rows, categories)
    with _formulaic(formula.text):
        import formulaic

        matrices = formulaic.model_matrix(formula.parsed, frame, context=CONTEXT, na_action="ignore")
    if matrices.lhs.shape[1] != 1:
        raise LinregError(f"the target {formula.target!r} of the formula holds text; the target must be numbers")
    x = matrices.rhs.drop(columns="Intercept", errors="ignore")
    if x.shape[1] == 0:
        raise LinregError(f"the formula {formula.text!r} has no feature on its right; a fit needs at least one")
    y = _finite(matrices.lhs, rows)[:, 0]
    rhs = sorted(_values(formula.parsed.rhs))
    fitted = replace(formula, spec=matrices.rhs.model_spec, columns=tuple(rhs),
                     texts=tuple(name for name in rhs if name in categories))  # fmt: skip
    result = Table(rows.source, list(x.columns), formula.target, _finite(x, rows), y, rows.positions, dropped,
                   columns=rhs, unit=rows.unit)  # fmt: skip
    check_feature_names(result.features, result.features, result.target, result.path)
    result.weights = columns[named] if named else values
    result.weights_column = named
    result.formula = fitted
    check_weights(result)
    check_fittable(result, formula.intercept, penalized)
    return result


def _values(side):
    """The names of the columns a side of a formula reads (not the functions it calls)."""
    from formulaic.parser.types import Factor
    from formulaic.transforms import TRANSFORMS
    from formulaic.utils.variables import Variable, get_required_variables

    names = set()
    for factor in {factor for term in side for factor in term.factors}:
        if factor.eval_method is Factor.EvalMethod.LOOKUP:
            names.add(factor.expr)
        elif factor.eval_method is Factor.EvalMethod.PYTHON:
            # Without the transforms in the context: formulaic's own
            # Factor.required_variables asks a stateful one (center(x1)) by
            # evaluating its arguments, which fails without the data and
            # leaves the factor's columns out.
            variables = get_required_variables(factor.expr, {})
            names |= {str(v.root) for v in variables if Variable.Role.VALUE in v.roles
                      and str(v.root).split(".")[0] not in {**TRANSFORMS, **CONTEXT}}  # fmt: skip
    return names


@dataclass
class _Rows:
    """Where the rows come from, for messages: the source and each row's line or row."""

    source: str
    unit: str  # "line" (a CSV's) or "row"
    positions: np.ndarray

    def at(self, k):
        return f"{self.source}: {self.unit} {self.positions[k]}"


def _raw(data, source, names, texts, missing, weights=None):
    """({name: float64 numbers or pyarrow texts}, their _Rows, rows dropped)
    of the columns `names`; `texts` are read as text."""
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        labels = frame_labels(data)
        absent = [name for name in names if name not in labels]
        if absent:
            raise LinregError(f"the data frame has no column {absent[0]!r} that the formula reads; "
                              f"its columns are {', '.join(labels)}")  # fmt: skip
        columns = {name: _column(data[labels[name]], name, "the data frame", text=name in texts) for name in names}
        return columns, _Rows("the data frame", "row", np.arange(len(data))), 0
    if not isinstance(data, (str, Path)):
        raise LinregError(f"cannot read a {type(data).__name__}: give a CSV path or a data frame")
    from linreg.data import parquet
    from linreg.data.read import _whole
    from linreg.data.sources import open_source

    source = source or open_source(data, stdin=True)
    absent = [name for name in names if name not in source.header]
    if absent:
        raise LinregError(f"{source.describe()} has no column {absent[0]!r} that the formula reads; "
                          f"its columns are {', '.join(source.header)}")  # fmt: skip
    single_csv = source.format == "csv" and len(source.paths) == 1
    if texts and not (single_csv or source.format == "parquet"):
        raise LinregError(f"{source.describe()}: the model codes {texts[0]!r} as categories, which are read from "
                          "a single CSV file or Parquet files only; give one")  # fmt: skip
    if source.format == "parquet":  # its columns of text are categorical, as a CSV's are
        texts = [*texts, *(name for name in parquet.texts(source.paths, names) if name not in texts and name != weights)]
        parquet.check_numeric(source.paths, [name for name in names if name not in texts])
    # The weights last: the reader checks that column's values itself.
    ordered = [name for name in names if name != weights] + ([weights] if weights else [])
    switchable = [name for name in ordered if name not in texts and name != weights] if single_csv else ()
    columns, lines, dropped, _ = _whole(source, ordered, missing, weights is not None, texts, switchable)
    return columns, _Rows(source.describe(), "line" if source.format == "csv" else "row", lines), dropped


def _frame(columns, rows, texts):
    """The pandas DataFrame formulaic designs: the checked numbers, and the
    texts of the categorical columns (a missing one refused, at its row)."""
    import pandas

    numbers = _numbers(rows.source, rows.unit, rows.positions,
                       {name: v for name, v in columns.items() if name not in texts})  # fmt: skip
    frame = {}
    for name, values in columns.items():
        if name in texts:
            absent = missing_texts(values)
            if absent.any():
                k = int(np.argmax(absent))
                raise missing_error(rows.at(k), name, described(values[k].as_py()))
            frame[name] = values.to_pylist()
        else:
            frame[name] = numbers[name]
    return pandas.DataFrame(frame, index=pandas.RangeIndex(len(rows.positions)))


def _finite(matrix, rows):
    """A model matrix (pandas) as float64, once every value is finite: a
    transform such as np.log(0) can make one that is not."""
    values = matrix.to_numpy(dtype=np.float64)
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        k, j = bad[0]
        raise LinregError(f"{rows.at(k)}: the formula's term {matrix.columns[j]!r} is {values[k, j]}; only finite "
                          "numbers can be fitted, change the term or leave the row out")  # fmt: skip
    return values


def _unseen(spec, frame, rows, warning):
    """The LinregError of a level of new rows the fit did not see: named by
    its column and row when a categorical term holds a column as it is (g,
    C(g), C(g, ...)), else as formulaic's warning names it."""
    for expr, (kind, state) in spec.encoder_state.items():
        levels, name = state.get("categories"), _held(expr)
        if getattr(kind, "value", None) != "categorical" or levels is None or name not in frame:
            continue
        unseen = np.flatnonzero(~frame[name].isin(levels).to_numpy())
        if len(unseen):
            k = int(unseen[0])
            return LinregError(f"{rows.at(k)}, column {name!r}: level {frame[name].tolist()[k]!r} was not seen in "
                               f"the fit (its levels are {', '.join(map(repr, levels))})")  # fmt: skip
    seen = str(warning).split(": ", 1)[-1].split(". They")[0]
    return LinregError(f"{rows.source}: a categorical term of the formula meets levels the fit did not see ({seen}); "
                       "predict only rows of levels the fit saw")  # fmt: skip


def _held(expr):
    """The column a categorical factor holds as it is -- `g`, `C(g)` or `C(g, ...)` -- or None."""
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError:  # a column's name that is no Python name, as formulaic looks it up
        return expr
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "C" and node.args:
        node = node.args[0]
    return node.id if isinstance(node, ast.Name) else None


@contextmanager
def _formulaic(text):
    """formulaic at work: its errors as one LinregError that names the
    formula, a level the fit did not see (DataMismatchWarning) raised for
    _unseen to name, and numpy's warnings about values a transform cannot
    take silenced: _finite refuses those, at their row."""
    from formulaic.errors import DataMismatchWarning, FormulaicError

    with warnings.catch_warnings():
        warnings.simplefilter("error", DataMismatchWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            yield
        except (FormulaicError, SyntaxError) as error:
            reason = " ".join(str(error).split("\n\n")[0].split()).rstrip(".")
            raise LinregError(f"the formula {text!r}: {reason}; check its syntax, column and function names") from None
