"""The SMS sender: a loop in each notify process that sends due messages, exactly once.

For each due message (pending, or `sending` with an expired lease):
1. quiet hours (a kind that is not exempt: not between 21:00 and 08:00 by default) and per-number
   limits (the same text at most every 30 s, at most 10 a day) postpone a pending one;
2. it is marked `sending` with a lease and a fencing token, committed BEFORE any provider is called;
3. a provider that may already have it (`unsure_providers`: we were calling it when a sender died,
   or its answer was lost) is asked first (`repository.provider_ref`, our message id, is its
   OutId / SessionContext; a resend after a failed delivery has a ref of its own, so the earlier
   attempt's record at the provider is never taken for this one); if one
   has it, it is recorded as accepted and nothing is sent again; if one cannot tell yet, the
   message waits for a later round;
4. providers are tried in order (the one a failed delivery asks for first), failing over only on a
   provider's own answer that it could not take the message; right before each call one statement
   checks that this sender still holds an unexpired lease (its token) and extends it, so a sender
   whose lease ran out while another replica took the row over never calls a provider; a
   definitive rejection (e.g. an invalid number) goes to a reviewer at once;
5. the outcome is recorded: accepted; unknown (no answer: timeout, connection lost) -> the row
   stays `sending` and is reconciled (step 3) before anything else, never failed over or resent
   blindly; not accepted -> retried later with backoff, or after `sms_max_send_attempts` a phone
   task for a reviewer.
Every new send time (backoff, rate limits) keeps to quiet hours (`Notifier.send_time`, the rule the
message was queued with), and a message of a kind that is not exempt that is due in quiet hours
anyway (a `sending` one whose lease ran out, which no provider turned out to have; a row rescheduled
before this rule) is held until they end instead of being sent.
Several processes may run it: rows are claimed with FOR UPDATE SKIP LOCKED and a lease.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import structlog

from services.notify import repository
from services.notify.providers.failover import ReconcileInconclusive, reconcile, send_with_failover
from services.notify.providers.port import SendResult, SmsProvider, SmsRequest
from services.notify.service import Notifier
from services.notify.settings import NotifySettings
from subsidy.crypto import PersonalDataCipher
from subsidy.failpoints import crash_if_armed
from subsidy.runtime import LoopTask

SHANGHAI = ZoneInfo("Asia/Shanghai")
log = structlog.get_logger(__name__)


class LeaseLost(Exception):
    """This sender's lease on a message ran out and another sender may hold it: do not send."""


@dataclass(frozen=True)
class Claim:
    message: asyncpg.Record
    token: uuid.UUID  # the lease's fencing token


class SmsSender(LoopTask):
    task_name = "sms-sender"

    def __init__(
        self, pool: asyncpg.Pool, providers: list[SmsProvider], cipher: PersonalDataCipher, notifier: Notifier,
        settings: NotifySettings, batch: int = 10, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.pool = pool
        self.providers = providers
        self.cipher = cipher
        self.notifier = notifier
        self.settings = settings
        self.batch = batch
        self.clock = clock  # the sender's own, not the notifier's: its limits compare with the database's sent_at

    # --- loop (`running`, `start()`, `stop()`: subsidy.runtime.LoopTask) ---------------------------

    async def resume_receipts(self) -> int:
        """Providers that report receipts themselves (the embedded stack's local provider, with
        `resume_receipt`) lose those not yet reported when notify stops; at start they are asked to
        report again every message they accepted that has no receipt yet. Returns how many."""
        resumable = {p.name: p for p in self.providers if hasattr(p, "resume_receipt")}
        if not resumable:
            return 0
        async with self.pool.acquire() as conn:
            rows = await repository.accepted_without_receipt(conn, list(resumable))
        for row in rows:
            mobile = self.cipher.decrypt(json.loads(row["mobile_sealed"]), context=f"{row['application_no']}:applicant.contact.mobile")
            resumable[row["provider"]].resume_receipt(repository.provider_ref(row), mobile)  # type: ignore[attr-defined]
        if rows:
            log.info("sms receipts resumed", provider_count=len(resumable), messages=len(rows))
        return len(rows)

    async def _loop(self) -> None:
        delay = self.settings.sms_sender_poll_seconds
        try:
            await self.resume_receipts()
        except Exception as exc:  # never stops the sender: the receipt wait and the phone task remain
            log.warning("sms receipts not resumed", error=type(exc).__name__, exc_info=True)
        while True:
            try:
                sent = await self.run_once()
                delay = self.settings.sms_sender_poll_seconds
            except Exception as exc:  # logged, retried with backoff: never a tight loop, never a lost row
                log.warning("sms sender round failed", error=type(exc).__name__, retry_in_s=delay, exc_info=True)
                sent, delay = 0, min(delay * 2, 30.0)
            if sent < self.batch:
                await asyncio.sleep(delay)

    async def run_once(self) -> int:
        """One round: claim due messages, then send each. Returns how many were claimed."""
        claimed: list[Claim] = []
        async with self.pool.acquire() as conn, conn.transaction():
            for message in await repository.claim_due(conn, limit=self.batch):
                if not await self._within_limits(conn, message):
                    continue
                token = await repository.mark_sending(conn, message["message_id"], lease=self._lease)
                claimed.append(Claim(message, token))
        for claim in claimed:
            await self._send(claim)
        return len(claimed)

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=self.settings.sms_send_lease_seconds)

    # --- one message -----------------------------------------------------------------------------

    async def _within_limits(self, conn: asyncpg.Connection, message: asyncpg.Record) -> bool:
        if message["status"] == "sending":
            return True  # interrupted mid-send: reconciled, not counted again (quiet hours: `_held_for_quiet_hours`)
        now = self.clock()
        allowed = self.notifier.send_time(message, now)
        if allowed > now:  # due in quiet hours anyway (e.g. rescheduled before resends kept to them)
            await repository.postpone(conn, message["message_id"], allowed, "quiet hours")
            return False
        last = await repository.last_same_text_sent(
            conn, mobile_hash=message["mobile_hash"], text=message["text"], message_id=message["message_id"]
        )
        interval = timedelta(seconds=self.settings.sms_same_content_interval_seconds)
        if last is not None and now - last < interval:
            await repository.postpone(
                conn, message["message_id"], self.notifier.send_time(message, last + interval), "rate_limited: same text to this number"
            )
            return False
        day_start = datetime.combine(now.astimezone(SHANGHAI).date(), datetime.min.time(), SHANGHAI)
        if await repository.sent_since(conn, mobile_hash=message["mobile_hash"], since=day_start) >= self.settings.sms_daily_limit:
            tomorrow = datetime.combine(day_start.date() + timedelta(days=1), self.settings.sms_quiet_end, SHANGHAI)
            await repository.postpone(conn, message["message_id"], tomorrow, "rate_limited: daily limit for this number")
            return False
        return True

    async def _send(self, claim: Claim) -> None:
        message = claim.message
        async with self.pool.acquire() as conn:
            contact = await repository.contact(conn, message["application_no"])
        mobile = self.cipher.decrypt(json.loads(contact["mobile_sealed"]), context=f"{message['application_no']}:applicant.contact.mobile")

        if await self._reconcile(claim, mobile) or await self._held_for_quiet_hours(claim):
            return
        first = True

        async def before_send(provider: str, previous: SendResult | None) -> None:
            nonlocal first
            settled = previous.provider if previous is not None and not previous.outcome_unknown else None
            async with self.pool.acquire() as conn:
                held = await repository.hold_lease_to_call(
                    conn, message["message_id"], token=claim.token, lease=self._lease, provider=provider,
                    settled=settled, first_call=first,
                )
            if not held:
                raise LeaseLost(str(message["message_id"]))
            first = False

        try:
            result = await send_with_failover(
                self._order(message), lambda provider: self._request(message, provider, mobile), before_send=before_send
            )
        except LeaseLost:
            log.warning("sms not sent: this sender's lease ran out, another sender may hold the message",
                        application_no=message["application_no"], kind=message["kind"])
            return
        if result.accepted:
            crash_if_armed("notify.after_provider_accept")  # the provider has it; our commit has not happened
            async with self.pool.acquire() as conn:
                await repository.mark_accepted(conn, message["message_id"], provider=result.provider, provider_message_id=result.provider_message_id)
            log.info("sms accepted", application_no=message["application_no"], kind=message["kind"], provider=result.provider)
            return
        if result.outcome_unknown:
            await self._outcome_unknown(claim, result)
            return
        await self._not_sent(claim, result)

    async def _reconcile(self, claim: Claim, mobile: str) -> bool:
        """Does a provider that may have this message (`unsure_providers`) have it? Then it was
        sent; record it, send nothing. If a provider cannot answer, or cannot know yet (Tencent
        lists a message only after its carrier report), the message waits for a later round
        instead of being sent again. False: no provider has it, it may be sent."""
        message = claim.message
        unsure = message["unsure_providers"]
        asked = [p for p in self.providers if unsure is None or p.name in unsure]
        if not asked:
            return False
        try:
            found = await reconcile(asked, repository.provider_ref(message), mobile, message["sent_at"] or message["created_at"])
        except ReconcileInconclusive:
            async with self.pool.acquire() as conn:
                await repository.extend_lease(
                    conn, message["message_id"], token=claim.token,
                    until=self.clock() + self._backoff(message),
                    reason="reconcile inconclusive: a provider could not say whether it has the message",
                )
            return True
        if found is None:
            return False
        provider, record = found
        async with self.pool.acquire() as conn:
            await repository.mark_accepted(conn, message["message_id"], provider=provider, provider_message_id=record.provider_message_id)
        log.info("sms found at the provider: not sent again",
                 application_no=message["application_no"], kind=message["kind"], provider=provider)
        return True

    async def _held_for_quiet_hours(self, claim: Claim) -> bool:
        """A message of a kind that is not exempt, about to go to a provider in quiet hours: back to
        `pending` until they end, nothing sent. Reached by a `sending` row whose lease ran out in
        quiet hours (a lost reply's backoff, a crashed sender) and that no provider has
        (`_reconcile` just asked), so no provider may have it; pending rows are held before they are
        claimed (`_within_limits`)."""
        message = claim.message
        now = self.clock()
        allowed = self.notifier.send_time(message, now)
        if allowed <= now:
            return False
        async with self.pool.acquire() as conn:
            await repository.retry_later(
                conn, message["message_id"], at=allowed, error="quiet hours", next_provider=message["next_provider"], token=claim.token,
            )
        log.info("sms held for quiet hours", application_no=message["application_no"], kind=message["kind"])
        return True

    async def _outcome_unknown(self, claim: Claim, result: SendResult) -> None:
        """No answer: the provider may have it. The row stays `sending` (that provider in
        `unsure_providers`) and is reconciled when its lease ends, never failed over or resent."""
        message = claim.message
        async with self.pool.acquire() as conn:
            await repository.extend_lease(
                conn, message["message_id"], token=claim.token, until=self.clock() + self._backoff(message),
                reason=f"outcome unknown: {result.provider}: {result.error_code}; the provider is asked before any resend",
            )
        log.warning("sms outcome unknown: the provider is asked before any resend",
                    application_no=message["application_no"], kind=message["kind"], provider=result.provider)

    async def _not_sent(self, claim: Claim, result: SendResult) -> None:
        message = claim.message
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await repository.leased_message(conn, message["message_id"], token=claim.token)
            if fresh is None:
                log.warning("sms not sent, and the lease ran out meanwhile: left to the sender that holds it",
                            application_no=message["application_no"], kind=message["kind"])
                return
            if not result.retryable or fresh["attempts"] >= self.settings.sms_max_send_attempts:
                await self.notifier.phone_task(conn, fresh, f"not sent: {result.error_code}")
                return
            await repository.retry_later(
                conn, message["message_id"], at=self.notifier.send_time(fresh, self.clock() + self._backoff(fresh)),
                error=f"{result.provider}: {result.error_code}", next_provider=None, token=claim.token,
            )

    @staticmethod
    def _backoff(message: asyncpg.Record) -> timedelta:
        return timedelta(seconds=min(2 ** max(message["attempts"], 1) * 5, 600))

    def _order(self, message: asyncpg.Record) -> list[SmsProvider]:
        preferred = message["next_provider"]
        return sorted(self.providers, key=lambda p: 0 if p.name == preferred else 1)

    @staticmethod
    def _request(message: asyncpg.Record, provider: str, mobile: str) -> SmsRequest:
        chosen = json.loads(message["params"])[provider]
        return SmsRequest(
            message_id=repository.provider_ref(message), mobile=mobile, sign_name=message["sign_name"],
            template_code=chosen["template"], params=chosen["params"], text=message["text"],
        )
