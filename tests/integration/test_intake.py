"""The intake service on the real stack: every CONTRACTS.md event accepted end to end, bad input to
the DLQ, exactly-once effect under redelivery and crashes, filing windows to the edge."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from services.intake.webhook import sign
from subsidy.contracts import topics
from subsidy.contracts.lifecycle import (
    SIGNAL_SMS_DELIVERY_REPORTED,
    UPDATE_DECIDE_BACK_OFFICE_REVIEW,
    UPDATE_DECIDE_FORMAL_PRE_REVIEW,
    UPDATE_DECIDE_ONLINE_REVIEW,
    DecideBackOfficeReview,
    DecideFormalPreReview,
    DecideOnlineReview,
    SmsDeliveryReported,
    Status,
)
from subsidy.contracts.workflow_ids import application_workflow_id
from subsidy.failpoints import EXIT_CODE
from subsidy.messaging import DLQ_REASON, SESSION_TIMEOUT_ENV
from subsidy.temporal import connect_from_env
from tests.fixtures import events
from tests.support.webhook import post_webhook
from tests.support.intake_world import application_no, event, intake_world, lifecycle_workers
from tests.support.processes import assert_no_personal_data, free_port, get_health, start_process
from tests.support.tokens import get_json, mint
from tests.workflows.harness import BACK_OFFICE_REVIEWER, ONLINE_REVIEWER, PRE_REVIEWER, Harness, StandInServices

pytestmark = pytest.mark.integration
LG, SZ = "LG-AI-MODEL-2025", "SZ-GOVAI-SCENARIO-2025"


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.isoformat()


@pytest.mark.shared_processes
async def test_every_longgang_event_is_accepted_end_to_end(stack, tmp_path: Path) -> None:
    """Submission, resubmission after a return, form download, Guangdong submission, paper at the
    window: each stored and applied to the lifecycle, all visible on the read side."""
    app = application_no("LG")
    async with intake_world(stack, tmp_path / "intake.log", shared=True) as w:
        h = Harness(env=None, services=w.stand_in)  # type: ignore[arg-type]
        handle = w.temporal.get_workflow_handle(application_workflow_id(LG, app))

        topic, submitted = event(topics.LONGGANG_APPLICATION_SUBMITTED, app)
        await w.send_applied(topic, submitted)
        await h.reach(handle, Status.ONLINE_REVIEW)
        await h.update(handle, UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview(
            actor=ONLINE_REVIEWER, decision="return", reasons=("请补充发票",), resubmit_by=now() + timedelta(days=7)))

        topic, resubmitted = event(topics.LONGGANG_APPLICATION_RESUBMITTED, app, data={"submitted_at": iso(now())})
        await w.send_applied(topic, resubmitted)
        await h.reach(handle, Status.ONLINE_REVIEW)
        await h.update(handle, UPDATE_DECIDE_ONLINE_REVIEW, DecideOnlineReview(actor=ONLINE_REVIEWER, decision="approve"))
        form_id = (await h.reach(handle, Status.AWAITING_GD_SUBMISSION)).form_id

        topic, downloaded = event(topics.LONGGANG_FORM_DOWNLOADED, app, data={"form_id": form_id, "downloaded_at": iso(now())})
        await w.send_applied(topic, downloaded)
        topic, wrong_form = event(topics.GUANGDONG_SUBMISSION_RECEIVED, app, data={"form_id": "WF-forged", "form_sha256": "0" * 64})
        await w.send(topic, wrong_form)
        assert (await w.outcome(wrong_form["id"]))[1].startswith("wrong_form")
        # The hash in upper-case hex: the same hash, applied (the platform issues hexdigest(), lower case).
        topic, gd = event(topics.GUANGDONG_SUBMISSION_RECEIVED, app, data={
            "form_id": form_id, "form_sha256": hashlib.sha256(form_id.encode()).hexdigest().upper(), "received_at": iso(now())})
        await w.send_applied(topic, gd)

        await h.reach(handle, Status.BACK_OFFICE_REVIEW)
        await h.update(handle, UPDATE_DECIDE_BACK_OFFICE_REVIEW, DecideBackOfficeReview(actor=BACK_OFFICE_REVIEWER, decision="approve"))
        await handle.signal(SIGNAL_SMS_DELIVERY_REPORTED, SmsDeliveryReported(
            message_id="m-1", notice_kind="back_office_approved", status="DELIVERED", reported_at=now()))
        await h.reach(handle, Status.AWAITING_PAPER)
        # A window's key cannot record paper at another window: refused on the webhook, and by intake
        # when such an event is on the topic; the application still waits for its paper.
        topic, elsewhere = event(topics.WINDOW_PAPER_RECEIVED, app, data={
            "form_id": form_id, "received_at": iso(now()), "window_code": "LG-W07"})
        webhook_answer = await _post_event(stack, w.intake_port, "window-LG-W03", elsewhere)
        _, elsewhere_on_kafka = event(topics.WINDOW_PAPER_RECEIVED, app, data={
            "form_id": form_id, "received_at": iso(now()), "window_code": "LG-W07"})
        await w.send(topic, elsewhere_on_kafka)
        elsewhere_outcome = await w.outcome(elsewhere_on_kafka["id"])
        assert (await h.reach(handle, Status.AWAITING_PAPER)).status == Status.AWAITING_PAPER
        topic, paper = event(topics.WINDOW_PAPER_RECEIVED, app, data={"form_id": form_id, "received_at": iso(now())})
        await w.send_applied(topic, paper)
        # The same partition (key: the application) as the refused ones: had the webhook published, it would be recorded.
        webhook_recorded = await w.database.fetchval("SELECT count(*) FROM intake.inbound_events WHERE event_id = $1", elsewhere["id"])
        await h.reach(handle, Status.AWARD_CALCULATION)
        await h.at_rest(handle)

        reviewer = mint(stack.run_dir, "lg_online_reviewer", [LG], user="lg-rev-01")
        status, view = get_json(w.intake_port, f"/applications/{app}", reviewer)
        unknown = get_json(w.intake_port, "/applications/LG2025-999999", reviewer)
        anonymous = get_json(w.intake_port, f"/applications/{app}")
        other_program = get_json(w.intake_port, f"/applications/{app}", mint(stack.run_dir, "sz_pre_reviewer", [SZ]))
        malformed = get_json(w.intake_port, "/applications/LG2025%20000001", reviewer)
        openapi = get_json(w.intake_port, "/openapi.json")
        cli = subprocess.run(
            [sys.executable, "-m", "cli.main", "status", app, "--run-dir", str(stack.run_dir),
             "--intake-url", f"http://127.0.0.1:{w.intake_port}"],
            capture_output=True, text=True, env={**os.environ, **stack.env}, timeout=60)
        cli_unknown = subprocess.run(
            [sys.executable, "-m", "cli.main", "status", "LG2025-999999", "--run-dir", str(stack.run_dir),
             "--intake-url", f"http://127.0.0.1:{w.intake_port}"],
            capture_output=True, text=True, env={**os.environ, **stack.env}, timeout=60)
        await handle.terminate("test over")

    # The read side needs a token of the application's program; another program's is told nothing.
    assert anonymous[0] == 401 and anonymous[1]["detail"]["reason"] == "missing_token"
    assert unknown[0] == other_program[0] == 404
    assert unknown[1]["code"] == other_program[1]["code"] == "unknown_application"
    assert other_program[1]["message"] == "未找到该申报"
    assert malformed[0] == 400 and malformed[1]["code"] == "bad_application_no"
    assert openapi[0] == 200 and openapi[1]["info"]["title"].startswith("subsidy intake")
    assert {"/applications/{application_no}", "/webhooks/{source}"} <= set(openapi[1]["paths"])

    assert webhook_answer[0] == 400 and webhook_answer[1]["reason"] == "source_mismatch", webhook_answer
    assert webhook_recorded == 0
    assert elsewhere_outcome[0] == "refused" and (elsewhere_outcome[1] or "").startswith("source_mismatch"), elsewhere_outcome

    assert status == 200
    assert (view["program"], view["status"], view["version"]) == (LG, "award_calculation", 2)
    assert [v["version"] for v in view["versions"]] == [1, 2]
    outcomes = [(e["what"], e.get("outcome")) for e in view["history"] if e["kind"] == "event"]
    assert outcomes == [(t, "applied") for t in (
        topics.LONGGANG_APPLICATION_SUBMITTED, topics.LONGGANG_APPLICATION_RESUBMITTED, topics.LONGGANG_FORM_DOWNLOADED)] + [
        (topics.GUANGDONG_SUBMISSION_RECEIVED, "refused"), (topics.GUANGDONG_SUBMISSION_RECEIVED, "applied"),
        (topics.WINDOW_PAPER_RECEIVED, "refused"), (topics.WINDOW_PAPER_RECEIVED, "applied")]
    assert "pre_check -> online_review" in [e["what"] for e in view["history"]]
    rendered = json.dumps(view, ensure_ascii=False)
    assert all(raw not in rendered for raw in events.PERSONAL_VALUES)

    # `subsidy status` reads the same API with the operator's own token.
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["status"] == "award_calculation"
    assert cli_unknown.returncode == 1 and "no application LG2025-999999" in cli_unknown.stderr


@pytest.mark.shared_processes
async def test_personal_data_is_sealed_at_rest_and_found_by_keyed_hash(stack, tmp_path: Path) -> None:
    from services.intake.settings import IntakeSettings
    from subsidy.crypto import cipher_from_settings

    app = application_no("LG")
    async with intake_world(stack, tmp_path / "intake.log", shared=True) as w:
        topic, submitted = event(topics.LONGGANG_APPLICATION_SUBMITTED, app)
        await w.send(topic, submitted)
        assert (await w.outcome(submitted["id"]))[0] == "applied"
        row = await w.database.fetchrow(
            "SELECT payload::text AS payload, sealed FROM intake.application_versions WHERE application_no = $1", app)
        cipher = cipher_from_settings(IntakeSettings(**{k.lower(): v for k, v in stack.env.items() if k.startswith("PERSONAL_DATA")}))
        found = await w.database.fetchval(
            "SELECT application_no FROM intake.personal_lookup WHERE kind = 'mobile' AND lookup_hash = $1 AND application_no = $2",
            cipher.lookup_hash("mobile", events.CONTACT_MOBILE), app)
        lookups = await w.database.fetch(
            "SELECT version, field, kind FROM intake.personal_lookup WHERE application_no = $1 ORDER BY field", app)
        materials = await w.database.fetch(
            "SELECT version, file_id, kind, sha256, pages FROM intake.materials WHERE application_no = $1 ORDER BY file_id", app)
        await w.temporal.get_workflow_handle(application_workflow_id(LG, app)).terminate("test over")
    assert all(raw not in row["payload"] for raw in events.PERSONAL_VALUES)
    sealed = json.loads(row["sealed"])
    assert set(sealed) == {"applicant.legal_representative.id_number", "applicant.contact.mobile", "applicant.contact.id_number"}
    assert cipher.decrypt(sealed["applicant.contact.mobile"], context=f"{app}:applicant.contact.mobile") == events.CONTACT_MOBILE
    assert found == app
    assert [tuple(r) for r in lookups] == [
        (1, "applicant.contact.id_number", "id_number"), (1, "applicant.contact.mobile", "mobile"),
        (1, "applicant.legal_representative.id_number", "id_number")]
    assert [tuple(r) for r in materials] == [
        (1, m["file_id"], m["kind"], m["sha256"], m.get("pages")) for m in sorted(submitted["data"]["materials"], key=lambda m: m["file_id"])]


@pytest.mark.shared_processes
async def test_a_second_first_submission_of_an_application_is_refused_and_stores_nothing(stack, tmp_path: Path) -> None:
    app = application_no("LG")
    async with intake_world(stack, tmp_path / "intake.log", shared=True) as w:
        topic, first = event(topics.LONGGANG_APPLICATION_SUBMITTED, app)
        await w.send_applied(topic, first)
        _, again = event(topics.LONGGANG_APPLICATION_SUBMITTED, app)  # a new event id: not a redelivery
        await w.send(topic, again)
        outcome = await w.outcome(again["id"])
        stored = await w.database.fetchrow(
            """SELECT (SELECT count(*) FROM intake.application_versions WHERE application_no = $1) AS versions,
                      (SELECT count(*) FROM intake.personal_lookup WHERE application_no = $1) AS lookups,
                      (SELECT count(*) FROM intake.materials WHERE application_no = $1) AS materials,
                      (SELECT event_id FROM intake.application_versions WHERE application_no = $1) AS event_id""", app)
        await w.temporal.get_workflow_handle(application_workflow_id(LG, app)).terminate("test over")
    assert outcome[0] == "refused" and outcome[1].startswith("duplicate_submission")
    assert (stored["versions"], stored["lookups"], stored["event_id"]) == (1, 3, first["id"])
    assert stored["materials"] == len(first["data"]["materials"])


@pytest.mark.shared_processes
async def test_shenzhen_events_and_withdrawal(stack, tmp_path: Path) -> None:
    app = application_no("SZ")
    async with intake_world(stack, tmp_path / "intake.log", shared=True) as w:
        h = Harness(env=None, services=w.stand_in)  # type: ignore[arg-type]
        handle = w.temporal.get_workflow_handle(application_workflow_id(SZ, app))
        topic, submitted = event(topics.SHENZHEN_APPLICATION_SUBMITTED, app)  # 2025-11-30 17:59:30, in time
        await w.send_applied(topic, submitted)
        await h.reach(handle, Status.FORMAL_PRE_REVIEW)
        await h.update(handle, UPDATE_DECIDE_FORMAL_PRE_REVIEW, DecideFormalPreReview(
            actor=PRE_REVIEWER, decision="return", reasons=("缺少测试报告",), resubmit_by=now() + timedelta(days=7)))
        topic, resubmitted = event(topics.SHENZHEN_APPLICATION_RESUBMITTED, app, data={"submitted_at": iso(now())})
        await w.send_applied(topic, resubmitted)  # after the filing cutoff, before the date in the return notice
        topic, booked = event(topics.SHENZHEN_APPOINTMENT_BOOKED, app)
        await w.send_applied(topic, booked)
        topic, withdrawn = event(topics.SHENZHEN_APPLICATION_WITHDRAWN, app, data={"program": SZ, "withdrawn_at": iso(now())})
        await w.send_applied(topic, withdrawn)
        result = await w.temporal.get_workflow_handle(application_workflow_id(SZ, app)).result()
        topic, again = event(topics.SHENZHEN_APPLICATION_WITHDRAWN, app, data={"program": SZ, "withdrawn_at": iso(now())})
        await w.send(topic, again)
        outcome = await w.outcome(again["id"])
    assert result["status"] == "withdrawn" and result["version"] == 2
    assert outcome[0] == "refused" and outcome[1].startswith("lifecycle_closed")


@pytest.mark.shared_processes
async def test_a_longgang_withdrawal_ends_the_lifecycle(stack, tmp_path: Path) -> None:
    app = application_no("LG")
    async with intake_world(stack, tmp_path / "intake.log", shared=True) as w:
        topic, submitted = event(topics.LONGGANG_APPLICATION_SUBMITTED, app)
        await w.send_applied(topic, submitted)
        topic, withdrawn = event(topics.LONGGANG_APPLICATION_WITHDRAWN, app, data={"withdrawn_at": iso(now())})
        await w.send_applied(topic, withdrawn)
        result = await w.temporal.get_workflow_handle(application_workflow_id(LG, app)).result()
    assert result["status"] == "withdrawn"


@pytest.mark.shared_processes
async def test_a_portal_naming_a_program_of_another_lifecycle_is_refused_and_starts_nothing(stack, tmp_path: Path) -> None:
    """A Shenzhen submission naming the Longgang program: 400 program_mismatch on the webhook,
    dead-lettered on Kafka, and no lifecycle of either program started."""
    app = application_no("SZ")
    async with intake_world(stack, tmp_path / "intake.log", shared=True) as w:
        topic, by_webhook = event(topics.SHENZHEN_APPLICATION_SUBMITTED, app, data={"program": LG})
        webhook_answer = await _post_event(stack, w.intake_port, "sz-finance", by_webhook)
        _, on_kafka = event(topics.SHENZHEN_APPLICATION_SUBMITTED, app, data={"program": LG})
        bad = await w.send(topic, on_kafka)
        # Same key, so the same partition, after the bad one: once it is recorded, the bad one was handled.
        _, sentinel = event(topics.SHENZHEN_APPOINTMENT_BOOKED, app)
        await w.send(topic, sentinel)
        sentinel_outcome = await w.outcome(sentinel["id"])
        dead_lettered = await w.database.fetch(
            "SELECT reason FROM intake.dead_letters WHERE topic = $1 AND kafka_partition = $2 AND kafka_offset = $3",
            topic, bad.partition, bad.offset)
        recorded = await w.database.fetchval(
            "SELECT count(*) FROM intake.inbound_events WHERE event_id = ANY($1::text[])", [by_webhook["id"], on_kafka["id"]])
        versions = await w.database.fetchval("SELECT count(*) FROM intake.application_versions WHERE application_no = $1", app)
        started = []
        for program in (LG, SZ):
            try:
                await w.temporal.get_workflow_handle(application_workflow_id(program, app)).describe()
                started.append(program)
            except RPCError as exc:
                assert exc.status == RPCStatusCode.NOT_FOUND, exc
    assert webhook_answer[0] == 400 and webhook_answer[1]["reason"] == "program_mismatch", webhook_answer
    assert [r["reason"] for r in dead_lettered] == ["program_mismatch"]
    assert sentinel_outcome[0] == "refused" and (sentinel_outcome[1] or "").startswith("unknown_application")
    assert (recorded, versions, started) == (0, 0, [])


async def _post_event(stack, port: int, slug: str, envelope: dict) -> tuple[int, dict]:
    """POST an event to intake's webhook as `slug`, signed with its key: (status, answer)."""
    key = json.loads(stack.env["WEBHOOK_KEYS"])[slug]
    body = events.encode(envelope)
    return await asyncio.to_thread(post_webhook, port, slug, body, signature=sign(key, body))


BAD_INPUT = [
    ("not_json", lambda app: b'{"specversion": "1.0", '),
    ("bad_envelope", lambda app: {k: v for k, v in event(topics.LONGGANG_APPLICATION_SUBMITTED, app)[1].items() if k != "specversion"}),
    ("unknown_type", lambda app: event(topics.SHENZHEN_APPLICATION_SUBMITTED, app)[1]),
    ("unknown_program", lambda app: event(topics.LONGGANG_APPLICATION_SUBMITTED, app, data={"program": "XX-UNKNOWN-2025"})[1]),
    ("invalid_identifier", lambda app: _with_applicant(app, uscc="91440300MA5G12345X")),
    ("invalid_identifier", lambda app: _with_applicant(app, legal_representative={"name": "张三", "id_number": "440307199003071238"})),
    ("invalid_identifier", lambda app: _with_applicant(app, contact={"name": "李四", "mobile": "12800138000"})),
    ("invalid_payload", lambda app: {**(e := event(topics.LONGGANG_APPLICATION_SUBMITTED, app)[1]),
                                     "data": {k: v for k, v in e["data"].items() if k != "materials"}}),
]


def _with_applicant(app: str, **changes: object) -> dict:
    envelope = event(topics.LONGGANG_APPLICATION_SUBMITTED, app)[1]
    envelope["data"]["applicant"].update(changes)
    return envelope


@pytest.mark.shared_processes
async def test_each_kind_of_bad_input_lands_in_the_dlq_with_its_reason_and_the_next_good_message_is_processed(stack, tmp_path: Path) -> None:
    app = application_no("LG")
    topic = topics.PORTAL_LONGGANG_APPLICATIONS
    async with intake_world(stack, tmp_path / "intake.log", shared=True) as w:
        sent = []
        for reason, build in BAD_INPUT:
            body = build(app)
            metadata = await w.send(topic, body if isinstance(body, bytes) else events.encode(body), key=app)
            sent.append((reason, metadata.partition, metadata.offset))
        _, good = event(topics.LONGGANG_APPLICATION_SUBMITTED, app)
        await w.send_applied(topic, good)

        by_offset = {offset: headers for offset, (headers, _) in (await _dead_letters_on_kafka(stack, topic, app, len(sent))).items()}
        recorded = await w.database.fetch(
            "SELECT kafka_offset, reason FROM intake.dead_letters WHERE topic = $1 AND message_key = $2", topic, app)
        await w.temporal.get_workflow_handle(application_workflow_id(LG, app)).terminate("test over")

    assert [by_offset[offset][DLQ_REASON] for _, _, offset in sent] == [reason for reason, _, _ in sent]
    assert sorted((r["kafka_offset"], r["reason"]) for r in recorded) == sorted((o, reason) for reason, _, o in sent)
    headers_text = json.dumps(by_offset, ensure_ascii=False)
    assert "440307199003071238" not in headers_text and "12800138000" not in headers_text

    listed = subprocess.run([sys.executable, "-m", "cli.main", "dlq", "list", "--counts"], capture_output=True, text=True,
                            env={**os.environ, **stack.env}, timeout=60)
    assert listed.returncode == 0 and '"reason": "not_json"' in listed.stdout


async def _dead_letters_on_kafka(stack, topic: str, key: str, count: int) -> dict[int, tuple[dict[str, str], bytes]]:
    """The first `count` records of `topic`'s DLQ with `key`: source offset -> (headers, body)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topics.dlq(topic), 0)  # a DLQ has one partition
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        found: dict[int, tuple[dict[str, str], bytes]] = {}
        deadline = asyncio.get_running_loop().time() + 30
        while len(found) < count and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    headers = {k: v.decode() for k, v in record.headers}
                    if record.key == key.encode():
                        found[int(headers["x-dlq-source-offset"])] = (headers, record.value or b"")
        return found
    finally:
        await consumer.stop()


@pytest.mark.shared_processes
async def test_json_nested_too_deeply_is_dead_lettered_as_not_json_and_the_next_message_is_processed(stack, tmp_path: Path) -> None:
    """100 000 levels deep (Python's JSON parser itself gives up) used to hold its partition for ever,
    redelivered with no DLQ record; 300 (pydantic's dump gives up) failed after the workflow started."""
    app = application_no("LG")
    topic = topics.PORTAL_LONGGANG_APPLICATIONS
    async with intake_world(stack, tmp_path / "intake.log", shared=True) as w:
        sent = []
        for levels in (100_000, 300):
            _, envelope = event(topics.LONGGANG_APPLICATION_SUBMITTED, app, data={"portal_extra": "NESTED"})
            body = events.encode(envelope).replace(b'"NESTED"', b"[" * levels + b"]" * levels)
            sent.append(await w.send(topic, body, key=app))
        _, good = event(topics.LONGGANG_APPLICATION_SUBMITTED, app)
        await w.send_applied(topic, good)  # same key, same partition, after both: they were handled
        letters = await _dead_letters_on_kafka(stack, topic, app, len(sent))
        recorded = await w.database.fetch(
            "SELECT kafka_offset, reason FROM intake.dead_letters WHERE topic = $1 AND message_key = $2", topic, app)
        await w.temporal.get_workflow_handle(application_workflow_id(LG, app)).terminate("test over")

    assert [letters[m.offset][0][DLQ_REASON] for m in sent] == ["not_json", "not_json"]
    assert sorted((r["kafka_offset"], r["reason"]) for r in recorded) == sorted((m.offset, "not_json") for m in sent)


@pytest.mark.shared_processes
async def test_nul_or_a_lone_surrogate_escape_is_dead_lettered_as_invalid_payload_before_any_workflow_starts(
    stack, tmp_path: Path,
) -> None:
    """Valid JSON, but no PostgreSQL text holds "\\u0000" and UTF-8 cannot encode "\\ud800": refused
    by parse_event like any other contract breach, the next message of the partition processed."""
    app = application_no("LG")
    topic = topics.PORTAL_LONGGANG_APPLICATIONS
    async with intake_world(stack, tmp_path / "intake.log", shared=True) as w:
        sent = []
        for escape in (b"\\u0000", b"\\ud800"):
            _, envelope = event(topics.LONGGANG_APPLICATION_SUBMITTED, app, data={"portal_extra": "UNSTORABLE"})
            sent.append(await w.send(topic, events.encode(envelope).replace(b'"UNSTORABLE"', b'"x' + escape + b'"'), key=app))
        _, good = event(topics.LONGGANG_APPLICATION_SUBMITTED, app)
        await w.send_applied(topic, good)  # same key, same partition, after both; a first submission: none was taken
        letters = await _dead_letters_on_kafka(stack, topic, app, len(sent))
        recorded = await w.database.fetch(
            "SELECT kafka_offset, reason FROM intake.dead_letters WHERE topic = $1 AND message_key = $2", topic, app)
        await w.temporal.get_workflow_handle(application_workflow_id(LG, app)).terminate("test over")

    assert [letters[m.offset][0][DLQ_REASON] for m in sent] == ["invalid_payload", "invalid_payload"]
    assert sorted((r["kafka_offset"], r["reason"]) for r in recorded) == sorted((m.offset, "invalid_payload") for m in sent)
    assert all(letters[m.offset][1].decode("utf-8") for m in sent)


@pytest.mark.shared_processes
async def test_a_dead_letter_of_a_mobile_and_an_id_number_sent_as_json_numbers_holds_them_masked(stack, tmp_path: Path) -> None:
    app = application_no("LG")
    topic = topics.PORTAL_LONGGANG_APPLICATIONS
    _, bad = event(topics.LONGGANG_APPLICATION_SUBMITTED, app)
    bad["data"]["applicant"]["contact"]["mobile"] = int(events.CONTACT_MOBILE)
    bad["data"]["applicant"]["legal_representative"]["id_number"] = int(events.LEGAL_REP_ID)
    bad["data"]["applicant"]["contact"]["id_number"] = "ID" + events.CONTACT_ID  # malformed: masked by field name
    async with intake_world(stack, tmp_path / "intake.log", shared=True) as w:
        metadata = await w.send(topic, bad)
        letters = await _dead_letters_on_kafka(stack, topic, app, 1)

    headers, body = letters[metadata.offset]
    assert headers[DLQ_REASON] == "invalid_payload" and headers["x-dlq-redacted"] == "1"
    assert not any(raw.encode() in body for raw in events.PERSONAL_VALUES), body
    kept = json.loads(body)
    assert kept["id"] == bad["id"] and kept["data"]["applicant"]["contact"]["mobile"] == "138****8000"


async def test_the_same_event_three_times_and_a_forced_redelivery_have_one_effect(stack, tmp_path: Path) -> None:
    app = application_no("LG")
    topic, submitted = event(topics.LONGGANG_APPLICATION_SUBMITTED, app)
    async with intake_world(stack, tmp_path / "intake.log") as w:
        first = None
        for _ in range(3):
            metadata = await w.send(topic, submitted)
            first = first or metadata
        assert await w.outcome(submitted["id"]) == ("applied", None)

    # Forced redelivery: with intake stopped, rewind its consumer group to before the first copy.
    rewind = AIOKafkaConsumer(bootstrap_servers=stack.kafka, group_id="intake", enable_auto_commit=False)
    await rewind.start()
    try:
        partition = TopicPartition(topic, first.partition)
        rewind.assign([partition])
        await rewind.commit({partition: first.offset})
    finally:
        await rewind.stop()

    async with intake_world(stack, tmp_path / "intake-again.log") as w:
        _, sentinel = event(topics.LONGGANG_FORM_DOWNLOADED, app)  # same key, same partition, after the rewound ones
        await w.send(topic, sentinel)
        await w.outcome(sentinel["id"])
        counts = await w.database.fetchrow(
            """SELECT (SELECT count(*) FROM intake.application_versions WHERE application_no = $1) AS versions,
                      (SELECT count(*) FROM intake.inbound_events WHERE application_no = $1) AS events,
                      (SELECT count(*) FROM intake.inbox WHERE event_id = $2) AS inbox""", app, submitted["id"])
        runs = [e async for e in w.temporal.list_workflows(f"WorkflowId = '{application_workflow_id(LG, app)}'")]
        await w.temporal.get_workflow_handle(application_workflow_id(LG, app)).terminate("test over")
    assert (counts["versions"], counts["events"], counts["inbox"]) == (1, 2, 1)  # the submission and the sentinel
    assert len(runs) == 1


# The Kafka session of an intake process a test kills, in ms (the broker's minimum is 1 s).
CRASHING_SESSION_MS = 3000
# The record-state-change activity's start-to-close timeout in a test whose intake dies holding it.
RECORD_TIMEOUT = timedelta(seconds=5)


async def _crash_intake(stack, tmp_path: Path, failpoint: str, topic: str, envelope: dict, *,
                        record_timeout: timedelta | None = None) -> None:
    """Run an intake process armed to die at `failpoint`, send it `envelope` and see it die there
    (the lifecycle workflows' worker runs meanwhile, so its commands are answered).

    The process has a short Kafka session (CRASHING_SESSION_MS): the next intake gets the dead
    one's partitions when that session times out, not after Kafka's 10 s."""
    port, log_file = free_port(), tmp_path / f"intake-crash-{failpoint}.log"
    client = await connect_from_env(stack.env)
    crashing = start_process(
        ["cli.main", "run", "intake"],
        {**os.environ, **stack.env, "HTTP_PORT": str(port), "LOG_FORMAT": "json", "SUBSIDY_FAILPOINTS": failpoint,
         SESSION_TIMEOUT_ENV: str(CRASHING_SESSION_MS)},
        log_file,
    )
    try:
        async with lifecycle_workers(client, StandInServices(), record_timeout=record_timeout):
            for _ in range(200):
                if get_health(port)[0] == 200:
                    break
                await asyncio.sleep(0.3)
            async with _producer(stack) as send:
                await send(topic, envelope)
            assert await asyncio.to_thread(crashing.wait, 60) == EXIT_CODE
    finally:
        if crashing.poll() is None:
            crashing.kill()
    assert_no_personal_data(log_file)


async def test_a_crash_after_the_database_commit_and_before_the_offset_commit_causes_no_duplicate(stack, tmp_path: Path) -> None:
    app = application_no("LG")
    topic, submitted = event(topics.LONGGANG_APPLICATION_SUBMITTED, app)
    await _crash_intake(stack, tmp_path, "intake.after_commit", topic, submitted)

    async with intake_world(stack, tmp_path / "intake.log") as w:
        stored = await w.database.fetchval("SELECT count(*) FROM intake.inbound_events WHERE event_id = $1", submitted["id"])
        assert stored == 1  # committed before the crash
        _, sentinel = event(topics.LONGGANG_FORM_DOWNLOADED, app)
        await w.send(topic, sentinel)
        await w.outcome(sentinel["id"])  # the redelivered submission came first, on the same partition
        counts = await w.database.fetchrow(
            """SELECT (SELECT count(*) FROM intake.application_versions WHERE application_no = $1) AS versions,
                      (SELECT count(*) FROM intake.inbound_events WHERE event_id = $2) AS events""", app, submitted["id"])
        log = (tmp_path / "intake.log").read_text()
        await w.temporal.get_workflow_handle(application_workflow_id(LG, app)).terminate("test over")
    assert (counts["versions"], counts["events"]) == (1, 1)
    assert "event already processed" in log  # it was redelivered, and recognised


async def test_a_crash_after_the_workflow_start_and_before_the_write_starts_once_and_stores_once(stack, tmp_path: Path) -> None:
    app = application_no("LG")
    topic, submitted = event(topics.LONGGANG_APPLICATION_SUBMITTED, app)
    await _crash_intake(stack, tmp_path, "intake.after_command", topic, submitted)
    workflow_id = application_workflow_id(LG, app)
    database = await asyncpg.connect(stack.database_url)
    try:  # the lifecycle runs; intake wrote nothing
        client = await connect_from_env(stack.env)
        assert (await client.get_workflow_handle(workflow_id).describe()).status == WorkflowExecutionStatus.RUNNING
        assert await database.fetchval("SELECT count(*) FROM intake.inbox WHERE event_id = $1", submitted["id"]) == 0
    finally:
        await database.close()

    async with intake_world(stack, tmp_path / "intake.log") as w:
        assert await w.outcome(submitted["id"]) == ("applied", None)  # redelivered: started again = the running one
        counts = await w.database.fetchrow(
            """SELECT (SELECT count(*) FROM intake.application_versions WHERE application_no = $1) AS versions,
                      (SELECT count(*) FROM intake.outbox WHERE message_key = $1 AND topic = $2) AS facts""",
            app, topics.SUBMISSION_RECORDED)
        runs = [e async for e in w.temporal.list_workflows(f"WorkflowId = '{workflow_id}'")]
        await w.temporal.get_workflow_handle(workflow_id).terminate("test over")
    assert (counts["versions"], counts["facts"], len(runs)) == (1, 1, 1)


async def test_a_crash_after_a_withdrawal_ended_the_lifecycle_and_before_the_write_records_it_applied(stack, tmp_path: Path) -> None:
    """The redelivered withdrawal finds it already taken: the workflow accepted it before the crash
    (the run is withdrawn, though possibly still open: its last state change's activity may have died
    with the crashed intake and is retried when its start-to-close timeout has passed; this test's
    workflow workers give that activity RECORD_TIMEOUT instead of 30 s, which was most of its time).
    Temporal answers the repeated update (same update id) with the outcome it recorded, so intake
    records `applied`, not a refusal."""
    app = application_no("LG")
    async with intake_world(stack, tmp_path / "intake-before.log", record_timeout=RECORD_TIMEOUT) as w:
        topic, submitted = event(topics.LONGGANG_APPLICATION_SUBMITTED, app)
        await w.send_applied(topic, submitted)
        # Settled before this intake (whose activity worker records the transitions) stops: else a
        # transition's activity lost with it holds the lifecycle busy until its timeout.
        h, handle = Harness(env=None, services=w.stand_in), w.temporal.get_workflow_handle(application_workflow_id(LG, app))  # type: ignore[arg-type]
        await h.reach(handle, Status.ONLINE_REVIEW)
        await h.at_rest(handle)
    topic, withdrawn = event(topics.LONGGANG_APPLICATION_WITHDRAWN, app, data={"withdrawn_at": iso(now())})
    await _crash_intake(stack, tmp_path, "intake.after_command", topic, withdrawn, record_timeout=RECORD_TIMEOUT)

    async with intake_world(stack, tmp_path / "intake.log", record_timeout=RECORD_TIMEOUT) as w:
        result = await w.temporal.get_workflow_handle(application_workflow_id(LG, app)).result()
        assert result["status"] == "withdrawn"  # the crashed process's update was applied
        assert await w.outcome(withdrawn["id"]) == ("applied", None)


class _producer:
    """A bare producer, for sending while no intake_world runs."""

    def __init__(self, stack):
        from aiokafka import AIOKafkaProducer

        self.producer = AIOKafkaProducer(bootstrap_servers=stack.kafka, enable_idempotence=True)

    async def __aenter__(self):
        await self.producer.start()

        async def send(topic: str, envelope: dict) -> None:
            await self.producer.send_and_wait(topic, events.encode(envelope), key=envelope["subject"].encode())

        return send

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()


async def test_the_write_is_all_or_nothing_when_another_consumer_stored_the_event_first(stack) -> None:
    """`record_effect` is one statement: when the inbox already has the event, or the version is
    stored (another intake process got there meanwhile), it fails as a whole: none of its inbox row,
    version, lookups, materials or outbox events is written; intake then reads again (StoredMeanwhile
    is transient)."""
    from services.intake import repository
    from services.intake.service import CONSUMER, StoredMeanwhile
    from subsidy.messaging import is_transient
    from subsidy.outbox import OutboxEvent

    app = application_no("LG")
    event_id = f"evt-{uuid.uuid4().hex}"
    inbound = repository.Inbound(
        event_id=event_id, topic=topics.LONGGANG_APPLICATION_SUBMITTED, type=topics.LONGGANG_APPLICATION_SUBMITTED,
        source="urn:portal:longgang-qyfw", application_no=app, event_time=now(), applied=True, reason=None,
    )

    def version(number: int) -> repository.Version:
        return repository.Version(
            application_no=app, version=number, program=LG, event_id=f"{event_id}-{number}", submitted_at=now(),
            applicant_uscc="91440300MA5G1234XK", payload={"n": number}, sealed={}, lookups=[("contact.mobile", "mobile", "ab")],
            materials=[{"file_id": f"f{number}", "kind": "contract", "sha256": "0" * 64, "pages": 3}],
        )

    def facts() -> list[OutboxEvent]:
        return [OutboxEvent(topics.SUBMISSION_RECORDED, app, str(uuid.uuid4()), {"n": 1})]

    pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=2, server_settings={"search_path": "intake,public"})
    try:
        await repository.record_effect(pool, consumer=CONSUMER, inbound=inbound, version=version(1), events=facts())
        with pytest.raises(asyncpg.UniqueViolationError):  # same event, and a version not yet stored
            await repository.record_effect(pool, consumer=CONSUMER, inbound=inbound, version=version(2), events=facts())
        other = dataclasses.replace(inbound, event_id=f"{event_id}-other")
        with pytest.raises(asyncpg.UniqueViolationError):  # another event, and the version stored meanwhile
            await repository.record_effect(pool, consumer=CONSUMER, inbound=other, version=version(1), events=facts())
        assert not (await repository.known(pool, consumer=CONSUMER, source=other.source, event_id=other.event_id, application_no=app)).processed
        counts = await pool.fetchrow(
            """SELECT (SELECT count(*) FROM application_versions WHERE application_no = $1) AS versions,
                      (SELECT count(*) FROM materials WHERE application_no = $1) AS materials,
                      (SELECT count(*) FROM personal_lookup WHERE application_no = $1) AS lookups,
                      (SELECT count(*) FROM outbox WHERE message_key = $1) AS outbox,
                      (SELECT count(*) FROM inbound_events WHERE application_no = $1) AS inbound""", app)
        known = await repository.known(pool, consumer=CONSUMER, source=inbound.source, event_id=event_id, application_no=app)
    finally:
        await pool.close()
    assert dict(counts) == {"versions": 1, "materials": 1, "lookups": 1, "outbox": 1, "inbound": 1}
    assert known == repository.Known(processed=True, program=LG, latest_version=1)
    assert is_transient(StoredMeanwhile())


WINDOW_EDGES = [
    (topics.LONGGANG_APPLICATION_SUBMITTED, "LG", "2025-12-07T23:59:59.999+08:00", "refused"),
    (topics.LONGGANG_APPLICATION_SUBMITTED, "LG", "2025-12-08T00:00:00+08:00", "applied"),
    (topics.LONGGANG_APPLICATION_SUBMITTED, "LG", "2025-12-12T23:59:59.999+08:00", "applied"),
    (topics.LONGGANG_APPLICATION_SUBMITTED, "LG", "2025-12-13T00:00:00+08:00", "refused"),
    (topics.LONGGANG_APPLICATION_SUBMITTED, "LG", "2025-12-12T16:00:00Z", "refused"),  # 2025-12-13 00:00 in Shenzhen
    (topics.SHENZHEN_APPLICATION_SUBMITTED, "SZ", "2025-10-31T23:59:59+08:00", "refused"),
    (topics.SHENZHEN_APPLICATION_SUBMITTED, "SZ", "2025-11-01T00:00:00+08:00", "applied"),
    (topics.SHENZHEN_APPLICATION_SUBMITTED, "SZ", "2025-11-30T18:00:00+08:00", "applied"),
    (topics.SHENZHEN_APPLICATION_SUBMITTED, "SZ", "2025-11-30T18:00:01+08:00", "refused"),
]


@pytest.mark.shared_processes
async def test_late_first_submissions_are_refused_at_the_exact_window_edges_and_reported(stack, tmp_path: Path) -> None:
    cases = []
    async with intake_world(stack, tmp_path / "intake.log", shared=True) as w:
        for event_type, prefix, submitted_at, _ in WINDOW_EDGES:
            app = application_no(prefix)
            topic, submitted = event(event_type, app, data={"submitted_at": submitted_at})
            await w.send(topic, submitted)
            cases.append((app, submitted["id"]))
        outcomes = [await w.outcome(event_id) for _, event_id in cases]
        for (app, _), (event_type, prefix, _, expected) in zip(cases, WINDOW_EDGES, strict=True):
            if expected == "applied":
                program = LG if prefix == "LG" else SZ
                await w.temporal.get_workflow_handle(application_workflow_id(program, app)).terminate("test over")

        rejected = AIOKafkaConsumer(topics.INTAKE_REJECTED, bootstrap_servers=stack.kafka, group_id=None, auto_offset_reset="earliest")
        await rejected.start()
        reported: set[str] = set()
        try:
            refused = {app for (app, _), edge in zip(cases, WINDOW_EDGES, strict=True) if edge[3] == "refused"}
            deadline = asyncio.get_running_loop().time() + 30
            while not refused <= reported and asyncio.get_running_loop().time() < deadline:
                for records in (await rejected.getmany(timeout_ms=500)).values():
                    reported |= {json.loads(r.value)["application_no"] for r in records}
        finally:
            await rejected.stop()

    assert [o[0] for o in outcomes] == [edge[3] for edge in WINDOW_EDGES]
    assert all(o[1].startswith("outside_filing_window") for o in outcomes if o[0] == "refused")
    assert refused <= reported


# --- a CloudEvents id is unique only per source (issue 14, defect 1) ------------------------------


@pytest.mark.shared_processes
async def test_a_shenzhen_submission_reusing_an_id_a_longgang_portal_used_is_stored_and_starts_its_workflow(
    stack, tmp_path: Path
) -> None:
    lg_app, sz_app = application_no("LG"), application_no("SZ")
    shared_id = f"evt-{uuid.uuid4().hex}"
    async with intake_world(stack, tmp_path / "intake.log", shared=True) as w:
        h = Harness(env=None, services=w.stand_in)  # type: ignore[arg-type]
        topic, longgang = event(topics.LONGGANG_APPLICATION_SUBMITTED, lg_app, id=shared_id)
        await w.send_applied(topic, longgang)
        topic, shenzhen = event(topics.SHENZHEN_APPLICATION_SUBMITTED, sz_app, id=shared_id)
        assert shenzhen["source"] != longgang["source"]
        await w.send(topic, shenzhen)
        outcome = await w.outcome(shared_id, source=shenzhen["source"])
        handle = w.temporal.get_workflow_handle(application_workflow_id(SZ, sz_app))
        await h.reach(handle, Status.FORMAL_PRE_REVIEW)
        stored = await w.database.fetchrow(
            """SELECT (SELECT count(*) FROM intake.application_versions WHERE application_no = $1) AS versions,
                      (SELECT event_source FROM intake.application_versions WHERE application_no = $1) AS event_source,
                      (SELECT count(*) FROM intake.outbox WHERE message_key = $1 AND topic = $2) AS facts,
                      (SELECT count(*) FROM intake.inbound_events WHERE event_id = $3) AS inbound""",
            sz_app, topics.SUBMISSION_RECORDED, shared_id)
        # The same event again, from the same source: still a redelivery, nothing twice.
        await w.send(topic, shenzhen)
        await asyncio.sleep(1.0)
        inbound_after = await w.database.fetchval("SELECT count(*) FROM intake.inbound_events WHERE event_id = $1", shared_id)
        for app, program in ((lg_app, LG), (sz_app, SZ)):
            await w.temporal.get_workflow_handle(application_workflow_id(program, app)).terminate("test over")
    assert outcome == ("applied", None)
    assert (stored["versions"], stored["event_source"], stored["facts"]) == (1, shenzhen["source"], 1)
    assert stored["inbound"] == 2 and inbound_after == 2


@pytest.mark.shared_processes
async def test_a_withdrawal_reusing_the_id_of_the_guangdong_submission_is_applied(stack, tmp_path: Path) -> None:
    """Two decisions for one lifecycle from two sources with the same event id: each is its own
    workflow update (the update id is made of source and id), the withdrawal is not taken for the
    Guangdong submission's update and answered with its result."""
    app = application_no("LG")
    async with intake_world(stack, tmp_path / "intake.log", shared=True) as w:
        h = Harness(env=None, services=w.stand_in)  # type: ignore[arg-type]
        handle = w.temporal.get_workflow_handle(application_workflow_id(LG, app))
        topic, submitted = event(topics.LONGGANG_APPLICATION_SUBMITTED, app)
        await w.send_applied(topic, submitted)
        await h.reach(handle, Status.ONLINE_REVIEW)
        await h.update(handle, "decide_online_review", DecideOnlineReview(actor=ONLINE_REVIEWER, decision="approve"))
        form_id = (await h.reach(handle, Status.AWAITING_GD_SUBMISSION)).form_id
        shared_id = f"evt-{uuid.uuid4().hex}"
        topic, gd = event(topics.GUANGDONG_SUBMISSION_RECEIVED, app, id=shared_id, data={
            "form_id": form_id, "form_sha256": hashlib.sha256(form_id.encode()).hexdigest(), "received_at": iso(now())})
        await w.send_applied(topic, gd)
        await h.reach(handle, Status.BACK_OFFICE_REVIEW)
        topic, withdrawn = event(topics.LONGGANG_APPLICATION_WITHDRAWN, app, id=shared_id, data={"withdrawn_at": iso(now())})
        await w.send(topic, withdrawn)
        outcome = await w.outcome(shared_id, source=withdrawn["source"])
        result = await handle.result()
    assert outcome == ("applied", None)
    assert result["status"] == "withdrawn"
