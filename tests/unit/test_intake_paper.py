"""Intake's paper-received handler on its own (the workflow command stood in for): a window records
paper received at that window only, whatever reaches the paper topic."""

from __future__ import annotations

from typing import Any

from services.intake.lifecycle_control import APPLIED, Outcome
from services.intake.repository import Known
from services.intake.service import Intake
from subsidy.contracts import parse_event, topics
from subsidy.programs import load_programs
from tests.fixtures import events as fx


class RecordingControl:
    """Stands in for LifecycleControl: records the updates intake sends, applies them all."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, str, str, Any]] = []

    async def update(self, program: str, application_no: str, name: str, command: Any, *, update_id: str) -> Outcome:
        self.updates.append((program, application_no, name, command))
        return APPLIED


def intake(control: RecordingControl) -> Intake:
    return Intake(pool=None, control=control, cipher=None, programs=load_programs())  # type: ignore[arg-type]


def paper(window_code: str, source: str = "urn:window:LG-W03") -> Any:
    topic, event = fx.example_event(topics.WINDOW_PAPER_RECEIVED)
    event["data"]["window_code"] = window_code
    event["source"] = source
    return parse_event(topic, fx.encode(event))


KNOWN = Known(processed=False, program="LG-AI-MODEL-2025", latest_version=1)


async def test_paper_a_window_says_was_received_at_another_window_is_refused_and_not_sent_on() -> None:
    control = RecordingControl()
    effect = await intake(control)._apply(KNOWN, paper("LG-W07"))
    assert not effect.outcome.applied
    assert (effect.outcome.reason or "").startswith("source_mismatch:")
    assert control.updates == []


async def test_paper_received_at_the_sending_window_is_recorded_there() -> None:
    control = RecordingControl()
    effect = await intake(control)._apply(KNOWN, paper("LG-W07", source="urn:window:LG-W07"))
    assert effect.outcome.applied
    [(_, _, _, command)] = control.updates
    assert command.window_code == "LG-W07"
