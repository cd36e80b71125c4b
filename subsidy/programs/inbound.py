"""An inbound event read against the configured programs: what the Kafka consumer and the webhook of
intake both parse with, so that a program configured as data is accepted on both, and refused on both
when it is not one the event's portal may name.

`parse_event` knows program codes only. A portal's events belong to one lifecycle: the Longgang
portal's (and Guangdong's, its hand-over) to the Longgang lifecycle, the Shenzhen portal's to the
Shenzhen one; the program an event names must be a program of that lifecycle (its `lifecycle` in
subsidy/programs/*.toml), or a Shenzhen submission naming the Longgang program would start a
Longgang lifecycle. Such an event is refused `program_mismatch`, like any input that breaks the
contract: 400 on the webhook, dead-lettered on Kafka.
"""

from __future__ import annotations

from collections.abc import Mapping

from subsidy.contracts import topics
from subsidy.contracts.events import InvalidEvent, ParsedEvent, parse_event
from subsidy.programs import LONGGANG_LIFECYCLE, SHENZHEN_LIFECYCLE, Program

# The lifecycle of the programs each portal's events may name (CONTRACTS.md: who sends what).
PORTAL_LIFECYCLES: dict[str, str] = {
    topics.PORTAL_LONGGANG_APPLICATIONS: LONGGANG_LIFECYCLE,
    topics.PORTAL_GUANGDONG_SUBMISSIONS: LONGGANG_LIFECYCLE,
    topics.PORTAL_SHENZHEN_APPLICATIONS: SHENZHEN_LIFECYCLE,
}


def parse_inbound(topic: str, raw: bytes | str, programs: Mapping[str, Program]) -> ParsedEvent:
    """`parse_event` with `programs` as the known ones, then: the program the event names (if it
    names one) runs the lifecycle of its portal's events, else InvalidEvent `program_mismatch`."""
    event = parse_event(topic, raw, known_programs=programs.keys())
    program = getattr(event.payload, "program", None)
    lifecycle = PORTAL_LIFECYCLES.get(topic)
    if program is not None and lifecycle is not None and programs[program].lifecycle != lifecycle:
        # Both values passed their patterns (a type allowed on the topic, a program code): no personal data.
        raise InvalidEvent("program_mismatch", f"{event.type} is not an event of program {program}'s lifecycle")
    return event
