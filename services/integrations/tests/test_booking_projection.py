"""Integrations' projection of bookings: facts about one booking handled side by side."""

from __future__ import annotations

import asyncio
import uuid

from integrations_service.bookings import repository


async def test_a_cancel_racing_the_confirmation_of_a_new_booking_is_not_lost(sessions) -> None:
    """A booking confirmed and cancelled at once: both facts find no row, both insert. The
    one that loses the insert must still be folded in (here the cancel, the newer revision);
    otherwise the booking stays 'confirmed' here and its Outlook event is never cancelled."""
    booking, org, request = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with sessions() as first, sessions() as second:
        await first.begin()
        assert await repository.apply(
            first,
            booking_id=booking,
            org_id=org,
            request_id=request,
            revision=1,
            changes={"state": "confirmed", "title": "Onsite"},
        )
        await second.begin()
        cancel = asyncio.create_task(
            repository.apply(
                second,
                booking_id=booking,
                org_id=org,
                request_id=request,
                revision=2,
                changes={"state": "cancelled", "cancel_reason": "changed plans"},
            )
        )
        await asyncio.sleep(0.3)  # the cancel's insert now waits on the first transaction
        assert not cancel.done()
        await first.commit()
        assert await cancel is True
        await second.commit()
    async with sessions() as s:
        held = await repository.get(s, booking)
    assert held is not None
    assert (held.state, held.revision, held.cancel_reason) == ("cancelled", 2, "changed plans")
