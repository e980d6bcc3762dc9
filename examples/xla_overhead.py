"""Where `linreg xla`'s epoch spends more than `seed xla`'s, suspect by suspect.

    .venv/bin/python examples/xla_overhead.py [--repeats N] [--sizes 1e3,1e5,1e7]

On d = 1, float32, N = 1e3, 1e5 and 1e7 (`linreg bench --quick` has the
first and the last), with as many epochs a call as the benchmark gives
linreg xla there (linreg.bench.epoch), in one process:

  linreg xla, seed xla     the two systems of the benchmark
  seed xla, matvec         seed xla with W of shape [d] and tf.linalg.matvec,
                           as the project's model writes it (the matrix form)
  driver, one chunk        linreg xla with all epochs in one compiled chunk
  run_chunk alone          the compiled chunk, called once, no driver at all
                           (and no reset of the loop state)
  its copy, nothing out    the same with a copy of run_chunk that can leave
                           parts out (the rows below), leaving out none
  - history, W b | - history | - gradient norm | - stopping rules | - stall rule
  | - state variables | - rate variable | - packed state
                           the copy with one part left out: W and b in the
                           history, the whole history, the gradient's norm
                           (the loss stands in for it), the stopping rules
                           (judge), only judge's stall rule, the loop state
                           read from and written back to its variables
                           (constants instead), the learning rate read from
                           its variable (a Python number instead), the state
                           carried as two vectors (LoopState.pack; eight
                           scalars instead)
  - all eight              the copy with all eight left out
  W [d, 1], x @ W          the copy, nothing out, on a model with W of shape
                           [d, 1] and x @ W, as seed xla writes it
  rules every 16, if | loop
                           the copy, nothing out, applying the stopping rules
                           after every 16th epoch only, picked by a
                           conditional, or after an inner loop of the 15
                           epochs before it

Each row gives the median and the best seconds per epoch over the timed
calls (after one call that traces and compiles), each with its ratio to seed
xla's in the same run, in wall time and in this process's CPU time; on a
shared machine the best CPU time is the figure other work disturbs least.
Then linreg xla's CPU time split into a cost per epoch, per call of
driver.train and per chunk after the first (driver_costs).
"""
import argparse
import statistics
import time

import tensorflow as tf

from linreg.bench.epoch import epochs_for
from linreg.bench.epoch_report import format_seconds
from linreg.bench.epoch_systems import LEARNING_RATE, SYSTEMS, make_data
from linreg.core import training
from linreg.core.model import LinearModel
from linreg.core.optimizers import GradientDescent
from linreg.core.step import loss_and_gradients, update
from linreg.engine import driver

# Wall time is what the benchmark reports; this process's CPU time (all its
# threads) is what other work on a shared machine disturbs least.
CLOCKS = {"wall": time.perf_counter, "CPU": time.process_time}
EVERYTHING = {"W_b_history": True, "history": True, "norm": True, "judge": True, "stall": True, "state": True,
              "rate_variable": True, "packed": True}  # fmt: skip
# The loop runs until its chunk ends: no run reaches this epoch, so the loop
# state need not be reset between timed calls.
NO_END = tf.constant(2**62, tf.int64)
PATIENCE = tf.constant(training.NO_STALL)


def judge_without_stall(carried, loss, gradient_norm, tol, patience):
    """core/training.py's judge without its stall rule (counter, best norm and test)."""
    first = carried["epoch"] == 0
    first_loss = tf.where(first, loss, carried["first_loss"])
    first_gradient_norm = tf.where(first, gradient_norm, carried["first_gradient_norm"])
    growth = tf.where(loss > carried["previous_loss"], carried["growth"] + 1, 0)
    diverged = ~tf.math.is_finite(loss) | ((growth >= training.GROWTH_EPOCHS) & (loss > first_loss))
    converged = (tol > 0) & (gradient_norm <= tol * first_gradient_norm)
    status = tf.where(diverged, training.DIVERGED, tf.where(converged, training.CONVERGED, training.RUNNING))
    return {**carried, "epoch": carried["epoch"] + 1, "status": status, "growth": growth, "previous_loss": loss,
            "first_loss": first_loss, "first_gradient_norm": first_gradient_norm}  # fmt: skip


def fresh_state(dtype):
    """The loop state of LoopState.reset as constants: nothing read from variables."""
    counters = {name: tf.constant(0, tf.int64 if name == "epoch" else tf.int32) for name in training.LoopState.COUNTERS}
    return {**counters, **{name: tf.constant(float("inf"), dtype) for name in training.LoopState.NUMBERS}}


def chunk_loop(W_b_history, history, norm, judge, stall, state, rate_variable, packed, judge_every=1, inner=False):
    """core/training.py's run_chunk, with the parts named False left out. With
    judge_every > 1 the stopping rules follow every judge_every-th epoch
    only, picked by a conditional, or (inner) after a loop of the epochs
    in between, inside the chunk's loop."""

    def run_chunk(model, optimizer, loop_state, x, y, tol, max_epochs, chunk, patience):
        width = model.W.shape.num_elements() + 3 if W_b_history else 2  # W [d] or, in ColumnModel, [d, 1]
        records = [tf.TensorArray(model.W.dtype, size=chunk, element_shape=[width])] if history else []
        encode, decode = (loop_state.pack, loop_state.unpack) if packed else (dict, dict)
        carried = encode(loop_state.read() if state else fresh_state(model.W.dtype))
        rules = training.judge if stall else judge_without_stall

        def epoch(i, records, carried, judged):
            carried = decode(carried)
            W, b = model.W.read_value(), model.b.read_value()
            loss, gradients = loss_and_gradients(model, x, y)
            if rate_variable:
                update(model, optimizer, gradients)
            else:
                for variable, gradient in zip(model.trainable_variables, gradients):
                    variable.assign_sub(LEARNING_RATE * gradient)
            gradient_norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in gradients])) if norm else loss
            row = [[loss, gradient_norm], tf.reshape(W, [-1]), [b]] if W_b_history else [[loss, gradient_norm]]
            records = [r.write(i, tf.concat(row, axis=0)) for r in records]
            if judged:  # a Python bool, or a tensor: then a conditional
                carried = rules(carried, loss, gradient_norm, tol, patience)
            else:
                carried = {**carried, "epoch": carried["epoch"] + 1, "previous_loss": loss}
            return i + 1, records, encode(carried)

        def running(carried):
            return (carried["epoch"] < max_epochs) & (carried["status"] == training.RUNNING)

        i = tf.constant(0)
        while (i < chunk) & running(decode(carried)):
            if inner:
                j = tf.constant(1)
                while (j < judge_every) & (i < chunk - 1):
                    i, records, carried = epoch(i, records, carried, False)
                    j += 1
                i, records, carried = epoch(i, records, carried, judge)
            else:
                judged = judge and (judge_every == 1 or i % judge_every == judge_every - 1)
                i, records, carried = epoch(i, records, carried, judged)
        carried = decode(carried)
        if state:
            loop_state.write(carried)
        return [r.stack() for r in records], carried["previous_loss"]

    return tf.function(run_chunk, jit_compile=True)


class ColumnModel(LinearModel):
    """The model with W of shape [d, 1] and x @ W, as seed xla writes it (y is then [N, 1])."""

    def __init__(self, n_features):
        super().__init__(n_features)
        self.W = tf.Variable(tf.zeros([n_features, 1]), name="W")

    def __call__(self, x):
        return x @ self.W + self.b


def setup(x, y, model_class=LinearModel):
    x, y = tf.constant(x), tf.constant(y if model_class is LinearModel else y[:, None])
    model = model_class(int(x.shape[1]))
    return model, GradientDescent(model, LEARNING_RATE), training.LoopState(model.W.dtype), x, y


def run_chunk_alone(x, y):
    """core/training.py's run_chunk as the driver compiles it, one call for all the epochs of a timed call."""
    model, optimizer, state, x, y = setup(x, y)
    compiled, tol = driver._DRIVERS["xla"], tf.constant(0.0)

    def run(epochs):
        compiled(model, optimizer, state, x, y, tol, NO_END, epochs, PATIENCE)
        return float(state.previous_loss)

    return run


def chunk_alone(model_class=LinearModel, judge_every=1, inner=False, **left_out):
    """As run_chunk_alone, with the copy of run_chunk that leaves out the parts named."""

    def make(x, y):
        model, optimizer, state, x, y = setup(x, y, model_class)
        compiled = chunk_loop(**{**EVERYTHING, **left_out}, judge_every=judge_every, inner=inner)
        tol = tf.constant(0.0)

        def run(epochs):
            _, loss = compiled(model, optimizer, state, x, y, tol, NO_END, epochs, PATIENCE)
            return float(loss)

        return run

    return make


def driver_in_one_chunk(x, y):
    """driver.loop as driver.train runs it, with all the epochs in one chunk."""
    model, optimizer, _, x, y = setup(x, y)
    compiled, tol = driver._DRIVERS["xla"], tf.constant(0.0)

    def run(epochs):
        end, final = tf.constant(epochs, tf.int64), []

        def step(state, patience):
            arrays, count, ended = compiled(model, optimizer, state, x, y, tol, end, epochs, patience)
            final.append(ended)
            return arrays, count

        # The driver's own loop state for this model, reset as driver.train has it.
        result = driver.loop(model, optimizer, step, lambda: final[-1], None, epochs, "xla",
                             patience=training.NO_STALL)  # fmt: skip
        return result.loss

    return run


def seed_xla_matvec(x, y):
    """seed xla with the project's matrix form: W [d], matvec."""
    x, y = tf.constant(x), tf.constant(y)
    W, b = tf.Variable(tf.zeros([x.shape[1]])), tf.Variable(0.0)

    @tf.function(jit_compile=True)
    def train(epochs):
        current_loss = tf.constant(0.0)
        for _ in tf.range(epochs):
            with tf.GradientTape() as tape:
                current_loss = tf.reduce_mean(tf.square(y - (tf.linalg.matvec(x, W) + b)))
            dW, db = tape.gradient(current_loss, [W, b])
            W.assign_sub(LEARNING_RATE * dW)
            b.assign_sub(LEARNING_RATE * db)
        return current_loss

    return lambda epochs: float(train(tf.constant(epochs)))


VARIANTS = {
    "linreg xla": SYSTEMS["linreg xla"][0],
    "seed xla": SYSTEMS["seed xla"][0],
    "seed xla, matvec": seed_xla_matvec,
    "driver, one chunk": driver_in_one_chunk,
    "run_chunk alone": run_chunk_alone,
    "its copy, nothing out": chunk_alone(),
    "- history, W b": chunk_alone(W_b_history=False),
    "- history": chunk_alone(history=False),
    "- gradient norm": chunk_alone(norm=False),
    "- stopping rules": chunk_alone(judge=False),
    "- stall rule": chunk_alone(stall=False),
    "- state variables": chunk_alone(state=False),
    "- rate variable": chunk_alone(rate_variable=False),
    "- packed state": chunk_alone(packed=False),
    "- all eight": chunk_alone(**dict.fromkeys(EVERYTHING, False)),
    "W [d, 1], x @ W": chunk_alone(ColumnModel),
    "rules every 16, if": chunk_alone(judge_every=16),
    "rules every 16, loop": chunk_alone(judge_every=16, inner=True),
}


def per_epoch(cases, repeats):
    """Wall and CPU seconds per epoch of every variant's timed calls, on every
    case. The calls take turns (one of each variant, then again), so a change
    in the machine's load during the run weighs on every variant alike."""
    for n, d in cases:
        x, y = make_data(n, d)
        epochs = epochs_for(n, d, SYSTEMS["linreg xla"][1], target_seconds=0.1)
        runs = {name: make(x, y) for name, make in VARIANTS.items()}
        times = {clock: {name: [] for name in runs} for clock in CLOCKS}
        for run in runs.values():
            run(epochs)  # tracing and compiling
        for _ in range(repeats):
            for name, run in runs.items():
                start = {clock: now() for clock, now in CLOCKS.items()}
                run(epochs)
                for clock, now in CLOCKS.items():
                    times[clock][name].append((now() - start[clock]) / epochs)
        yield (n, d), times


def driver_costs(n, repeats):
    """linreg xla's cost at d = 1 split into a cost per epoch, per call and per
    chunk after the first: from the best CPU seconds of driver.train over half
    a chunk, one chunk and one chunk and one epoch (taking turns)."""
    run = SYSTEMS["linreg xla"][0](*make_data(n, 1))
    chunk = driver.chunk_epochs("xla", n, 1)
    counts = (chunk // 2, chunk, chunk + 1)
    best = {}
    for epochs in counts:
        run(epochs)  # tracing and compiling
    for _ in range(repeats):
        for epochs in counts:
            start = time.process_time()
            run(epochs)
            best[epochs] = min(best.get(epochs, float("inf")), time.process_time() - start)
    epoch = (best[chunk] - best[chunk // 2]) / (chunk - chunk // 2)
    return chunk, epoch, best[chunk] - chunk * epoch, best[chunk + 1] - best[chunk] - epoch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per variant (default 15)")
    parser.add_argument("--sizes", default="1e3,1e5,1e7", help="the N of the cases, d = 1 (default 1e3,1e5,1e7)")
    args = parser.parse_args()
    results = dict(per_epoch([(int(float(n)), 1) for n in args.sizes.split(",")], args.repeats))
    for clock in CLOCKS:
        cases = "".join(f"{f'N={n:.0e} d={d}: median, best':>42s}" for n, d in results)
        print(f"\n{clock + ' seconds per epoch':26s}{cases}")
        for name in VARIANTS:
            cells = []
            for times in results.values():
                for pick in (statistics.median, min):
                    seconds, seed = pick(times[clock][name]), pick(times[clock]["seed xla"])
                    cells.append(f"{format_seconds(seconds)} ({seconds / seed:.2f}x)")
            print(f"{name:26s}" + "".join(f"{cell:>21s}" for cell in cells))
    print("\nlinreg xla (driver.train), best CPU seconds split:")
    for n, _ in results:
        chunk, epoch, call, second = driver_costs(n, args.repeats)
        print(f"  N={n:.0e}: {format_seconds(epoch)} an epoch + {format_seconds(call)} a call, "
              f"+ {format_seconds(second)} for a second chunk (chunks of {chunk} epochs)")


if __name__ == "__main__":
    main()
