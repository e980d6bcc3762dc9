"""Synthetic data: the demo's noisy line, and a hard problem with known answers."""
import math

import numpy as np


def synthetic(samples, true_w=3.0, true_b=2.0, noise=1.0, seed=0):
    """x ~ N(0, 1), y = true_w · x + true_b + noise · N(0, 1), as float32.

    Returns x shaped [samples, 1] (one feature) and y shaped [samples].
    A `tf.random.Generator` seeded explicitly makes the draw reproducible:
    the same seed gives the same data, bit for bit, on every run.
    """
    import tensorflow as tf  # here, so that `correlated` alone needs only numpy

    generator = tf.random.Generator.from_seed(seed)
    x = generator.normal([samples, 1])
    noise_draw = generator.normal([samples])
    y = true_w * x[:, 0] + true_b + noise * noise_draw
    return x, y


def correlated(samples, features, correlation=0.99, noise=0.5, seed=0):
    """A numerically hard regression problem with known coefficients, float64.

    Every feature is sqrt(ρ)·(one shared factor) + sqrt(1 - ρ)·(its own noise),
    so any two are correlated with coefficient ρ; then feature j is scaled to a
    standard deviation between 0.1 and 500,000 (log-spaced) and shifted by up
    to ten of those. The true weights give every feature a contribution of
    similar size; y = x·W + 3 + noise·N(0, 1). Returns x [N, d], y [N], W, b.
    """
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal((samples, 1))
    z = math.sqrt(correlation) * shared + math.sqrt(1.0 - correlation) * rng.standard_normal((samples, features))
    scales = np.logspace(-1, math.log10(5e5), features)
    x = z * scales + rng.uniform(-10.0, 10.0, features) * scales
    W = rng.choice([-1.0, 1.0], features) * rng.uniform(1.0, 2.0, features) / scales
    b = 3.0
    y = x @ W + b + noise * rng.standard_normal(samples)
    return x, y, W, b
