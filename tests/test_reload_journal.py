"""The reload journal: one event per outcome, as the coordinator records it."""

from __future__ import annotations

from tidegate.telemetry.reloads import EndpointDiff, ReloadEvent, ReloadJournal


def test_diff_names_added_removed_and_changed_endpoints() -> None:
    diff = EndpointDiff.between({"GET /a": "1", "GET /b": "2", "GET /c": "3"},
                                {"GET /a": "1", "GET /b": "9", "GET /d": "4"})
    assert diff == EndpointDiff(added=("GET /d",), removed=("GET /c",), changed=("GET /b",))
    assert diff.summary() == "+1 endpoints, -1, ~1 changed"


def test_journal_is_bounded_and_tells_listeners_even_past_a_failing_one() -> None:
    journal = ReloadJournal(history=3)
    heard: list[str] = []

    def broken(event: ReloadEvent) -> None:
        raise RuntimeError("metrics bug")

    journal.subscribe(broken)
    journal.subscribe(lambda e: heard.append(e.result))
    for i in range(5):
        journal.record(ReloadEvent("applied" if i % 2 else "rejected", "save", generation=i))
    assert [e.generation for e in journal.events] == [2, 3, 4]
    assert heard == ["rejected", "applied", "rejected", "applied", "rejected"]
    last_applied = journal.last("applied")
    assert last_applied is not None and last_applied.generation == 3
    assert journal.events[-1].to_dict()["result"] == "rejected"
