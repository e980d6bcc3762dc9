"""Linear regression trained by a hand-written TensorFlow 2 loop: the demo.

    python main.py [--epochs 50] [--learning-rate 0.1] [--samples 1000] ...

is the same as `linreg demo ...`; `python main.py --help` lists every flag.
To read how it works, open in this order:
    src/linreg/core/model.py        the model f(x) = x·W + b and its loss
    src/linreg/core/step.py         the GradientTape step and assign_sub
    src/linreg/core/optimizers.py   the learning rules: which way, how far
    src/linreg/core/training.py     the training loop: its first function is what the demo runs
    src/linreg/cli/demo.py          this demo's story: data, training, summary, plots
"""
import sys
from pathlib import Path

# Run from a checkout without installing: find the package beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from linreg.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]], exiting=True))
