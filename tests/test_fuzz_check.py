"""Fuzzing `tidegate check -c`: mutated configurations all end in a verdict with a position.

A fixed seed and a few hundred mutations (seeds, mutations and classes: `tests/fuzzconfig.py`),
each bounded in time: no traceback, no error without a position, no crash, no hang. The long
run is `python bench/fuzz_check.py --cases 10000 --seed N`.
"""

from __future__ import annotations

import time
from collections import Counter

from tests.fuzzconfig import BUGS, CLASSES
from tests.fuzzrun import run_cases, summary

SEED = 11
CASES = 600


def test_mutated_configurations_get_a_located_verdict_never_a_crash() -> None:
    started = time.monotonic()
    outcomes = run_cases(SEED, CASES, timeout=10.0)
    elapsed = time.monotonic() - started
    counts = Counter(o.kind for o in outcomes)
    print(f"\n{CASES} cases, seed {SEED}, {elapsed:.1f} s\n{summary(outcomes)}")
    assert len(outcomes) == CASES
    assert set(counts) <= set(CLASSES)
    bugs = [o for o in outcomes if o.kind in BUGS]
    assert not bugs, summary(outcomes) + "".join(
        f"\n--- case {o.case.index}: {'; '.join(o.case.what)}\n{o.stderr[-2000:]}"
        for o in bugs[:3])
    # The mutations reach both verdicts: the run is not all refusals.
    assert counts["ok"] >= CASES // 20
    assert counts["invalid"] >= CASES // 2
