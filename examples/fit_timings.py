"""Time linreg.fit on one file in this process: the first fit (TensorFlow's
import included) and warm ones after it, with each stage's seconds.

    python examples/fit_timings.py FILE [--engine memory] [--warm 2] [--target y]

Prints one JSON line: {"engine", "path", "first": {...}, "warm": [{...}, ...]},
each fit's "total" and its Fit.timings. Run it in fresh processes, taking
turns with another checkout (PYTHONPATH=other/src), to compare two versions.
"""
import argparse
import json
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--target", default="y")
    parser.add_argument("--warm", type=int, default=2, help="warm fits after the first")
    args = parser.parse_args()
    import linreg

    fits = []
    for _ in range(args.warm + 1):
        start = time.perf_counter()
        try:
            fit = linreg.fit(args.path, target=args.target, engine=args.engine, progress=False)
        except linreg.LinregError as error:
            raise SystemExit(f"error: {error}") from None
        seconds = time.perf_counter() - start
        fits.append({"total": round(seconds, 3), **{stage: round(s, 3) for stage, s in fit.timings.items()}})
    print(json.dumps({"engine": args.engine, "path": args.path, "first": fits[0], "warm": fits[1:]}))


if __name__ == "__main__":
    main()
