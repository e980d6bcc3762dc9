"""The systems the epoch benchmark times, and the data they all train on.

In: x [N, d] and y [N], float32 numpy arrays from `make_data`. Out: for each
system in SYSTEMS, `make(x, y)` builds the model once and returns
`run(epochs)`, which trains that many epochs of full-batch gradient descent
at LEARNING_RATE on the mean squared error, waits for the result and returns
the last loss it computed. Each constructor imports its library itself, so
a peer that is not installed fails only when it is made.
"""
import os

import numpy as np

LEARNING_RATE = 0.1


def make_data(n, d, seed=0):
    """x ~ N(0, 1) of shape [n, d], y = x·W + 2 + noise with W = 1, 2, ..., d; float32."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d), dtype=np.float32)
    W = np.arange(1, d + 1, dtype=np.float32)
    y = x @ W
    y += 2.0
    y += rng.standard_normal(n, dtype=np.float32)
    return x, y


def seed_eager(x, y):
    """The tutorial's loop, as written: eager, tape, gradient, assign_sub."""
    import tensorflow as tf

    x, y = tf.constant(x), tf.constant(y)
    W = tf.Variable(tf.zeros([x.shape[1]]))
    b = tf.Variable(0.0)

    def run(epochs):
        for _ in range(epochs):
            with tf.GradientTape() as tape:
                current_loss = tf.reduce_mean(tf.square(y - (tf.linalg.matvec(x, W) + b)))
            dW, db = tape.gradient(current_loss, [W, b])
            W.assign_sub(LEARNING_RATE * dW)
            b.assign_sub(LEARNING_RATE * db)
        return float(current_loss)

    return run


def seed_xla(x, y):
    """The tutorial's loop and nothing else, compiled whole: the least XLA can be given.

    W [d, 1] and b in variables, the tape, assign_sub, and every epoch inside
    one `tf.function(jit_compile=True)` over `tf.range(epochs)` -- no history,
    no gradient norm, no stopping rule, no chunks. `linreg xla` runs the same
    step with all of those; the ratio of the two is what they cost.
    """
    import tensorflow as tf

    x, y = tf.constant(x), tf.constant(y[:, None])
    W = tf.Variable(tf.zeros([x.shape[1], 1]))
    b = tf.Variable(0.0)

    @tf.function(jit_compile=True)
    def train(epochs):
        current_loss = tf.constant(0.0)  # a graph loop's outputs must exist before it
        for _ in tf.range(epochs):
            with tf.GradientTape() as tape:
                current_loss = tf.reduce_mean(tf.square(y - (x @ W + b)))
            dW, db = tape.gradient(current_loss, [W, b])
            W.assign_sub(LEARNING_RATE * dW)
            b.assign_sub(LEARNING_RATE * db)
        return current_loss

    # The count goes in as a tensor, so every number of epochs runs one program.
    return lambda epochs: float(train(tf.constant(epochs)))


def ours(mode):
    def make(x, y):
        import tensorflow as tf

        from linreg.core.model import LinearModel
        from linreg.core.optimizers import GradientDescent
        from linreg.engine import driver

        x, y = tf.constant(x), tf.constant(y)
        model = LinearModel(int(x.shape[1]))
        optimizer = GradientDescent(model, LEARNING_RATE)

        def run(epochs):
            # Every epoch is run: no stopping at the rounding floor (patience beyond any run).
            result = driver.train(model, optimizer, x, y, epochs, compile=mode, patience=2**31 - 1)
            if result.epochs != epochs:
                raise RuntimeError(f"ran {result.epochs} of {epochs} epochs")
            return result.loss

        return run

    return make


def keras_fit(x, y):
    import keras

    n, d = x.shape
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), loss="mse")

    def run(epochs):
        history = model.fit(x, y, batch_size=n, epochs=epochs, shuffle=False, verbose=0)
        return history.history["loss"][-1]

    return run


def numpy_gd(x, y):
    n, d = x.shape
    W = np.zeros(d, np.float32)
    b = np.float32(0.0)
    scale = np.float32(2.0 / n)

    def run(epochs):
        nonlocal W, b
        for _ in range(epochs):
            residual = x @ W + b - y
            W -= LEARNING_RATE * scale * (x.T @ residual)
            b -= np.float32(LEARNING_RATE * scale * residual.sum())
        return float(residual @ residual / n)

    return run


def _torch_runner(x, y, compiled):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    W = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)

    def loss_fn(x, y, W, b):
        return torch.mean(torch.square(y - (x @ W + b)))

    if compiled:
        loss_fn = torch.compile(loss_fn)

    def run(epochs):
        for _ in range(epochs):
            loss = loss_fn(xt, yt, W, b)
            dW, db = torch.autograd.grad(loss, (W, b))
            with torch.no_grad():
                W.sub_(LEARNING_RATE * dW)
                b.sub_(LEARNING_RATE * db)
        return loss.item()

    return run


def torch_eager(x, y):
    return _torch_runner(x, y, compiled=False)


def torch_compile(x, y):
    return _torch_runner(x, y, compiled=True)


def jax_jit(x, y):
    import jax
    import jax.numpy as jnp

    xj, yj = jax.device_put(x), jax.device_put(y)

    def loss(params, x, y):
        W, b = params
        return jnp.mean(jnp.square(y - (x @ W + b)))

    @jax.jit
    def fit(params, x, y, epochs):
        def step(_, params):
            gW, gb = jax.grad(loss)(params, x, y)
            return params[0] - LEARNING_RATE * gW, params[1] - LEARNING_RATE * gb

        params = jax.lax.fori_loop(0, epochs, step, params)
        return params, loss(params, x, y)

    params = (jnp.zeros(x.shape[1], jnp.float32), jnp.float32(0.0))

    def run(epochs):
        nonlocal params
        params, last = fit(params, xj, yj, jnp.int32(epochs))
        return float(jax.block_until_ready(last))

    return run


# name -> (constructor, rough fixed cost per epoch in seconds, used only to
# choose how many epochs one timed call runs). The report sets "seed xla"
# beside "linreg xla": it follows it here.
SYSTEMS = {
    "seed eager": (seed_eager, 1e-3),
    "linreg none": (ours("none"), 2e-3),
    "linreg function": (ours("function"), 4e-5),
    "linreg xla": (ours("xla"), 2e-6),
    "seed xla": (seed_xla, 2e-6),
    "keras fit": (keras_fit, 3e-2),
    "numpy": (numpy_gd, 1e-5),
    "torch eager": (torch_eager, 1e-4),
    "torch compile": (torch_compile, 1.5e-4),
    "jax jit": (jax_jit, 1e-6),
}
