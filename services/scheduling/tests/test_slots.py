"""The slot engine (pure): which starts a candidate is offered, who attends, and why others are
not. No database, no clock: every test passes `now`."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from scheduling_service.availability.slots import (
    Diagnostics,
    Interval,
    InterviewerAvailability,
    Slot,
    SlotResult,
    SlotRules,
    WeeklyHours,
    compute_slots,
    is_slot_available,
)

MON = date(2026, 3, 2)  # a Monday, before any DST change of 2026
NOW = datetime(2026, 3, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)


def at(text: str, zone: str = "UTC") -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


def hours(zone: str = "UTC", start: int = 9, end: int = 17, days: Iterable[int] = range(5)) -> Any:
    return WeeklyHours(zone, {d: [(time(start), time(end))] for d in days})


def person(
    email: str,
    *,
    zone: str = "UTC",
    busy: Sequence[tuple[str, str]] = (),
    work: WeeklyHours | None = None,
    **kw: Any,
) -> InterviewerAvailability:
    blocks = [Interval(at(a, zone), at(b, zone)) for a, b in busy]
    return InterviewerAvailability(email, work or hours(zone), blocks, **kw)


def rules(**kw: Any) -> SlotRules:
    base: dict[str, Any] = {
        "duration": timedelta(minutes=30),
        "window_start": MON,
        "window_end": MON,
        "display_zone": "UTC",
    }
    return SlotRules(**{**base, **kw})


def starts(result: SlotResult, zone: str = "UTC") -> list[str]:
    return [s.start.astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M") for s in result.slots]


def day(hhmm: Iterable[str], d: str = "03-02") -> list[str]:
    return [f"{d} {t}" for t in hhmm]


def check_invariants(result: SlotResult) -> None:
    got = [s.start for s in result.slots]
    assert got == sorted(set(got))
    d = result.diagnostics
    rejected = (
        d.outside_window_or_notice
        + d.mailbox_unavailable
        + d.outside_working_hours
        + d.cap_reached
        + d.busy
    )
    assert d.candidates_considered == len(result.slots) + rejected


# --- panel and pool --------------------------------------------------------------------------


def test_panel_offers_only_times_when_every_interviewer_is_free() -> None:
    ann = person("ann@x.test", busy=[("2026-03-02 09:00", "2026-03-02 12:00")])
    bob = person("bob@x.test", busy=[("2026-03-02 13:00", "2026-03-02 16:00")])
    result = compute_slots(rules(), [ann, bob], NOW)
    assert starts(result) == day(["12:00", "12:30", "16:00", "16:30"])
    assert all(s.interviewers == ("ann@x.test", "bob@x.test") for s in result.slots)
    assert result.slots[0].end - result.slots[0].start == timedelta(minutes=30)
    assert result.slots[0].start.utcoffset() == timedelta(0)
    check_invariants(result)


def test_pool_offers_a_time_when_enough_interviewers_are_free_and_names_them() -> None:
    ann = person("ann@x.test", busy=[("2026-03-02 09:00", "2026-03-02 17:00")])
    bob = person("bob@x.test", busy=[("2026-03-02 09:00", "2026-03-02 12:00")])
    cyd = person("cyd@x.test", busy=[("2026-03-02 14:00", "2026-03-02 17:00")])
    result = compute_slots(rules(mode="pool", pool_size=1), [ann, bob, cyd], NOW)
    assert len(result.slots) == 16
    by_start = dict(zip(starts(result), (s.interviewers for s in result.slots), strict=True))
    assert by_start["03-02 09:00"] == ("cyd@x.test",)
    assert by_start["03-02 15:00"] == ("bob@x.test",)
    assert by_start["03-02 12:00"] == ("bob@x.test",)  # both free: tie -> order given
    two = compute_slots(rules(mode="pool", pool_size=2), [ann, bob, cyd], NOW)
    assert starts(two) == day(["12:00", "12:30", "13:00", "13:30"])
    assert {s.interviewers for s in two.slots} == {("bob@x.test", "cyd@x.test")}
    check_invariants(result)


def test_pool_picks_the_interviewers_with_fewest_interviews_that_week() -> None:
    week = {MON: 3}
    ann = person("ann@x.test", booked_by_week=week)
    bob = person("bob@x.test", booked_by_week={MON: 1})
    cyd = person("cyd@x.test", booked_by_week={MON: 1})
    dee = person("dee@x.test")
    one = compute_slots(rules(mode="pool", pool_size=1), [ann, bob, cyd, dee], NOW)
    assert {s.interviewers for s in one.slots} == {("dee@x.test",)}
    two = compute_slots(rules(mode="pool", pool_size=2), [ann, bob, cyd, dee], NOW)
    # dee (0), then bob and cyd tie at 1: bob was given first; returned in the order given
    assert {s.interviewers for s in two.slots} == {("bob@x.test", "dee@x.test")}


def test_pool_balancing_uses_the_week_of_each_start() -> None:
    next_mon = MON + timedelta(days=7)
    ann = person("ann@x.test", booked_by_week={MON: 2})
    bob = person("bob@x.test", booked_by_week={next_mon: 2})
    result = compute_slots(rules(mode="pool", pool_size=1, window_end=next_mon), [ann, bob], NOW)
    chosen = {s.start.date(): s.interviewers for s in result.slots}
    assert chosen[MON] == ("bob@x.test",)
    assert chosen[next_mon] == ("ann@x.test",)


# --- weekly caps -----------------------------------------------------------------------------


def test_panel_member_at_weekly_cap_blocks_that_week_only() -> None:
    next_mon = MON + timedelta(days=7)
    ann = person("ann@x.test", weekly_cap=3, booked_by_week={MON: 3, next_mon: 2})
    bob = person("bob@x.test")
    result = compute_slots(rules(window_end=next_mon + timedelta(days=6)), [ann, bob], NOW)
    assert {s.start.date() for s in result.slots} == {
        next_mon + timedelta(days=i) for i in range(5)
    }
    assert result.diagnostics.cap_reached == 5 * 16
    check_invariants(result)


def test_weekly_cap_follows_the_interviewers_own_week() -> None:
    # Sunday 23:00 in UTC is already Monday in Tokyo: Tokyo's capped week has begun.
    tokyo = WeeklyHours("Asia/Tokyo", {d: [(time(0), time(0))] for d in range(7)})
    ann = InterviewerAvailability("ann@x.test", tokyo, [], weekly_cap=1, booked_by_week={MON: 1})
    sunday = MON - timedelta(days=1)
    result = compute_slots(
        rules(window_start=sunday, window_end=sunday), [ann], datetime(2026, 2, 28, tzinfo=UTC)
    )
    assert starts(result)[-1] == "03-01 14:30"  # 23:30 Tokyo Sunday; 15:00 UTC is Monday there


def test_pool_skips_a_capped_interviewer_and_picks_others() -> None:
    ann = person("ann@x.test", weekly_cap=2, booked_by_week={MON: 2})
    bob = person("bob@x.test", booked_by_week={MON: 5})
    result = compute_slots(rules(mode="pool", pool_size=1), [ann, bob], NOW)
    assert len(result.slots) == 16
    assert {s.interviewers for s in result.slots} == {("bob@x.test",)}
    assert result.diagnostics.cap_reached == 0


def test_a_weekly_cap_of_zero_means_never() -> None:
    result = compute_slots(rules(), [person("ann@x.test", weekly_cap=0)], NOW)
    assert result.slots == []
    assert result.diagnostics.cap_reached == 16


# --- buffers and busy edges ------------------------------------------------------------------


def test_buffer_before_lets_a_block_end_exactly_at_start_minus_buffer() -> None:
    r = rules(buffer_before=timedelta(minutes=15), granularity=timedelta(minutes=15))
    fine = person("ann@x.test", busy=[("2026-03-02 09:00", "2026-03-02 10:45")])
    late = person("ann@x.test", busy=[("2026-03-02 09:00", "2026-03-02 10:46")])
    assert starts(compute_slots(r, [fine], NOW))[0] == "03-02 11:00"
    assert starts(compute_slots(r, [late], NOW))[0] == "03-02 11:15"


def test_buffer_after_lets_a_block_start_exactly_at_end_plus_buffer() -> None:
    r = rules(buffer_after=timedelta(minutes=10), granularity=timedelta(minutes=15))
    fine = person("ann@x.test", busy=[("2026-03-02 09:40", "2026-03-02 17:00")])
    early = person("ann@x.test", busy=[("2026-03-02 09:39", "2026-03-02 17:00")])
    assert starts(compute_slots(r, [fine], NOW)) == day(["09:00"])
    assert starts(compute_slots(r, [early], NOW)) == []


def test_busy_blocks_touching_slot_edges_do_not_conflict() -> None:
    ann = person(
        "ann@x.test",
        busy=[
            ("2026-03-02 09:00", "2026-03-02 10:30"),
            ("2026-03-02 11:00", "2026-03-02 12:00"),
            ("2026-03-02 11:30", "2026-03-02 17:00"),  # overlapping blocks are fine too
        ],
    )
    result = compute_slots(rules(), [ann], NOW)
    assert starts(result) == day(["10:30"])
    assert result.diagnostics.busy == 15


def test_a_zero_length_busy_block_blocks_nothing() -> None:
    ann = person("ann@x.test", busy=[("2026-03-02 10:10", "2026-03-02 10:10")])
    assert len(compute_slots(rules(), [ann], NOW).slots) == 16


def test_working_hours_may_end_at_midnight_and_run_on_into_the_next_day() -> None:
    late = WeeklyHours("UTC", {0: [(time(20), time(0))], 1: [(time(0), time(1))]})
    result = compute_slots(
        rules(duration=timedelta(hours=1), window_end=MON + timedelta(days=1)),
        [InterviewerAvailability("a@x.test", late, [])],
        NOW,
    )
    assert starts(result) == [
        "03-02 20:00",
        "03-02 21:00",
        "03-02 22:00",
        "03-02 23:00",
        "03-03 00:00",
    ]


# --- notice, horizon, window -----------------------------------------------------------------


def test_minimum_notice_hides_starts_too_soon() -> None:
    now = at("2026-03-02 10:05")
    r = rules(minimum_notice=timedelta(hours=2))
    result = compute_slots(r, [person("ann@x.test")], now)
    assert starts(result)[0] == "03-02 12:30"  # 12:05 is the earliest allowed
    assert result.diagnostics.outside_window_or_notice == 25  # 00:00 … 12:00
    exactly = compute_slots(r, [person("ann@x.test")], at("2026-03-02 10:00"))
    assert starts(exactly)[0] == "03-02 12:00"
    check_invariants(result)


def test_horizon_hides_starts_too_far_ahead() -> None:
    r = rules(window_end=MON + timedelta(days=13), horizon=timedelta(days=3, hours=12))
    result = compute_slots(r, [person("ann@x.test")], NOW)
    # now + horizon = Wed 12:00: a start exactly at the horizon is still offered
    assert starts(result)[-1] == "03-04 12:00"
    assert {s.start.date() for s in result.slots} == {
        MON,
        MON + timedelta(days=1),
        MON + timedelta(days=2),
    }
    check_invariants(result)


def test_a_window_already_past_offers_nothing_and_says_so() -> None:
    result = compute_slots(rules(), [person("ann@x.test")], at("2026-03-10 00:00"))
    assert result.slots == []
    assert result.diagnostics.outside_window_or_notice == 48
    assert result.diagnostics.candidates_considered == 48


def test_window_dates_are_the_candidates_days() -> None:
    result = compute_slots(rules(display_zone="America/New_York"), [person("a@x.test")], NOW)
    # Monday in New York: 00:00 EST = 05:00 UTC … 24:00 = Tuesday 05:00 UTC; the whole of
    # UTC working time (09-17) lies inside.
    assert starts(result, "America/New_York") == [
        f"03-02 {h:02d}:{m:02d}" for h in range(4, 12) for m in (0, 30)
    ]


# --- zones and DST ---------------------------------------------------------------------------


def test_working_hours_in_two_zones_leave_only_the_overlap() -> None:
    ny = person("ny@x.test", work=hours("America/New_York"))  # 14:00-22:00 UTC in March (EST)
    ldn = person("ldn@x.test", work=hours("Europe/London"))  # 09:00-17:00 UTC (GMT)
    result = compute_slots(rules(duration=timedelta(hours=1)), [ny, ldn], NOW)
    assert starts(result) == day(["14:00", "15:00", "16:00"])
    assert starts(result, "America/New_York") == day(["09:00", "10:00", "11:00"])
    assert result.diagnostics.outside_working_hours == 21


def test_interviewer_working_hours_follow_their_dst_change() -> None:
    ny = person("ny@x.test", work=hours("America/New_York", days=range(7)))
    r = rules(
        window_start=date(2026, 3, 7), window_end=date(2026, 3, 9), duration=timedelta(hours=1)
    )
    result = compute_slots(r, [ny], NOW)
    by_day: dict[date, list[int]] = {}
    for s in result.slots:
        by_day.setdefault(s.start.date(), []).append(s.start.hour)
    assert by_day[date(2026, 3, 7)] == list(range(14, 22))  # EST: 09:00 = 14:00 UTC
    assert by_day[date(2026, 3, 9)] == list(range(13, 21))  # EDT: 09:00 = 13:00 UTC
    assert starts(result, "America/New_York") == [
        f"03-0{d} {h:02d}:00" for d in (7, 8, 9) for h in range(9, 17)
    ]


def test_working_hours_starting_inside_the_spring_forward_gap_start_when_the_clock_jumps() -> None:
    ny = WeeklyHours("America/New_York", {6: [(time(2, 30), time(5))]})
    sunday = date(2026, 3, 8)
    r = rules(window_start=sunday, window_end=sunday)
    result = compute_slots(r, [InterviewerAvailability("a@x.test", ny, [])], NOW)
    # 02:30 never shows on the clock that night: work starts at 03:00 EDT = 07:00 UTC
    assert starts(result) == day(["07:00", "07:30", "08:00", "08:30"], "03-08")


def test_working_hours_in_a_repeated_hour_run_from_its_first_to_its_last_pass() -> None:
    ny = WeeklyHours("America/New_York", {6: [(time(1), time(1, 30))]})
    sunday = date(2026, 11, 1)
    r = rules(window_start=sunday, window_end=sunday)
    now = datetime(2026, 10, 20, tzinfo=UTC)
    result = compute_slots(r, [InterviewerAvailability("a@x.test", ny, [])], now)
    # from the first 01:00 (EDT, 05:00 UTC) to the second 01:30 (EST, 06:30 UTC)
    assert starts(result) == day(["05:00", "05:30", "06:00"], "11-01")


ALL_DAY = WeeklyHours("UTC", {d: [(time(0), time(0))] for d in range(7)})  # 00:00 ends at 24:00


def test_us_spring_forward_keeps_wall_clock_starts_and_skips_the_gap() -> None:
    zone = "America/New_York"
    r = rules(
        window_start=date(2026, 3, 7),
        window_end=date(2026, 3, 9),
        display_zone=zone,
        duration=timedelta(minutes=30),
    )
    everyone = [InterviewerAvailability("a@x.test", ALL_DAY, [])]
    result = compute_slots(r, everyone, NOW)
    check_invariants(result)
    local = starts(result, zone)
    sunday = [s[6:] for s in local if s.startswith("03-08")]
    assert "02:00" not in sunday and "02:30" not in sunday
    assert sunday[:6] == ["00:00", "00:30", "01:00", "01:30", "03:00", "03:30"]
    assert len(sunday) == 46 and len(set(sunday)) == 46
    assert all(s.start.astimezone(ZoneInfo(zone)).minute in (0, 30) for s in result.slots)
    nine = {
        s.start.astimezone(ZoneInfo(zone)).date(): s.start
        for s in result.slots
        if s.start.astimezone(ZoneInfo(zone)).time() == time(9)
    }
    assert nine[date(2026, 3, 7)] == at("2026-03-07 14:00")
    assert nine[date(2026, 3, 9)] == at("2026-03-09 13:00")
    assert result.diagnostics.candidates_considered == 48 + 46 + 48
    gap = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, right after the jump
    assert is_slot_available(r, everyone, NOW, gap) is not None


def test_eu_fall_back_offers_each_wall_clock_time_once() -> None:
    zone = "Europe/London"
    r = rules(
        window_start=date(2026, 10, 24),
        window_end=date(2026, 10, 26),
        display_zone=zone,
        duration=timedelta(minutes=30),
    )
    everyone = [InterviewerAvailability("a@x.test", ALL_DAY, [])]
    now = datetime(2026, 10, 1, tzinfo=UTC)
    result = compute_slots(r, everyone, now)
    check_invariants(result)
    sunday = [
        s for s in result.slots if s.start.astimezone(ZoneInfo(zone)).date() == date(2026, 10, 25)
    ]
    walls = [s.start.astimezone(ZoneInfo(zone)).strftime("%H:%M") for s in sunday]
    assert walls == [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)]
    utc = {w: s.start for w, s in zip(walls, sunday, strict=True)}
    assert utc["00:30"] == at("2026-10-24 23:30")  # BST
    assert utc["01:00"] == at("2026-10-25 00:00")  # the first 01:00 (BST)
    assert utc["01:30"] == at("2026-10-25 00:30")
    assert utc["02:00"] == at("2026-10-25 02:00")  # GMT from here
    second_pass = at("2026-10-25 01:00")  # 01:00 GMT, the clock's second 01:00
    assert second_pass not in {s.start for s in result.slots}
    assert is_slot_available(r, everyone, now, second_pass) is None


def test_starts_align_to_the_candidates_half_hour_zone() -> None:
    zone = "Asia/Kolkata"  # +05:30: local :00 and :30 are UTC :30 and :00
    r = rules(display_zone=zone, window_start=MON, window_end=MON + timedelta(days=1))
    result = compute_slots(r, [person("a@x.test")], NOW)
    assert result.slots
    local = [s.start.astimezone(ZoneInfo(zone)) for s in result.slots]
    assert {t.minute for t in local} == {0, 30}
    hourly = compute_slots(
        rules(display_zone=zone, duration=timedelta(hours=1)), [person("a@x.test")], NOW
    )
    assert {s.start.astimezone(ZoneInfo(zone)).minute for s in hourly.slots} == {0}
    assert {s.start.minute for s in hourly.slots} == {30}  # 15:00 IST = 09:30 UTC


# --- granularity ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "step"),
    [(45, 15), (60, 60), (120, 60), (30, 30), (90, 30), (20, 15), (10, 15)],
)
def test_granularity_defaults_to_the_duration(minutes: int, step: int) -> None:
    r = rules(duration=timedelta(minutes=minutes))
    assert r.step == timedelta(minutes=step)
    result = compute_slots(r, [person("a@x.test")], NOW)
    gaps = {(b.start - a.start) for a, b in zip(result.slots, result.slots[1:], strict=False)}
    assert gaps == {timedelta(minutes=step)}
    assert result.slots[0].start == at("2026-03-02 09:00")
    assert result.slots[-1].end <= at("2026-03-02 17:00")


def test_explicit_granularity_wins() -> None:
    r = rules(duration=timedelta(hours=1), granularity=timedelta(minutes=20))
    assert starts(compute_slots(r, [person("a@x.test")], NOW))[:3] == day(
        ["09:00", "09:20", "09:40"]
    )


# --- unavailable mailboxes -------------------------------------------------------------------


def test_an_unreadable_mailbox_in_a_panel_means_no_slots_and_says_whose() -> None:
    ann = person("ann@x.test")
    bob = person("bob@x.test", unavailable=True)
    result = compute_slots(rules(), [ann, bob], NOW)
    assert result.slots == []
    assert result.diagnostics.unavailable_mailboxes == ("bob@x.test",)
    assert result.diagnostics.mailbox_unavailable == 48
    check_invariants(result)


def test_an_unreadable_mailbox_in_a_pool_is_never_chosen() -> None:
    ann = person("ann@x.test", unavailable=True)
    bob = person("bob@x.test", booked_by_week={MON: 4})
    result = compute_slots(rules(mode="pool", pool_size=1), [ann, bob], NOW)
    assert len(result.slots) == 16
    assert {s.interviewers for s in result.slots} == {("bob@x.test",)}
    assert result.diagnostics.unavailable_mailboxes == ("ann@x.test",)
    short = compute_slots(rules(mode="pool", pool_size=2), [ann, bob], NOW)
    assert short.slots == [] and short.diagnostics.mailbox_unavailable == 48


# --- diagnostics -----------------------------------------------------------------------------


def test_diagnostics_say_why_starts_were_not_offered() -> None:
    now = at("2026-03-02 09:50")
    ann = person("ann@x.test", busy=[("2026-03-02 13:00", "2026-03-02 15:00")])
    bob = person("bob@x.test", weekly_cap=1, booked_by_week={MON: 1})
    r = rules(window_end=MON + timedelta(days=7))
    result = compute_slots(r, [ann, bob], now)
    d = result.diagnostics
    assert d.candidates_considered == 8 * 48
    assert d.outside_window_or_notice == 20  # Monday up to 09:30
    assert d.cap_reached == 4 * 16 + (16 - 2)  # Tue-Fri and the rest of Monday in bob's week
    assert d.busy == 0  # capped first: a week-wide reason is the one to fix
    assert len(result.slots) == 16  # the next Monday
    assert d.outside_working_hours == 8 * 48 - 20 - d.cap_reached - 16
    check_invariants(result)


# --- is_slot_available -----------------------------------------------------------------------


def test_is_slot_available_agrees_with_compute_slots_for_every_slot() -> None:
    rng = random.Random(3)

    def blocks() -> list[Interval]:
        out = []
        for _ in range(25):
            s = at("2026-03-02 06:00") + timedelta(minutes=15 * rng.randrange(5 * 96))
            out.append(Interval(s, s + timedelta(minutes=15 * rng.randint(1, 6))))
        return out

    people = [
        InterviewerAvailability("ann@x.test", hours("Europe/Berlin"), blocks()),
        InterviewerAvailability(
            "bob@x.test", hours("Europe/London"), blocks(), booked_by_week={MON: 1}
        ),
        InterviewerAvailability("cyd@x.test", hours("Europe/London"), blocks()),
    ]
    for r in (
        rules(window_end=MON + timedelta(days=4), display_zone="Asia/Kolkata"),
        rules(window_end=MON + timedelta(days=4), mode="pool", pool_size=2),
    ):
        result = compute_slots(r, people, NOW)
        assert result.slots
        for slot in result.slots:
            assert is_slot_available(r, people, NOW, slot.start) == slot


def test_is_slot_available_rejects_a_misaligned_busy_or_out_of_window_start() -> None:
    ann = person("ann@x.test", busy=[("2026-03-02 12:00", "2026-03-02 13:00")])
    r = rules()
    assert is_slot_available(r, [ann], NOW, at("2026-03-02 10:00")) == Slot(
        at("2026-03-02 10:00"), at("2026-03-02 10:30"), ("ann@x.test",)
    )
    assert is_slot_available(r, [ann], NOW, at("2026-03-02 10:15")) is None  # off the grid
    assert is_slot_available(r, [ann], NOW, at("2026-03-02 12:30")) is None  # busy
    assert is_slot_available(r, [ann], NOW, at("2026-03-02 16:45")) is None  # ends after 17
    assert is_slot_available(r, [ann], NOW, at("2026-03-03 10:00")) is None  # after window
    assert is_slot_available(r, [ann], at("2026-03-02 10:01"), at("2026-03-02 10:00")) is None
    # the same instant written in another zone is the same start
    assert is_slot_available(r, [ann], NOW, at("2026-03-02 11:00", "Europe/Berlin")) is not None


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: rules(duration=timedelta(0)), "duration must be positive"),
        (lambda: rules(duration=-MIN), "duration must be positive"),
        (lambda: rules(window_end=MON - timedelta(days=1)), "before window_start"),
        (lambda: rules(mode="pool"), "pool_size"),
        (lambda: rules(mode="pool", pool_size=0), "pool_size"),
        (lambda: rules(display_zone="Mars/Olympus"), "unknown time zone"),
        (lambda: rules(display_zone="+05:30"), "unknown time zone"),
        (lambda: rules(buffer_before=-MIN), "buffer_before"),
        (lambda: rules(minimum_notice=-MIN), "minimum_notice"),
        (lambda: rules(granularity=timedelta(0)), "granularity"),
        (lambda: rules(horizon=timedelta(0)), "horizon"),
        (lambda: WeeklyHours("Nowhere/Town", {}), "unknown time zone"),
        (lambda: WeeklyHours("UTC", {0: [(time(17), time(9))]}), "must end after it starts"),
        (lambda: WeeklyHours("UTC", {7: [(time(9), time(17))]}), "weekday"),
        (lambda: Interval(datetime(2026, 3, 2, 9), datetime(2026, 3, 2, 10)), "naive"),
        (lambda: Interval(at("2026-03-02 10:00"), at("2026-03-02 09:00")), "ends before"),
        (
            lambda: InterviewerAvailability(
                "a@x.test", hours(), [], booked_by_week={MON + timedelta(days=1): 1}
            ),
            "not a Monday",
        ),
        (lambda: InterviewerAvailability("a@x.test", hours(), [], weekly_cap=-1), "weekly_cap"),
        (lambda: compute_slots(rules(), [person("a@x.test")], datetime(2026, 3, 1)), "naive"),
        (lambda: compute_slots(rules(), [], NOW), "at least one interviewer"),
        (
            lambda: compute_slots(
                rules(mode="pool", pool_size=3), [person("a@x.test"), person("b@x.test")], NOW
            ),
            "more than the 2 interviewers",
        ),
        (
            lambda: compute_slots(rules(), [person("a@x.test"), person("A@x.test")], NOW),
            "listed twice",
        ),
        (
            lambda: is_slot_available(rules(), [person("a@x.test")], NOW, datetime(2026, 3, 2, 10)),
            "naive",
        ),
    ],
)
def test_bad_inputs_raise_value_error(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_a_panel_ignores_a_pool_size() -> None:
    result = compute_slots(rules(pool_size=5), [person("a@x.test")], NOW)
    assert len(result.slots) == 16


# --- against a brute-force reference --------------------------------------------------------


def _reference(
    r: SlotRules, people: Sequence[InterviewerAvailability], now: datetime
) -> tuple[list[Slot], Diagnostics]:
    """Every candidate against every block, in datetimes: slow and obviously right (for days
    without a DST change, which is what the random cases use)."""
    zone = ZoneInfo(r.display_zone)
    step = r.step
    candidates = []
    d = r.window_start
    while d <= r.window_end:
        t = datetime.combine(d, time(), zone)
        while t.date() == d:
            candidates.append(t.astimezone(UTC))
            t = (t.replace(tzinfo=None) + step).replace(tzinfo=zone)
        d += timedelta(days=1)
    need = r.pool_size if r.mode == "pool" and r.pool_size else len(people)
    readable = [p for p in people if not p.unavailable]
    counts = dict.fromkeys(["window", "mailbox", "hours", "cap", "busy"], 0)
    slots = []
    for s in candidates:
        e = s + r.duration
        if not now + r.minimum_notice <= s <= now + r.horizon:
            counts["window"] += 1
            continue
        if len(readable) < need:
            counts["mailbox"] += 1
            continue
        states = []
        for p in readable:
            z = ZoneInfo(p.hours.zone)
            ls, le = s.astimezone(z), e.astimezone(z)
            inside = any(
                ls.replace(tzinfo=None) >= datetime.combine(ls.date(), a)
                and le.replace(tzinfo=None) <= datetime.combine(ls.date(), b)
                for a, b in p.hours.days.get(ls.weekday(), ())
            )
            monday = ls.date() - timedelta(days=ls.weekday())
            booked = p.booked_by_week.get(monday, 0)
            capped = p.weekly_cap is not None and booked >= p.weekly_cap
            busy = any(
                b.end > b.start and b.start < e + r.buffer_after and b.end > s - r.buffer_before
                for b in p.busy
            )
            states.append(
                (inside, inside and not capped, inside and not capped and not busy, booked)
            )
        if sum(x[0] for x in states) < need:
            counts["hours"] += 1
        elif sum(x[1] for x in states) < need:
            counts["cap"] += 1
        elif sum(x[2] for x in states) < need:
            counts["busy"] += 1
        else:
            free = sorted((x[3], i) for i, x in enumerate(states) if x[2])[:need]
            who = tuple(readable[i].email for i in sorted(i for _, i in free))
            slots.append(Slot(s, e, who))
    diagnostics = Diagnostics(
        candidates_considered=len(candidates),
        outside_window_or_notice=counts["window"],
        mailbox_unavailable=counts["mailbox"],
        outside_working_hours=counts["hours"],
        cap_reached=counts["cap"],
        busy=counts["busy"],
        unavailable_mailboxes=tuple(p.email for p in people if p.unavailable),
    )
    return slots, diagnostics


def test_matches_a_brute_force_reference_on_random_calendars() -> None:
    rng = random.Random(20260302)
    zones = ["UTC", "Europe/Berlin", "America/Chicago", "Asia/Kolkata", "Australia/Sydney"]
    base = at("2026-02-02 00:00")  # no DST change in these zones for the next weeks
    for _ in range(40):
        people = []
        for n in range(rng.randint(1, 5)):
            zone = rng.choice(zones)
            days = {
                d: [
                    (time(rng.randint(6, 10)), time(rng.randint(11, 13))),
                    (time(14), time(rng.randint(15, 20))),
                ]
                for d in rng.sample(range(7), rng.randint(3, 6))
            }
            blocks = []
            for _ in range(rng.randint(0, 40)):
                s = base + timedelta(minutes=5 * rng.randrange(10 * 288))
                blocks.append(Interval(s, s + timedelta(minutes=5 * rng.randint(0, 30))))
            people.append(
                InterviewerAvailability(
                    f"p{n}@x.test",
                    WeeklyHours(zone, days),
                    blocks,
                    weekly_cap=rng.choice([None, None, 0, 2, 3]),
                    booked_by_week={
                        date(2026, 2, 2): rng.randint(0, 3),
                        date(2026, 2, 9): rng.randint(0, 3),
                    },
                    unavailable=rng.random() < 0.1,
                )
            )
        pool = rng.random() < 0.5
        r = SlotRules(
            duration=timedelta(minutes=rng.choice([15, 30, 45, 60, 90])),
            window_start=date(2026, 2, 3),
            window_end=date(2026, 2, 3) + timedelta(days=rng.randint(0, 6)),
            display_zone=rng.choice(zones),
            mode="pool" if pool else "panel",
            pool_size=rng.randint(1, len(people)) if pool else None,
            buffer_before=timedelta(minutes=rng.choice([0, 5, 15])),
            buffer_after=timedelta(minutes=rng.choice([0, 10])),
            minimum_notice=timedelta(hours=rng.choice([0, 4, 30])),
            horizon=timedelta(days=rng.choice([3, 60])),
            granularity=rng.choice([None, timedelta(minutes=15), timedelta(minutes=20)]),
        )
        now = base + timedelta(days=1, minutes=rng.randrange(1440))
        result = compute_slots(r, people, now)
        want_slots, want_diagnostics = _reference(r, people, now)
        assert result.slots == want_slots
        assert result.diagnostics == want_diagnostics
        check_invariants(result)
