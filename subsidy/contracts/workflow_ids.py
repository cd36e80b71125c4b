"""Workflow IDs, built in one place from business keys, and the one application-number type.

An ID names the program and the application number, never a person: application numbers are
issued by the portals and carry no personal data. Anything else is rejected here, so personal
data cannot reach a workflow ID by accident.

`ApplicationNo` is the type every boundary uses for an application number: the inbound events'
payloads (refused at parsing, `invalid_payload`), the workflow ids and the HTTP paths of the
services. One pattern, so nothing the contract accepts can fail later at the workflow id
(issue 14, defect 7: `LG-3e157e` used to pass the envelope and fail five retries later).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

APPLICATION_NO_PATTERN = r"^[A-Z]{2}[0-9]{4}-[0-9]{6}$"  # ASCII digits: `\d` takes any script's
_PROGRAM = re.compile(r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+$")
_APPLICATION_NO = re.compile(APPLICATION_NO_PATTERN)

ApplicationNo = Annotated[str, Field(pattern=APPLICATION_NO_PATTERN, description="An application number, e.g. LG2025-000123")]
"""Two capital letters, the year, a dash and six digits (`LG2025-000123`)."""


def application_workflow_id(program: str, application_no: str) -> str:
    """`Application:LG-AI-MODEL-2025:LG2025-000123` for the lifecycle of one application."""
    if not _PROGRAM.fullmatch(program):
        raise ValueError("program code must look like LG-AI-MODEL-2025")
    if not is_application_no(application_no):
        raise ValueError("application number must look like LG2025-000123")
    return f"Application:{program}:{application_no}"


def is_application_no(text: str) -> bool:
    """Whether `text` is an application number (what `ApplicationNo` accepts)."""
    return bool(_APPLICATION_NO.fullmatch(text))


def application_no_of(workflow_id: str) -> str | None:
    """The application number of a lifecycle's workflow ID; None for any other workflow."""
    kind, _, rest = workflow_id.partition(":")
    program, _, application_no = rest.partition(":")
    if kind != "Application" or not _PROGRAM.fullmatch(program) or not is_application_no(application_no):
        return None
    return application_no


def publication_batch_workflow_id(program: str) -> str:
    """`PublicationBatch:LG-AI-MODEL-2025`: one public-notice list per program batch."""
    if not _PROGRAM.fullmatch(program):
        raise ValueError("program code must look like LG-AI-MODEL-2025")
    return f"PublicationBatch:{program}"


def platform_probe_workflow_id(run: str) -> str:
    """`PlatformProbe:<run>` for the end-to-end health probe of `subsidy up` and `subsidy health`."""
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", run):
        raise ValueError("probe run id must be a short token")
    return f"PlatformProbe:{run}"


API_UPDATE_PREFIX = "api:"


def api_update_id(idempotency_key: str) -> str:
    """`api:<Idempotency-Key>`: the update id of an action an official takes through review's API.

    Temporal answers an update whose id a workflow has seen with that first update's result,
    whatever the update's name and arguments. The platform's own update ids (intake's uuid5 event
    keys; review's `expert_scoring_update_id` and `tiering_update_id`) never start with `api:`, so
    no key a client chooses can take the place of one of them: a pre-reviewer's decision sent with
    `Idempotency-Key: sz-expert-scoring:<no>` once made the panel's result, later, the answer of
    that old decision, and the lifecycle waited in expert scoring for good."""
    return API_UPDATE_PREFIX + idempotency_key


def expert_scoring_update_id(application_no: str) -> str:
    """`sz-expert-scoring:<no>`: the platform records a complete panel's result once."""
    return f"sz-expert-scoring:{application_no}"


def tiering_update_id(application_no: str) -> str:
    """`sz-tiering:<no>`: a product's confirmed tier and amount, recorded once."""
    return f"sz-tiering:{application_no}"
