"""The model and the loss, against numpy, and the variable-versus-constant claim."""
import numpy as np
import pytest
import tensorflow as tf

from linreg.core.model import LinearModel, mean_squared_error


def test_a_constant_cannot_be_changed_but_a_variable_can():
    constant = tf.constant([1.0, 2.0])
    assert not hasattr(constant, "assign_sub")
    with pytest.raises(TypeError):
        constant[0] = 5.0  # tensors do not support item assignment

    variable = tf.Variable([1.0, 2.0])
    # A graph that captured the variable before the change sees the change:
    # the same buffer was updated in place, not replaced by a new tensor.
    read = tf.function(lambda: variable.read_value())
    read()
    variable.assign_sub([0.5, 0.5])
    variable.assign_add([0.0, 1.0])
    np.testing.assert_array_equal(read().numpy(), [0.5, 2.5])


@pytest.mark.parametrize("d", [1, 3])
def test_prediction_is_x_times_W_plus_b(d):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, d))
    W, b = rng.normal(size=d), 0.7
    model = LinearModel(d, W=W, b=b, dtype=tf.float64)
    np.testing.assert_allclose(model(x).numpy(), x @ W + b, rtol=1e-12)


def test_scalar_starting_weight_is_repeated_for_every_feature():
    model = LinearModel(4, W=5.0, b=-1.0)
    np.testing.assert_array_equal(model.W.numpy(), [5.0] * 4)
    assert model.b.numpy() == -1.0
    assert {v.name.split(":")[0] for v in model.trainable_variables} == {"W", "b"}


def test_mean_squared_error_matches_numpy():
    rng = np.random.default_rng(2)
    y, y_pred = rng.normal(size=50), rng.normal(size=50)
    expected = np.mean((y - y_pred) ** 2)
    np.testing.assert_allclose(mean_squared_error(tf.constant(y), tf.constant(y_pred)).numpy(), expected, rtol=1e-12)
