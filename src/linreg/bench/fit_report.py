"""The fit benchmark's report, told: markdown tables and a bar chart.

In: the report of fit.benchmark. Out: markdown -- the time (and peak memory)
of every system on every case with the best linreg engine over the best
peer, the same cold (a fresh process) beside warm (a process that has fitted
before), the accuracy against the reference, the targets (a moments pass
within 2x of pyarrow's read, a peak within TensorFlow's baseline + 1 GiB),
the scaling from 1 to 2 workers, what failed -- a one-line description of a
run for the progress output, and a PNG of the times.
"""
import math

from linreg.bench import is_ours, system_names
from linreg.bench.fit_runs import PYARROW_READ, SYSTEMS


def describe(figures):
    """One run's figures in a line, for the progress output."""
    if figures["status"] == "skipped":
        return f"skipped ({figures['error']})"
    if figures["status"] == "failed":
        after = f" after {figures['wall_s']:.1f} s" if figures.get("wall_s") is not None else ""
        return f"FAILED{after}: {figures['error'][:160]}"
    text = f"{figures['wall_s']:.2f} s"
    if "calls_s" in figures:  # warm: no process of its own
        engine = f", engine {figures['engine']}" if figures.get("engine") else ""
        text += f" (median of {len(figures['calls_s'])} calls{engine})"
    else:
        text += f", peak {gib(figures['peak_tree_rss_bytes'])} GiB"
    if figures.get("max_rel_diff") is not None:
        text += f", max rel diff {figures['max_rel_diff']:.1e}" + ("" if figures["meets_target"] else " (misses 1e-8)")
    if figures.get("spark_session_to_coefficients_s") is not None:
        text += f", session to coefficients {figures['spark_session_to_coefficients_s']:.2f} s"
    return text


def gib(count):
    return f"{count / 2**30:.2f}" if count is not None else "-"


def _cell(figures):
    if figures is None:
        return ""
    if figures["status"] in ("failed", "skipped"):
        return figures["status"]
    text = f"{figures['wall_s']:.3g}"
    if "peak_tree_rss_bytes" in figures:  # warm figures have no process of their own
        text += f" ({gib(figures['peak_tree_rss_bytes'])})"
    return text if figures["status"] == "ok" else text + " ✗"


def _markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _case_label(case):
    return [f"{case['n']:.0e}", str(case["d"]), case["format"]]


def _ratio(systems, ours, peer):
    """The best linreg system's seconds over the best peer's, named."""
    if not (ours and peer):
        return "-"
    return f"{systems[ours]['wall_s'] / systems[peer]['wall_s']:.2f} ({ours} / {peer})"


def format_table(report):
    """Rows = cases, columns = systems; "seconds (peak GiB)"; then best linreg / best peer."""
    names = system_names(report)
    header = ["N", "d", "format", PYARROW_READ, *names, "best linreg / best peer"]
    rows = []
    for case in report["cases"]:
        ratio = _ratio(case["systems"], case.get("best_ours"), case.get("best_peer"))
        rows.append([*_case_label(case), _cell(case["pyarrow_read"]), *(_cell(case["systems"].get(n)) for n in names), ratio])
    return _markdown(header, rows)


def format_warm(report):
    """Rows = cases, columns = the systems timed warm, "cold s (peak GiB) / warm s"; then best linreg /
    best peer, cold and warm."""
    names = []
    for case in report["cases"]:
        names += [name for name in case.get("warm", {}) if name not in names]
    header = ["N", "d", "format", *names, "best linreg / best peer, cold", "best linreg / best peer, warm"]
    rows = []
    for case in report["cases"]:
        warm = case.get("warm", {})
        cells = []
        for name in names:
            cell = f"{_cell(case['systems'].get(name)) or '-'} / {_cell(warm.get(name)) or '-'}"
            engine = (warm.get(name) or {}).get("engine")
            cells.append(cell + (f" ({engine})" if engine and engine not in name else ""))
        cold = _ratio(case["systems"], case.get("best_ours"), case.get("best_peer"))
        hot = _ratio(warm, case.get("best_ours_warm"), case.get("best_peer_warm"))
        rows.append([*_case_label(case), *cells, cold, hot])
    return _markdown(header, rows)


def format_accuracy(report):
    names = [name for name in system_names(report)]
    rows = []
    for case in report["cases"]:
        cells = []
        for name in names:
            f = case["systems"].get(name)
            cells.append(f"{f['max_rel_diff']:.1e}" if f and f.get("max_rel_diff") is not None else "-")
        rows.append([*_case_label(case), f"{case['condition_number_unit_columns']:.3g}", *cells])
    return _markdown(["N", "d", "format", "cond (unit columns)", *names], rows)


def format_targets(report):
    """The targets: moments within 2x of pyarrow's read; peak within TF's baseline + 1 GiB; 1 -> 2 workers."""
    base = report["tensorflow_baseline"]
    base_peak = base["peak_tree_rss_bytes"] if base["status"] == "ok" else None
    ours = [name for name in system_names(report) if is_ours(name)]
    header = ["N", "d", "format", "pyarrow read s"]
    header += [f"{name}: pass / read" for name in ("linreg moments", "linreg moments 2w") if name in ours]
    header += [f"{name}: peak - TF" for name in ours]
    robust = [name for name in ours if SYSTEMS.get(name, {}).get("cov")]
    header += [f"{name}: second pass / first" for name in robust]
    rows = []
    for case in report["cases"]:
        # Both timed inside their processes: pyarrow's read (from the call to the
        # table) against linreg's pass (from opening the files to the merged statistics).
        arrow = case["pyarrow_read"]
        phases = arrow.get("phases") or {}
        read = phases["read_s"] - phases.get("imported_s", phases.get("started_s", 0.0)) if arrow["status"] == "ok" and "read_s" in phases else None
        row = [*_case_label(case), f"{read:.3g}" if read else "failed"]
        for name in ("linreg moments", "linreg moments 2w"):
            if name in ours:
                f = case["systems"].get(name)
                ok = f and f["status"] != "failed" and f.get("pass_s") and read
                row.append(f"{f['pass_s']:.3g} s / {read:.3g} s = {f['pass_s'] / read:.2f}" if ok else "-")
        for name in ours:
            f = case["systems"].get(name)
            ok = f and f["status"] != "failed" and f.get("peak_tree_rss_bytes") and base_peak
            row.append(f"{(f['peak_tree_rss_bytes'] - base_peak) / 2**30:+.2f} GiB" if ok else "-")
        for name in robust:  # the infer stage: the sandwich's pass, and the small solves after it
            f = case["systems"].get(name)
            ok = f and f["status"] != "failed" and f.get("pass_s") and f.get("infer_s")
            row.append(f"{f['infer_s']:.3g} s / {f['pass_s']:.3g} s = {f['infer_s'] / f['pass_s']:.2f}" if ok else "-")
        rows.append(row)
    return _markdown(header, rows)


def format_scaling(report):
    pairs = [("linreg moments", "linreg moments 2w"), ("linreg moments pinned", "linreg moments pinned 2w"),
             ("linreg stream", "linreg stream 2w")]  # fmt: skip
    rows = []
    for case in report["cases"]:
        row = list(_case_label(case))
        for one, two in pairs:
            a, b = case["systems"].get(one), case["systems"].get(two)
            if a and b and a["status"] != "failed" and b["status"] != "failed" and "wall_s" in a and "wall_s" in b:
                cell = f"wall {a['wall_s'] / b['wall_s']:.2f}x"
                if a.get("pass_s") and b.get("pass_s"):
                    cell += f", pass {a['pass_s'] / b['pass_s']:.2f}x ({a['pass_s']:.3g} s / {b['pass_s']:.3g} s)"
                row.append(cell)
            else:
                row.append("-")
        rows.append(row)
    return _markdown(["N", "d", "format", *(f"{one}: 1 -> 2 workers" for one, _ in pairs)], rows)


def _warm_part(report):
    if not any("warm" in case for case in report["cases"]):
        return []
    return [
        "",
        "### Cold and warm",
        "",
        "seconds, cold (peak GiB) / warm. Cold: the table above, a fresh process from launch to exit. Warm: in "
        "one process per case where every system has already fitted a small file (libraries imported, Spark's "
        "session up, TensorFlow's functions traced), from the call to the coefficients, the median of "
        f"{report['settings']['warm_calls']} calls; (engine): the engine linreg.fit chose",
        "",
        format_warm(report),
    ]


def format_report(report):
    base = report["tensorflow_baseline"]
    parts = [
        "## Time from the file to coefficients within 1e-8 of the reference",
        "",
        "seconds, wall, fresh process (peak RSS of the process tree, GiB); ✗: the coefficients missed the 1e-8 target; "
        f"{report['page_cache']}; load average at the start {report['machine']['load_average_at_start'][0]:.2f}, "
        f"at the end {report.get('load_average_at_end', [math.nan])[0]:.2f} on {report['machine']['cpus']} cores",
        "",
        format_table(report),
        *_warm_part(report),
        "",
        "### Largest relative difference to the TSQR reference",
        "",
        format_accuracy(report),
        "",
        "### Targets",
        "",
        f"`python -c \"import tensorflow\"`: {base['wall_s']:.2f} s, peak {gib(base['peak_tree_rss_bytes'])} GiB "
        "(the TensorFlow baseline; the target is a peak within it + 1 GiB, and a moments pass within 2x of "
        "pyarrow's read, both process starts included)",
        "",
        format_targets(report),
        "",
        "### Scaling: wall time with 1 worker / with 2 workers (pinned: LINREG_PIN_CORES=1)",
        "",
        format_scaling(report),
    ]
    spark = [
        (case, case["systems"]["Spark MLlib"]) for case in report["cases"]
        if case["systems"].get("Spark MLlib", {}).get("spark_session_to_coefficients_s") is not None
    ]  # fmt: skip
    if spark:
        parts += ["", "Spark MLlib, from session ready to coefficients (JVM start left out): " + "; ".join(
            f"{' '.join(_case_label(case))}: {f['spark_session_to_coefficients_s']:.2f} s" for case, f in spark)]  # fmt: skip
    failures = [
        f"- {' '.join(_case_label(case))}, {name}: {f['error']}"
        for case in report["cases"] for name, f in case["systems"].items() if f["status"] in ("failed", "skipped")
    ] + [
        f"- {' '.join(_case_label(case))}, {name} (warm): {f['error']}"
        for case in report["cases"] for name, f in case.get("warm", {}).items() if f["status"] == "failed"
    ]  # fmt: skip
    if failures:
        parts += ["", "### Failed or skipped", "", *failures]
    return "\n".join(parts)


def plot(report, path):
    """Seconds from file to coefficients, log scale: a group of bars per case, a bar per system."""
    import numpy as np

    from linreg.io import plots

    plt = plots.plt
    names = [PYARROW_READ, *system_names(report)]
    cases = report["cases"]
    fig, ax = plt.subplots(figsize=(max(8.0, 1.3 * len(cases) * max(1, len(names)) / 6), 5.2))
    width = 0.85 / len(names)
    colors = {name: plt.cm.tab20(i % 20) for i, name in enumerate(names)}
    for i, name in enumerate(names):
        heights = []
        for case in cases:
            f = case["pyarrow_read"] if name == PYARROW_READ else case["systems"].get(name)
            heights.append(f["wall_s"] if f and f["status"] in ("ok", "inexact") else np.nan)
        positions = np.arange(len(cases)) + (i - (len(names) - 1) / 2) * width
        hatch = "//" if name == PYARROW_READ else None
        edge = "black" if is_ours(name) else None
        ax.bar(positions, heights, width, label=name, color=colors[name], hatch=hatch, edgecolor=edge, linewidth=0.6)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(cases)))
    ax.set_xticklabels([f"N={c['n']:.0e}\nd={c['d']}\n{c['format']}" for c in cases], fontsize=8)
    ax.set_ylabel("seconds, file to coefficients (fresh process)")
    ax.set_title("time to fit (missing bar: failed, skipped or not run)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    plots._save(fig, path)
