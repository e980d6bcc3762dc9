"""Batches of rows of a fixed size, from pieces of any size.

In: pieces of checked (or still to be checked) float64 columns, in file
order, from csv_reader.py or parquet.py. Out: Batches of `batch_rows` rows --
x column-major, y, the weights -- each value copied once, and the count of
rows dropped for missing values carried with them. The streamed engines
hold one batch at a time (and the few pieces read ahead of it).
"""
import queue
import threading
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from linreg.data.cells import everything_dropped

# A batch holds about 64 MiB of float64 values: big enough that the per-batch
# work in Python is noise, small enough to leave room for the training step.
BATCH_VALUES = 8 << 20


@dataclass
class Batch:
    x: np.ndarray  # float64 [rows, d], features in the order asked; column-major (or a view of such)
    y: np.ndarray  # float64 [rows]
    w: np.ndarray = None  # observation weights [rows], or None
    dropped: int = 0  # rows left out for missing values (missing="drop") since the batch before


def assemble(pieces, d, weighted, batch_rows, everything):
    """Batches of `batch_rows` rows from pieces of any size.

    A piece is (columns, rows dropped, check, most, ...): columns in the order
    target, features, weights; most, the most rows that can follow it (a
    batch is made no bigger than needed, for a small file or a stream's
    last batch). Each value is copied once, into a column-major array
    (a column is then one memcpy from pyarrow's buffer) taken from pyarrow's
    memory pool, which reuses the memory of batches already let go instead of
    asking the kernel for fresh zeroed pages every time. When `check` is given
    the piece has not been looked at: each block of rows is summed right after
    its copy, while it is still in the CPU cache (a NaN or inf makes the sum
    NaN or inf), and at the first doubtful block check(row) gives the rest of
    the piece, checked, or raises. A full batch is handed out when the next
    row arrives, so rows dropped after it still count in it."""
    full, x, position, dropped, kept = None, None, 0, 0, 0
    for columns, dropped_here, check, most, *_ in pieces:
        dropped += dropped_here
        n, k = len(columns[0]), 0
        while k < n:
            if full is not None:
                yield full
                full = None
            if x is None:
                size = min(batch_rows, n - k + most)
                x, y, w = _empty(size, d, weighted)
            m = min(n - k, size - position)
            done = _copy(columns, k, m, x, y, w, position, check is not None)
            position, k, kept = position + done, k + done, kept + done
            if done < m:
                columns, more = check(k)
                dropped += more
                n, k, check = len(columns[0]), 0, None
            if position == size:
                full, x, position, dropped = Batch(x, y, w, dropped), None, 0, 0
    if everything is not None and kept == 0 and dropped:
        raise everything_dropped(everything)
    if full is not None:
        full.dropped += dropped
        yield full
    elif x is not None:
        # Fewer rows came than the batch was made for (some were dropped, or a
        # CSV's rows were longer than the least they can be): a view of them,
        # as a copy would hold three batches for a moment, the caller's included.
        yield Batch(x[:position], y[:position], w[:position] if weighted else None, dropped)
    elif dropped:
        yield Batch(np.empty((0, d), order="F"), np.empty(0), np.empty(0) if weighted else None, dropped)


def _empty(rows, d, weighted):
    """x [rows, d] (column-major), y [rows] and w [rows] or None, in one
    buffer from pyarrow's memory pool."""
    width = d + 1 + (1 if weighted else 0)
    values = np.frombuffer(pa.allocate_buffer(max(1, rows * width) * 8), np.float64)[: rows * width]
    block = values.reshape(width, rows).T
    return block[:, :d], block[:, d], (block[:, d + 1] if weighted else None)


CHECK_ROWS = 1 << 16  # rows per block summed after its copy: 512 KiB a column, in the L2 cache


def _copy(columns, k, m, x, y, w, position, check):
    """Copy rows k .. k + m of the columns to row `position` on; with `check`,
    block by block, stopping before the first block with a value that is not
    finite (or a weight that is not positive). The rows copied and checked."""
    if not check:
        y[position : position + m] = columns[0][k : k + m]
        for j in range(x.shape[1]):
            x[position : position + m, j] = columns[1 + j][k : k + m]
        if w is not None:
            w[position : position + m] = columns[-1][k : k + m]
        return m
    done = 0
    targets = [y, *x.T, *([w] if w is not None else [])]
    with np.errstate(all="ignore"):  # huge values may overflow the sum: that only costs a closer look
        while done < m:
            size = min(CHECK_ROWS, m - done)
            a, p = k + done, position + done
            total = 0.0
            for column, target in zip(columns, targets):
                target = target[p : p + size]
                target[...] = column[a : a + size]
                total += target.sum()
            if not np.isfinite(total) or (w is not None and not w[p : p + size].min() > 0):
                return done
            done += size
    return m


_END = object()


def prefetch(items):
    """Iterate `items` on a thread, one item ahead: pyarrow decodes the next
    piece while this thread copies the last one. The thread starts on an item
    only once the one before is taken, so two are alive at most."""
    handed = queue.Queue(1)
    taken = threading.Semaphore(1)
    stop = threading.Event()

    def run():
        try:
            while taken.acquire() and not stop.is_set():
                item = next(items, _END)
                handed.put(item)
                if item is _END:
                    return
        except BaseException as error:  # raised in the reading thread, from handed
            handed.put(error)
        finally:
            items.close()

    thread = threading.Thread(target=run, name="linreg-stream", daemon=True)
    thread.start()
    try:
        while (item := handed.get()) is not _END:
            taken.release()
            if isinstance(item, BaseException):
                raise item
            yield item
            item = None
    finally:
        stop.set()
        taken.release()
        while thread.is_alive():  # unblock a put, so that the thread sees `stop`
            try:
                handed.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


# --- CSV -------------------------------------------------------------------
