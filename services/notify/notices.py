"""Which SMS notice an application gets, and its text: plain functions, no framework.

The notify service consumes `subsidy.application.state-changed.v1` (abandonment is the change to
`abandoned`) and `subsidy.deadline.reminder-due.v1`; for each it asks `notice_for_state_change` or
`notice_for_reminder` for the `Notice` to send, if any. The texts are Chinese templates, one file per
program in `templates/` (`<program code>.toml`, beside `subsidy/programs/*.toml`), loaded and checked
once at start by `load_templates`: every kind the program's lifecycle can need, known placeholders
only, Tencent's positional parameters among them, provider codes in their format.

Which change becomes which notice is the workflow's decision: it names the notice in the change's
typed field `notice_kind` (subsidy.contracts.lifecycle.NoticeKind), with the official's `reasons`,
the `award_fen`, `tier` and `notice_id` the text needs beside it. Notify renders exactly that and
never reads `reason`, a phrase for people that may be reworded without changing any SMS. A kind the
program's lifecycle has no template for raises `UnexpectedTransition`.

Legacy: an event recorded before the typed fields (`contract_revision` 1: already in the topic at
the deploy, or from a workflow worker not yet upgraded) has only its reason. For those events only,
`_legacy_kind` and `_legacy_facts` keep the old mapping below, so no SMS is lost across the upgrade
(the approval SMS starts the paper clock). Delete both once the topic's retention has passed every
revision-1 event. The old mapping, which the workflows now encode as notice kinds:

    lifecycle        to_state               reason                          kind
    Longgang         approved_online        any ("已通过线上终审")            online_approved
                     returned               the reasons, "; "-joined         returned (deadline = resubmit_by)
                     rejected               the reasons, "; "-joined         rejected
                     awaiting_sms_delivery  "back_office_approved"           back_office_approved
                     awaiting_sms_delivery  "sms_receipt_missing"            none (a reviewer phones)
                     abandoned              "paper_deadline_passed"          abandoned
                     abandoned              "resubmission_deadline_passed"   resubmission_lapsed
                     published              "notice:<id>"                    award_published
    Shenzhen         returned               the reasons, "; "-joined         returned (deadline = resubmit_by)
                     rejected               "not_funded"                     not_funded
                     rejected               any other (the reasons)          rejected
                     awaiting_paper         "paper_requested[:<reasons>]"    paper_requested
                     abandoned              "resubmission_deadline_passed"   resubmission_lapsed
                     published              "notice:<id>"                    published
    reminder-due event (Longgang's paper deadline)                           paper_reminder

Every other change needs no SMS (None): submitted, pre_check, online_review, awaiting_gd_submission
(form_issued), back_office_review (gd_case), awaiting_paper in Longgang (the deadline is computed
from the approval SMS's delivery; the reminders carry it), award_calculation, expert_scoring, tiering,
awaiting_publication (the amount is only proposed until the list is published: it goes out with the
public notice), withdrawn (the enterprise's own act). A reason the table does not know where the
reason decides the kind (e.g. a new abandonment reason) raises `UnexpectedTransition` instead of
silently sending nothing.

Published notices take the award and tier from the event (the lifecycle carries them on every
change once known); `ApplicationFacts` also remembers them from earlier changes, for legacy events.

Quiet hours (`QuietHours`, default 21:00-08:00 Asia/Shanghai): a notice that is not exempt is held
until the next 08:00, when it is queued and whenever it is due again: a resend after a failed
delivery (carriers often report one hours late), a provider error's backoff, a rate limit's
postponement (`QuietHours.send_time`, `Notifier.send_time`; the sender also holds a message of a
kind that is not exempt that comes due in quiet hours anyway, e.g. after a lost reply). Each
template says whether it is exempt; the shipped ones:

- exempt `back_office_approved`: its delivery receipt is the legal trigger of the 5-working-day
  paper deadline. Holding it would move that trigger by a notify setting instead of by the decision
  (an extra day for some enterprises and not others); sent at once, an enterprise that reads it the
  next morning still has its full 5 working days, since the day of receipt is not counted
  (民法典 art. 201).
- exempt `returned`: the time to modify already runs towards the fixed date in the return notice;
  every hour held is taken from the enterprise.
- not exempt: reminders (the one kind meant to wait for the morning; a reminder that could only go
  out after its deadline is stale: `Notice.expires_at`, check `is_expired(send_at)`), approvals with
  no running deadline (`online_approved`, `paper_requested`), final decisions and endings
  (`rejected`, `not_funded`, `abandoned`, `resubmission_lapsed`: nothing to do overnight) and the
  publications (`award_published`, `published`: the public-notice period lasts days).

Idempotency key: `<application_no>:<kind>:<discriminator>`, a business key (not the event id, so a
reset workflow that records the same change under a new event id still sends one SMS):

    returned                      v<version>:<resubmit_by>   each round is another version and date
    paper_requested               v<version>:<occurred_at>   may be asked again at the same version
    award_published, published    <notice id>
    paper_reminder                <due_at>                   one per reminder time
    every other kind              v<version>                 e.g. the approval, per version
(times as `YYYYMMDDTHHMMSS` in Asia/Shanghai; `event.version` missing: the event id instead).

Formats: deadlines `2026年1月7日18:00` (Asia/Shanghai, no zero padding of month and day); money from
integer fen with integer arithmetic only, written exactly to the fen, `450,000.00元`: an award is
30% of contract amounts and rarely a whole 万元, and the SMS must match the published list to the fen,
which `45万元` would only do by rounding or long decimals.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog

from subsidy.contracts.lifecycle import LONGGANG_LIFECYCLE, SHENZHEN_LIFECYCLE, STATE_CHANGE_REVISION, NoticeKind, ReminderDue, Status
from subsidy.contracts.platform_events import ApplicationStateChanged

if TYPE_CHECKING:
    from subsidy.programs import Program

log = structlog.get_logger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

LONGGANG = LONGGANG_LIFECYCLE
SHENZHEN = SHENZHEN_LIFECYCLE

# LEGACY: the reason strings the old mapping depends on (events of contract_revision 1 only).
APPROVAL_NOTICE = "back_office_approved"  # also the kind whose receipts the Longgang lifecycle awaits
SMS_RECEIPT_MISSING = "sms_receipt_missing"
PAPER_DEADLINE_PASSED = "paper_deadline_passed"
RESUBMISSION_DEADLINE_PASSED = "resubmission_deadline_passed"
NOT_FUNDED = "not_funded"
PAPER_REQUESTED = "paper_requested"
NOTICE_PREFIX = "notice:"

_COMMON = frozenset({"applicant_name", "application_no"})
# The variables each kind's text may use.
VARIABLES: Mapping[str, frozenset[str]] = {
    "online_approved": _COMMON,
    "returned": _COMMON | {"reasons", "deadline"},
    "rejected": _COMMON | {"reasons"},
    "back_office_approved": _COMMON,
    "paper_reminder": _COMMON | {"deadline", "working_days_left"},
    "abandoned": _COMMON,
    "resubmission_lapsed": _COMMON,
    "award_published": _COMMON | {"award_yuan"},
    "paper_requested": _COMMON | {"reasons"},
    "not_funded": _COMMON,
    "published": _COMMON | {"tier", "award_yuan"},
}
# The kinds each lifecycle can need: its template file has exactly these.
KINDS_BY_LIFECYCLE: Mapping[str, frozenset[str]] = {
    LONGGANG: frozenset(
        {
            "online_approved",
            "returned",
            "rejected",
            "back_office_approved",
            "paper_reminder",
            "abandoned",
            "resubmission_lapsed",
            "award_published",
        }
    ),
    SHENZHEN: frozenset({"returned", "rejected", "paper_requested", "not_funded", "resubmission_lapsed", "published"}),
}

SMS_MAX_CHARS = 500  # Aliyun and Tencent: signature (with its 【】) and text together
DEFAULT_PARAM_LIMIT = 35  # Aliyun's default longest value of a notification variable
_SIGN_NAME = re.compile(r"^[\u4e00-\u9fffA-Za-z0-9]{2,12}$")  # providers: 2-12, no symbols
_ALIYUN_CODE = re.compile(r"^SMS_\d+$")
_TENCENT_ID = re.compile(r"^\d+$")
_NOTICE_KEYS = {"text", "aliyun_template_code", "tencent_template_id", "tencent_params", "quiet_hours_exempt", "defaults"}
_FILE_KEYS = {"program", "sign_name", "param_limits", "notices"}
_TIER_NUMERALS = {1: "一", 2: "二", 3: "三"}


class TemplateConfigError(ValueError):
    """A template file is wrong; the message names the file and the notice kind."""


class NoticeError(ValueError):
    """A notice cannot be made for an event."""


class UnexpectedTransition(NoticeError):
    """A state change naming a notice its program's lifecycle has no template for (or, for a
    legacy event, a reason the old mapping does not know where the reason decides the notice)."""


class MissingFact(NoticeError):
    """A variable the notice needs is neither in the event nor in the application's facts."""


# --- formats ------------------------------------------------------------------------------------


def format_deadline(moment: datetime) -> str:
    """`2026年1月7日18:00`: Asia/Shanghai, month and day not zero-padded, 24-hour HH:MM."""
    if moment.tzinfo is None:
        raise ValueError("a deadline must be timezone-aware")
    local = moment.astimezone(SHANGHAI)
    return f"{local.year}年{local.month}月{local.day}日{local:%H:%M}"


def format_yuan(fen: int) -> str:
    """Integer fen as yuan to the fen, thousands separated: 45_000_000 -> `450,000.00元`."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise TypeError("money is integer fen")
    if fen < 0:
        raise ValueError("an award is never negative")
    yuan, cents = divmod(fen, 100)
    return f"{yuan:,}.{cents:02d}元"


def format_tier(tier: int) -> str:
    """Shenzhen's tiers as the notice writes them (一档, 二档, 三档): the numeral before 档."""
    return _TIER_NUMERALS.get(tier, str(tier))


def _stamp(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y%m%dT%H%M%S")


# --- templates ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeTemplate:
    kind: str
    text: str
    aliyun_template_code: str
    tencent_template_id: str
    tencent_params: tuple[str, ...]
    quiet_hours_exempt: bool
    placeholders: tuple[str, ...]  # in the order they appear in the text
    defaults: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProgramTemplates:
    program: str
    lifecycle: str
    sign_name: str
    param_limits: Mapping[str, int]  # variable -> longest value; "default" for the others
    notices: Mapping[str, NoticeTemplate]
    source: Path

    def notice(self, kind: str) -> NoticeTemplate:
        try:
            return self.notices[kind]
        except KeyError:
            raise NoticeError(f"{self.source}: no [notices.{kind}] for program {self.program}") from None

    def limit(self, variable: str) -> int:
        return self.param_limits.get(variable, self.param_limits.get("default", DEFAULT_PARAM_LIMIT))


@dataclass(frozen=True)
class Templates:
    programs: Mapping[str, ProgramTemplates]

    def program(self, code: str) -> ProgramTemplates:
        try:
            return self.programs[code]
        except KeyError:
            raise NoticeError(f"no SMS templates for program {code}") from None


def _placeholders(text: str) -> tuple[list[str], str, list[str]]:
    """The field names of `text`, its fixed text, and what is wrong with its fields."""
    names: list[str] = []
    problems: list[str] = []
    fixed = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        return [], text, [f"text is not a valid template ({exc})"]
    for literal, name, spec, conversion in parsed:
        fixed.append(literal)
        if name is None:
            continue
        if not name.isidentifier():
            problems.append(f"placeholder {{{name}}} must be a variable name")
        elif spec or conversion:
            problems.append(f"placeholder {{{name}}} takes no format or conversion")
        else:
            names.append(name)
    joined = "".join(fixed)
    if "{" in joined or "}" in joined:
        problems.append("text has a literal brace")
    if "【" in joined or "】" in joined:
        problems.append("text has 【】, which only the signature may have")
    return names, joined, problems


def _notice_template(kind: str, table: Any, limits: Mapping[str, int], sign_name: str, where: str) -> tuple[NoticeTemplate | None, list[str]]:
    if not isinstance(table, dict):
        return None, [f"{where}: must be a table"]
    problems = [f"{where}: unknown key {key!r}" for key in sorted(set(table) - _NOTICE_KEYS)]
    problems += [f"{where}: missing {key!r}" for key in sorted(_NOTICE_KEYS - {"defaults"} - set(table))]
    if problems:
        return None, problems
    text, aliyun, tencent, params, exempt = (
        table["text"],
        table["aliyun_template_code"],
        table["tencent_template_id"],
        table["tencent_params"],
        table["quiet_hours_exempt"],
    )
    defaults = table.get("defaults", {})
    if not isinstance(text, str) or not text.strip():
        return None, [f"{where}: text must be non-empty text"]
    names, fixed, text_problems = _placeholders(text)
    problems += [f"{where}: {p}" for p in text_problems]
    known = VARIABLES[kind]
    problems += [f"{where}: unknown placeholder {{{n}}} (known for {kind}: {', '.join(sorted(known))})" for n in names if n not in known]
    if len(names) != len(set(names)):
        problems.append(f"{where}: a placeholder appears twice (providers take each variable once)")
    if not isinstance(aliyun, str) or not _ALIYUN_CODE.match(aliyun):
        problems.append(f"{where}: aliyun_template_code must be an Aliyun template code (SMS_<digits>), got {aliyun!r}")
    if not isinstance(tencent, str) or not _TENCENT_ID.match(tencent):
        problems.append(f"{where}: tencent_template_id must be a Tencent template id (digits, as a string), got {tencent!r}")
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        problems.append(f"{where}: tencent_params must be a list of placeholder names")
        params = []
    problems += [f"{where}: tencent_params names {p!r}, which is not a placeholder of the text" for p in params if p not in names]
    if len(params) != len(set(params)):
        problems.append(f"{where}: tencent_params names a placeholder twice")
    if not isinstance(exempt, bool):
        problems.append(f"{where}: quiet_hours_exempt must be true or false")
    if not isinstance(defaults, dict) or not all(isinstance(v, str) and v.strip() for v in defaults.values()):
        problems.append(f"{where}: defaults must map placeholders to non-empty text")
        defaults = {}
    problems += [f"{where}: default for {n!r}, which is not a placeholder of the text" for n in defaults if n not in names]
    longest = len(fixed) + sum(limits.get(n, limits.get("default", DEFAULT_PARAM_LIMIT)) for n in names) + len(sign_name) + 2
    if longest > SMS_MAX_CHARS:
        problems.append(f"{where}: up to {longest} characters with the longest values, over the providers' {SMS_MAX_CHARS}")
    if problems:
        return None, problems
    template = NoticeTemplate(
        kind=kind,
        text=text,
        aliyun_template_code=aliyun,
        tencent_template_id=tencent,
        tencent_params=tuple(params),
        quiet_hours_exempt=exempt,
        placeholders=tuple(names),
        defaults=dict(defaults),
    )
    return template, []


def _program_templates(path: Path, programs: Mapping[str, Program]) -> tuple[ProgramTemplates | None, list[str]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return None, [f"{path}: cannot be read ({exc})"]
    problems = [f"{path}: unknown key {key!r}" for key in sorted(set(data) - _FILE_KEYS)]
    code = data.get("program")
    if code != path.stem:
        return None, problems + [f"{path}: `program` must be the file's name ({path.stem!r}), got {code!r}"]
    program = programs.get(code)
    if program is None:
        return None, problems + [f"{path}: program {code} is not configured (subsidy/programs)"]
    lifecycle = program.lifecycle
    needed = KINDS_BY_LIFECYCLE.get(lifecycle)
    if needed is None:
        return None, problems + [f"{path}: no notices are defined for lifecycle {lifecycle}"]
    sign_name = data.get("sign_name")
    if not isinstance(sign_name, str) or not _SIGN_NAME.match(sign_name):
        problems.append(f"{path}: sign_name must be 2-12 Chinese characters, letters or digits, got {sign_name!r}")
        sign_name = ""
    limits = data.get("param_limits", {"default": DEFAULT_PARAM_LIMIT})
    if not isinstance(limits, dict):
        problems.append(f"{path}: [param_limits] must be a table")
        limits = {}
    known_variables = set().union(*VARIABLES.values()) | {"default"}
    for name, value in limits.items():
        if name not in known_variables:
            problems.append(f"{path}: [param_limits] unknown variable {name!r}")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{path}: [param_limits] {name} must be a positive integer")
    notices_table = data.get("notices", {})
    if not isinstance(notices_table, dict):
        return None, problems + [f"{path}: [notices] must be a table"]
    notices: dict[str, NoticeTemplate] = {}
    for kind in sorted(needed - set(notices_table)):
        problems.append(f"{path}: [notices.{kind}] is missing (lifecycle {lifecycle} can send it)")
    for kind, table in sorted(notices_table.items()):
        where = f"{path} [notices.{kind}]"
        if kind not in VARIABLES:
            problems.append(f"{where}: unknown notice kind (known: {', '.join(sorted(VARIABLES))})")
            continue
        if kind not in needed:
            problems.append(f"{where}: lifecycle {lifecycle} never sends this kind")
            continue
        template, notice_problems = _notice_template(kind, table, limits, sign_name, where)
        problems += notice_problems
        if template is not None:
            notices[kind] = template
    if problems:
        return None, problems
    return ProgramTemplates(
        program=code, lifecycle=lifecycle, sign_name=sign_name, param_limits=dict(limits), notices=notices, source=path
    ), []


def load_templates(directory: Path = TEMPLATES_DIR, *, programs: Mapping[str, Program] | None = None) -> Templates:
    """Load and check every `<program>.toml` in `directory`, against the configured programs
    (`subsidy.programs` unless given): each program has a file, each file has every kind its
    lifecycle can send and nothing else. Raises TemplateConfigError listing every problem found."""
    if programs is None:
        from subsidy.programs import programs as configured_programs

        programs = configured_programs()
    problems: list[str] = []
    loaded: dict[str, ProgramTemplates] = {}
    for path in sorted(Path(directory).glob("*.toml")):
        templates, file_problems = _program_templates(path, programs)
        problems += file_problems
        if templates is not None:
            loaded[templates.program] = templates
    for code in sorted(set(programs) - {Path(p).stem for p in Path(directory).glob("*.toml")}):
        problems.append(f"{directory}: no SMS templates for program {code} (expected {code}.toml)")
    if problems:
        raise TemplateConfigError("SMS templates are not valid:\n" + "\n".join(problems))
    for templates in loaded.values():  # which texts and provider codes this process sends with
        log.info(
            "sms templates loaded",
            program=templates.program,
            source=str(templates.source),
            sign_name=templates.sign_name,
            codes={kind: [t.aliyun_template_code, t.tencent_template_id] for kind, t in sorted(templates.notices.items())},
        )
    return Templates(programs=loaded)


# --- notices ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplicationFacts:
    """What notify knows of an application beyond the event: the applicant's name (from
    `subsidy.application.contact-recorded.v1`), and the award and tier, remembered from earlier
    state changes."""

    applicant_name: str
    award_fen: int | None = None
    tier: int | None = None

    def after(self, event: ApplicationStateChanged) -> ApplicationFacts:
        """These facts with the award and tier the state change carries, if any (typed fields;
        legacy events: their reason)."""
        if event.contract_revision < STATE_CHANGE_REVISION:
            return self._legacy_with_reason(event.reason)
        award = event.award_fen if event.award_fen is not None else self.award_fen
        tier = event.tier if event.tier is not None else self.tier
        if (award, tier) == (self.award_fen, self.tier):
            return self
        return ApplicationFacts(applicant_name=self.applicant_name, award_fen=award, tier=tier)

    def _legacy_with_reason(self, reason: str | None) -> ApplicationFacts:
        """LEGACY (contract_revision 1): the award or tier an old state change's reason carries."""
        award, tier = self.award_fen, self.tier
        for part in (reason or "").split("; "):
            key, _, value = part.partition(":")
            if key == "award_fen" and value.isdigit():
                award = int(value)
            elif key == "tier" and value.isdigit():
                tier = int(value)
        if (award, tier) == (self.award_fen, self.tier):
            return self
        return ApplicationFacts(applicant_name=self.applicant_name, award_fen=award, tier=tier)


@dataclass(frozen=True)
class Notice:
    kind: str
    program: str
    application_no: str
    text: str  # rendered, without the signature (providers add 【sign_name】)
    sign_name: str
    aliyun_template_code: str
    tencent_template_id: str
    params: dict[str, str]  # every placeholder -> its value (Aliyun's TemplateParam)
    tencent_params: list[str]  # the values in the Tencent template's order
    quiet_hours_exempt: bool
    idempotency_key: str
    expires_at: datetime | None = None  # reminders: useless once their deadline has passed
    tencent_param_names: tuple[str, ...] = ()  # the placeholders behind `tencent_params`

    def is_expired(self, at: datetime) -> bool:
        return self.expires_at is not None and at >= self.expires_at

    def template_code_for(self, provider: str) -> str:
        """The template of this notice at `provider` ("aliyun", "tencent"; the local stand-in: the kind)."""
        if provider == "aliyun":
            return self.aliyun_template_code
        if provider == "tencent":
            return self.tencent_template_id
        if provider == "local":
            return self.kind
        raise ValueError(f"unknown SMS provider {provider!r}")

    def params_for(self, provider: str) -> dict[str, str]:
        """Variables for `provider`: Tencent's in its template's positional order, the others by name."""
        if provider == "tencent":
            return dict(zip(self.tencent_param_names, self.tencent_params, strict=True))
        return dict(self.params)


def notice_kind_for_state_change(event: ApplicationStateChanged, templates: Templates) -> str | None:
    """The notice kind a state change calls for, or None: the workflow's `notice_kind` (legacy
    events: the old mapping of their reason, see the module docstring)."""
    lifecycle = templates.program(event.program).lifecycle
    if event.contract_revision < STATE_CHANGE_REVISION:
        return _legacy_kind(lifecycle, event.to_state, event.reason, event)
    kind = event.notice_kind
    if kind is not None and (kind not in KINDS_BY_LIFECYCLE.get(lifecycle, frozenset()) or kind == NoticeKind.PAPER_REMINDER):
        raise UnexpectedTransition(
            f"{event.program} {event.application_no}: {event.from_state} -> {event.to_state} calls for notice {kind!r}, "
            f"which lifecycle {lifecycle} does not send"
        )
    return kind


def _legacy_kind(lifecycle: str, to_state: str, reason: str | None, event: ApplicationStateChanged) -> str | None:
    """LEGACY (contract_revision 1 only): the notice an old event's reason implies. Delete with
    `_legacy_facts` once no revision-1 event can still be consumed."""
    reason = reason or ""

    def unexpected() -> UnexpectedTransition:
        return UnexpectedTransition(
            f"{event.program} {event.application_no}: no notice rule for {event.from_state} -> {to_state} with reason {reason!r}"
        )

    if to_state == Status.RETURNED:
        return "returned"
    if to_state == Status.ABANDONED:
        if reason == RESUBMISSION_DEADLINE_PASSED:
            return "resubmission_lapsed"
        if reason == PAPER_DEADLINE_PASSED and lifecycle == LONGGANG:
            return "abandoned"
        raise unexpected()
    if lifecycle == LONGGANG:
        if to_state == Status.APPROVED_ONLINE:
            return "online_approved"
        if to_state == Status.REJECTED:
            return "rejected"
        if to_state == Status.AWAITING_SMS_DELIVERY:
            if reason == APPROVAL_NOTICE:
                return "back_office_approved"
            if reason == SMS_RECEIPT_MISSING:
                return None
            raise unexpected()
        if to_state == Status.PUBLISHED:
            return "award_published"
        return None
    if lifecycle == SHENZHEN:
        if to_state == Status.REJECTED:
            return "not_funded" if reason == NOT_FUNDED else "rejected"
        if to_state == Status.AWAITING_PAPER:
            if reason == PAPER_REQUESTED or reason.startswith(PAPER_REQUESTED + ":"):
                return "paper_requested"
            raise unexpected()
        if to_state == Status.PUBLISHED:
            return "published"
        return None
    raise NoticeError(f"no notice rules for lifecycle {lifecycle}")


def notice_for_state_change(event: ApplicationStateChanged, facts: ApplicationFacts, templates: Templates) -> Notice | None:
    """The SMS a state change calls for, rendered from the program's template; None when none."""
    program = templates.program(event.program)
    kind = notice_kind_for_state_change(event, templates)
    if kind is None:
        return None
    facts = facts.after(event)
    if event.contract_revision < STATE_CHANGE_REVISION:
        reasons, notice_id = _legacy_facts(kind, event.reason)
    else:
        reasons, notice_id = "; ".join(event.reasons), event.notice_id
    values: dict[str, str | None] = {
        "applicant_name": facts.applicant_name,
        "application_no": event.application_no,
        "deadline": format_deadline(event.deadline) if event.deadline is not None else None,
        "award_yuan": format_yuan(facts.award_fen) if facts.award_fen is not None else None,
        "tier": format_tier(facts.tier) if facts.tier is not None else None,
    }
    if kind in ("returned", "rejected", "paper_requested"):
        values["reasons"] = reasons
    version = f"v{event.version}" if event.version is not None else event.event_id
    if kind == "returned":
        if event.deadline is None:
            raise MissingFact(f"{event.program} {event.application_no}: a return for modification without its date (deadline)")
        discriminator = f"{version}:{_stamp(event.deadline)}"
    elif kind == "paper_requested":
        discriminator = f"{version}:{_stamp(event.occurred_at)}"
    elif kind in ("award_published", "published") and notice_id:
        discriminator = notice_id
    else:
        discriminator = version
    return _render(program, kind, event.application_no, values, discriminator, expires_at=None)


def _legacy_facts(kind: str, reason: str | None) -> tuple[str, str | None]:
    """LEGACY (contract_revision 1 only): the reasons and the public notice's id an old event's
    reason carries (`paper_requested:<reasons>`, `notice:<id>`, or the reasons themselves)."""
    reason = reason or ""
    notice_id = reason[len(NOTICE_PREFIX) :] if reason.startswith(NOTICE_PREFIX) else None
    if kind == "paper_requested":
        return reason.partition(":")[2], notice_id
    return reason, notice_id


def notice_for_reminder(reminder: ReminderDue, facts: ApplicationFacts, templates: Templates) -> Notice:
    """The paper-deadline reminder; it expires at the deadline (see `QuietHours.defer`)."""
    program = templates.program(reminder.program)
    values: dict[str, str | None] = {
        "applicant_name": facts.applicant_name,
        "application_no": reminder.application_no,
        "deadline": format_deadline(reminder.deadline),
        "working_days_left": str(reminder.working_days_left),
    }
    return _render(program, "paper_reminder", reminder.application_no, values, _stamp(reminder.due_at), expires_at=reminder.deadline)


def _clean(value: str, limit: int) -> str:
    value = " ".join(value.replace("; ", "；").split())  # one line; the reviewers' list as Chinese text
    value = value.replace("【", "（").replace("】", "）")  # only the signature is in 【】
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _render(
    program: ProgramTemplates,
    kind: str,
    application_no: str,
    values: Mapping[str, str | None],
    discriminator: str,
    *,
    expires_at: datetime | None,
) -> Notice:
    template = program.notice(kind)
    params: dict[str, str] = {}
    for name in template.placeholders:
        value = (values.get(name) or "").strip() or template.defaults.get(name)
        if not value:
            raise MissingFact(f"{program.program} {application_no}: the {kind} notice needs {name}, which is not known")
        params[name] = _clean(value, program.limit(name))
    return Notice(
        kind=kind,
        program=program.program,
        application_no=application_no,
        text=template.text.format_map(params),
        sign_name=program.sign_name,
        aliyun_template_code=template.aliyun_template_code,
        tencent_template_id=template.tencent_template_id,
        params=params,
        tencent_params=[params[name] for name in template.tencent_params],
        quiet_hours_exempt=template.quiet_hours_exempt,
        idempotency_key=f"{application_no}:{kind}:{discriminator}",
        expires_at=expires_at,
        tencent_param_names=template.tencent_params,
    )


# --- quiet hours --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuietHours:
    """No SMS that is not exempt between `start` and `end` (local time in `tz`; the window may
    span midnight; start == end: no quiet hours)."""

    start: time = time(21, 0)
    end: time = time(8, 0)
    tz: ZoneInfo = SHANGHAI

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are local times in `tz`, without a timezone of their own")

    def is_quiet(self, moment: datetime) -> bool:
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        clock = moment.astimezone(self.tz).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end

    def next_allowed(self, now: datetime) -> datetime:
        """`now` outside quiet hours, else the end of this quiet period (the next 08:00, in `tz`)."""
        if not self.is_quiet(now):
            return now
        local = now.astimezone(self.tz)
        day = local.date()
        if self.start > self.end and local.time() >= self.start:  # before midnight: tomorrow morning
            day += timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=self.tz)

    def send_time(self, at: datetime, *, exempt: bool) -> datetime:
        """When a message due at `at` may go out: `at` if its kind is exempt, else the next allowed
        moment. The one rule for the first send (`defer`) and for every later one: a resend after a
        failed delivery, a provider error's backoff, a rate limit's postponement."""
        return at if exempt else self.next_allowed(at)

    def defer(self, notice: Notice, now: datetime) -> datetime:
        """When to send `notice`: now if it is exempt, else the next allowed moment. A notice that
        has expired by then (`notice.is_expired(send_at)`) is not worth sending at all."""
        return self.send_time(now, exempt=notice.quiet_hours_exempt)


__all__ = [
    "ApplicationFacts",
    "MissingFact",
    "Notice",
    "NoticeError",
    "NoticeTemplate",
    "ProgramTemplates",
    "QuietHours",
    "TemplateConfigError",
    "Templates",
    "UnexpectedTransition",
    "format_deadline",
    "format_tier",
    "format_yuan",
    "load_templates",
    "notice_for_reminder",
    "notice_for_state_change",
    "notice_kind_for_state_change",
]
