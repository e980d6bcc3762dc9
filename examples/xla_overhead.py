"""Where `linreg xla`'s epoch spends more than `seed xla`'s, suspect by suspect.

    .venv/bin/python examples/xla_overhead.py [--repeats N]

On the cases of `linreg bench --quick` (d = 1, float32, N = 1e3 and 1e7),
with as many epochs a call as the benchmark gives linreg xla there
(linreg.bench.epoch), in one process:

  linreg xla, seed xla     the two systems of the benchmark
  seed xla, matvec         seed xla with W of shape [d] and tf.linalg.matvec,
                           as the project's model writes it (the matrix form)
  driver, no final measure linreg xla without the extra forward and backward
                           pass that measures the state training ended in
  driver, one chunk        linreg xla with all epochs in one compiled chunk
  run_chunk alone          the compiled chunk, called once, no driver at all
  its copy, nothing out    the same with a copy of run_chunk that can leave
                           parts out (the rows below), leaving out none
  - history, W b | - history | - gradient norm | - stopping rules | - rate variable
                           the copy with one part left out: W and b
                           in the history, the whole history, the gradient's
                           norm, the stopping rules (judge), the learning rate
                           read from its variable (a Python number instead)
  - all five               the copy with all five left out

Each row gives the median and the best seconds per epoch over the timed
calls (after one call that traces and compiles), each with its ratio to seed
xla's in the same run, in wall time and in this process's CPU time; on a
shared machine the best CPU time is the figure other work disturbs least.
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

CASES = [(10**3, 1), (10**7, 1)]
# Wall time is what the benchmark reports; this process's CPU time (all its
# threads) is what other work on a shared machine disturbs least.
CLOCKS = {"wall": time.perf_counter, "CPU": time.process_time}
EVERYTHING = {"W_b_history": True, "history": True, "norm": True, "judge": True, "rate_variable": True}


def chunk_loop(W_b_history, history, norm, judge, rate_variable):
    """core/training.py's run_chunk, with the parts named False left out."""

    def run_chunk(model, optimizer, state, x, y, tol, max_epochs, chunk):
        shapes = ([], [], model.W.shape, []) if W_b_history else ([], [])
        records = [tf.TensorArray(model.W.dtype, size=chunk, element_shape=s) for s in shapes] if history else []
        epoch, status, growth = state.epoch.read_value(), state.status.read_value(), state.growth.read_value()
        previous_loss, first_loss = state.previous_loss.read_value(), state.first_loss.read_value()
        first_gradient_norm = state.first_gradient_norm.read_value()
        i = tf.constant(0)
        while (i < chunk) & (epoch < max_epochs) & (status == training.RUNNING):
            W, b = model.W.read_value(), model.b.read_value()
            loss, gradients = loss_and_gradients(model, x, y)
            if rate_variable:
                update(model, optimizer, gradients)
            else:
                for variable, gradient in zip(model.trainable_variables, gradients):
                    variable.assign_sub(LEARNING_RATE * gradient)
            gradient_norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in gradients])) if norm else loss
            records = [r.write(i, v) for r, v in zip(records, (loss, gradient_norm, W, b))]
            if judge:
                status, growth, first_loss, first_gradient_norm = training.judge(
                    epoch, loss, gradient_norm, previous_loss, first_loss, first_gradient_norm, growth, tol
                )
            previous_loss = loss
            epoch += 1
            i += 1
        # Each timed call starts afresh (one chunk for all its epochs): no state to write back.
        return [r.stack() for r in records], previous_loss

    return tf.function(run_chunk, jit_compile=True)


def setup(x, y):
    x, y = tf.constant(x), tf.constant(y)
    model = LinearModel(int(x.shape[1]))
    return model, GradientDescent(model, LEARNING_RATE), training.LoopState(model.W.dtype), x, y


def run_chunk_alone(x, y):
    """core/training.py's run_chunk, compiled, one call for all the epochs of a timed call."""
    model, optimizer, state, x, y = setup(x, y)
    compiled, tol = tf.function(training.run_chunk, jit_compile=True), tf.constant(0.0)

    def run(epochs):
        state.reset()
        compiled(model, optimizer, state, x, y, tol, tf.constant(epochs, tf.int64), epochs)
        return float(state.previous_loss)

    return run


def chunk_alone(**left_out):
    """As run_chunk_alone, with the copy of run_chunk that leaves out the parts named."""

    def make(x, y):
        model, optimizer, state, x, y = setup(x, y)
        compiled = chunk_loop(**{**EVERYTHING, **left_out})
        tol = tf.constant(0.0)

        def run(epochs):
            _, loss = compiled(model, optimizer, state, x, y, tol, tf.constant(epochs, tf.int64), epochs)
            return float(loss)

        return run

    return make


def driver_without(measure=True, chunks=True):
    """driver.loop as driver.train runs it, without the final measure or the chunks."""

    def make(x, y):
        model, optimizer, _, x, y = setup(x, y)
        compiled, tol = tf.function(training.run_chunk, jit_compile=True), tf.constant(0.0)
        final = driver._MEASURES["xla"] if measure else lambda model, x, y: (tf.zeros([]), tf.zeros([]))

        def run(epochs):
            chunk = driver.chunk_epochs("xla", *x.shape) if chunks else epochs
            step = lambda state: compiled(model, optimizer, state, x, y, tol, tf.constant(epochs, tf.int64), chunk)  # noqa: E731
            # The driver's own loop state for this model, reset as driver.train has it.
            result = driver.loop(model, optimizer, step, lambda: final(model, x, y), None, epochs, "xla",
                                 patience=2**31 - 1)  # fmt: skip
            return result.loss

        return run

    return make


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
    "driver, no final measure": driver_without(measure=False),
    "driver, one chunk": driver_without(chunks=False),
    "run_chunk alone": run_chunk_alone,
    "its copy, nothing out": chunk_alone(),
    "- history, W b": chunk_alone(W_b_history=False),
    "- history": chunk_alone(history=False),
    "- gradient norm": chunk_alone(norm=False),
    "- stopping rules": chunk_alone(judge=False),
    "- rate variable": chunk_alone(rate_variable=False),
    "- all five": chunk_alone(**dict.fromkeys(EVERYTHING, False)),
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per variant (default 15)")
    args = parser.parse_args()
    results = dict(per_epoch(CASES, args.repeats))
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


if __name__ == "__main__":
    main()
