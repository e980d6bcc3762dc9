"""Drivers: how the heart's loop is run, chunk after chunk.

The same `run_chunk` (core/training.py) runs eagerly ("none"), as a
`tf.function` graph ("function") or compiled by XLA ("xla"); "auto" picks one
from the problem's size. Between chunks the driver records the history,
reports progress, writes TensorBoard scalars, saves checkpoints and notices
SIGINT/SIGTERM. docs/engine.md explains the modes and where the constants
below were measured.
"""
import math
import weakref
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from linreg.core.training import CONVERGED, DIVERGED, RUNNING, STALLED, LoopState, measure, run_chunk
from linreg.engine import signals
from linreg.errors import DivergenceError, LinregError
from linreg.plan import COMPILE_CHOICES  # the registry: "auto" and the modes below

COMPILE_MODES = COMPILE_CHOICES[1:]


def _run_packed_chunk(model, optimizer, state, x, y, tol, max_epochs, chunk, patience):
    """run_chunk with the loop state carried as two vectors, which XLA runs
    fastest; in the other modes packing would cost operations (LoopState.pack)."""
    return run_chunk(model, optimizer, state, x, y, tol, max_epochs, chunk, patience, packed=True)


_DRIVERS = {
    "none": run_chunk,
    "function": tf.function(run_chunk),
    "xla": tf.function(_run_packed_chunk, jit_compile=True),
}


# Where a run stands when no chunk ran to measure it (resumed with nothing
# left to do), measured the same way as the epochs ran: on large data an
# eager measurement would cost several compiled epochs.
_MEASURES = {"none": measure, "function": tf.function(measure), "xla": tf.function(measure, jit_compile=True)}

# A compiled chunk is traced for the Python objects it is given (model,
# optimizer, loop state): a new one means a new trace and, for XLA, a new
# compile of a few tenths of a second. So each model keeps one loop state,
# reset at the start of every run, and repeated runs on one model (the
# benchmark, refinement rounds) reuse the compiled program.
_STATES = weakref.WeakKeyDictionary()


def _state_for(model):
    state = _STATES.get(model)
    if state is None:
        state = _STATES[model] = LoopState(model.W.dtype)
    state.reset()
    return state

# The "auto" rule (docs/engine.md). Compiling costs about COMPILE_SECONDS once
# per data shape; it saves eager mode's dispatch cost per epoch, about
# EAGER_SECONDS_PER_EPOCH plus EAGER_SECONDS_PER_EXAMPLE per row. Below that
# saving over the whole run, eager is fastest; otherwise XLA, except for large
# [N, d] matrices (d > 1, N·d >= FUNCTION_MIN_ELEMENTS), where Eigen's
# multi-threaded kernels in "function" beat XLA's generated code.
COMPILE_SECONDS = 0.5
EAGER_SECONDS_PER_EPOCH = 2e-3
EAGER_SECONDS_PER_EXAMPLE = 4e-9
FUNCTION_MIN_ELEMENTS = 2**22

# Chunks: long enough that the return to Python between them costs about 1%
# of the compiled epochs (under a millisecond against 0.05-0.1 s),
# short enough that progress refreshes a few times a second and a signal is
# answered promptly. Rounded to a power of two so that a data shape gets one
# chunk length, hence one compiled program. History per chunk stays below
# HISTORY_BYTES so that a chunk never weighs on memory.
CHUNK_SECONDS = 0.1
# Cost of a compiled epoch on small data (measured at N = 1,000: the graph
# executor dispatches each operation, XLA runs one native loop) and per
# element on large data, where the passes over memory take the time. An epoch
# costs about the larger of the two, not their sum: small data sit in cache,
# where an element costs a fraction of a nanosecond (the sum made XLA's chunks
# at N = 1,000 last 20 ms, with the return to Python 3-5% of them).
SECONDS_PER_EPOCH = {"function": 3e-5, "xla": 1.5e-6}
COMPILED_SECONDS_PER_ELEMENT = 1e-9
MAX_CHUNK, HISTORY_BYTES = 2**16, 2**24


def resolve_compile(compile, n_examples, n_features, epochs):
    """The concrete mode ("none", "function" or "xla") that `compile` means here."""
    if compile not in COMPILE_CHOICES:
        raise LinregError(f"compile must be one of {', '.join(COMPILE_CHOICES)}, not {compile!r}")
    if compile != "auto":
        return compile
    saving = epochs * (EAGER_SECONDS_PER_EPOCH + EAGER_SECONDS_PER_EXAMPLE * n_examples)
    if saving < COMPILE_SECONDS:
        return "none"
    if n_features > 1 and n_examples * n_features >= FUNCTION_MIN_ELEMENTS:
        return "function"
    return "xla"


def chunk_epochs(mode, n_examples, n_features):
    """Epochs per chunk for this mode and data shape (a power of two)."""
    if mode == "none":
        per_epoch = EAGER_SECONDS_PER_EPOCH + EAGER_SECONDS_PER_EXAMPLE * n_examples
    else:
        per_epoch = max(SECONDS_PER_EPOCH[mode], COMPILED_SECONDS_PER_ELEMENT * n_examples * (n_features + 1))
    by_memory = HISTORY_BYTES // (8 * (n_features + 3))
    epochs = max(1, min(CHUNK_SECONDS / per_epoch, by_memory, MAX_CHUNK))
    return 2 ** int(math.log2(epochs))


@dataclass
class History:
    """A row per step k: the loss and gradient norm the step saw, and W and b
    before it; `round` says which training run took it (0: the first, k:
    refinement round k, engine/solve.py). A driver's History ends with one
    more row, the state training ended in, with no step after it."""

    loss: np.ndarray  # [k]
    gradient_norm: np.ndarray  # [k]
    W: np.ndarray  # [k, d]
    b: np.ndarray  # [k]
    round: np.ndarray = None  # [k]; None: all 0

    def __post_init__(self):
        if self.round is None:
            self.round = np.zeros(len(self.loss), np.int64)

    @staticmethod
    def join(parts):
        """One History from consecutive pieces (copied once, not per chunk)."""
        return History(*(np.concatenate(column) for column in zip(*(part.columns() for part in parts))))

    def arrays(self):
        """What a checkpoint saves: the first run's columns (its rounds are all 0)."""
        return self.loss, self.gradient_norm, self.W, self.b

    def columns(self):
        return (*self.arrays(), self.round)

    def __getitem__(self, rows):
        return History(*(column[rows] for column in self.columns()))

    def __len__(self):
        return len(self.loss)


@dataclass
class TrainResult:
    history: History
    epochs: int  # epochs actually run
    converged: bool
    compile: str
    stalled: bool = False  # converged because the gradient stopped falling at the rounding floor

    @property
    def loss(self):
        return float(self.history.loss[-1])


class Listener:
    """What a driver tells between chunks; every method is optional."""

    def started(self, epoch, optimizer):
        """Before the first chunk; `epoch` is where training (re)starts."""

    def chunk(self, epoch, new, first_gradient_norm):
        """After each chunk: `new` is the History of the epochs it ran."""

    def finished(self, epoch, history):
        """At the end, with the whole History (its last row the final state)."""


# Epochs without a new lowest gradient norm after which training has stalled
# at the rounding floor (core/training.py), unless the caller says otherwise.
DEFAULT_PATIENCE = 1000


def train(model, optimizer, x, y, epochs, tol=0.0, compile="auto", listeners=(), checkpoints=None,
          patience=DEFAULT_PATIENCE):
    """Train `model` in place on (x, y) with `optimizer`; return a TrainResult.

    Runs chunks of epochs until the loop's state says converged or diverged,
    or `epochs` have run (counted from the start of training, resumed or
    not); the rules are core/training.py's `judge`, with `patience` epochs
    for the stall rule. With `checkpoints` (engine.checkpoint.Checkpoints),
    state and history are restored from the latest checkpoint first, and
    saved every few seconds and at the end. SIGINT and SIGTERM stop training after the
    current chunk: state is saved and Interrupted is raised.

    Raises DivergenceError (exit code 3) when the loss blows up; its message
    gives the epoch, the rate used, the rate above which the optimizer
    diverges on this data and a rate to try.
    """
    dtype = model.W.dtype
    x, y = tf.cast(x, dtype), tf.cast(y, dtype)
    n, d = int(x.shape[0]), int(x.shape[1])
    # The modes round differently (XLA fuses and reorders), so a run that may
    # be continued with a larger cap picks its mode without the cap: its
    # epochs then match those of a run given the larger cap from the start.
    mode = resolve_compile(compile, n, d, epochs if checkpoints is None else math.inf)
    chunk = chunk_epochs(mode, n, d)
    tol_ = tf.constant(tol, dtype)
    step = _DRIVERS[mode]

    end = tf.constant(epochs, tf.int64)
    final = None  # where the run ended, as the chunk that ended it measured it

    def run(state, patience):
        nonlocal final
        arrays, count, final = step(model, optimizer, state, x, y, tol_, end, chunk, patience)
        return arrays, count

    def measured():
        return final if final is not None else _MEASURES[mode](model, x, y)

    def diverged(epoch):
        from linreg.analysis.curvature import largest_eigenvalue

        return divergence_error(optimizer, epoch, largest_eigenvalue(x, y))

    return loop(model, optimizer, run, measured, diverged, epochs, mode, listeners, checkpoints, patience)


def loop(model, optimizer, run, measure, diverged, epochs, mode, listeners=(), checkpoints=None,
         patience=DEFAULT_PATIENCE):
    """The driver's loop around any way of running epochs: `run(state,
    patience)` runs some, judging each (core/training.py's `judge`), and
    returns their history arrays and count; `measure()` gives the loss and
    gradient norm where training ended; `diverged(epoch)` the error to raise."""
    dtype, d = model.W.dtype, int(model.W.shape[0])
    state = _state_for(model)
    patience = tf.constant(patience, tf.int32)
    parts = []  # the history, a piece per chunk, joined when needed
    if checkpoints is not None:
        restored = checkpoints.restore(model, optimizer, state, mode)
        parts += [restored] if restored is not None else []
    for listener in listeners:
        listener.started(int(state.epoch), optimizer)
    with signals.deferred() as caught:
        while int(state.status) == RUNNING and int(state.epoch) < epochs:
            arrays, count = run(state, patience)
            new = History(*(np.asarray(a)[: int(count)] for a in arrays))
            parts.append(new)
            for listener in listeners:
                listener.chunk(int(state.epoch), new, float(state.first_gradient_norm))
            if checkpoints is not None and (caught or checkpoints.due()):
                parts = [History.join(parts)]
                checkpoints.save(parts[0])
            if caught:
                raise signals.Interrupted(caught[0])
    # The state training ended in: measured, not moved.
    loss, norm = measure()
    final = History(np.asarray(loss)[None], np.asarray(norm)[None], model.W.numpy()[None], model.b.numpy()[None])
    empty = History(*(np.zeros((0, *shape), dtype.as_numpy_dtype) for shape in ((), (), (d,), ())))
    result_history = History.join([empty, *parts, final])  # one copy of the whole history
    history = result_history[:-1]  # the steps alone, for the checkpoint
    status, epochs_run = int(state.status), int(state.epoch)
    if checkpoints is not None:
        checkpoints.save(history)
    for listener in listeners:
        listener.finished(epochs_run, result_history)
    if status == DIVERGED:
        error = diverged(epochs_run)
        error.history = result_history  # what happened up to the blow-up, for the log
        raise error
    return TrainResult(result_history, epochs_run, status in (CONVERGED, STALLED), mode, status == STALLED)


def divergence_error(optimizer, epoch, largest=None):
    """The DivergenceError for a run that blew up at `epoch`: what happened
    and a rate to try. With `largest`, the Hessian's largest eigenvalue, it
    also gives the rate above which this optimizer diverges on this data."""
    rate = float(optimizer.learning_rate)
    if largest is None:
        return DivergenceError(f"training diverged at epoch {epoch} with learning rate {rate:g}; "
                               f"try --learning-rate {rate / 2:.3g}")
    bound = optimizer.stable_rate(largest)
    limit = "the largest rate at which this optimizer converges on this data (from the largest eigenvalue of the loss's Hessian)"
    if rate > bound:
        why = f"learning rate {rate:g} is above {bound:.4g}, {limit}"
    else:
        # Below the bound the iteration converges in exact arithmetic; what
        # tripped the check is momentum's temporary rise or a loss too large
        # for the number type. A smaller rate helps with both.
        why = f"the loss blew up although learning rate {rate:g} is below {bound:.4g}, {limit}"
    return DivergenceError(f"training diverged at epoch {epoch}: {why}; try --learning-rate {min(bound, rate) / 2:.3g}")
