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
