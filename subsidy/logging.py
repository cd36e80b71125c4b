"""The one structlog configuration of every process.

structlog loggers and stdlib loggers (FastStream, aiokafka, temporalio, uvicorn, ...) share one
root handler on stderr whose `ProcessorFormatter` runs the same processors, so every line is
rendered the same way and every ID number and mobile number is masked by one processor, as the
last step before rendering. Callers never mask by hand.

Libraries that install their own handlers bypass the root handler: run uvicorn with
`log_config=None` and give FastStream brokers `logger=get_logger("faststream")`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from subsidy.identifiers import mask_personal_data, mask_personal_number

__all__ = ["configure_logging", "get_logger", "mask_personal_data_processor"]

LogFormat = Literal["auto", "console", "json"]


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_personal_data(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):  # an ID or mobile number passed as an int renders as digits too
        return mask_personal_number(value, personal=False)
    if isinstance(value, Mapping):
        return {_mask(k): _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask(v) for v in value]
    # Any other object renders through repr() (console) or a repr() fallback (JSON).
    text = repr(value)
    masked = mask_personal_data(text)
    return value if masked == text else masked


def mask_personal_data_processor(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    """Mask ID and mobile numbers in every value (recursively), the message and exception text."""
    return {key: _mask(value) for key, value in event_dict.items()}


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at emit time (survives test capture and redirection)."""

    _subsidy_handler = True

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _drop_color_message(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """uvicorn puts an ANSI-coloured copy of each message in `extra`; the message itself is enough."""
    event_dict.pop("color_message", None)
    return event_dict


def _add_service(service: str) -> Processor:
    def add_service(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service


def configure_logging(service: str, *, level: str = "INFO", fmt: LogFormat | str = "auto") -> None:
    """Configure structlog and stdlib logging for this process. Safe to call more than once.

    fmt: "console" (human, for a terminal), "json" (one object per line), or "auto": console
    when stderr is a TTY, JSON otherwise.
    """
    if fmt not in ("auto", "console", "json"):
        raise ValueError(f"unknown log format {fmt!r}")
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
        if console
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached, so that a later configure_logging() call applies to existing loggers too.
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_color_message],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Exceptions become plain text here so that the mask below sees them.
            structlog.processors.format_exc_info,
            mask_personal_data_processor,  # last before rendering
            renderer,
        ],
    )
    handler = _Stderr()
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_subsidy_handler", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


def get_logger(name: str | None = None, **initial_values: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger (bound to `initial_values`) that goes through the configured pipeline."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name, **initial_values)
    return logger
