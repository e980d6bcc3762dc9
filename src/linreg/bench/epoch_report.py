"""The epoch benchmark's report, told: a table, a few lines, a plot.

In: the report of epoch.benchmark, with processes.process_figures' figures
merged in. Out: text for the terminal (a row per case, a column per system,
then ours against the memory floor, the best peer and the seed's minimal
XLA loop) and a PNG (seconds per epoch against N, a panel per d).
"""
from linreg.bench import is_ours, system_names

# linreg xla against the seed's loop compiled with nothing added: what the
# history, the stopping rules and the chunks cost (the target is XLA_TARGET).
XLA_PAIR, XLA_TARGET = ("linreg xla", "seed xla"), 1.2


def format_seconds(seconds):
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def best_peer(case):
    peers = {k: v for k, v in case["systems"].items() if not is_ours(k)}
    return min(peers, key=peers.get) if peers else None


def format_table(report):
    """A row per case, a column per system, then ours against the floor, the best peer and seed xla."""
    names = system_names(report)
    header = ["N", "d", "floor", *names, "ours", "ours/floor", "ours/best peer", "/".join(XLA_PAIR)]
    rows = []
    for case in report["cases"]:
        ours_name, peer = case.get("ours"), best_peer(case)
        mine = case["systems"].get(ours_name)
        floor = case.get("floor_s")
        xla, seed = (case["systems"].get(name) for name in XLA_PAIR)
        rows.append(
            [
                f"{case['n']:.0e}",
                str(case["d"]),
                format_seconds(floor),
                *(format_seconds(case["systems"].get(name)) for name in names),
                ours_name or "-",
                f"{mine / floor:.2f}" if mine and floor else "-",
                f"{mine / case['systems'][peer]:.2f} ({peer})" if mine and peer else "-",
                f"{xla / seed:.2f}" if xla and seed else "-",
            ]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    title = f"seconds per epoch (median after warm-up); target {'/'.join(XLA_PAIR)} <= {XLA_TARGET}"
    return title + "\n" + "\n".join(lines)


def format_extras(report):
    lines = []
    if report.get("bandwidth_bytes_per_s"):
        lines.append(f"read bandwidth (largest case): {report['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s")
    main_s, tf_s = report.get("main_py_s"), report.get("import_tf_s")
    if tf_s:
        ratio = f" ({main_s / tf_s:.2f}x)" if main_s else ""
        lines.append(f"python main.py --quiet: {format_seconds(main_s)} vs import tensorflow: {format_seconds(tf_s)}{ratio}")
    if report.get("peak_rss_bytes"):
        peak, data, base = report["peak_rss_bytes"], report["data_bytes"], report["baseline_rss_bytes"]
        lines.append(
            f"peak RSS while training at N=1e7 d=16 ({report['rss_mode']}): {peak / 2**20:.0f} MiB "
            f"(before training {report['rss_before_training_bytes'] / 2**20:.0f} MiB); data {data / 2**20:.0f} MiB "
            f"+ TensorFlow baseline {base / 2**20:.0f} MiB = {(data + base) / 2**20:.0f} MiB "
            f"({peak / (data + base):.2f}x)"
        )
    for name, reason in {**report.get("unavailable", {}), **report.get("process_unavailable", {})}.items():
        lines.append(f"unavailable: {name}: {reason}")
    return "\n".join(lines)


def plot(report, path):
    """Seconds per epoch against N, log-log: a panel per d, a line per system, the floor dashed."""
    from linreg.io import plots

    plt = plots.plt
    dims = sorted({case["d"] for case in report["cases"]})
    fig, axes = plt.subplots(1, len(dims), figsize=(6.4 * len(dims), 4.6), squeeze=False)
    names = system_names(report)
    colors = {name: plt.cm.tab10(i % 10) for i, name in enumerate(names)}
    for ax, d in zip(axes[0], dims):
        cases = sorted((c for c in report["cases"] if c["d"] == d), key=lambda c: c["n"])
        for name in names:
            points = [(c["n"], c["systems"][name]) for c in cases if name in c["systems"]]
            if points:
                style = "-o" if is_ours(name) else "-."
                width = 2.2 if is_ours(name) else 1.2
                ax.loglog(*zip(*points), style, color=colors[name], linewidth=width, markersize=4, label=name)
        floor = [(c["n"], c["floor_s"]) for c in cases if c.get("floor_s")]
        if floor:
            ax.loglog(*zip(*floor), "--", color="black", linewidth=1.5, label="memory floor")
        ax.set_xlabel("N (examples)")
        ax.set_ylabel("seconds per epoch")
        ax.set_title(f"d = {d}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    plots._save(fig, path)
