"""The project's exceptions: one message, one exit code, never a traceback."""


class LinregError(Exception):
    """A problem the user can fix: bad flags, bad files. The CLI prints
    `error: <message>` and exits with `exit_code`."""

    exit_code = 2


class DivergenceError(LinregError):
    """Gradient descent blew up: the loss became NaN/inf or kept growing."""

    exit_code = 3
