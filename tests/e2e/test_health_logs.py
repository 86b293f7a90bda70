"""
HealthLogService through generated stubs, as an app calls it: every RPC;
a batch imported twice leaves exactly one copy of each entry; request ids
make retries safe; bad input answers INVALID_ARGUMENT naming the field and
the entry's index, and stores nothing; another user's ids are NOT_FOUND;
lists filter and page; daily summaries follow the user's logical days
across a DST change, across travel (offsets recorded with the entries) and
across a change of the profile's time zone; every change reaches the
user's change log as "health_log".
"""
import datetime
import unittest
import uuid

import grpc

from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from task_client import uuid7
from twd_harness import RPC_TIMEOUT_S, TwdTestCase, assert_rpc_error
from wellness_e2e import change_log, user_keys
from tw.store.v1 import records_pb2  # noqa: E402
from tw.v1 import auth_service_pb2, auth_service_pb2_grpc  # noqa: E402
from tw.v1 import health_log_service_pb2 as hl  # noqa: E402
from tw.v1 import health_log_service_pb2_grpc as hl_grpc  # noqa: E402

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
UTC = datetime.timezone.utc
HEALTH_PREFIXES = range(0x70, 0x75)  # HEALTH_LOG* in store/tw_keyspace.h


def at(year, month, day, hour=0, minute=0, tz=UTC):
    return datetime.datetime(year, month, day, hour, minute, tzinfo=tz)


def ts(when):
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(when.astimezone(UTC))
    return t


def secs(seconds):
    return duration_pb2.Duration(seconds=int(seconds))


def water(start, ml, external_id="", source=hl.HEALTH_LOG_SOURCE_UNSPECIFIED, offset=None):
    entry = hl.HealthLog(start_time=ts(start), water=hl.HealthWater(volume_ml=ml),
                         external_id=external_id, source=source)
    if offset is not None:
        entry.utc_offset.CopyFrom(secs(offset))
    return entry


def imported(i, ml=250.0):
    """The i-th sample of an Apple Health export."""
    return water(at(2024, 5, 1) + datetime.timedelta(minutes=17 * i), ml + i,
                 external_id=f"HK-{i:05d}", source=hl.HEALTH_LOG_SOURCE_APPLE_HEALTH)


class HealthLogTestCase(TwdTestCase):
    twd_env = {"TW_API_CALLS_PER_HOUR": "1000000", "TW_API_WRITE_CALLS_PER_HOUR": "1000000"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.logs = cls.twd.stub(hl_grpc.HealthLogServiceStub)
        cls.alice = cls.twd.sign_up(time_zone="America/New_York")
        cls.bob = cls.twd.sign_up()

    def call(self, method, request, account=None):
        account = account or self.alice
        return getattr(self.logs, method)(request, metadata=account.metadata,
                                          timeout=RPC_TIMEOUT_S)

    def list_all(self, account=None, page_size=100, **filters):
        entries, token = [], ""
        for _ in range(1000):
            reply = self.call("ListHealthLogs", hl.ListHealthLogsRequest(
                page_size=page_size, page_token=token, **filters), account)
            entries.extend(reply.health_logs)
            token = reply.next_page_token
            if not token:
                return entries
        self.fail("ListHealthLogs did not end")

    def health_keys(self, account):
        """How many health log keys (entries and indexes) account has."""
        return len(user_keys(self.twd, account, HEALTH_PREFIXES))

    def changes(self, account, resource_type):
        return change_log(self.twd, account, resource_type)

    def assert_invalid(self, method, request, field, why, account=None):
        """The call fails with VAL_001 and a BadRequest naming field."""
        _, details = assert_rpc_error(self, lambda: self.call(method, request, account),
                                      INVALID, "VAL_001")
        fields = dict(details.field_violations)
        self.assertIn(field, fields, details.field_violations)
        self.assertIn(why, fields[field])
        # That one violation: nothing else, nothing made up.
        self.assertEqual(len(details.field_violations), 1, details.field_violations)


class EveryRpcTest(HealthLogTestCase):
    def test_create_get_list_update_delete(self):
        account = self.twd.sign_up()
        start = at(2024, 6, 1, 7)
        entries = [
            hl.HealthLog(start_time=ts(start - datetime.timedelta(hours=8)), end_time=ts(start),
                         sleep=hl.HealthSleep(stages=[
                             hl.HealthSleepStage(stage=hl.HEALTH_SLEEP_STAGE_TYPE_AWAKE,
                                                 start_time=ts(start - datetime.timedelta(hours=8)),
                                                 end_time=ts(start - datetime.timedelta(hours=7))),
                             hl.HealthSleepStage(stage=hl.HEALTH_SLEEP_STAGE_TYPE_DEEP,
                                                 start_time=ts(start - datetime.timedelta(hours=7)),
                                                 end_time=ts(start))])),
            hl.HealthLog(start_time=ts(start), end_time=ts(start + datetime.timedelta(minutes=40)),
                         exercise=hl.HealthExercise(activity="running", distance_meters=6000)),
            hl.HealthLog(start_time=ts(start), mood=hl.HealthMood(valence=0.4, labels=["calm"])),
            water(start, 300),
            hl.HealthLog(start_time=ts(start), weight=hl.HealthWeight(weight_kg=70.2)),
            hl.HealthLog(start_time=ts(start), end_time=ts(start + datetime.timedelta(minutes=1)),
                         heart_rate=hl.HealthHeartRate(samples=[hl.HealthHeartRateSample(
                             sample_time=ts(start), beats_per_minute=58)])),
            hl.HealthLog(start_time=ts(start), end_time=ts(start + datetime.timedelta(hours=1)),
                         steps=hl.HealthSteps(count=3200)),
            hl.HealthLog(start_time=ts(start), meditation=hl.HealthMeditation(
                duration=secs(600))),
            hl.HealthLog(start_time=ts(start), custom=hl.HealthCustom(
                name="blood glucose", value=5.4, unit="mmol/L")),
        ]
        ids = []
        for type_number, entry in enumerate(entries, start=1):
            reply = self.call("CreateHealthLog", hl.CreateHealthLogRequest(health_log=entry),
                              account)
            self.assertEqual(reply.outcome, hl.HEALTH_LOG_WRITE_OUTCOME_CREATED)
            self.assertEqual(reply.health_log.type, type_number)
            self.assertEqual(reply.health_log.source, hl.HEALTH_LOG_SOURCE_MANUAL)
            self.assertTrue(reply.health_log.HasField("create_time"))
            uuid.UUID(reply.health_log.id)
            ids.append(reply.health_log.id)
        sleep = self.call("GetHealthLog", hl.GetHealthLogRequest(id=ids[0]), account).health_log
        self.assertEqual(sleep.sleep.asleep_duration.seconds, 7 * 3600)  # the awake hour left out
        self.assertEqual(len(self.list_all(account, page_size=4)), 9)
        moods = self.list_all(account, type=hl.HEALTH_LOG_TYPE_MOOD)
        self.assertEqual([e.id for e in moods], [ids[2]])

        # Update: the note and the mood, by mask; the rest stays.
        changed = hl.HealthLog(id=ids[2], note="after the run", mood=hl.HealthMood(valence=0.9))
        reply = self.call("UpdateHealthLog", hl.UpdateHealthLogRequest(
            health_log=changed, update_mask=field_mask_pb2.FieldMask(paths=["note", "mood"])),
            account)
        self.assertEqual(reply.health_log.note, "after the run")
        self.assertAlmostEqual(reply.health_log.mood.valence, 0.9)
        self.assertEqual(reply.health_log.start_time, ts(start))
        # A field named and left unset is cleared.
        reply = self.call("UpdateHealthLog", hl.UpdateHealthLogRequest(
            health_log=hl.HealthLog(id=ids[2]),
            update_mask=field_mask_pb2.FieldMask(paths=["note"])), account)
        self.assertEqual(reply.health_log.note, "")
        self.assertAlmostEqual(reply.health_log.mood.valence, 0.9)
        # No mask: refused (it used to mean "every field the request sets",
        # so a note could never be cleared).
        no_mask = hl.UpdateHealthLogRequest(
            health_log=hl.HealthLog(id=ids[3], water=hl.HealthWater(volume_ml=500)))
        assert_rpc_error(self, lambda: self.call("UpdateHealthLog", no_mask, account),
                         INVALID, "VAL_004")
        no_mask.update_mask.paths.append("water")
        reply = self.call("UpdateHealthLog", no_mask, account)
        self.assertEqual(reply.health_log.water.volume_ml, 500)

        self.call("DeleteHealthLog", hl.DeleteHealthLogRequest(id=ids[8]), account)
        assert_rpc_error(self, lambda: self.call("GetHealthLog", hl.GetHealthLogRequest(
            id=ids[8]), account), NOT_FOUND, "RES_001")
        assert_rpc_error(self, lambda: self.call("DeleteHealthLog", hl.DeleteHealthLogRequest(
            id=ids[8]), account), NOT_FOUND, "RES_001")
        self.assertEqual(len(self.list_all(account)), 8)

        summary = self.call("GetDailySummary", hl.GetDailySummaryRequest(
            start_date="2024-06-01", end_date="2024-06-01"), account)
        day = summary.days[0]
        self.assertEqual(day.date, "2024-06-01")
        self.assertEqual(day.sleep_duration.seconds, 7 * 3600)
        self.assertEqual(day.exercise_duration.seconds, 40 * 60)
        self.assertEqual(day.meditation_duration.seconds, 600)
        self.assertEqual(day.water_ml, 500)
        self.assertEqual(day.steps, 3200)
        self.assertEqual(day.mood_count, 1)
        self.assertAlmostEqual(day.mood_average, 0.9)
        self.assertAlmostEqual(day.weight_kg, 70.2)
        self.assertEqual(day.entry_count, 8)
        self.assertEqual(summary.time_zone, "UTC")

        # Every change is in the change log, the delete as a tombstone.
        changes = self.changes(account, "health_log")
        self.assertEqual(len(changes), 9 + 3 + 1)
        self.assertEqual(changes[-1], (records_pb2.CHANGE_OP_TOMBSTONE, ids[8]))

    def test_update_refusals_change_nothing(self):
        entry = self.call("CreateHealthLog", hl.CreateHealthLogRequest(
            health_log=hl.HealthLog(start_time=ts(at(2024, 6, 2, 9)),
                                    mood=hl.HealthMood(valence=0.1)))).health_log
        update = lambda paths, **fields: hl.UpdateHealthLogRequest(  # noqa: E731
            health_log=hl.HealthLog(id=entry.id, **fields),
            update_mask=field_mask_pb2.FieldMask(paths=paths))
        assert_rpc_error(self, lambda: self.call("UpdateHealthLog", update(["colour"])),
                         INVALID, "VAL_004")
        assert_rpc_error(self, lambda: self.call("UpdateHealthLog", update(
            ["source"], source=hl.HEALTH_LOG_SOURCE_DEVICE)), INVALID, "VAL_004")
        self.assert_invalid("UpdateHealthLog", update(["mood"], mood=hl.HealthMood(valence=2)),
                            "health_log.mood.valence", "between -1 and 1")
        self.assert_invalid("UpdateHealthLog", update(["water"], water=hl.HealthWater(
            volume_ml=100)), "update_mask", "has no water payload")
        self.assert_invalid("UpdateHealthLog", update(
            ["end_time"], end_time=ts(at(2024, 6, 1))), "health_log.end_time", "before start_time")
        self.assert_invalid("UpdateHealthLog", hl.UpdateHealthLogRequest(
            health_log=hl.HealthLog(id="x")), "health_log.id", "UUID")
        stored = self.call("GetHealthLog", hl.GetHealthLogRequest(id=entry.id)).health_log
        self.assertEqual(stored, entry)


class ImportTest(HealthLogTestCase):
    def test_a_batch_imported_twice_leaves_one_copy_of_each_entry(self):
        account = self.twd.sign_up()
        batch = hl.BatchCreateHealthLogsRequest(entries=[imported(i) for i in range(500)])
        first = self.call("BatchCreateHealthLogs", batch, account)
        self.assertEqual(len(first.results), 500)
        self.assertEqual({r.outcome for r in first.results},
                         {hl.HEALTH_LOG_WRITE_OUTCOME_CREATED})
        second = self.call("BatchCreateHealthLogs", batch, account)
        self.assertEqual({r.outcome for r in second.results},
                         {hl.HEALTH_LOG_WRITE_OUTCOME_UNCHANGED})
        self.assertEqual([r.health_log.id for r in first.results],
                         [r.health_log.id for r in second.results])
        stored = self.list_all(account, page_size=500)
        self.assertEqual(len(stored), 500)
        self.assertEqual(len({e.external_id for e in stored}), 500)
        # Only the first import is in the change log: nothing changed after.
        self.assertEqual(len(self.changes(account, "health_log")), 500)

        # A re-export where one sample changed and one is new: one update,
        # one creation, the rest untouched.
        entries = [imported(i) for i in range(501)]
        entries[7].water.volume_ml = 999
        third = self.call("BatchCreateHealthLogs",
                          hl.BatchCreateHealthLogsRequest(entries=entries), account)
        outcomes = [r.outcome for r in third.results]
        self.assertEqual(outcomes[7], hl.HEALTH_LOG_WRITE_OUTCOME_UPDATED)
        self.assertEqual(outcomes[500], hl.HEALTH_LOG_WRITE_OUTCOME_CREATED)
        self.assertEqual(outcomes.count(hl.HEALTH_LOG_WRITE_OUTCOME_UNCHANGED), 499)
        self.assertEqual(third.results[7].health_log.id, first.results[7].health_log.id)
        self.assertEqual(len(self.list_all(account, page_size=500)), 501)
        # The same sample created one at a time is found too.
        reply = self.call("CreateHealthLog", hl.CreateHealthLogRequest(health_log=imported(3)),
                          account)
        self.assertEqual(reply.outcome, hl.HEALTH_LOG_WRITE_OUTCOME_UNCHANGED)
        self.assertEqual(reply.health_log.id, first.results[3].health_log.id)

    def test_request_ids_make_retries_safe(self):
        account = self.twd.sign_up()
        manual = [water(at(2024, 6, 3, h), 200) for h in range(6)]
        request = hl.BatchCreateHealthLogsRequest(entries=manual, request_id=str(uuid.uuid4()))
        first = self.call("BatchCreateHealthLogs", request, account)
        # A retry gets the first response again, as every service's does.
        self.assertEqual(self.call("BatchCreateHealthLogs", request, account), first)
        # request_id names the request, not the entry (it used to become
        # the entry's id): health_log_id does that.
        rid, entry_id = str(uuid.uuid4()), uuid7()
        one = hl.CreateHealthLogRequest(health_log=manual[0], request_id=rid,
                                        health_log_id=entry_id)
        created = self.call("CreateHealthLog", one, account)
        self.assertEqual(created.health_log.id, entry_id)
        self.assertEqual(created.outcome, hl.HEALTH_LOG_WRITE_OUTCOME_CREATED)
        self.assertEqual(self.call("CreateHealthLog", one, account), created)
        # The same request_id with another request is refused (it used to
        # return the stored entry, silently).
        other = hl.CreateHealthLogRequest(health_log=manual[1], request_id=rid)
        assert_rpc_error(self, lambda: self.call("CreateHealthLog", other, account),
                         INVALID, "VAL_001")
        # The same health_log_id in another request: the id is taken.
        assert_rpc_error(self, lambda: self.call("CreateHealthLog", hl.CreateHealthLogRequest(
            health_log=manual[1], health_log_id=entry_id), account),
            grpc.StatusCode.ALREADY_EXISTS, "RES_002")
        self.assert_invalid("CreateHealthLog", hl.CreateHealthLogRequest(
            health_log=manual[1], health_log_id=str(uuid.uuid4())), "health_log_id", "UUIDv7",
            account)
        self.assertEqual(len(self.list_all(account)), 7)

    def test_bad_input_names_the_entry_and_stores_nothing(self):
        account = self.twd.sign_up()
        good = [imported(i) for i in range(5)]

        def batch_with(index, entry):
            entries = list(good)
            entries[index] = entry
            return hl.BatchCreateHealthLogsRequest(entries=entries)

        start = at(2024, 6, 1, 7)
        bad_mood = hl.HealthLog(start_time=ts(start), mood=hl.HealthMood(valence=2))
        self.assert_invalid("BatchCreateHealthLogs", batch_with(3, bad_mood),
                            "entries[3].mood.valence", "between -1 and 1")
        self.assert_invalid("BatchCreateHealthLogs", batch_with(1, water(start, -250)),
                            "entries[1].water.volume_ml", "must not be negative")
        backwards = water(start, 100)
        backwards.end_time.CopyFrom(ts(start - datetime.timedelta(minutes=5)))
        self.assert_invalid("BatchCreateHealthLogs", batch_with(0, backwards),
                            "entries[0].end_time", "before start_time")
        outside = hl.HealthLog(
            start_time=ts(start), end_time=ts(start + datetime.timedelta(hours=8)),
            sleep=hl.HealthSleep(stages=[hl.HealthSleepStage(
                stage=hl.HEALTH_SLEEP_STAGE_TYPE_REM, start_time=ts(start + datetime.timedelta(
                    hours=7)), end_time=ts(start + datetime.timedelta(hours=9)))]))
        self.assert_invalid("BatchCreateHealthLogs", batch_with(2, outside),
                            "entries[2].sleep.stages[0].end_time", "outside")
        unknown = hl.HealthLog(start_time=ts(start), type=42, water=hl.HealthWater(volume_ml=1))
        self.assert_invalid("BatchCreateHealthLogs", batch_with(4, unknown),
                            "entries[4].type", "unknown health log type 42")
        mismatched = water(start, 100)
        mismatched.type = hl.HEALTH_LOG_TYPE_SLEEP
        self.assert_invalid("BatchCreateHealthLogs", batch_with(4, mismatched),
                            "entries[4].type", "is sleep but the payload is water")
        self.assert_invalid("BatchCreateHealthLogs", batch_with(3, hl.HealthLog(
            start_time=ts(start))), "entries[3].payload", "is required")
        self.assert_invalid("BatchCreateHealthLogs", batch_with(4, imported(1)),
                            "entries[4].external_id", "repeats the source and external_id of "
                            "entries[1]")
        too_many = hl.BatchCreateHealthLogsRequest(entries=[imported(i) for i in range(1001)])
        self.assert_invalid("BatchCreateHealthLogs", too_many, "entries",
                            "has 1001 items; at most 1000 are allowed")
        self.assert_invalid("BatchCreateHealthLogs", hl.BatchCreateHealthLogsRequest(),
                            "entries", "is required")
        self.assert_invalid("BatchCreateHealthLogs", hl.BatchCreateHealthLogsRequest(
            entries=good, request_id="retry-1"), "request_id", "UUID")
        self.assert_invalid("CreateHealthLog", hl.CreateHealthLogRequest(),
                            "health_log", "is required")
        self.assert_invalid("CreateHealthLog", hl.CreateHealthLogRequest(
            health_log=water(start, 30000)), "health_log.water.volume_ml", "between 0 and 20,000")
        self.assert_invalid("CreateHealthLog", hl.CreateHealthLogRequest(
            health_log=water(start, 100, offset=19 * 3600)), "health_log.utc_offset",
            "between -18 and +18 hours")
        future = datetime.datetime.now(UTC) + datetime.timedelta(days=2)
        self.assert_invalid("CreateHealthLog", hl.CreateHealthLogRequest(
            health_log=water(future, 100)), "health_log.start_time", "at most 1 day after the server's clock")
        # Nothing of any of these was stored, not even the good entries.
        self.assertEqual(self.list_all(account), [])
        self.assertEqual(self.health_keys(account), 0)
        self.assertEqual(self.changes(account, "health_log"), [])
        self.call("BatchCreateHealthLogs", hl.BatchCreateHealthLogsRequest(entries=good), account)
        self.assertEqual(self.health_keys(account), 5 * 5)  # entry, 3 indexes, external id


class PrivacyAndListsTest(HealthLogTestCase):
    def test_other_users_ids_are_not_found(self):
        mine = self.call("CreateHealthLog", hl.CreateHealthLogRequest(
            health_log=water(at(2024, 6, 5, 9), 250, "HK-private",
                             hl.HEALTH_LOG_SOURCE_APPLE_HEALTH))).health_log
        for method, request in [
                ("GetHealthLog", hl.GetHealthLogRequest(id=mine.id)),
                ("DeleteHealthLog", hl.DeleteHealthLogRequest(id=mine.id)),
                ("UpdateHealthLog", hl.UpdateHealthLogRequest(
                    health_log=hl.HealthLog(id=mine.id, note="mine now"),
                    update_mask=field_mask_pb2.FieldMask(paths=["note"])))]:
            error, _ = assert_rpc_error(self, lambda: self.call(method, request, self.bob),
                                        NOT_FOUND, "RES_001")
            self.assertIn(mine.id, error.details())
        self.assertNotIn(mine.id, [e.id for e in self.list_all(self.bob)])
        # Bob importing the same sample gets an entry of his own.
        reply = self.call("CreateHealthLog", hl.CreateHealthLogRequest(health_log=water(
            at(2024, 6, 5, 9), 250, "HK-private", hl.HEALTH_LOG_SOURCE_APPLE_HEALTH)), self.bob)
        self.assertEqual(reply.outcome, hl.HEALTH_LOG_WRITE_OUTCOME_CREATED)
        self.assertNotEqual(reply.health_log.id, mine.id)
        self.assertEqual(self.call("GetHealthLog", hl.GetHealthLogRequest(id=mine.id))
                         .health_log.note, "")
        # Without a token nothing is served at all.
        assert_rpc_error(self, lambda: self.logs.GetHealthLog(
            hl.GetHealthLogRequest(id=mine.id), timeout=RPC_TIMEOUT_S),
            grpc.StatusCode.UNAUTHENTICATED, "AUTH_002")
        # Nor to the operator socket without one: it is admin but no user.
        operator = hl_grpc.HealthLogServiceStub(self.twd.operator_channel())
        assert_rpc_error(self, lambda: operator.GetHealthLog(
            hl.GetHealthLogRequest(id=mine.id), timeout=RPC_TIMEOUT_S),
            grpc.StatusCode.UNAUTHENTICATED, "AUTH_002")

    def test_lists_filter_and_page(self):
        account = self.twd.sign_up()
        entries = [imported(i) for i in range(30)]  # every 17 minutes from May 1
        entries += [hl.HealthLog(start_time=ts(at(2024, 5, 2, h)), steps=hl.HealthSteps(count=h))
                    for h in range(10)]
        self.call("BatchCreateHealthLogs", hl.BatchCreateHealthLogsRequest(entries=entries),
                  account)
        everything = self.list_all(account, page_size=7)
        self.assertEqual(len(everything), 40)
        starts = [e.start_time.ToDatetime() for e in everything]
        self.assertEqual(starts, sorted(starts, reverse=True))
        self.assertEqual(len(self.list_all(account, type=hl.HEALTH_LOG_TYPE_STEPS)), 10)
        self.assertEqual(len(self.list_all(account, source=hl.HEALTH_LOG_SOURCE_APPLE_HEALTH)),
                         30)
        self.assertEqual(len(self.list_all(account, source=hl.HEALTH_LOG_SOURCE_MANUAL,
                                           type=hl.HEALTH_LOG_TYPE_WATER)), 0)
        # [01:00, 02:00) on May 1: samples 4..7 (68, 85, 102, 119 minutes).
        window = self.list_all(account, start_time=ts(at(2024, 5, 1, 1)),
                               end_time=ts(at(2024, 5, 1, 2)))
        self.assertEqual(sorted(e.external_id for e in window),
                         [f"HK-{i:05d}" for i in range(4, 8)])
        first = self.call("ListHealthLogs", hl.ListHealthLogsRequest(page_size=5), account)
        _, details = assert_rpc_error(self, lambda: self.call(
            "ListHealthLogs", hl.ListHealthLogsRequest(
                page_size=5, page_token=first.next_page_token, type=hl.HEALTH_LOG_TYPE_STEPS),
            account), INVALID, "VAL_003")
        self.assertIn("page_token", dict(details.field_violations))
        assert_rpc_error(self, lambda: self.call("ListHealthLogs", hl.ListHealthLogsRequest(
            page_token=first.next_page_token), self.bob), INVALID, "VAL_003")
        self.assert_invalid("ListHealthLogs", hl.ListHealthLogsRequest(page_size=-1),
                            "page_size", "negative")
        self.assert_invalid("ListHealthLogs", hl.ListHealthLogsRequest(
            start_time=ts(at(2024, 5, 2)), end_time=ts(at(2024, 5, 1))), "end_time",
            "not after start_time")
        self.assert_invalid("ListHealthLogs", hl.ListHealthLogsRequest(type=77), "type",
                            "unknown")


class DailySummaryTest(HealthLogTestCase):
    def summary(self, account, start, end):
        reply = self.call("GetDailySummary", hl.GetDailySummaryRequest(
            start_date=start, end_date=end), account)
        return reply, {d.date: d for d in reply.days}

    def test_days_follow_dst_travel_and_profile_changes(self):
        account = self.twd.sign_up(time_zone="America/New_York")
        eastern = datetime.timezone(datetime.timedelta(hours=-5))
        daylight = datetime.timezone(datetime.timedelta(hours=-4))
        london = datetime.timezone(datetime.timedelta(hours=1))
        entries = [
            # 2024-03-10 in New York lasts 23 hours (clocks skip 02:00-03:00).
            water(at(2024, 3, 10, 0, 30, eastern), 1),     # Mar 10
            water(at(2024, 3, 10, 23, 30, daylight), 10),  # still Mar 10 (03:30 UTC Mar 11)
            water(at(2024, 3, 11, 0, 30, daylight), 100),  # Mar 11
            # Travel: recorded in London (+1 h) just after midnight on June 2,
            # which was still June 1 in New York: the recorded offset wins.
            water(at(2024, 6, 2, 0, 30, london), 1000, offset=3600),
            # Without an offset the profile's zone decides: June 1 in New York.
            water(at(2024, 6, 2, 0, 30, london), 5000),
        ]
        self.call("BatchCreateHealthLogs", hl.BatchCreateHealthLogsRequest(entries=entries),
                  account)
        reply, days = self.summary(account, "2024-03-09", "2024-03-11")
        self.assertEqual(reply.time_zone, "America/New_York")
        self.assertEqual([d.date for d in reply.days], ["2024-03-09", "2024-03-10", "2024-03-11"])
        self.assertEqual([d.water_ml for d in reply.days], [0, 11, 100])
        _, days = self.summary(account, "2024-06-01", "2024-06-02")
        self.assertEqual(days["2024-06-01"].water_ml, 5000)
        self.assertEqual(days["2024-06-02"].water_ml, 1000)

        # The user moves to London: days of entries without an offset follow
        # the profile; the recorded one stays where it was lived.
        auth = self.twd.stub(auth_service_pb2_grpc.AuthServiceStub)
        auth.UpdateMe(auth_service_pb2.UpdateMeRequest(
            user=auth_service_pb2.User(time_zone="Europe/London", day_start_hour=4),
            update_mask=field_mask_pb2.FieldMask(paths=["time_zone", "day_start_hour"])),
            metadata=account.metadata, timeout=RPC_TIMEOUT_S)
        reply, days = self.summary(account, "2024-06-01", "2024-06-02")
        self.assertEqual(reply.time_zone, "Europe/London")
        self.assertEqual(reply.day_start_hour, 4)
        # 00:30 London on June 2 is before the 04:00 day start: June 1.
        self.assertEqual(days["2024-06-01"].water_ml, 6000)
        self.assertEqual(days["2024-06-02"].water_ml, 0)

    def test_totals_sleep_and_weight_trend(self):
        account = self.twd.sign_up()  # UTC
        entries = []
        for day in range(1, 15):
            wake = at(2024, 7, day, 7)
            entries.append(hl.HealthLog(start_time=ts(wake - datetime.timedelta(hours=8)),
                                        end_time=ts(wake), sleep=hl.HealthSleep()))
            entries.append(hl.HealthLog(start_time=ts(wake), weight=hl.HealthWeight(
                weight_kg=80 - 0.1 * day)))
            entries.append(hl.HealthLog(start_time=ts(wake), mood=hl.HealthMood(
                valence=1 if day % 2 else -0.5)))
            entries.append(hl.HealthLog(start_time=ts(wake), mood=hl.HealthMood(valence=0)))
        self.call("BatchCreateHealthLogs", hl.BatchCreateHealthLogsRequest(entries=entries),
                  account)
        reply, days = self.summary(account, "2024-07-01", "2024-07-14")
        self.assertEqual(len(reply.days), 14)
        for d in reply.days:
            # Each night ended on the day it counts for.
            self.assertEqual(d.sleep_duration.seconds, 8 * 3600)
            self.assertEqual(d.mood_count, 2)
        self.assertAlmostEqual(days["2024-07-01"].mood_average, 0.5)
        self.assertAlmostEqual(days["2024-07-02"].mood_average, -0.25)
        self.assertAlmostEqual(days["2024-07-14"].weight_kg, 78.6)
        self.assertEqual(reply.weight_days, 14)
        self.assertAlmostEqual(reply.weight_change_kg, -1.3)
        self.assertAlmostEqual(reply.weight_trend_kg_per_week, -0.7)
        # Bad ranges name their field.
        self.assert_invalid("GetDailySummary", hl.GetDailySummaryRequest(
            start_date="2024-07-14", end_date="2024-07-01"), "end_date", "before start_date",
            account)
        self.assert_invalid("GetDailySummary", hl.GetDailySummaryRequest(
            start_date="2024-02-30", end_date="2024-03-01"), "start_date", "YYYY-MM-DD", account)
        self.assert_invalid("GetDailySummary", hl.GetDailySummaryRequest(
            start_date="2023-01-01", end_date="2024-06-01"), "end_date", "more than 365 days",
            account)


if __name__ == "__main__":
    unittest.main()
