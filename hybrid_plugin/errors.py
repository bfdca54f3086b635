"""The one exception type for bad user input: the CLI prints its message on one line and exits 2."""


class UserError(Exception):
    """Bad input from the user (file, option, model path): message is one self-contained line."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C that was handled: the message says what was kept (the CLI prints it and exits 130)."""


_WARNED: set[str] = set()


def warn(message: str, once: str | None = None) -> None:
    """One ``hybrid-plugin: warning: ...`` line on stderr (with ``once``: at most once per key).

    Printed through tqdm so that a progress bar running at that moment is not broken in two.
    """
    import sys

    from tqdm import tqdm

    if once is not None:
        if once in _WARNED:
            return
        _WARNED.add(once)
    tqdm.write(f"hybrid-plugin: warning: {message}", file=sys.stderr)
