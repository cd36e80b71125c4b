from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from subsidy.logging import configure_logging, get_logger

RESIDENT_ID = "360426199101010071"
MOBILE = "13800138000"
MASKED_ID = "3604**********0071"
MASKED_MOBILE = "138****8000"
USCC = "91440300MA5G12345L"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    for handler in _ours():
        root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def _ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "_subsidy_handler", False)]


def _lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_personal_data_is_masked_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("intake", fmt="json", level="DEBUG")
    log = get_logger("subsidy.test")

    log.info(f"applicant {RESIDENT_ID} mobile {MOBILE}", uscc=USCC)
    log.info("kwargs", id_number=RESIDENT_ID, mobile=f"+86 {MOBILE}", as_int=int(MOBILE))
    applicant = {"contact": {"mobile": MOBILE, "ids": [RESIDENT_ID, (MOBILE,)]}}
    log.warning("nested", applicant=applicant)
    logging.getLogger("aiokafka").warning("commit failed for %s", MOBILE)
    try:
        raise ValueError(f"bad ID number {RESIDENT_ID}")
    except ValueError:
        log.exception("failed")
        logging.getLogger("temporalio.worker").exception("activity failed for %s", MOBILE)

    err = capsys.readouterr().err
    assert RESIDENT_ID not in err
    assert MOBILE not in err
    assert MASKED_ID in err and MASKED_MOBILE in err
    assert USCC in err  # business identifiers are not personal data

    lines = _lines(err)
    assert len(lines) == 6
    first, kwargs, nested, kafka, exc, foreign_exc = lines
    assert first["event"] == f"applicant {MASKED_ID} mobile {MASKED_MOBILE}"
    assert first["service"] == "intake" and first["level"] == "info"
    assert str(first["timestamp"]).endswith("Z")
    assert kwargs["id_number"] == MASKED_ID and kwargs["as_int"] == MASKED_MOBILE
    masked_contact = {"mobile": MASKED_MOBILE, "ids": [MASKED_ID, [MASKED_MOBILE]]}
    assert nested["applicant"] == {"contact": masked_contact}
    assert kafka["event"] == f"commit failed for {MASKED_MOBILE}" and kafka["logger"] == "aiokafka"
    assert kafka["service"] == "intake"
    assert MASKED_ID in str(exc["exception"]) and "ValueError" in str(exc["exception"])
    assert MASKED_ID in str(foreign_exc["exception"])


def test_context_vars_are_merged_and_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("notify", fmt="json")
    with structlog.contextvars.bound_contextvars(application_no="LG2025-000123", to=MOBILE):
        get_logger().info("sms sent")
    (line,) = _lines(capsys.readouterr().err)
    assert line["application_no"] == "LG2025-000123"
    assert line["to"] == MASKED_MOBILE


def test_console_format_is_masked_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("review", fmt="console")
    get_logger().info("reviewing", id_number=RESIDENT_ID)
    logging.getLogger("uvicorn.error").info("request from %s", MOBILE)
    err = capsys.readouterr().err
    assert RESIDENT_ID not in err and MOBILE not in err
    assert MASKED_ID in err and MASKED_MOBILE in err


def test_configure_is_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("intake", fmt="json")
    configure_logging("intake", fmt="json")
    assert len(_ours()) == 1
    get_logger().info("once")
    assert len(_lines(capsys.readouterr().err)) == 1


def test_level_filters(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("intake", fmt="json", level="WARNING")
    get_logger().info("hidden")
    logging.getLogger("faststream").info("hidden too")
    get_logger().warning("shown")
    assert [line["event"] for line in _lines(capsys.readouterr().err)] == ["shown"]


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError):
        configure_logging("intake", fmt="xml")
