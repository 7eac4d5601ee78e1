"""The life cycle of a generation, as a table.

    loading ──▶ validated ──▶ active ──▶ draining ──▶ retired
       └──────────┴──▶ rejected

Rules: only the supervisor's build moves a configuration from loading to validated or
rejected; a validated one is rejected when it equals the serving one, its address cannot be
bound or a worker cannot build it; it is active once swapped in (in each worker's slot, and
for the reload coordinator once every worker acknowledged), and the generation it replaces
starts draining at that moment; a draining generation is retired once its last request has
finished (or its drain deadline passed, or the worker stops) and its resources are closed.
Every transition is logged (DEBUG) with the generation id and config hash.
"""

from __future__ import annotations

import enum
import logging

log = logging.getLogger("tidegate.lifecycle")


class Phase(enum.Enum):
    """Where a generation is in its life."""

    LOADING = "loading"
    VALIDATED = "validated"
    ACTIVE = "active"
    DRAINING = "draining"
    RETIRED = "retired"
    REJECTED = "rejected"


TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.LOADING: frozenset({Phase.VALIDATED, Phase.REJECTED}),
    Phase.VALIDATED: frozenset({Phase.ACTIVE, Phase.REJECTED}),
    Phase.ACTIVE: frozenset({Phase.DRAINING}),
    Phase.DRAINING: frozenset({Phase.RETIRED}),
    Phase.RETIRED: frozenset(),
    Phase.REJECTED: frozenset(),
}


class LifecycleError(RuntimeError):
    """A transition the table does not allow: a bug, never a configuration problem."""


class Lifecycle:
    """The phase of one generation; `advance` checks the table and logs the transition."""

    __slots__ = ("config_hash", "gen_id", "phase")

    def __init__(self, gen_id: int, config_hash: str, phase: Phase = Phase.LOADING) -> None:
        self.gen_id = gen_id
        self.config_hash = config_hash
        self.phase = phase

    def advance(self, to: Phase, detail: str = "") -> None:
        """Move to `to`, or raise LifecycleError if the table forbids it."""
        if to not in TRANSITIONS[self.phase]:
            raise LifecycleError(f"generation {self.gen_id}: {self.phase.value} -> {to.value} "
                                 "is not a valid transition")
        log.debug("generation %d (config %s): %s -> %s%s", self.gen_id, self.config_hash,
                  self.phase.value, to.value, f" ({detail})" if detail else "")
        self.phase = to
