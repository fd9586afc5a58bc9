"""At most N concurrent Graph requests per mailbox, across every process and replica.

Graph allows an app 4 concurrent requests per mailbox and answers the 5th with 429
`ApplicationThrottled`. Each mailbox gets N lock slots: PostgreSQL session advisory locks
`(CLASSID, hash(mailbox, slot))` in the two-int4-key space (separate from the one-bigint
space, and the fixed CLASSID keeps us clear of other two-key users). A request holds one slot,
on its own connection, for the whole Graph call.

Invariants, kept below:
- A slot is held only while its connection is open: session locks die with the session. Any
  doubt about a lock's state (an error or a cancellation between sending `pg_try_advisory_lock`
  and reading its answer, or a failed unlock) closes that connection instead of returning it to
  the pool, where it would carry the lock into someone else's checkout.
- The connection runs in autocommit: no transaction stays open (idle in transaction) while
  the Graph call runs.
- An in-process semaphore per mailbox comes first, so one process never holds more than N
  connections for one mailbox, however many of its tasks wait.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from integrations_service.graph.errors import GraphError

log = logging.getLogger(__name__)

# "GRAP" as a signed int4: the advisory-lock namespace of Graph mailbox slots.
CLASSID = 0x47524150
_TRY = text("SELECT pg_try_advisory_lock(:classid, :objid)")
_UNLOCK = text("SELECT pg_advisory_unlock(:classid, :objid)")


def slot_key(mailbox: str, slot: int) -> int:
    """A stable int4 for (mailbox, slot), the same in every process (unlike hash())."""
    digest = hashlib.blake2b(f"{mailbox.strip().lower()}\0{slot}".encode(), digest_size=4)
    return int.from_bytes(digest.digest(), "big", signed=True)


@dataclass
class _Gate:
    semaphore: asyncio.Semaphore
    users: int = 0


class MailboxLimiter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        per_mailbox: int = 4,
        acquire_timeout: float = 30.0,
        poll_interval: float = 0.05,
    ) -> None:
        if per_mailbox < 1:
            raise ValueError("per_mailbox must be at least 1")
        self._engine = engine
        self._n = per_mailbox
        self._timeout = acquire_timeout
        self._poll = poll_interval
        self._gates: dict[str, _Gate] = {}

    @property
    def per_mailbox(self) -> int:
        return self._n

    @asynccontextmanager
    async def slot(self, mailbox: str) -> AsyncIterator[None]:
        """Hold one of the mailbox's N slots for the duration of the block.

        Raises GraphError(code="mailbox_busy", retryable) when no slot frees up within the
        acquire timeout, and GraphError(code="limiter_unavailable") when the database fails."""
        key = mailbox.strip().lower()
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = _Gate(asyncio.Semaphore(self._n))
        gate.users += 1
        deadline = asyncio.get_running_loop().time() + self._timeout
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    await gate.semaphore.acquire()
            except TimeoutError:
                raise _busy(key, self._timeout) from None
            try:
                conn, objid = await self._lock(key, deadline)
                try:
                    yield
                finally:
                    # Shielded: a cancelled caller still gives its slot back.
                    await asyncio.shield(self._unlock(conn, objid))
            finally:
                gate.semaphore.release()
        finally:
            gate.users -= 1
            if gate.users == 0 and self._gates.get(key) is gate:
                del self._gates[key]

    async def _lock(self, key: str, deadline: float) -> tuple[AsyncConnection, int]:
        try:
            conn = await self._engine.connect()
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            loop = asyncio.get_running_loop()
            start = random.randrange(self._n)  # spread waiters over the slots
            while True:
                for i in range(self._n):
                    objid = slot_key(key, (start + i) % self._n)
                    got = await conn.scalar(_TRY, {"classid": CLASSID, "objid": objid})
                    if got:
                        return conn, objid
                if loop.time() >= deadline:
                    raise _busy(key, self._timeout)
                await asyncio.sleep(self._poll * (0.5 + random.random()))
        except GraphError:
            await conn.close()  # no lock is held: the last try answered False
            raise
        except BaseException as exc:
            await _discard(conn)
            if isinstance(exc, SQLAlchemyError):
                raise _unavailable(exc) from exc
            raise

    async def _unlock(self, conn: AsyncConnection, objid: int) -> None:
        try:
            released = await conn.scalar(_UNLOCK, {"classid": CLASSID, "objid": objid})
            if not released:
                log.warning("graph mailbox slot was not held at unlock", extra={"objid": objid})
            await conn.close()
        except Exception:
            # The Graph call itself is done; losing the connection here only ends its session,
            # and with it the lock. Not worth failing the caller's call over.
            log.warning("graph mailbox slot unlock failed; closing its connection", exc_info=True)
            await _discard(conn)
        except BaseException:
            await _discard(conn)
            raise


async def _discard(conn: AsyncConnection) -> None:
    """Close the session for good: the server then drops every advisory lock it held."""
    try:
        await conn.invalidate()
        await conn.close()
    except Exception:  # already broken: the server has dropped the session and its locks
        log.debug("closing a broken limiter connection failed", exc_info=True)


def _busy(mailbox: str, waited: float) -> GraphError:
    return GraphError(
        None,
        "mailbox_busy",
        f"all Graph slots of mailbox {mailbox} stayed busy for {waited:.0f} s",
        retry_after=1.0,
        retryable=True,
    )


def _unavailable(exc: BaseException) -> GraphError:
    return GraphError(
        None,
        "limiter_unavailable",
        f"the mailbox limiter's database failed: {type(exc).__name__}",
        retryable=True,
    )
