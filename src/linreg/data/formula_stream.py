"""A formula on engine moments: the design made batch by batch, never the whole column.

In:  the plan (its Parquet files, its workers) and the Reading, whose
     `formula` is data/formula.py's parsed Formula. Out: (table, scaled) as
     read.read_moments gives them for plain columns -- the Table's features
     named as formulaic names its columns, its `formula` the fitted one that
     designs new rows -- and, on the Table's `again`, the designed batches of
     a later pass (a robust covariance's).

A term whose value on a row depends on that row alone -- np.log(x), x1:x2,
C(g), a column of text -- can be designed batch by batch once the levels of
the categorical terms are known:

1. The first batch of the files, designed, tells which terms are categorical,
   and refuses the stateful transforms (center, scale, poly, ...): they
   standardize or expand with numbers of the whole column (its mean, its
   spread), which no batch has.
2. A first pass reads only the categorical columns, for their distinct values
   (every worker its share, exchanged as analysis/sandwich.py packs labels).
3. formulaic's ModelSpec is made from the first batch and one row per level,
   so it knows every level, as it would from all the rows.
4. The statistics' pass designs every batch with that spec (data/moments.py).
"""
from dataclasses import replace

import numpy as np
import pyarrow as pa

from linreg.data.cells import everything_dropped, missing_error
from linreg.data.formula import CONTEXT, _finite, _formulaic, _held, _Rows, _values
from linreg.errors import LinregError

# Rows per batch by default: as many as hold about 64 MiB of designed values
# when each raw column becomes a few (formulaic's columns are not known yet).
DESIGN_VALUES = 2 << 20


def read_moments(plan, reading):
    """(table, scaled) of the formula `reading.formula` from the statistics of the designed batches."""
    import formulaic

    from linreg.data import moments as statistics
    from linreg.data.design import Table
    from linreg.data.read import Again

    source, cluster, formula = plan.source, plan.cluster, reading.formula
    rhs = sorted(_values(formula.parsed.rhs))
    names = sorted({*_values(formula.parsed.lhs), *rhs, *([reading.weights] if reading.weights else [])})
    rows = reading.batch_rows or max(1, DESIGN_VALUES // len(names))
    raw = _Raw(source, names, reading.missing, rows)
    first = next((frame for frame, _, _ in raw.frames(0, 1) if len(frame)), None)
    if first is None:
        raise everything_dropped(source.describe())
    levels = _levels(raw, _categorical(formula, first), cluster, reading.max_levels)
    # One row per level after the first batch: the spec then codes every level.
    extra = [first.iloc[:1].assign(**{name: [level]}) for name, found in levels.items() for level in found]
    with _formulaic(formula.text):
        import pandas

        frame = pandas.concat([first, *extra], ignore_index=True)
        matrices = formulaic.model_matrix(formula.parsed, frame, context=CONTEXT, na_action="ignore")
    features = [name for name in matrices.rhs.columns if name != "Intercept"]
    designed = _Designed(raw, matrices.model_spec, formula.text, reading.weights, len(features))

    def mine():
        return cluster.lockstep(designed.batches(cluster.rank, cluster.size))

    total, dropped = statistics.of_batches(mine(), len(features) + 1)
    (moments,), dropped = statistics.gathered(cluster, [total], dropped)
    scaled = statistics.problem(moments, features, formula.target, reading.intercept, reading.weights is not None,
                                source.describe())
    table = Table(source.describe(), features, formula.target, None, None, None, dropped, columns=rhs,
                  weights_column=reading.weights, unit="row")  # fmt: skip
    table.log_weights = moments.log_weights if reading.weights is not None else None
    texts = tuple(name for name in rhs if not pandas.api.types.is_numeric_dtype(first[name]))
    table.formula = replace(formula, spec=matrices.rhs.model_spec, columns=tuple(rhs), texts=texts)
    table.again = Again(plan, reading, features, designed=mine)
    return table, scaled


def _categorical(formula, first):
    """The columns the formula's categorical terms hold as they are, after the
    refusal of what needs the whole column."""
    import formulaic

    with _formulaic(formula.text):
        matrices = formulaic.model_matrix(formula.parsed, first, context=CONTEXT, na_action="ignore")
    spec = matrices.rhs.model_spec
    stateful = [*matrices.lhs.model_spec.transform_state, *spec.transform_state]
    if stateful:
        raise LinregError(f"the formula's {', '.join(stateful)} standardizes or expands with numbers of "
                          "the whole column (its mean, its spread), which engine moments, reading batch by batch, "
                          "does not have; write the transformed column into the files, or use --engine memory")
    columns = []
    for expr, (kind, _) in spec.encoder_state.items():
        if getattr(kind, "value", None) == "categorical":
            if _held(expr) not in first:
                raise LinregError(f"the formula's term {expr!r} is categorical of a computed value, whose levels "
                                  "engine moments cannot gather; write the value as a column into the files, or use "
                                  "--engine memory")
            columns.append(_held(expr))
    return sorted(set(columns))


def _levels(raw, columns, cluster, max_levels):
    """{column: its distinct values over every worker's rows}, in the first pass."""
    from linreg.analysis.sandwich import _pack_label, _unpack_label

    if not columns:  # nothing to gather: no pass
        return {}
    mine = {name: set() for name in columns}
    for frame, _, _ in cluster.lockstep(raw.frames(cluster.rank, cluster.size, columns)):
        for name in columns:
            mine[name].update(frame[name].unique().tolist())
    vector = np.concatenate([[len(found) for found in mine.values()],
                             *(_pack_label(level) for found in mine.values() for level in found)])  # fmt: skip
    levels = {name: set() for name in columns}
    for packed in cluster.gather_ragged(vector):
        at = len(columns)
        for name, count in zip(columns, packed[: len(columns)]):
            for _ in range(int(count)):
                level, at = _unpack_label(packed, at)
                levels[name].add(level)
    for name, found in levels.items():
        if len(found) > max_levels:
            raise LinregError(f"{raw.source.describe()}: column {name!r} has {len(found)} levels, more than the limit "
                              f"of {max_levels}; group its rare levels or leave it out, or raise the limit "
                              "(--max-levels, max_levels=)")
    return {name: sorted(found) for name, found in levels.items()}


class _Raw:
    """The raw columns a formula reads, from the Parquet files, as pandas frames of checked rows."""

    def __init__(self, source, names, missing, rows):
        self.source, self.names, self.missing, self.rows = source, names, missing, rows

    def frames(self, shard, shards, names=None):
        """(frame, its rows' _Rows, rows dropped) of a shard, batch by batch, in file order."""
        import pyarrow.parquet as pq

        from linreg.data.sources import shard_parts

        for part in shard_parts(self.source, shards)[shard]:
            with pq.ParquetFile(part.path) as file:
                row = part.first_row
                for record in file.iter_batches(batch_size=self.rows, row_groups=part.row_groups,
                                                columns=names or self.names):
                    yield self._frame(str(part.path), row, record)
                    row += record.num_rows

    def _frame(self, path, row, record):
        import pandas

        columns, missed = {}, np.zeros(record.num_rows, bool)
        for name, column in zip(record.column_names, record.columns):
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or \
                    pa.types.is_dictionary(column.type):  # text: categorical
                values = np.array(column.to_pylist(), dtype=object)
                absent = pandas.isna(values)
            else:
                values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)  # a null becomes NaN
                absent = np.isnan(values)
            if absent.any() and self.missing == "error":
                raise missing_error(f"{path}: row {row + int(np.argmax(absent))}", name, "empty")
            columns[name], missed = values, missed | absent
        keep = ~missed
        frame = pandas.DataFrame({name: values[keep] for name, values in columns.items()})
        return frame, _Rows(path, "row", np.arange(row, row + record.num_rows)[keep]), int(missed.sum())


class _Designed:
    """The raw rows designed by the fit's ModelSpecs, as the Batches the streamed passes read."""

    def __init__(self, raw, specs, text, weights, width):
        self.raw, self.specs, self.text, self.weights, self.width = raw, specs, text, weights, width

    def batches(self, shard, shards):
        from linreg.data.batches import Batch
        from linreg.data.cells import bad_weight

        for frame, rows, dropped in self.raw.frames(shard, shards):
            if not len(frame):
                yield Batch(np.empty((0, self.width)), np.empty(0), None, dropped)
                continue
            with _formulaic(self.text):
                matrices = self.specs.get_model_matrix(frame, context=CONTEXT, na_action="ignore")
            x = _finite(matrices.rhs.drop(columns="Intercept", errors="ignore"), rows)
            w = None if self.weights is None else frame[self.weights].to_numpy(np.float64)
            if w is not None and not np.all(w > 0):
                k = int(np.argmin(w > 0))
                raise bad_weight(rows.at(k), w[k])
            yield Batch(x, _finite(matrices.lhs, rows)[:, 0], w, dropped)
