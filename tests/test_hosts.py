"""Two workers on two simulated hosts: network namespaces joined by a veth
pair, each worker in its own, as on two machines. Needs root and iproute2
(`ip netns`); skipped, saying why, where they are not at hand."""
import json
import os
import secrets
import subprocess
import time

import pytest
from test_workers import DEADLINE, ENDLESS, ENV, linreg_command, one_lost_peer_line, wait_for, write_parquet



def ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def hosts():
    """Two network namespaces, names unique to this run, with one veth link
    between them; yields [(namespace, address)] and deletes them whatever
    happens (deleting a namespace deletes its end of the link)."""
    names = [f"linreg-{os.getpid()}-{secrets.token_hex(3)}-{k}" for k in range(2)]
    addresses = ["10.77.0.1", "10.77.0.2"]
    made = []
    try:
        for name in names:
            run = ip("netns", "add", name)
            if run.returncode != 0:
                pytest.skip(f"cannot make a network namespace here (ip netns add: {run.stderr.strip()})")
            made.append(name)
        steps = [("link", "add", "eth0", "netns", names[0], "type", "veth", "peer", "name", "eth0", "netns", names[1])]
        for name, address in zip(names, addresses):
            steps += [("-n", name, "addr", "add", f"{address}/24", "dev", "eth0"),
                      ("-n", name, "link", "set", "lo", "up"), ("-n", name, "link", "set", "eth0", "up")]
        for step in steps:
            run = ip(*step)
            assert run.returncode == 0, (step, run.stderr)
        yield list(zip(names, addresses))
    finally:
        for name in made:
            ip("netns", "delete", name)


def on_hosts(processes, hosts, port, *args):
    """The same fit as worker k on host k, with a TF_CONFIG naming the hosts."""
    cluster = {"worker": [f"{address}:{port}" for _, address in hosts]}
    return [processes(["ip", "netns", "exec", name, *linreg_command(*args)],
                      env=dict(ENV, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": k}})))
            for k, (name, _) in enumerate(hosts)]


def test_two_hosts_fit_the_bits_of_two_local_workers_and_a_link_down_ends_both(tmp_path, hosts, processes):
    """On two hosts the fit is the same, bit for bit, as with `--workers 2`
    on one; and when the link between them goes down in the middle of a
    streamed pass, both stop within 30 s, each naming the other."""
    path = write_parquet(tmp_path / "h.parquet", 6000, 5, row_group_size=500)
    fit = ("fit", path, "--target", "y", "--engine", "moments", "--quiet")
    local = processes(linreg_command(*fit, "--workers", 2, "--json", tmp_path / "local.json"), env=ENV)
    apart = on_hosts(processes, hosts, 2222, *fit, "--json", tmp_path / "hosts.json")
    checkpoint = tmp_path / "ckpt"
    endless = on_hosts(processes, hosts, 2223, "fit", path, "--target", "y", *ENDLESS, "--checkpoint", checkpoint)
    for process in [local, *apart]:
        out, err = process.communicate(timeout=DEADLINE)
        assert (process.returncode, err) == (0, ""), err
    local, apart = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("local", "hosts"))
    assert apart["coefficients"] == local["coefficients"]  # floats equal, every bit
    assert apart["std_errors"] == local["std_errors"]

    wait_for((checkpoint / "checkpoint").exists, *endless)  # both in the pass
    assert ip("-n", hosts[0][0], "link", "set", "eth0", "down").returncode == 0
    down = time.monotonic()
    ended = {}
    while len(ended) < 2:
        for k, worker in enumerate(endless):
            if k not in ended and worker.poll() is not None:
                ended[k] = time.monotonic() - down
        assert time.monotonic() - down < DEADLINE, "timed out"
        time.sleep(0.05)
    print(f"after the link went down, worker 0 ended in {ended[0]:.1f} s, worker 1 in {ended[1]:.1f} s")
    for k, worker in enumerate(endless):
        out, err = worker.communicate()
        assert worker.returncode == 1, err
        one_lost_peer_line(err, 1 - k, f"{hosts[1 - k][1]}:2223")
    assert max(ended.values()) < 30
