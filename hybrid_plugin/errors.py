"""The one exception type for bad user input: the CLI prints its message on one line and exits 2."""


class UserError(Exception):
    """Bad input from the user (file, option, model path): message is one self-contained line."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C that was handled: the message says what was kept (the CLI prints it and exits 130)."""
