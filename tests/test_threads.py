"""linreg/threads.py: numpy's BLAS held to one thread inside, its threads
given back after, nested or not."""
import numpy as np
from threadpoolctl import threadpool_info

from linreg.threads import one_blas_thread


def numpy_blas_threads():
    (lib,) = [lib for lib in threadpool_info() if lib["user_api"] == "blas" and "numpy" in lib["filepath"]]
    return lib["num_threads"]


def test_one_thread_inside_and_the_threads_back_after():
    np.ones((2, 2)) @ np.ones((2, 2))
    before = numpy_blas_threads()
    with one_blas_thread():
        assert numpy_blas_threads() == 1
        with one_blas_thread():
            assert numpy_blas_threads() == 1
        assert numpy_blas_threads() == 1
    assert numpy_blas_threads() == before
    with one_blas_thread(hold=False):
        assert numpy_blas_threads() == before
