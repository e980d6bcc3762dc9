"""Several workers and files too large for memory, in fresh processes.

These need real processes: clusters of two (TF_CONFIG on 127.0.0.1), workers
killed with SIGKILL or stopped with signals, and peak memory measured by the
kernel. Processes that do not depend on each other run side by side, and
every wait is for a state (a port that answers, a checkpoint on disk), with a
generous deadline, never a sleep that a loaded machine could outlast.
"""
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import descendants, running

import linreg
from linreg.cli.launch import free_ports
from linreg.engine import cluster as clusters

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
DEADLINE = 180  # seconds: for a state to come about on a loaded machine; only a hang takes this long
# A streamed fit that runs until it is stopped: plain descent at a small rate, an epoch a pass with collectives.
ENDLESS = ("--engine", "stream", "--optimizer", "gd", "--learning-rate", 0.0001, "--epochs", 100000, "--quiet")


def linreg_command(*args):
    return [sys.executable, "-m", "linreg", *map(str, args)]


def write_parquet(path, n, d, seed=0, row_group_size=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 20, d) + rng.uniform(-5, 5, d)
    y = x @ rng.normal(size=d) + 1.5 + rng.normal(size=n)
    table = pa.table({**{f"x{j}": x[:, j] for j in range(d)}, "y": y})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def tf_config(ports, rank):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": rank}})


def answers(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def wait_for(condition, *processes):
    """Until `condition()`, while every one of `processes` still runs."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        for process in processes:
            assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def one_lost_peer_line(err, peer, address):
    """The one `error:` line of a worker that lost worker `peer`, at `address` (host:port)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.match(rf"error: worker {peer} of 2 \({re.escape(address)}\) (did not join the group|stopped answering) ",
                    lines[0]), err


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
    from linreg.data import sources
    from linreg.engine import streamed

    source = sources.open_source(path)
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

    monkeypatch.setattr(clusters, "current", lambda config: TwoShards())
    single = linreg.fit(path, "y", engine="moments", progress=False)
    assert single.coefficients == cluster_coefficients  # floats equal, every bit
    # and a single process reading everything as one shard lands within rounding of it
    monkeypatch.undo()
    whole = linreg.fit(path, "y", engine="moments", progress=False)
    for name, value in whole.coefficients.items():
        assert value == pytest.approx(cluster_coefficients[name], rel=1e-12)


def test_a_killed_worker_stops_the_cluster_with_one_line_and_a_rerun_continues(tmp_path, processes):
    path = write_parquet(tmp_path / "k.parquet", 2000, 3, row_group_size=500)
    checkpoint = tmp_path / "ckpt"
    # Plain descent at a small rate is still far from the bottom after 1200
    # epochs, each one a pass with collectives: long enough to kill in the middle.
    command = linreg_command("fit", path, "--target", "y", "--engine", "stream", "--optimizer", "gd",
                             "--learning-rate", 0.0005, "--epochs", 1200, "--workers", 2, "--checkpoint", checkpoint,
                             "--quiet")
    launcher = processes(command, env=ENV)
    wait_for((checkpoint / "checkpoint").exists, launcher)
    workers = descendants(launcher.pid)
    assert len(workers) == 2
    os.kill(workers[1], signal.SIGKILL)
    killed = time.monotonic()
    out, err = launcher.communicate(timeout=DEADLINE)
    assert time.monotonic() - killed < 30
    assert launcher.returncode != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and re.match(r"error: worker 1 of 2 was killed by signal 9", lines[0]), err
    assert not any(running(pid) for pid in workers)

    out = tmp_path / "fit.json"
    rerun = subprocess.run([*command, "--json", out], env=ENV, capture_output=True, text=True, timeout=300)
    resumed = re.search(r"resumed from a checkpoint at epoch (\d+)", rerun.stdout)
    assert resumed and 0 < int(resumed.group(1)) < 1200, rerun.stdout
    # It ran the epochs that were left, and (at this rate) has not converged yet: exit code 4.
    assert rerun.returncode == 4, rerun.stderr
    assert json.loads(out.read_text())["epochs"] == 1200


def test_the_launcher_blames_the_worker_that_died_not_the_chief_that_lost_it():
    """The chief may notice a dead peer, and exit, before the launcher has
    seen the peer die: the line must still name the peer."""
    from linreg.cli import launch

    class Child:  # a worker as the launcher sees it: poll() gives its exit code, or None while it runs
        def __init__(self, *codes):
            self.codes, self.returncode = list(codes), None

        def poll(self):
            if self.returncode is None and self.codes:
                self.returncode = self.codes.pop(0)
            return self.returncode

        def kill(self):
            self.returncode = -signal.SIGKILL if self.returncode is None else self.returncode

        wait = poll

    class Chief:
        errors = ["error: worker 1 of 2 (127.0.0.1:1) stopped answering (worker 0 saw: ...)"]

    # The chief has left with the lost-peer code; worker 1 is seen dead (SIGKILL) two looks later.
    chief, peer = Child(launch.LOST_PEER), Child(None, None, -signal.SIGKILL)
    with pytest.raises(launch.WorkerError, match=r"^worker 1 of 2 was killed by signal 9; ") as raised:
        launch._supervise([chief, peer], [None, None], [], Chief())
    assert raised.value.exit_code == 1


def test_bad_input_that_a_worker_other_than_the_chief_reports_first_is_its_own_line(tmp_path):
    from linreg.cli import launch

    class Child:
        def __init__(self, code):
            self.returncode = code

        def poll(self):
            return self.returncode

        kill = wait = poll

    class Chief:
        errors = []

    log = tmp_path / "worker1.log"
    log.write_text("error: no such column 'y' in d.csv; its columns are a, b\n")
    # Worker 1 was faster to read the header than the chief, still running.
    with pytest.raises(launch.WorkerError) as raised:
        launch._supervise([Child(None), Child(launch.BAD_INPUT)], [None, SimpleNamespace(name=str(log))], [], Chief())
    assert (str(raised.value), raised.value.exit_code) == ("no such column 'y' in d.csv; its columns are a, b", 2)


def test_the_workers_of_a_killed_launcher_die_with_it_and_write_nothing(tmp_path, processes):
    path = write_parquet(tmp_path / "l.parquet", 2000, 3, row_group_size=500)
    checkpoint, out = tmp_path / "ckpt", tmp_path / "fit.json"
    launcher = processes(linreg_command("fit", path, "--target", "y", *ENDLESS, "--workers", 2,
                                        "--checkpoint", checkpoint, "--json", out), env=ENV)
    wait_for((checkpoint / "checkpoint").exists, launcher)  # both training
    workers = descendants(launcher.pid)
    assert len(workers) == 2
    launcher.kill()
    launcher.wait()  # (its output stays open while the chief it started lives)
    for pid in workers:  # re-parented to this test run (a subreaper, conftest.py), which reaps them
        wait_for(lambda: os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT))
        assert os.waitpid(pid, 0)[1] == signal.SIGKILL  # killed by the kernel, for their parent's death
    assert not out.exists()


def lone_worker(processes, path, rank, *args):
    """Worker `rank` of a new cluster of two on free ports, and those ports."""
    ports = free_ports(2)
    env = dict(ENV, TF_CONFIG=tf_config(ports, rank))
    return processes(linreg_command("fit", path, "--target", "y", *args), env=env), ports


def pair(processes, path, *args, peers=(None, None)):
    """Both workers of a new cluster of two (`peers[k]`: another Python program for worker k), and their ports."""
    ports = free_ports(2)
    workers = [processes([sys.executable, *(("-c", peer) if peer else ("-m", "linreg")), "fit", str(path),
                          "--target", "y", *map(str, args)], env=dict(ENV, TF_CONFIG=tf_config(ports, rank)))
               for rank, peer in enumerate(peers)]
    return workers, ports


def test_a_worker_whose_group_does_not_form_gives_up_naming_the_missing_peer(tmp_path, processes):
    """Worker 0 (which hosts the group's coordination) and worker 1 each give
    up on their own: a peer that never started, one killed before its
    TensorFlow was even imported, and one killed while the group formed. And
    SIGINT ends a worker at once while it waits, not at the end of the wait."""
    path = write_parquet(tmp_path / "g.parquet", 200, 2)
    alone, alone_ports = lone_worker(processes, path, 1, "--engine", "moments")  # worker 0 never starts
    (survivor_0, victim_1), early_ports = pair(processes, path, "--engine", "moments")
    victim_1.kill()  # before its import
    (victim_0, survivor_1), forming_ports = pair(processes, path, "--engine", "moments")
    interrupted, interrupted_ports = lone_worker(processes, path, 1, "--engine", "moments")
    wait_for(lambda: answers(interrupted_ports[1]), interrupted)  # waiting for worker 0
    interrupted.send_signal(signal.SIGINT)
    wait_for(lambda: answers(forming_ports[0]), victim_0, survivor_1)  # worker 0's server is up: joining
    victim_0.kill()
    lost = time.monotonic()
    survivors = ((alone, 0, alone_ports), (survivor_0, 1, early_ports), (survivor_1, 0, forming_ports))
    for survivor, peer, ports in survivors:
        out, err = survivor.communicate(timeout=DEADLINE)
        assert survivor.returncode == 1, err
        one_lost_peer_line(err, peer, f"127.0.0.1:{ports[peer]}")
    print(f"the last survivor ended {time.monotonic() - lost:.1f} s after its peer was killed while forming the group")
    out, err = interrupted.communicate(timeout=DEADLINE)
    assert (interrupted.returncode, err) == (128 + signal.SIGINT, "error: interrupted\n")


PEER_DIES_AFTER_TRAINING = (  # a worker that trains, then dies before the final exchange of coefficients
    "import os, sys\n"
    "from linreg.engine import solve\n"
    "train = solve.train_orthogonal\n"
    "solve.train_orthogonal = lambda *args, **kwargs: (train(*args, **kwargs), os._exit(0))\n"
    "from linreg.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_a_worker_that_loses_its_peer_once_joined_stops_within_30_seconds_naming_it(tmp_path, processes):
    """Without a launcher (TF_CONFIG by hand, as on a real cluster): a peer
    killed in the middle of a streamed pass, and one dead before the final
    exchange."""
    path = write_parquet(tmp_path / "s.parquet", 2000, 3, row_group_size=500)
    killed_at = tmp_path / "killed"  # a checkpoint: the pass is under way
    (in_pass, victim), pass_ports = pair(processes, path, *ENDLESS, "--checkpoint", killed_at)
    (at_end, _), end_ports = pair(processes, path, "--engine", "moments", "--quiet",
                                  peers=(None, PEER_DIES_AFTER_TRAINING))
    wait_for((killed_at / "checkpoint").exists, in_pass, victim)
    victim.kill()
    killed = time.monotonic()
    out, err = in_pass.communicate(timeout=DEADLINE)
    assert time.monotonic() - killed < 30
    assert in_pass.returncode == 1, err
    one_lost_peer_line(err, 1, f"127.0.0.1:{pass_ports[1]}")
    out, err = at_end.communicate(timeout=DEADLINE)
    assert at_end.returncode == 1, err
    one_lost_peer_line(err, 1, f"127.0.0.1:{end_ports[1]}")
    assert out == ""  # it wrote no results


def takers_of_the_signals(pid):
    """How many threads of process `pid` leave SIGINT or SIGTERM unblocked,
    from the kernel's masks (a thread in sigtimedwait unblocks the set it waits for)."""
    bits = (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1))
    count = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        with contextlib.suppress(OSError):  # a thread that just ended
            blocked = int(re.search(r"^SigBlk:\s*([0-9a-f]+)", status.read_text(), re.M)[1], 16)
            count += blocked & bits != bits
    return count


def test_sigterm_ends_a_worker_stuck_in_a_collective_with_a_stopped_peer_within_seconds(tmp_path, processes):
    """A process-directed signal goes to any thread that does not block it: if
    one besides the watchdog does (one started before the worker blocked them,
    as numpy's BLAS threads), the watchdog never hears of the signal and the
    worker runs on until the stopped peer's heartbeat times out."""
    path = write_parquet(tmp_path / "s.parquet", 2000, 3, row_group_size=500)
    stopped_at = tmp_path / "stopped"  # a checkpoint: the pass is under way
    (terminated, stopped), _ = pair(processes, path, *ENDLESS, "--checkpoint", stopped_at)
    wait_for((stopped_at / "checkpoint").exists, terminated, stopped)
    assert takers_of_the_signals(terminated.pid) <= 1  # the watchdog, while it waits for them
    stopped.send_signal(signal.SIGSTOP)
    terminated.send_signal(signal.SIGTERM)
    out, err = terminated.communicate(timeout=DEADLINE)
    assert (terminated.returncode, err) == (128 + signal.SIGTERM, "error: interrupted\n"), err


def test_a_tf_config_port_that_is_taken_is_one_line_of_bad_input(tmp_path, processes):
    path = write_parquet(tmp_path / "p.parquet", 200, 2)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = dict(ENV, TF_CONFIG=tf_config([port, free_ports(1)[0]], 0), TF_CPP_MIN_LOG_LEVEL="2")
        worker = processes(linreg_command("fit", path, "--target", "y", "--engine", "moments"), env=env)
        out, err = worker.communicate(timeout=DEADLINE)
    assert worker.returncode == 2
    assert re.fullmatch(rf"error: TF_CONFIG: this worker \(0\) cannot listen on port {port} [^\n]*free port[^\n]*\n",
                        err), err


def test_engines_and_workers_are_settled_before_any_cluster_is_joined(tmp_path, monkeypatch):
    path = write_parquet(tmp_path / "m.parquet", 200, 2)
    monkeypatch.setenv("TF_CONFIG", tf_config(free_ports(2), 0))

    def joined(config):
        raise AssertionError("joined a cluster")

    monkeypatch.setattr(clusters, "Cluster", joined)
    with pytest.raises(linreg.LinregError, match="several workers .* not memory"):
        linreg.fit(path, "y", engine="memory", progress=False)
    with pytest.raises(linreg.LinregError, match="streams files"):
        linreg.fit((np.ones((4, 1)), np.ones(4)), progress=False)


@pytest.mark.parametrize("text", ['{"cluster": ', '{"cluster": {"worker": ["a:1", "b"]}, "task": {"index": 0}}'])
def test_a_malformed_tf_config_is_one_error_even_with_pinned_cores(tmp_path, monkeypatch, text):
    path = write_parquet(tmp_path / "c.parquet", 200, 2)
    monkeypatch.setenv("TF_CONFIG", text)
    monkeypatch.setenv("LINREG_PIN_CORES", "1")
    cores = os.sched_getaffinity(0)
    with pytest.raises(linreg.LinregError, match="^TF_CONFIG"):
        linreg.fit(path, "y", engine="moments", progress=False)
    assert os.sched_getaffinity(0) == cores  # nothing pinned either


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
