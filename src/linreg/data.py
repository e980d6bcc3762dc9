"""Data: the demo's synthetic line."""
import tensorflow as tf


def synthetic(samples, true_w=3.0, true_b=2.0, noise=1.0, seed=0):
    """x ~ N(0, 1), y = true_w · x + true_b + noise · N(0, 1), as float32.

    Returns x shaped [samples, 1] (one feature) and y shaped [samples].
    A `tf.random.Generator` seeded explicitly makes the draw reproducible:
    the same seed gives the same data, bit for bit, on every run.
    """
    generator = tf.random.Generator.from_seed(seed)
    x = generator.normal([samples, 1])
    noise_draw = generator.normal([samples])
    y = true_w * x[:, 0] + true_b + noise * noise_draw
    return x, y
