"""The background sweep of each server process: escalations and automatic closing,
then the retention of personal data, then the refresh of the statistics rollup.

Every process runs one; they share the work without coordination because the
domain functions lock cases with SKIP LOCKED. A sweep is one short transaction
in its own session: the live feed holds back events until every writer that
started before them has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette

from core.settings import Settings
from domain.access_log import prune_access_log
from domain.escalation import (
    DEFAULT_BATCH_SIZE,
    auto_close_resolved,
    escalate_overdue,
    load_holidays,
)
from domain.events import wrote_events
from domain.reference.holidays import ensure_national_holidays
from domain.reporter_rights import erase_expired_reporters
from domain.stats_rollup import refresh_rollup
from domain.working_days import JAKARTA

logger = logging.getLogger("patriot.sweeper")

LIVE_FEED_CHANNEL = "case_events"
# Up to this fraction of the interval is added at random, so that processes
# started together do not sweep in lockstep.
JITTER = 0.2
STOP_GRACE_S = 10.0
# Enough holidays to count back any auto-close window (at most 60 working days).
HOLIDAY_LOOKBACK = timedelta(days=366)
SERIALIZATION_FAILURE = "40001"


@dataclass(frozen=True)
class SweepResult:
    escalated_cases: int
    escalated_to_dinas: int
    escalated_to_poc: int
    closed: int
    duration_ms: float

    @property
    def full_batch(self) -> bool:
        return max(self.escalated_cases, self.closed) >= DEFAULT_BATCH_SIZE


@dataclass(frozen=True)
class RetentionResult:
    reporters_erased: int
    access_records_pruned: int
    full_batch: bool
    duration_ms: float


class Sweeper:
    def __init__(self, app: Starlette, *, settings: Settings) -> None:
        self._app = app
        self._settings = settings
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the sweeper is already running")
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="patriot-sweeper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        # A sweep under way finishes (its statements are bounded by the statement
        # timeout); one that does not is cancelled and rolled back.
        _done, pending = await asyncio.wait({task}, timeout=STOP_GRACE_S)
        if pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def sweep_once(self, *, now: datetime | None = None) -> SweepResult:
        started = time.perf_counter()
        now = now or datetime.now(UTC)
        settings = self._settings
        today = now.astimezone(JAKARTA).date()
        # The app's current factory, read at each sweep: one short session per sweep.
        async with self._app.state.session_factory() as session:
            async with session.begin():
                # A new year never starts without its holidays.
                await ensure_national_holidays(session=session, years=(today.year, today.year + 1))
                escalations = await escalate_overdue(
                    session=session,
                    now=now,
                    poc_after=timedelta(hours=settings.poc_escalation_after_hours),
                )
                holidays = await load_holidays(
                    session=session, start=today - HOLIDAY_LOOKBACK, end=today
                )
                closed = await auto_close_resolved(
                    session=session,
                    now=now,
                    after_working_days=settings.auto_close_working_days,
                    holidays=holidays,
                )
            woke = wrote_events(session)
        result = SweepResult(
            escalated_cases=len({e.case_id for e in escalations}),
            escalated_to_dinas=sum(1 for e in escalations if e.level == 1),
            escalated_to_poc=sum(1 for e in escalations if e.level == 2),
            closed=len(closed),
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        # Quiet sweeps only at debug level: every process sweeps every minute.
        busy = bool(result.escalated_cases or result.closed)
        _log("sweep", result.__dict__, level=logging.INFO if busy else logging.DEBUG)
        if woke:
            pubsub = getattr(self._app.state, "pubsub", None)
            if pubsub is not None:
                await pubsub.publish(LIVE_FEED_CHANNEL)
        return result

    async def apply_retention(self, *, now: datetime | None = None) -> RetentionResult:
        """Erase the reporters of cases settled longer ago than they are kept, and
        forget who saw personal data longer ago than that is kept: one short
        transaction, each case and record taken by one process only (SKIP LOCKED)."""
        started = time.perf_counter()
        now = now or datetime.now(UTC)
        settings = self._settings
        async with self._app.state.session_factory() as session:
            async with session.begin():
                erased = await erase_expired_reporters(
                    session=session,
                    now=now,
                    retention_days=settings.reporter_retention_days,
                    batch_size=settings.retention_batch_size,
                )
                pruned = await prune_access_log(
                    session=session,
                    before=now - timedelta(days=settings.personal_data_access_retention_days),
                    batch_size=settings.retention_batch_size,
                )
            woke = wrote_events(session)
        result = RetentionResult(
            reporters_erased=len(erased),
            access_records_pruned=pruned,
            full_batch=max(len(erased), pruned) >= settings.retention_batch_size,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        busy = bool(result.reporters_erased or result.access_records_pruned)
        _log("retention", result.__dict__, level=logging.INFO if busy else logging.DEBUG)
        if woke:
            pubsub = getattr(self._app.state, "pubsub", None)
            if pubsub is not None:
                await pubsub.publish(LIVE_FEED_CHANNEL)
        return result

    async def refresh_statistics(self, *, now: datetime | None = None) -> None:
        """Add the cases settled since the last refresh to the statistics rollup: in a
        transaction of its own, REPEATABLE READ so that the snapshot it records is the
        one its statements read."""
        started = time.perf_counter()
        try:
            async with self._app.state.session_factory() as session, session.begin():
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                refresh = await refresh_rollup(session=session, now=now or datetime.now(UTC))
        except DBAPIError as error:
            # Expected now and then: another process refreshed after this one's snapshot
            # was taken, so this one must not add the same cases again. Nothing was
            # written; the next sweep refreshes from the new state.
            if getattr(error.orig, "sqlstate", None) != SERIALIZATION_FAILURE:
                raise
            _log("stats_refresh_superseded", {}, level=logging.INFO)
            return
        if refresh is not None and (refresh.rebuilt or refresh.rows):
            fields = {
                **refresh.__dict__,
                "duration_ms": round((time.perf_counter() - started) * 1000),
            }
            _log("stats_refresh", fields, level=logging.INFO if refresh.rebuilt else logging.DEBUG)

    async def _run(self) -> None:
        interval = self._settings.sweep_interval_s
        delay = interval
        while not await self._wait(delay + random.uniform(0, interval * JITTER)):
            delay = interval
            try:
                result = await self.sweep_once()
            except Exception as error:  # one failed sweep must never stop the next ones
                _log("sweep_failed", {"error": type(error).__name__}, level=logging.ERROR)
                # The message may quote statement parameters: only on request.
                logger.debug("sweep failure", exc_info=True)
                continue
            try:
                retention = await self.apply_retention()
            except Exception as error:  # the next sweep tries again
                _log("retention_failed", {"error": type(error).__name__}, level=logging.ERROR)
                logger.debug("retention failure", exc_info=True)
            else:
                if retention.full_batch:
                    delay = 0
            try:
                await self.refresh_statistics()
            except Exception as error:  # the next sweep refreshes again
                _log("stats_refresh_failed", {"error": type(error).__name__}, level=logging.ERROR)
                logger.debug("statistics refresh failure", exc_info=True)
            if result.full_batch:
                delay = 0  # a backlog: keep going, still one short transaction at a time

    async def _wait(self, seconds: float) -> bool:
        """Sleep, waking early when asked to stop; True if stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        return self._stopping.is_set()


def _log(event: str, fields: dict[str, object], *, level: int = logging.INFO) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, orjson.dumps({"event": event, "pid": os.getpid(), **fields}).decode())
