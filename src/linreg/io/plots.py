"""Figures, drawn with matplotlib's non-interactive Agg backend (no screen needed).

Each function takes plain numpy arrays and a path, and writes one PNG through
files.atomic_path, so a figure is either complete or absent.
"""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from linreg.io.files import atomic_path  # noqa: E402

DPI = 110


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)


def data_and_lines(path, x, y, lines):
    """Scatter of (x, y) with one line per (label, W, b, style) in `lines`."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    ax.scatter(x, y, s=6, alpha=0.35, color="tab:gray", label="data")
    grid = np.linspace(np.min(x), np.max(x), 2)
    for label, W, b, style in lines:
        ax.plot(grid, W * grid + b, style, linewidth=2, label=f"{label}: y = {W:.3f}·x + {b:.3f}")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("Data, the true line and the learned one")
    ax.legend(loc="upper left", fontsize=8)
    _save(fig, path)


def loss_per_epoch(path, loss, floor=None, floor_label="least-squares loss", rounds=None):
    """The loss at each epoch on a log scale; with `floor`, also how far
    above that minimum it still is (the part gradient descent can remove);
    with `rounds` (each epoch's training round, 0 the first run), a line
    where each refinement round starts."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    epochs = np.arange(len(loss))
    ax.semilogy(epochs, loss, marker=".", label="loss")
    if floor is not None:
        excess = np.asarray(loss, np.float64) - floor
        shown = excess > 0
        ax.semilogy(epochs[shown], excess[shown], marker=".", label=f"loss − {floor_label} ({floor:.4g})")
    if rounds is not None:
        starts = np.flatnonzero(np.diff(rounds) > 0) + 1
        for k, start in enumerate(starts):
            ax.axvline(start, color="tab:gray", linestyle=":", linewidth=1,
                       label="a refinement round starts" if k == 0 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean squared error (log scale)")
    ax.set_title("Loss per epoch")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def parameters_per_epoch(path, W, b, true_W, true_b, least_squares=None):
    """W and b after each epoch, against the true values (and least squares)."""
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.8), sharex=True, layout="constrained")
    epochs = np.arange(len(W))
    for ax, values, true, name, best in (
        (axes[0], W, true_W, "W", None if least_squares is None else least_squares[0]),
        (axes[1], b, true_b, "b", None if least_squares is None else least_squares[1]),
    ):
        ax.plot(epochs, values, marker=".", label=f"learned {name}")
        ax.axhline(true, color="tab:green", linestyle="--", label=f"true {name} = {true:g}")
        if best is not None:
            ax.axhline(best, color="tab:red", linestyle=":", label=f"least squares {name} = {best:.4f}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend(fontsize=8)
    _save(fig, path)


def loss_surface(path, loss_fn, W_path, b_path, optimum):
    """Contours of the loss over (W, b) with the path gradient descent took.

    `loss_fn(W_grid, b_grid)` evaluates the loss on 2-D arrays of W and b.
    """
    W_path, b_path = np.asarray(W_path), np.asarray(b_path)
    pad_W = max(1.0, 0.25 * np.ptp(W_path))
    pad_b = max(1.0, 0.25 * np.ptp(b_path))
    W_lo, W_hi = min(W_path.min(), optimum[0]) - pad_W, max(W_path.max(), optimum[0]) + pad_W
    b_lo, b_hi = min(b_path.min(), optimum[1]) - pad_b, max(b_path.max(), optimum[1]) + pad_b
    W_grid, b_grid = np.meshgrid(np.linspace(W_lo, W_hi, 200), np.linspace(b_lo, b_hi, 200))
    surface = loss_fn(W_grid, b_grid)
    fig, ax = plt.subplots(figsize=(6.4, 5.0), layout="constrained")
    levels = np.geomspace(surface.min(), surface.max(), 25)
    contours = ax.contour(W_grid, b_grid, surface, levels=levels, cmap="viridis", linewidths=0.8)
    fig.colorbar(contours, ax=ax, label="mean squared error")
    ax.plot(W_path, b_path, "o-", color="tab:red", markersize=3, linewidth=1, label="gradient descent")
    ax.plot(W_path[0], b_path[0], "s", color="black", label="start")
    ax.plot(*optimum, "*", color="gold", markersize=14, markeredgecolor="black", label="least squares")
    ax.set_xlabel("W")
    ax.set_ylabel("b")
    ax.set_title("The loss surface and the path down it")
    ax.legend(fontsize=8)
    _save(fig, path)


def predicted_vs_actual(path, actual, predicted, target="y"):
    """Each row's prediction against its true value; a perfect fit lies on the diagonal."""
    fig, ax = plt.subplots(figsize=(5.6, 5.0), layout="constrained")
    ax.scatter(actual, predicted, s=8, alpha=0.5, color="tab:blue")
    low, high = float(min(np.min(actual), np.min(predicted))), float(max(np.max(actual), np.max(predicted)))
    ax.plot([low, high], [low, high], "--", color="tab:red", linewidth=1, label="predicted = actual")
    ax.set_xlabel(f"actual {target}")
    ax.set_ylabel(f"predicted {target}")
    ax.set_title("Predicted versus actual")
    ax.legend(fontsize=8)
    _save(fig, path)


def residuals_vs_fitted(path, fitted, residuals, target="y"):
    """Residuals against fitted values; a good linear fit shows a shapeless band around 0."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    ax.scatter(fitted, residuals, s=8, alpha=0.5, color="tab:blue")
    ax.axhline(0.0, color="tab:red", linestyle="--", linewidth=1)
    ax.set_xlabel(f"fitted {target}")
    ax.set_ylabel("residual (actual − fitted)")
    ax.set_title("Residuals versus fitted values")
    _save(fig, path)


def _mark_alphas(ax, marked):
    """A vertical line at each (label, alpha) of `marked`, as glmnet draws the chosen ones."""
    for (label, alpha), style in zip(marked, ("--", ":")):
        ax.axvline(alpha, color="black", linestyle=style, linewidth=1, label=f"{label}: α = {alpha:.4g}")


def penalty_path(path, alphas, coefficients, features, marked, title="Coefficients along the penalty path"):
    """Each coefficient [N, d] against α (log scale, largest first as the path runs), the
    chosen α's marked: `marked` a list of (label, α)."""
    fig, ax = plt.subplots(figsize=(6.8, 4.4), layout="constrained")
    for j, name in enumerate(features):
        ax.plot(alphas, coefficients[:, j], linewidth=1.2, label=name if len(features) <= 12 else None)
    _mark_alphas(ax, marked)
    ax.axhline(0.0, color="tab:gray", linewidth=0.6)
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("α, the penalty's weight (log scale)")
    ax.set_ylabel("coefficient (original units)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2, loc="best")
    _save(fig, path)


def cv_curve(path, alphas, mean, error, marked, title="Cross-validation along the path"):
    """The mean validation error ± one standard error against α (log scale), the chosen α's marked."""
    fig, ax = plt.subplots(figsize=(6.8, 4.4), layout="constrained")
    ax.errorbar(alphas, mean, yerr=error, fmt="o", color="tab:red", markersize=3, ecolor="tab:gray", elinewidth=0.8,
                capsize=2, label="mean over the folds ± one standard error")
    _mark_alphas(ax, marked)
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("α, the penalty's weight (log scale)")
    ax.set_ylabel("validation mean squared error")
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)
