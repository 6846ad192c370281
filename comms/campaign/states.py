"""Job states: one closed set, and the one place that says which moves are allowed.

    planned ──▶ rendering ──▶ rendered ──▶ sending ──▶ sent
       │            │            │            └──────▶ failed
       │            ├──▶ failed  │            └──▶ rendered  (deferred by the provider: tried again later)
       ├────────────┴────────────┴──▶ suppressed   (a contact rule said no, with its reason)
       └──▶ cancelled   (also from rendered)
    rendering ──▶ planned (quiet hours began meanwhile: wait for the customer's morning)
    rendering ──▶ sent    (channels that publish rather than deliver: page, video, letter)

A working state (rendering, sending) always has a lease; when it runs out the sweeper moves the job back
(rendering -> planned) or, for sending, to a state that can never send twice (see comms.campaign.run).
"""

from __future__ import annotations

import enum


class JobState(str, enum.Enum):
    PLANNED = "planned"
    RENDERING = "rendering"
    RENDERED = "rendered"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"


DONE = frozenset({JobState.SENT, JobState.FAILED, JobState.SUPPRESSED, JobState.CANCELLED})
WORKING = frozenset({JobState.RENDERING, JobState.SENDING})

ALLOWED: dict[JobState, frozenset[JobState]] = {
    JobState.PLANNED: frozenset({JobState.RENDERING, JobState.SUPPRESSED, JobState.CANCELLED}),
    JobState.RENDERING: frozenset({JobState.RENDERED, JobState.SENT, JobState.FAILED, JobState.SUPPRESSED,
                                   JobState.PLANNED}),
    JobState.RENDERED: frozenset({JobState.SENDING, JobState.RENDERING, JobState.SUPPRESSED, JobState.CANCELLED,
                                  JobState.PLANNED}),
    JobState.SENDING: frozenset({JobState.SENT, JobState.FAILED, JobState.RENDERED}),
    JobState.SENT: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.SUPPRESSED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


class StateError(ValueError):
    pass


def check(current: JobState | str, new: JobState | str) -> JobState:
    """Return the new state if the move is allowed, else raise StateError (a bug, never user input)."""
    cur, nxt = JobState(current), JobState(new)
    if nxt not in ALLOWED[cur]:
        raise StateError(f"a job cannot move from {cur.value} to {nxt.value}")
    return nxt


def sources(new: JobState) -> tuple[str, ...]:
    """The states a job may be in to move to ``new`` (for guarded UPDATE ... WHERE state IN (...))."""
    return tuple(s.value for s, targets in ALLOWED.items() if new in targets)
