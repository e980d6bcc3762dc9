"""Several workers, on TensorFlow's MultiWorkerMirroredStrategy.

A worker learns its place from the TF_CONFIG environment variable, as in
TensorFlow's multi-worker guides:

    TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]},
                "task": {"type": "worker", "index": 0}}'

Every worker runs the same command line. Worker k reads only its own share of
the data (data/stream.py, `shard_parts`), summarises it -- the statistics of
data/moments.py, or an epoch's gradient -- and the workers exchange those
summaries through one collective all-reduce of a packed float64 vector. Then
all of them hold the same numbers and take the same steps; worker 0, the
chief, alone writes outputs and checkpoints.

Determinism. An all-reduce sums in an order of its own choosing, and floating-
point addition is not associative, so a plain sum of d numbers from each of k
workers could differ in its last bits from a single process's sum. Instead
each worker puts its vector in its own row of a [k, P] matrix of zeros and the
all-reduce sums the matrices: x + 0 = x exactly, so the result is every
worker's vector, bit for bit (an all-gather). Each worker then combines the
rows in rank order itself, exactly as one process would combine the same
shards -- so the results are identical on every worker and to that process.

A dead worker. Collectives time out after COLLECTIVE_TIMEOUT seconds
(tf.distribute's CommunicationOptions), and a streamed pass goes in lockstep,
one small collective per batch (`lockstep`), so a survivor notices a dead peer
within about that time instead of reading on and waiting forever at the end.
"""
import json
import os
import time

import numpy as np

from linreg.errors import LinregError

COLLECTIVE_TIMEOUT = 20.0  # seconds; a batch takes well under one
CHECK_IN_SECONDS = 1.0  # of reading between two check-ins with the other workers (`lockstep`)


class WorkerFailed(LinregError):
    """A collective failed: another worker died or cannot be reached (exit code 1)."""

    exit_code = 1
    # TensorFlow's collective runtime cannot be torn down cleanly once a peer
    # is gone (its pools print tracebacks at interpreter exit): the command
    # line leaves at once after its one line.
    leave_at_once = True


class Single:
    """One process: the whole data is shard 0 of 1, and gathering is a no-op."""

    rank, size, is_chief = 0, 1, True

    def gather(self, vector):
        return np.asarray(vector, np.float64)[None, :]

    def lockstep(self, items):
        return items


class Cluster(Single):
    """This process as worker `rank` of `size`, from TF_CONFIG."""

    def __init__(self, config):
        import tensorflow as tf

        workers = config["cluster"]["worker"]
        self.size, self.rank = len(workers), int(config["task"]["index"])
        self.is_chief = self.rank == 0
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=COLLECTIVE_TIMEOUT)
        try:
            self.strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        except (ValueError, RuntimeError, tf.errors.OpError) as error:
            raise LinregError(f"cannot join the cluster in TF_CONFIG: {_first_line(error)}") from None
        self._tf = tf
        # The first collective forms the group (about a second): done here, the
        # workers start reading together and the pass's time is the pass's.
        self.gather([0.0])

    def gather(self, vector):
        """Every worker's `vector` (the same length on all), as rows in rank order, bit for bit."""
        tf = self._tf
        vector = np.asarray(vector, np.float64)
        rows = np.zeros((self.size, len(vector)))
        rows[self.rank] = vector
        try:
            total = self.strategy.reduce(tf.distribute.ReduceOp.SUM, tf.constant(rows), axis=None)
            return total.numpy()
        except (tf.errors.OpError, RuntimeError) as error:
            raise WorkerFailed(
                f"worker {self.rank}: another worker stopped answering ({_first_line(error)}); "
                "rerun the same command (with --checkpoint to continue where it stopped)"
            ) from None

    def lockstep(self, items):
        """Yield `items`, checking in with the other workers once a
        CHECK_IN_SECONDS of work has passed, and when done go on checking in
        (with nothing to yield) until every worker is done.

        Why check in at all: a worker whose peer died would otherwise read its
        whole shard before noticing, at the final exchange; a check-in that
        finds a peer gone fails within the collectives' timeout. Why not after
        every batch: each check-in is a collective that makes the faster
        worker wait for the slower, and after every batch those waits add up
        (measured: a 1e7 x 64 Parquet pass on two pinned workers took 4.1 s
        where each worker's half alone took 2.6 s). Check-ins pair up by
        their order, not their time, so the workers need not agree on when."""
        items = iter(items)
        mine_done, last = False, time.monotonic()
        while True:
            if not mine_done:
                item = next(items, None)
                if item is not None:
                    yield item
                    if time.monotonic() - last < CHECK_IN_SECONDS:
                        continue
                mine_done = item is None
            done = self.gather([1.0 if mine_done else 0.0])[:, 0]
            last = time.monotonic()
            if np.all(done == 1.0):
                return


def _first_line(error):
    text = str(getattr(error, "message", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def current():
    """The cluster this process belongs to: from TF_CONFIG, or a single process."""
    pin()
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return Single()
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        index = int(config["task"]["index"])
        kind = config["task"].get("type", "worker")
    except (ValueError, KeyError, TypeError) as error:
        raise LinregError(
            f"TF_CONFIG is not a cluster description ({type(error).__name__}: {error}); expected "
            '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": K}}'
        ) from None
    if kind != "worker" or not isinstance(workers, list) or not 0 <= index < len(workers):
        raise LinregError(
            f"TF_CONFIG: this task must be a worker with an index below {len(workers) if isinstance(workers, list) else 0}; "
            f"it is {kind!r} {index}"
        )
    if len(workers) == 1:
        return Single()
    return Cluster(config)


def pin():
    """With LINREG_PIN_CORES=1, bind this worker to one core with one thread per
    pool (TensorFlow's, pyarrow's): one machine then behaves like several
    one-core machines, which is what the scaling benchmark measures."""
    if os.environ.get("LINREG_PIN_CORES") != "1":
        return
    config = json.loads(os.environ.get("TF_CONFIG") or '{"task": {"index": 0}}')
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[int(config["task"]["index"]) % len(cores)]})
    import pyarrow
    import tensorflow as tf

    pyarrow.set_cpu_count(1)
    pyarrow.set_io_thread_count(1)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TensorFlow already started its pools
