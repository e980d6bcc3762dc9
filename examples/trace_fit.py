"""Follow one `linreg fit` through the project's modules, and count the moves.

    python examples/trace_fit.py [examples/houses.csv price]

Runs the command in this process with a profile hook that records, at every
call and return of a Python function, the project module it belongs to
(the frames of other libraries are skipped). Consecutive events in the same
module are one visit. It prints how many modules the fit touches, how many
moves there are from one module to another, and how many of those moves
return to a module the fit had already left -- the number that is small
when the stages run once, in order. TensorFlow is imported first, so its
start-up does not count; so is everything the command imports lazily, by a
first untimed run.
"""
import sys
from pathlib import Path


def visits(argv):
    from linreg.cli import main

    seen = []

    def hook(frame, event, arg):
        if event not in ("call", "return"):
            return
        name = frame.f_globals.get("__name__", "")
        if name.startswith("linreg") and (not seen or seen[-1] != name):
            seen.append(name)

    sys.setprofile(hook)
    try:
        main(argv)
    finally:
        sys.setprofile(None)
    return seen


# Each module's stage (api.py's docstring lists them); the heart and the
# engine are what the train stage runs, the report is part of the result.
STAGES = {
    "plan": "plan", "engine.cluster": "plan", "data.": "read", "data.scaling": "scale",
    "precondition": "precondition", "analysis.curvature": "precondition", "train": "train", "engine.": "train",
    "core.": "train", "io.progress": "train", "infer": "infer", "analysis.": "infer",
    "results": "result", "io.report": "result",
}


def stage_of(module):
    """The stage `module` belongs to: the longest matching prefix of STAGES, or None (the CLI, api.py)."""
    name = module.removeprefix("linreg.")
    matches = [prefix for prefix in STAGES if name == prefix or (prefix.endswith(".") and name.startswith(prefix))]
    return STAGES[max(matches, key=len)] if matches else None


def main():
    here = Path(__file__).resolve().parent
    data, target = (sys.argv[1], sys.argv[2]) if len(sys.argv) > 2 else (str(here / "houses.csv"), "price")
    argv = ["fit", data, "--target", target, "--quiet"]
    import tensorflow  # noqa: F401

    import io
    from contextlib import redirect_stdout

    with redirect_stdout(io.StringIO()):
        visits(argv)  # imports every module the command loads lazily
        seen = visits(argv)
    left, returns = set(), 0
    for before, now in zip(seen, seen[1:]):
        left.add(before)
        returns += now in left
    stages = [name for name in dict.fromkeys(seen) if not name.startswith("linreg.cli")]
    print(f"modules touched: {len(set(seen))}")
    print(f"moves between modules: {len(seen) - 1}")
    print(f"moves back to a module already left: {returns}")
    print("first visits, in order: " + " > ".join(name.removeprefix("linreg.") for name in stages))
    # The same walk by stage, api.py's own frames left out: a stage that
    # returns is a later stage calling back into an earlier one.
    walk = [stage for stage in map(stage_of, seen) if stage is not None]
    walk = [stage for k, stage in enumerate(walk) if k == 0 or walk[k - 1] != stage]
    print(f"stages in order: {' > '.join(dict.fromkeys(walk))}")
    print("returns to an earlier stage: " + (", ".join(
        f"{before} -> {now}" for before, now in zip(walk, walk[1:]) if walk.index(now) < walk.index(before)
    ) or "none"))


if __name__ == "__main__":
    main()
