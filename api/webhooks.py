"""Sending webhooks: claim a due delivery, describe the job, sign, POST, record the attempt, schedule the next.

Several senders run side by side in each API process, each with its own claim, so a slow or dead receiver holds
one of them for at most the timeout and never delays other jobs' deliveries or any HTTP response. A 2xx within
the timeout is success; 410 Gone stops at once; anything else is retried with exponential backoff and jitter until
the attempts run out, and then the delivery goes to the dead-letter topic with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from api.jobstore import JobStore, transcript_of
from api.settings import WebhookSettings
from api.webhook_store import Claimed, WebhookStore
from api.webhook_urls import UnsafeUrl, check_url
from schemas import Job, JobStatus, WebhookAttempt, WebhookEvent, WebhookGaveUp, WebhookJob

log = logging.getLogger(__name__)


def backoff(settings: WebhookSettings, attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: doubling from the base, capped, with ±50 % jitter so receivers that
    come back are not hit by every sender at once."""
    base = min(settings.max_backoff_s, settings.backoff_s * 2 ** (attempts - 1))
    return float(base * random.uniform(0.5, 1.5))


class WebhookSender:
    def __init__(
        self,
        settings: WebhookSettings,
        store: WebhookStore,
        jobs: JobStore,
        dead_letter: Callable[[WebhookGaveUp], None],
    ) -> None:
        from standardwebhooks import Webhook

        self.settings = settings
        self.store = store
        self.jobs = jobs
        self.dead_letter = dead_letter
        secret = settings.secret.get_secret_value() if settings.secret else None
        self._signer = Webhook(secret) if secret else None

    async def run(self) -> None:
        await asyncio.gather(*(self._sender() for _ in range(self.settings.senders)))

    async def _sender(self) -> None:
        timeout = httpx.Timeout(self.settings.timeout_s)
        async with httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False) as client:
            while True:
                try:
                    claimed = await asyncio.to_thread(self.store.claim, self.settings.timeout_s * 3 + 5)
                except Exception:
                    log.exception("webhook schedule unreadable")
                    claimed = None
                if claimed is None:
                    await asyncio.sleep(self.settings.poll_s)
                    continue
                try:
                    await self._deliver(client, claimed)
                except Exception:  # never lose the sender: the lease runs out and the delivery is retried
                    log.exception("webhook %s could not be processed", claimed.event_id)

    async def _deliver(self, client: httpx.AsyncClient, claimed: Claimed) -> None:
        job = await asyncio.to_thread(self.jobs.get, claimed.job_id)
        attempt = claimed.attempts + 1
        at = datetime.now(UTC)
        if job is None:
            gone = WebhookAttempt(attempt=attempt, at=at, latency_ms=0, error="the job was deleted")
            await asyncio.to_thread(self.store.record, claimed, gone, state="failed", retry_in=None)
            return
        if (job.status is JobStatus.COMPLETED and job.result is None) or not job.status.terminal:
            await asyncio.to_thread(self.store.postpone, claimed.event_id, 1.0)  # its last segments are on the way
            return
        body = self._body(claimed, job)
        started = time.perf_counter()
        code, error = await self._post(client, claimed, body, job)
        outcome = WebhookAttempt(
            attempt=attempt,
            at=at,
            status_code=code,
            latency_ms=round((time.perf_counter() - started) * 1000),
            error=error,
        )
        if code is not None and 200 <= code < 300:
            await asyncio.to_thread(self.store.record, claimed, outcome, state="delivered", retry_in=None)
        elif code == 410:
            await asyncio.to_thread(self.store.record, claimed, outcome, state="gone", retry_in=None)
        elif attempt >= self.settings.max_attempts:
            await asyncio.to_thread(self.store.record, claimed, outcome, state="failed", retry_in=None)
            reason = error or f"the receiver answered {code}"
            letter = WebhookGaveUp(
                event_id=claimed.event_id,
                job_id=claimed.job_id,
                url=claimed.url,
                attempts=attempt,
                reason=f"gave up after {attempt} attempts; the last: {reason}",
                occurred_at=datetime.now(UTC),
            )
            await asyncio.to_thread(self.dead_letter, letter)
        else:
            retry = backoff(self.settings, attempt)
            await asyncio.to_thread(self.store.record, claimed, outcome, state="pending", retry_in=retry)

    def _body(self, claimed: Claimed, job: Job) -> str:
        transcript = transcript_of(job)
        inline = transcript if transcript and len(transcript.model_dump_json()) <= self.settings.inline_bytes else None
        event = WebhookEvent(
            type="transcription.completed" if job.status is JobStatus.COMPLETED else "transcription.failed",
            timestamp=job.updated_at,
            data=WebhookJob(
                id=job.id,
                status=job.status,
                error=job.error,
                transcript=inline,
                transcript_url=None if inline or transcript is None else f"/v1/jobs/{job.id}",
            ),
        )
        return event.model_dump_json()

    async def _post(
        self, client: httpx.AsyncClient, claimed: Claimed, body: str, job: Job
    ) -> tuple[int | None, str | None]:
        try:
            target = await asyncio.to_thread(check_url, claimed.url, allow_private=self.settings.allow_private_urls)
        except UnsafeUrl as e:
            return None, str(e)
        if self._signer is None:
            return None, "no signing secret is configured (SCRIBEFLOW_WEBHOOKS__SECRET)"
        signed_at = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": claimed.event_id,
            "webhook-timestamp": str(int(signed_at.timestamp())),
            "webhook-signature": self._signer.sign(claimed.event_id, signed_at, body),
            "user-agent": "scribeflow-webhooks",
            "host": target.host if target.port in (80, 443) else f"{target.host}:{target.port}",
        }
        address = target.addresses[0]
        try:
            # To the address just checked, never to a fresh lookup; the name stays in Host and in TLS.
            async with client.stream(
                "POST",
                target.url_for(address),
                content=body.encode(),
                headers=headers,
                extensions={"sni_hostname": target.host},
            ) as response:
                read = 0
                async for chunk in response.aiter_bytes():
                    read += len(chunk)
                    if read >= self.settings.max_response_bytes:
                        break  # the answer is the status; a receiver's body is read only this far
                return response.status_code, None
        except httpx.HTTPError as e:
            return None, f"{type(e).__name__}: {e}"[:500]
