"""Several workers and files too large for memory, in fresh processes.

These need real processes: a cluster of two (TF_CONFIG on 127.0.0.1), a
worker killed with SIGKILL, and peak memory measured by the kernel.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import linreg

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def linreg_command(*args):
    return [sys.executable, "-m", "linreg", *map(str, args)]


def write_parquet(path, n, d, seed=0, row_group_size=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 20, d) + rng.uniform(-5, 5, d)
    y = x @ rng.normal(size=d) + 1.5 + rng.normal(size=n)
    table = pa.table({**{f"x{j}": x[:, j] for j in range(d)}, "y": y})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def test_two_workers_match_one_process_merging_the_same_shards_bit_for_bit(tmp_path, monkeypatch):
    path = write_parquet(tmp_path / "d.parquet", 6000, 5, row_group_size=500)
    out = tmp_path / "fit.json"
    run = subprocess.run(linreg_command("fit", path, "--target", "y", "--engine", "moments", "--workers", 2,
                                        "--json", out, "--quiet"), env=ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert "2 workers" in run.stdout
    cluster_coefficients = json.loads(out.read_text())["coefficients"]

    # One process, the same two shards, merged in the same order.
    from linreg.data import stream
    from linreg.engine import cluster as clusters
    from linreg.engine import streamed

    source = stream.open_source(path)
    features = [f"x{j}" for j in range(5)]
    shards = [streamed.shard_moments(source, "y", features, None, "error", k, 2)[0] for k in range(2)]

    class TwoShards:
        rank, size, is_chief = 0, 2, True

        def lockstep(self, items):
            return items

        def gather(self, vector):
            if len(vector) == len(shards[0].pack()) + 1:  # the statistics: each worker's shard
                return np.stack([np.append(s.pack(), 0.0) for s in shards])
            return np.stack([vector, vector])  # the final coefficients: the same on both

    monkeypatch.setattr(clusters, "current", TwoShards)
    single = linreg.fit(path, "y", engine="moments", progress=False)
    assert single.coefficients == cluster_coefficients  # floats equal, every bit
    # and a single process reading everything as one shard lands within rounding of it
    monkeypatch.undo()
    whole = linreg.fit(path, "y", engine="moments", progress=False)
    for name, value in whole.coefficients.items():
        assert value == pytest.approx(cluster_coefficients[name], rel=1e-12)


def test_a_killed_worker_stops_the_cluster_with_one_line_and_a_rerun_continues(tmp_path):
    path = write_parquet(tmp_path / "k.parquet", 2000, 3, row_group_size=500)
    checkpoint = tmp_path / "ckpt"
    # Plain descent at a small rate is still far from the bottom after 1200
    # epochs, each one a pass with collectives: long enough to kill in the middle.
    command = linreg_command("fit", path, "--target", "y", "--engine", "stream", "--optimizer", "gd",
                             "--learning-rate", 0.0005, "--epochs", 1200, "--workers", 2, "--checkpoint", checkpoint,
                             "--quiet")
    launcher = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (checkpoint / "checkpoint").exists() and time.monotonic() < deadline and launcher.poll() is None:
        time.sleep(0.2)
    assert (checkpoint / "checkpoint").exists(), launcher.communicate()[1]
    workers = children_of(launcher.pid)
    assert len(workers) == 2
    os.kill(workers[1], signal.SIGKILL)
    killed = time.monotonic()
    out, err = launcher.communicate(timeout=60)
    assert time.monotonic() - killed < 30
    assert launcher.returncode != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and re.match(r"error: worker 1 of 2 was killed by signal 9", lines[0]), err
    assert all(not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z" for pid in workers)

    out = tmp_path / "fit.json"
    rerun = subprocess.run([*command, "--json", out], env=ENV, capture_output=True, text=True, timeout=300)
    resumed = re.search(r"resumed from a checkpoint at epoch (\d+)", rerun.stdout)
    assert resumed and 0 < int(resumed.group(1)) < 1200, rerun.stdout
    # It ran the epochs that were left, and (at this rate) has not converged yet: exit code 4.
    assert rerun.returncode == 4, rerun.stderr
    assert json.loads(out.read_text())["epochs"] == 1200


def test_a_survivor_gives_up_by_itself_within_30_seconds(tmp_path):
    """Without the launcher (TF_CONFIG by hand, as on a real cluster) the
    collective timeout ends the survivor: one line, non-zero, no hang."""
    from linreg.cli.launch import free_ports

    path = write_parquet(tmp_path / "s.parquet", 2000, 3, row_group_size=500)
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for rank in range(2):
        env = dict(ENV, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": rank}}))
        procs.append(subprocess.Popen(
            linreg_command("fit", path, "--target", "y", "--engine", "stream", "--optimizer", "gd",
                           "--learning-rate", 0.0001, "--epochs", 100000, "--quiet"),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    time.sleep(12)  # both started and training
    assert procs[0].poll() is None and procs[1].poll() is None
    procs[1].kill()
    killed = time.monotonic()
    out, err = procs[0].communicate(timeout=60)
    procs[1].communicate()
    assert time.monotonic() - killed < 30
    assert procs[0].returncode != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: worker 0: another worker stopped answering"), err


VMHWM = (
    "import atexit, re, sys\n"
    "atexit.register(lambda: print('VmHWM: %s kB' % re.search(r'VmHWM:\\s*(\\d+) kB', open('/proc/self/status').read())[1], file=sys.stderr))\n"
    "from linreg.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def peak_kb(*args):
    run = subprocess.run([sys.executable, "-c", VMHWM, *map(str, args)], env=ENV, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    return int(re.findall(r"VmHWM: (\d+) kB", run.stderr)[-1])


def test_memory_of_the_moments_engine_does_not_grow_with_the_rows(tmp_path):
    small = write_parquet(tmp_path / "small.parquet", 1_200_000, 8, seed=1)
    large = write_parquet(tmp_path / "large.parquet", 6_000_000, 8, seed=2)  # 432 MB of numbers
    peaks = [peak_kb("fit", p, "--target", "y", "--engine", "moments", "--batch-rows", 100_000, "--quiet")
             for p in (small, large)]
    data_kb = 6_000_000 * 9 * 8 / 1024
    # Five times the rows, and at most a tenth of the large file's size in extra memory.
    assert peaks[1] - peaks[0] < 0.1 * data_kb, (peaks, data_kb)


class _Paired:
    """Two workers' `gather` in one process: each call waits for the other
    worker's call of the same order, as a collective does."""

    def __init__(self):
        import threading

        self.barrier, self.rows, self.calls = threading.Barrier(2, timeout=20), np.zeros((2, 1)), [0, 0]

    def worker(self, rank):
        from linreg.engine.cluster import Cluster

        cluster = Cluster.__new__(Cluster)  # no TensorFlow: only the protocol is under test
        cluster.size, cluster.rank = 2, rank

        def gather(vector):
            self.calls[rank] += 1
            self.rows[rank] = vector
            self.barrier.wait()
            seen = self.rows.copy()
            self.barrier.wait()
            return seen

        cluster.gather = gather
        return cluster


@pytest.mark.parametrize("interval", [0.0, 0.05])
def test_lockstep_yields_every_item_and_ends_together_with_uneven_shards(monkeypatch, interval):
    import threading

    from linreg.engine import cluster as clusters

    monkeypatch.setattr(clusters, "CHECK_IN_SECONDS", interval)
    paired = _Paired()
    shards, seen = [list(range(7)), list(range(100, 130))], [[], []]

    def run(rank):
        for item in paired.worker(rank).lockstep(shards[rank]):
            time.sleep(0.004)  # the work on a batch
            seen[rank].append(item)

    threads = [threading.Thread(target=run, args=(rank,)) for rank in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert seen == shards
    assert paired.calls[0] == paired.calls[1]  # every check-in had its partner
    if interval == 0.0:
        assert paired.calls[0] == len(shards[1]) + 1  # one after each batch of the longer shard, one to end
    else:  # about 30 x 4 ms of work: a few check-ins, not one per batch
        assert 2 <= paired.calls[0] <= 10
