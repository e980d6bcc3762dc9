"""One training step: measure the loss, differentiate it, move downhill.

The loss is a bowl over (W, b). Its gradient points to where the loss rises
fastest, so a small move the other way lowers it:  W <- W - rate · dLoss/dW.
Repeated, that walks to the bottom, where the gradient is zero.
"""
import tensorflow as tf

from linreg.core.model import mean_squared_error


def loss_and_gradients(model, x, y):
    """The loss on (x, y) and its gradient with respect to W and b.

    While the `with` block runs, the tape records every operation that
    touches a trainable variable: matvec, + b, the subtraction, the square,
    the mean. Afterwards `tape.gradient` plays the record backwards, applying
    the chain rule from the loss to each variable (backpropagation). That is
    why the gradient exists only after the forward pass: the tape can only
    differentiate what it saw. By hand, for this loss,
        dLoss/dW = -2 · mean(x · (y - ŷ)),   dLoss/db = -2 · mean(y - ŷ),
    and the tests hold the tape to exactly these formulas.
    """
    with tf.GradientTape() as tape:
        loss = mean_squared_error(y, model(x))
    return loss, tape.gradient(loss, model.trainable_variables)  # [W, b], or [W] without an intercept


def train_step(model, optimizer, x, y):
    """One epoch of full-batch descent; returns the loss and gradients before the move.

    Full batch: x and y are the whole data set, so the gradient is the exact
    gradient of the loss and one step is one epoch. (Mini-batches, as Keras
    usually uses, make cheaper but noisier steps.)

    `assign_sub(v)` is "variable <- variable - v", in place. We subtract
    because the gradient points uphill. How far we go is the learning rate:
    too small and training crawls; too large and each step overshoots the
    bottom by more than it started from, and the loss grows without bound.
    Which way we go is the optimizer's `direction`: the gradient itself for
    plain descent, or a blend with past steps for momentum (optimizers.py).
    """
    loss, gradients = loss_and_gradients(model, x, y)
    update(model, optimizer, gradients)
    return loss, gradients


def update(model, optimizer, gradients):
    """The move itself: each variable steps against its direction.

    Apart from train_step so that a gradient made elsewhere -- summed over
    the batches of files too large for memory, or over several workers
    (engine/streamed.py) -- moves the model the same way.
    """
    for variable, direction in zip(model.trainable_variables, optimizer.direction(gradients)):
        variable.assign_sub(optimizer.learning_rate * direction)
