"""Go durations parse exactly, and a malformed one is an error (never 0)."""

from __future__ import annotations

import pytest

from tidegate.config.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("1m30s", 90.0), ("150us", 150e-6), ("150µs", 150e-6), ("2h", 7200.0), ("0", 0.0),
    ("3600s", 3600.0), ("1.5h", 5400.0), ("100ms", 0.1), ("1h2m3.5s", 3723.5), ("10ns", 1e-8),
])
def test_valid_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "message"), [
    ("", 'time: invalid duration ""'),
    ("2", 'time: missing unit in duration "2"'),
    ("1x", 'time: unknown unit "x" in duration "1x"'),
    ("abc", 'time: invalid duration "abc"'),
    (".s", 'time: invalid duration ".s"'),
])
def test_malformed_durations_raise_go_messages(text: str, message: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert str(info.value) == message


@pytest.mark.parametrize(("seconds", "text"), [
    (90.0, "1m30s"), (0.00015, "150µs"), (0.0, "0s"), (3.0, "3s"), (7200.0, "2h0m0s"),
])
def test_format_like_go(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
