"""The generation life cycle table: allowed transitions pass, every other one is a bug."""

from __future__ import annotations

import logging

import pytest

from tidegate.pipeline.lifecycle import TRANSITIONS, Lifecycle, LifecycleError, Phase


def test_the_happy_path_is_allowed_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "tidegate.lifecycle")
    lc = Lifecycle(7, "abc")
    for phase in (Phase.VALIDATED, Phase.ACTIVE, Phase.DRAINING, Phase.RETIRED):
        lc.advance(phase)
    assert lc.phase is Phase.RETIRED
    assert "generation 7 (config abc): draining -> retired" in caplog.text


@pytest.mark.parametrize(("start", "to"), [
    (start, to) for start in Phase for to in Phase if to not in TRANSITIONS[start]])
def test_every_other_transition_is_refused(start: Phase, to: Phase) -> None:
    lc = Lifecycle(1, "h", start)
    with pytest.raises(LifecycleError, match=f"{start.value} -> {to.value} is not a valid"):
        lc.advance(to)
    assert lc.phase is start


def test_rejected_and_retired_are_final() -> None:
    assert TRANSITIONS[Phase.REJECTED] == TRANSITIONS[Phase.RETIRED] == frozenset()
