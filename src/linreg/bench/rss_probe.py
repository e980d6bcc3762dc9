"""Peak resident memory while training, measured from inside a fresh process.

    python -m linreg.bench.rss_probe N D MODE

In: the data's shape and a `--compile` mode. Makes [N, D] float32 data,
trains a LinearModel on it for a few epochs and prints one JSON line, in
bytes: the peak resident memory while training, the resident memory just
before, TensorFlow's own baseline once its runtime is up, and the data's
size. A process of its own because a peak belongs to a whole process:
anything the parent had loaded would count in it.
"""
import json
import sys

import numpy as np
import tensorflow as tf

from linreg.bench import memory
from linreg.core.model import LinearModel
from linreg.core.optimizers import GradientDescent
from linreg.engine import driver


def aligned(shape):
    """A float32 array on a 64-byte boundary, which TensorFlow's kernels require
    of memory they did not allocate themselves."""
    size = int(np.prod(shape)) * 4
    raw = np.empty(size + 64, np.uint8)
    offset = -raw.ctypes.data % 64
    return raw[offset : offset + size].view(np.float32).reshape(shape)


def main(argv):
    n, d, mode = int(argv[0]), int(argv[1]), argv[2]
    float(tf.reduce_sum(tf.ones([4])))  # the runtime is up: TensorFlow's own baseline
    _, baseline = memory()
    # The data, made in place chunk by chunk (no large temporaries) and handed
    # to TensorFlow through DLPack, which shares the buffer instead of copying
    # it: the process holds one copy of x and y, as a program loading its data
    # once would. (tf.constant would copy, and TensorFlow's allocator keeps the
    # memory of freed temporaries, so the copy's source would stay counted.)
    rng = np.random.default_rng(0)
    xn, yn = aligned((n, d)), aligned((n,))
    for start in range(0, n, 2**20):
        rng.standard_normal(out=xn[start : start + 2**20], dtype=np.float32)
    np.matmul(xn, np.arange(1, d + 1, dtype=np.float32), out=yn)
    yn += np.float32(2.0)
    x = tf.experimental.dlpack.from_dlpack(xn.__dlpack__())
    y = tf.experimental.dlpack.from_dlpack(yn.__dlpack__())
    before, _ = memory()
    # Reset the peak to the current size (Linux: write 5 to clear_refs), so
    # that VmHWM afterwards is the peak while training.
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    model = LinearModel(d)
    driver.train(model, GradientDescent(model, 0.1), x, y, 5, compile=mode)
    _, peak = memory()
    print(json.dumps({"peak_rss_bytes": peak, "rss_before_training_bytes": before,
                      "baseline_rss_bytes": baseline, "data_bytes": 4 * (n * d + n)}))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
