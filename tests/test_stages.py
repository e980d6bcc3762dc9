"""One fit walks its stages in order, as examples/trace_fit.py follows it: the
checks of every argument are the plan's, the read stage does not call the plan
back, and the result holds plain values instead of calling the stages that
computed them."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _trace():
    spec = importlib.util.spec_from_file_location("trace_fit", ROOT / "examples" / "trace_fit.py")
    trace = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trace)
    return trace


@pytest.fixture(scope="module", params=[[], ["--cov", "HC1"]], ids=["nonrobust", "HC1"])
def walk(request):
    """(module, stage) of every visit of one `linreg fit houses.csv --target price`."""
    trace = _trace()
    argv = ["fit", str(ROOT / "examples" / "houses.csv"), "--target", "price", "--quiet", *request.param]
    trace.visits(argv)  # imports what the command loads lazily: a module's first import is a visit too
    return [(module, trace.stage_of(module)) for module in trace.visits(argv)]


def _after(walk, first):
    """The stages visited after the first visit of a module of stage `first`."""
    stages = [stage for _, stage in walk]
    return stages[stages.index(first) + 1:]


def test_the_plan_decides_before_any_later_stage_runs(walk):
    stages = [stage for _, stage in walk if stage is not None]
    assert list(dict.fromkeys(stages))[:2] == ["plan", "read"]


def test_reading_the_rows_never_calls_the_plan_back(walk):
    modules = [module for module, _ in walk]
    after = [stage for _, stage in walk[modules.index("linreg.data.read"):]]
    assert "plan" not in after


def test_the_result_calls_nothing_of_the_infer_stage(walk):
    assert "infer" not in _after(walk, "result")


def test_the_stages_come_first_in_the_order_of_the_pipeline(walk):
    stages = [stage for _, stage in walk if stage is not None]
    assert list(dict.fromkeys(stages)) == ["plan", "read", "scale", "precondition", "train", "infer", "result"]


def test_training_and_inference_never_call_the_read_or_plan_stages(walk):
    assert not {"plan", "read"} & set(_after(walk, "train"))
