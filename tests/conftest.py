import linreg  # noqa: F401  (imports TensorFlow quietly once for the whole run)
