"""The one exception type for bad user input: the CLI prints its message on one line and exits 2."""


class UserError(Exception):
    """Bad input from the user (file, option, model path): message is one self-contained line."""


class WriteError(UserError, OSError):
    """A write that the system refused (read-only, full, forbidden): one line naming path and cause.

    Also an OSError, so a caller that can carry on without writing (the embedding cache) still can.
    """

    def __init__(self, path: object, err: OSError) -> None:
        cause = err.strerror or str(err)
        where = f" ({err.filename})" if err.filename and str(err.filename) != str(path) else ""
        super().__init__(f"cannot write {path}: {cause}{where}")
        self.message = self.args[0]
        self.errno, self.strerror, self.filename = err.errno, err.strerror, str(path)

    def __str__(self) -> str:  # the one line, not OSError's "[Errno N] ..." form
        return self.message


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
