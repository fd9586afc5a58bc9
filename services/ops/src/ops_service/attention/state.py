"""An attention item's state, derived from its reasons and when it was cleared or dismissed.

Kept pure so the handlers (flag, clear) and the dismiss action agree, whatever order the
events arrive in:
- each reason keeps its newest flag time; a reason is *active* if flagged after the last clear
  (scheduling's `attention.cleared`, which clears every reason it holds at that moment);
- `open`: some reason is active and no dismissal came after the newest of them;
- `dismissed`: an operator dismissed it after every active reason, and scheduling has not
  confirmed yet (its `attention.cleared` makes it `cleared`);
- `cleared`: no active reason (never flagged, or cleared since).
A flag arriving after a dismissal or a clear opens the item again, as scheduling does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Derived:
    status: str
    active: list[dict[str, Any]]
    flagged_at: datetime | None
    last_flagged_at: datetime | None
    source: str | None


def at(reason: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(reason["at"]))


def is_active(reason: dict[str, Any], cleared_at: datetime | None) -> bool:
    return cleared_at is None or at(reason) > cleared_at


def merge(reasons: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per reason text: the newest flag of it wins; a late older one is ignored."""
    kept = [r for r in reasons if r.get("reason") != new["reason"]]
    old = next((r for r in reasons if r.get("reason") == new["reason"]), None)
    kept.append(new if old is None or at(new) >= at(old) else old)
    return sorted(kept, key=at)


def derive(
    reasons: list[dict[str, Any]], cleared_at: datetime | None, dismissed_at: datetime | None
) -> Derived:
    active = [r for r in reasons if is_active(r, cleared_at)]
    last = max((at(r) for r in reasons), default=None)
    if not active:
        return Derived("cleared", [], None, last, reasons[-1].get("source") if reasons else None)
    newest = max(active, key=at)
    status = "dismissed" if dismissed_at is not None and dismissed_at >= at(newest) else "open"
    return Derived(status, active, min(at(r) for r in active), last, newest.get("source"))
