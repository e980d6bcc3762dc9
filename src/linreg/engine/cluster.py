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

A worker that cannot go on. Every wait for the others is bounded. The
workers first meet (`Cluster._meet`): all must be there within JOIN_SECONDS
of this worker's start. TensorFlow's own join then has REGISTER_SECONDS (its
coordination service, which worker 0 hosts, gives up on the tasks that have
not registered by then); a worker whose heartbeats stop for HEARTBEAT_SECONDS
is declared lost; and each collective times out after COLLECTIVE_TIMEOUT
seconds (tf.distribute's CommunicationOptions). A streamed pass goes in
lockstep, one small collective a second (`lockstep`), so a survivor notices
a dead peer within those bounds instead of reading on and waiting at the
end. A collective waits in C++ code, where the main thread cannot even run a
signal handler, so a watchdog thread (`Watchdog`) ends the process itself
when one outlasts its bound by MARGIN_SECONDS, or goes on after SIGINT or
SIGTERM. Either way the user sees one line naming the worker that was lost.
"""
import contextlib
import json
import os
import re
import signal
import socket
import threading
import time
from typing import NamedTuple

import numpy as np

from linreg.engine.signals import SIGNALS
from linreg.engine.watchdog import watchdog
from linreg.errors import LinregError

JOIN_SECONDS = 20.0  # for every worker to be there, from this worker's start,
JOIN_AT_LEAST = 10.0  # and at least this long once it is ready itself (a loaded machine starts slowly)
REGISTER_SECONDS = 10.0  # for TensorFlow's join, once the workers have met (it takes a moment)
HEARTBEAT_SECONDS = 10.0  # without a heartbeat, a worker is lost
COLLECTIVE_TIMEOUT = 20.0  # seconds; a batch takes well under one
CHECK_IN_SECONDS = 1.0  # of reading between two check-ins with the other workers (`lockstep`)
# The watchdog's patience beyond TensorFlow's own bounds, which normally end a
# wait first with a proper exception (engine/watchdog.py).
MARGIN_SECONDS = 3.0
PROBE_SECONDS = 1.0  # to connect to a peer's port, to see whether it is there
MEET_POLL_SECONDS = 0.1  # between two looks for the workers not yet there (`Cluster._meet`)


class WorkerFailed(LinregError):
    """Another worker died or cannot be reached (exit code 1)."""

    exit_code = 1
    # TensorFlow's collectives cannot be torn down cleanly once a peer is gone (their
    # pools print tracebacks at exit): the command line leaves at once after its line.
    leave_at_once = True


class Single:
    """One process: the whole data is shard 0 of 1, and gathering is a no-op."""

    rank, size, is_chief = 0, 1, True

    def gather(self, vector):
        return np.asarray(vector, np.float64)[None, :]

    def lockstep(self, items):
        return items

    def gather_ragged(self, vector):
        """Every worker's `vector`, whose lengths may differ (a robust
        covariance's per-cluster sums), in rank order: one gather of the
        lengths, one of the vectors padded with zeros to the longest."""
        vector = np.asarray(vector, np.float64)
        lengths = self.gather([len(vector)])[:, 0].astype(np.int64)
        rows = self.gather(np.pad(vector, (0, int(lengths.max()) - len(vector))))
        return [row[:length] for row, length in zip(rows, lengths)]


class Config(NamedTuple):
    """TF_CONFIG, checked: every worker's host:port, and this worker's index."""

    workers: tuple = ()  # none: a single process
    rank: int = 0

    @property
    def size(self):
        return max(len(self.workers), 1)


class Cluster(Single):
    """This process as worker `rank` of `size`, from TF_CONFIG."""

    def __init__(self, config):
        import tensorflow as tf

        self._tf = tf
        self.workers, self.size, self.rank = config.workers, config.size, config.rank
        self.is_chief = self.rank == 0
        self._meet()
        _configure_coordination(self.size, REGISTER_SECONDS)
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=COLLECTIVE_TIMEOUT)
        try:
            self.strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        except ValueError as error:  # a TF_CONFIG that TensorFlow refuses
            raise LinregError(f"cannot join the cluster in TF_CONFIG: {_one_line(error)}") from None
        except (tf.errors.OpError, RuntimeError) as error:
            raise WorkerFailed(self._lost(_one_line(error), joining=True)) from None
        finally:
            _take_back_signals()
        # The first collective forms the group (about a second): done here, the
        # workers start reading together and the pass's time is the pass's.
        self.gather([0.0])

    def _meet(self):
        """Wait here, in Python, until every worker has started: TensorFlow's
        join holds the interpreter lock until the whole group has registered,
        so neither a signal handler nor the watchdog could run meanwhile. Each
        worker but 0 holds its own port open, which tells worker 0 it is there;
        worker 0 joins once all are, and they follow when its server answers."""
        started = watchdog().started
        deadline = max(started + JOIN_SECONDS, time.monotonic() + JOIN_AT_LEAST)
        with _own_port(self.workers[self.rank], self.rank, listen=not self.is_chief):
            missing = list(range(1, self.size)) if self.is_chief else [0]
            while missing := [k for k in missing if not _answers(self.workers[k])]:
                if time.monotonic() > deadline:
                    waited = f"no answer {time.monotonic() - started:.0f} s after its own start"
                    raise WorkerFailed(self._lost(waited, joining=True, lost=missing))
                time.sleep(MEET_POLL_SECONDS)

    def gather(self, vector):
        """Every worker's `vector` (the same length on all), as rows in rank order, bit for bit."""
        tf = self._tf
        vector = np.asarray(vector, np.float64)
        rows = np.zeros((self.size, len(vector)))
        rows[self.rank] = vector
        silence = f"no answer within {COLLECTIVE_TIMEOUT + MARGIN_SECONDS:.0f} s"
        with watchdog().waiting(COLLECTIVE_TIMEOUT + MARGIN_SECONDS, lambda: self._lost(silence)):
            try:
                total = self.strategy.reduce(tf.distribute.ReduceOp.SUM, tf.constant(rows), axis=None)
                return total.numpy()
            except (tf.errors.OpError, RuntimeError) as error:
                raise WorkerFailed(self._lost(_one_line(error))) from None

    def _lost(self, why, joining=False, lost=None):
        """The one line for a lost peer: which worker (index and host:port), and what happened."""
        if lost is None:
            others = [k for k in range(self.size) if k != self.rank]
            # A peer whose port no longer answers is the one lost; when every
            # port answers (a peer stopped, not dead), it may be any of them.
            lost = [k for k in others if not _answers(self.workers[k])] or others
        names = ", ".join(f"worker {k} of {self.size} ({self.workers[k]})" for k in lost)
        if joining:
            return (f"{names} did not join the group (worker {self.rank} waited: {why}); start every worker "
                    f"within {JOIN_SECONDS:.0f} s of the first, with the same TF_CONFIG cluster")
        return (f"{names} stopped answering (worker {self.rank} saw: {why}); "
                "rerun the same command (with --checkpoint to continue where it stopped)")

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


def _one_line(error):
    """TensorFlow's message on one line, without its op and payload tags or
    the gRPC details it repeats."""
    text = str(getattr(error, "message", None) or error).split("Additional GRPC error information")[0]
    text = re.sub(r"\{\{[^}]*\}\}|\[type\.googleapis\.com/[^\]]*\]|\[Op:\w+\]( name: \S*)?", " ", text)
    return " ".join(text.split()) or type(error).__name__


def _address(text):
    """(host, port) from a worker's "host:port"; ValueError if it is not one."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(text)
    return host.strip("[]"), int(port)


def _answers(address):
    """Whether a worker's port accepts a connection now (its server is up)."""
    with contextlib.suppress(OSError), socket.create_connection(_address(address), timeout=PROBE_SECONDS):
        return True
    return False


def _own_port(address, rank, listen):
    """This worker's port, bound (listening if `listen`) until the meeting is
    over: a port that another program has gets a clear message here, not a
    C++ log line and "Could not start gRPC server" from TensorFlow."""
    port = _address(address)[1]
    own = socket.socket()
    try:
        own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        own.bind(("", port))
        if listen:
            own.listen()
    except OSError as error:
        own.close()
        raise LinregError(
            f"TF_CONFIG: this worker ({rank}) cannot listen on port {port} of {address}: {error.strerror}; "
            "another program has it, so give this worker a free port (in every worker's TF_CONFIG)"
        ) from None
    return own


def _take_back_signals():
    """TensorFlow's join installs a SIGTERM handler of its own (for its
    preemption notices) that swallows the signal: put Python's back, for a
    program that does not block the signals (see Watchdog)."""
    if threading.current_thread() is threading.main_thread():
        for number in SIGNALS:
            signal.signal(number, signal.getsignal(number))


def _configure_coordination(size, register_seconds):
    """TensorFlow's coordination service as MultiWorkerMirroredStrategy would
    set it up (worker 0 leads), with bounds: without them a worker waits
    forever for a peer that died before registering. These settings have no
    public API; the strategy itself makes this same call."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    if context.context().coordination_service is not None:
        return  # this process joined before
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader="/job:worker/replica:0/task:0",
        cluster_register_timeout_in_ms=int(register_seconds * 1000),
        heartbeat_timeout_in_ms=int(HEARTBEAT_SECONDS * 1000),
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name="worker", num_tasks=size)],
    )
    # Registration as a barrier: the leader, too, gives up on a missing task at
    # the timeout instead of waiting for it without end.
    context.context().coordination_service.cluster_register_with_barrier = True


def read_config():
    """TF_CONFIG, checked, without joining anything: Config() when unset."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return Config()
    expected = '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": K}}'
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        index = int(config["task"]["index"])
        kind = config["task"].get("type", "worker")
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise LinregError(
            f"TF_CONFIG is not a cluster description ({type(error).__name__}: {error}); expected {expected}"
        ) from None
    if kind != "worker" or not isinstance(workers, list) or not 0 <= index < len(workers):
        raise LinregError(
            f"TF_CONFIG: this task must be a worker with an index below {len(workers) if isinstance(workers, list) else 0}; "
            f"it is {kind!r} {index}"
        )
    for address in workers:
        try:
            _address(address)
        except (ValueError, AttributeError):
            raise LinregError(f"TF_CONFIG: worker address {address!r} is not host:port; expected {expected}") from None
    return Config(tuple(workers), index)


def current(config=None):
    """The cluster this process belongs to (joined): from `config`, by default
    TF_CONFIG's, or a single process."""
    config = read_config() if config is None else config
    pin(config.rank)
    return Single() if config.size == 1 else Cluster(config)


def pin(rank):
    """With LINREG_PIN_CORES=1, bind worker `rank` to one core with one thread
    per pool (TensorFlow's, pyarrow's): one machine then behaves like several
    one-core machines, which is what the scaling benchmark measures."""
    if os.environ.get("LINREG_PIN_CORES") != "1":
        return
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[rank % len(cores)]})
    import pyarrow
    import tensorflow as tf

    pyarrow.set_cpu_count(1)
    pyarrow.set_io_thread_count(1)
    with contextlib.suppress(RuntimeError):  # TensorFlow already started its pools
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
