"""The matrix-multiply library's threads, held to one while a pass sums
many small products.

OpenBLAS splits each product over the cores, and its threads wait for
work by spinning. When the other core is busy (the reader decoding the
next piece, TensorFlow's own threads after a training step), a product
of a few million flops waits for a thread that cannot run: a 64-column
batch took 3.7 s instead of 0.02 s on a loaded 2-core machine. One thread
does those products at full speed.

threadpoolctl finds the libraries to limit by looking through every
loaded one, which takes 3 ms once TensorFlow's are loaded (a warm fit of
1e6 x 8 rows takes 0.15 s), so its controller is made once, on first use:
it limits the libraries loaded by then, numpy's own BLAS among them.
"""
import functools
from contextlib import contextmanager


@functools.cache
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def one_blas_thread(hold=True):
    """Within: the BLAS libraries use one thread (nothing changes if not
    `hold`), as threadpoolctl's threadpool_limits(1, user_api="blas")."""
    if not hold:
        yield
        return
    with _controller().limit(limits=1, user_api="blas"):
        yield
