"""Time one epoch of full-batch gradient descent here and in other systems, side by side.

    linreg bench [--quick] [--large] [--json PATH] [--out DIR]
    linreg bench --fit [...]    time from a file on disk to coefficients instead,
                                against pandas + statsmodels, scikit-learn, numpy
                                and Spark MLlib (linreg/cli/fitbench.py)

For every case (N examples, d features, float32) the same problem -- the
model x·W + b, the mean squared error, plain gradient descent on the whole
data set each epoch -- is trained by:

  seed eager        the loop exactly as the original tutorial writes it:
                    eager, GradientTape, assign_sub, one Python iteration per epoch
  linreg none/function/xla
                    this project's trainer in each --compile mode
  seed xla          the tutorial's loop with nothing added (no history, no
                    stopping rules, no chunks), every epoch in one XLA
                    program; the table gives linreg xla / seed xla (target 1.2)
  keras fit         Keras' model.fit: one Dense unit, SGD, batch = the whole set
  numpy             gradient descent with the gradient written out by hand
  torch eager, torch compile
                    PyTorch autograd, eagerly and through torch.compile
  jax jit           jax.grad inside lax.fori_loop, compiled with jax.jit

Each system is warmed up once (tracing, compiling) and then timed a few
times; the figure is the median seconds per epoch. The memory floor is the
time to read x and y once -- their bytes divided by the read bandwidth
measured in the same run on the same buffers.

Also measured, each in fresh processes: `python main.py --quiet` against a
bare `python -c "import tensorflow"`, and the peak resident memory while
training on N = 10 million, d = 16, against the size of that data.

The peers (PyTorch, JAX) are optional: `make bench` installs them; a peer
that cannot be imported is reported as unavailable. Nothing here is a test:
speed is measured, never asserted.
"""
from pathlib import Path

from linreg.bench import epoch, epoch_report, processes
from linreg.cli import fitbench
from linreg.cli.flags import int_at_least, output_dir, output_file

FULL_CASES = [(n, d) for n in (10**3, 10**5, 10**7) for d in (1, 16)]
# N = 1e8 only with d = 1: at d = 16 one copy of the data is 6.8 GB, and the
# systems' own copies of it (TensorFlow's, JAX's, Keras's) would not fit in
# the 24 GiB this benchmark is meant to run in.
LARGE_CASES = [(10**8, 1)]
QUICK_CASES = [(10**3, 1), (10**7, 1)]


def add_arguments(parser):
    parser.add_argument(
        "--fit", action="store_true", help="time from a file to coefficients instead (see linreg.cli.fitbench)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="d = 1, N = 1e3 and 1e7 only (under two minutes); with --fit: N = 1e5 only"
    )
    parser.add_argument(
        "--large", action="store_true", help="also N = 1e8 with d = 1 (about 8 GB of memory); with --fit: N = 1e8, d = 8"
    )
    parser.add_argument("--json", type=output_file, metavar="PATH", help="write every figure as JSON")
    parser.add_argument("--out", type=output_dir, default="outputs", help="folder for the plot (default outputs/)")
    parser.add_argument(
        "--repeats", type=int_at_least(1), help="timed runs per system (default 5, quick 3; with --fit: 1)"
    )
    fitbench.add_arguments(parser)
    parser.set_defaults(run=run)


def run(args):
    from linreg.io import files

    if args.fit:
        return fitbench.run(args)
    cases = QUICK_CASES if args.quick else FULL_CASES + (LARGE_CASES if args.large else [])
    repeats = args.repeats or (3 if args.quick else 5)
    target = 0.1 if args.quick else 0.25  # seconds per timed call
    report = epoch.benchmark(cases, repeats=repeats, target_seconds=target, echo=print)
    report.update(processes.process_figures(repeats=1 if args.quick else 3, echo=print, ours=report))
    print()
    print(epoch_report.format_table(report))
    print(epoch_report.format_extras(report))
    files.make_dir(args.out)
    plot_path = Path(args.out) / "bench.png"
    epoch_report.plot(report, plot_path)
    print(f"plot: {plot_path}")
    if args.json:
        files.write_json(args.json, report)
        print(f"json: {args.json}")
    return 0
