"""Progress bars that keep moving: a heartbeat for steps that are one long call, and weighted phases.

A bar that advances only when a long call returns looks frozen (the issue's "bar at 0 % for three
minutes"). :func:`heartbeat` redraws a bar every second so its clock and postfix stay current, and
:class:`Phases` turns a fixed sequence of unequal steps into one bar whose percentages follow their
typical durations, so tqdm's rate and ETA mean something.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from tqdm.auto import tqdm


@contextmanager
def heartbeat(bar: tqdm, every: float = 1.0) -> Iterator[tqdm]:
    """Redraw ``bar`` every ``every`` seconds while the block runs (elapsed time and ETA tick on)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            bar.refresh()

    thread = threading.Thread(target=beat, name="progress-heartbeat", daemon=True)
    thread.start()
    try:
        yield bar
    finally:
        stop.set()
        thread.join()


class Phases:
    """One bar over named phases, each worth its share of 100 (its typical share of the time).

    The first phase starts with the bar; ``start(name)`` completes the current phase and names the next,
    ``advance(fraction)`` moves within the current one (0..1 of it). The bar counts percent, so its
    ETA assumes the shares hold.
    """

    def __init__(self, shares: Mapping[str, float], desc: str, disable: bool = False) -> None:
        total = sum(shares.values())
        self.shares = {name: 100.0 * share / total for name, share in shares.items()}
        self.bar = tqdm(
            total=100,
            desc=desc,
            unit="%",
            disable=disable,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]",
        )
        self.current: str | None = None
        self.done = 0.0  # percent completed before the current phase
        self.within = 0.0  # fraction of the current phase completed
        self.start(next(iter(self.shares)))  # the first phase runs from the start

    def _move_to(self, percent: float) -> None:
        self.bar.update(max(0.0, percent - self.bar.n))

    def start(self, name: str) -> None:
        if self.current is not None:
            self.done += self.shares[self.current]
        self.current, self.within = name, 0.0
        self._move_to(self.done)
        self.bar.set_postfix_str(name)

    def advance(self, fraction: float) -> None:
        """The current phase is ``fraction`` (0..1) done."""
        assert self.current is not None, "start a phase first"
        self.within = min(1.0, max(self.within, fraction))
        self._move_to(self.done + self.within * self.shares[self.current])

    def close(self) -> None:
        self._move_to(100.0)
        self.bar.set_postfix_str("done")
        self.bar.close()

    def __enter__(self) -> Phases:
        return self

    def __exit__(self, kind, *_: object) -> None:
        if kind is None:
            self.close()
        else:
            self.bar.close()
