"""The verdict is recomputed from the evidence: the gate's bootstrap draws exactly what the plain loop draws (so a
verdict written by an older rlops still recomputes to the same bounds), and recomputing is cheap enough for
`rlops audit verify` to do for every promotion."""

from __future__ import annotations

import random
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlops import gate


def reference(diffs: list[float], samples: int, confidence: float, seed: int) -> tuple[float, float]:
    """The bootstrap as first written: one `randrange` per draw."""
    if not diffs:
        return 0.0, 0.0
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(samples))
    alpha = 1.0 - confidence
    return means[max(0, int(alpha * samples) - 1)], means[min(samples - 1, int((1.0 - alpha) * samples))]


@pytest.fixture(params=["numpy", "pure Python"])
def path(request, monkeypatch):
    """Both ways of drawing: with numpy, and without it (the light core does not require numpy)."""
    if request.param == "pure Python":
        monkeypatch.setitem(sys.modules, "numpy", None)  # `import numpy` raises ImportError
    return request.param


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(diffs=st.lists(st.one_of(st.floats(-1, 1), st.sampled_from([0.0, 1.0, -1.0, 0.5])), max_size=70),
       samples=st.integers(1, 400), confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]), seed=st.integers(0, 2**32))
def test_the_bootstrap_draws_what_randrange_draws(path, diffs, samples, confidence, seed):
    assert gate.bootstrap_interval(diffs, samples, confidence, seed) == reference(diffs, samples, confidence, seed)


def test_a_power_of_two_and_the_projects_own_settings(path):
    for n in (1, 2, 4, 8, 64, 65):
        diffs = [((i * 7) % 5 - 2) / 4 for i in range(n)]
        assert gate.bootstrap_interval(diffs, 2000, 0.95, 0) == reference(diffs, 2000, 0.95, 0)
