"""
Recurring tasks across daylight-saving changes, checked against an
independent oracle: python-dateutil's rrule with zoneinfo (Debian's
python3-dateutil and the system's tzdata).

For the spring and autumn changes of Europe/Berlin, America/New_York and
Australia/Lord_Howe (whose clocks move by 30 minutes), in 2027 (or the
first later year whose series all start ahead, once 2027 is past), a task is created through
TaskService a few periods before the change, at a wall-clock time that the
change skips (spring) or repeats (autumn), and completed several times.
Every next due must be dateutil's next occurrence, to the second: an
occurrence in a gap moves forward by the gap's length (zoneinfo's fold=0,
the offset before the change), a repeated time is its first occurrence,
and every other occurrence keeps the rule's wall-clock time.
"""
import datetime
import itertools
import unittest
import zoneinfo

from dateutil import rrule

from task_client import FAST_TWD_ENV, T, UserView, timestamp
from twd_harness import TwdTestCase

ZONES = ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe")
# Rules and how far before the change the series starts.
RULES = (
    ("FREQ=DAILY", datetime.timedelta(days=2)),
    ("FREQ=WEEKLY", datetime.timedelta(weeks=2)),
    ("FREQ=MONTHLY", None),  # two months before, same day of month
    ("FREQ=WEEKLY;BYDAY=SA,SU", datetime.timedelta(weeks=1)),
)
COMPLETIONS = 5
UTC = datetime.timezone.utc


def transitions(zone, year):
    """The changes of offset in year: (utc instant, offset before, offset
    after), found hour by hour and then to the minute."""
    tz = zoneinfo.ZoneInfo(zone)
    found = []
    t = datetime.datetime(year, 1, 1, tzinfo=UTC)
    end = datetime.datetime(year + 1, 1, 1, tzinfo=UTC)
    before = t.astimezone(tz).utcoffset()
    while t < end:
        nxt = t + datetime.timedelta(hours=1)
        after = nxt.astimezone(tz).utcoffset()
        if after != before:
            at = t
            while at.astimezone(tz).utcoffset() == before:
                at += datetime.timedelta(minutes=1)
            found.append((at, before, after))
        t, before = nxt, after
    return found


def wall_time_in_change(zone, change):
    """A naive wall-clock time the change skips (offset grows) or repeats
    (offset shrinks): the middle of the skipped or repeated stretch."""
    at, before, after = change
    wall_before = (at + before).replace(tzinfo=None)  # the wall clock as the change starts
    return wall_before + abs(after - before) / 2 if after > before else \
        wall_before - abs(after - before) / 2


def months_before(naive, months):
    month = naive.month - months
    year = naive.year + (month - 1) // 12
    return naive.replace(year=year, month=(month - 1) % 12 + 1)


def render(instant, zone):
    return instant.astimezone(UTC).astimezone(zoneinfo.ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M%z")


def series_plan(year):
    """Every (zone, change, rule, aware start) to check in year."""
    plan = []
    for zone in ZONES:
        changes = transitions(zone, year)
        assert len(changes) == 2 and sum(c[2] > c[1] for c in changes) == 1, (zone, changes)
        for change in changes:
            wall = wall_time_in_change(zone, change)
            for rule, back in RULES:
                start = months_before(wall, 2) if back is None else wall - back
                plan.append((zone, change, rule, start.replace(tzinfo=zoneinfo.ZoneInfo(zone))))
    return plan


class RecurrenceAcrossDstTest(TwdTestCase):
    twd_env = FAST_TWD_ENV

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The changes of 2027, or of the first later year whose series all
        # start ahead: completions are then done early, so each one moves
        # the task on to its next occurrence.
        now = datetime.datetime.now(UTC)
        cls.plan = next(plan for plan in map(series_plan, range(2027, now.year + 3))
                        if min(start for *_, start in plan) > now + datetime.timedelta(days=1))

    def setUp(self):
        self.user = UserView(self.twd, self.twd.sign_up(time_zone="UTC"))

    def test_the_oracle_sees_the_issue_16_example(self):
        # The example of issue 16, from dateutil itself: daily at 02:30 in
        # Berlin from 26 March 2027, the 28th is skipped by the clocks.
        tz = zoneinfo.ZoneInfo("Europe/Berlin")
        seq = list(rrule.rrulestr("FREQ=DAILY;COUNT=4",
                                  dtstart=datetime.datetime(2027, 3, 26, 2, 30, tzinfo=tz)))
        self.assertEqual([render(d, "Europe/Berlin") for d in seq],
                         ["2027-03-26 02:30+0100", "2027-03-27 02:30+0100",
                          "2027-03-28 03:30+0200", "2027-03-29 02:30+0200"])

    def check_series(self, zone, change, rule, dtstart):
        expected = [d.astimezone(UTC) for d in
                    itertools.islice(rrule.rrulestr(rule, dtstart=dtstart), COMPLETIONS + 1)]
        self.assertTrue(any(abs(d - change[0]) < datetime.timedelta(days=1) for d in expected),
                        f"{zone} {rule}: the series does not cross the change")

        task = self.user.create(f"{zone} {rule}", due=T.TaskDue(time=timestamp(dtstart),
                                                                 time_zone=zone),
                                recurrence=T.TaskRecurrence(rrule=rule))
        dues = [task.due.time.ToDatetime(tzinfo=UTC)]
        for _ in range(COMPLETIONS):
            reply = self.user.t("CompleteTask", T.CompleteTaskRequest(id=task.id))
            self.assertEqual(reply.task.status, T.TASK_STATUS_TODO)
            self.assertEqual(reply.completion.occurrence_due.time.ToDatetime(tzinfo=UTC),
                             dues[-1])
            dues.append(reply.task.due.time.ToDatetime(tzinfo=UTC))
        self.assertEqual([render(d, zone) for d in dues], [render(d, zone) for d in expected],
                         f"{zone} {rule} from {dtstart}")
        self.assertEqual(dues, expected)

    def test_every_next_due_is_dateutils_across_the_changes(self):
        self.assertEqual(len(self.plan), len(ZONES) * 2 * len(RULES))
        for zone, change, rule, start in self.plan:
            with self.subTest(zone=zone, change=str(change[0]), rule=rule):
                self.check_series(zone, change, rule, start)


if __name__ == "__main__":
    unittest.main()
