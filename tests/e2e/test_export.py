"""
Data export (ExportService.ExportMyData, AdminService.ExportUserData): the
export of a user is complete, and nothing but theirs. The test compares it
with a scan of the store (twd.store_records()): every key of every
user-owned family (the OWNED rows of store/tw_keyspace.h) under the user's
id is one line, its value the stored record read back through the proto3
JSON mapping (secrets listed in "redacted" left out), and each voice note's
audio comes whole with its SHA-256. Another user's data is in no line.
"""
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import uuid

from google.protobuf import json_format, symbol_database

from twd_harness import REPO_DIR, RPC_TIMEOUT_S, TWD, Twd
from test_ops_backup import MP3, NO_DECODER
from test_voice import VoiceCalls, read
from tw.v1 import (export_service_pb2, export_service_pb2_grpc, health_log_service_pb2 as hl,  # noqa: E402
                   health_log_service_pb2_grpc as hl_grpc, task_service_pb2,
                   task_service_pb2_grpc)
from tw.store.v1 import (accounts_pb2, records_pb2, task_records_pb2, voice_records_pb2,  # noqa
                         wellness_records_pb2)


def owned_prefixes():
    """The prefix byte of every user-owned key family, from the keyspace."""
    with open(os.path.join(REPO_DIR, "store", "tw_keyspace.h"), encoding="utf-8") as f:
        rows = re.findall(r"XX\((\w+), \w+, (0x[0-9A-Fa-f]+), (OWNED|SHARED)", f.read())
    return {int(prefix, 16): name for name, prefix, owner in rows if owner == "OWNED"}


def user_records(records, user_id):
    """{key hex: value bytes} of the owned keys of one user."""
    owned, user = owned_prefixes(), uuid.UUID(user_id).bytes
    return {key.hex(): value for _, key, value in records
            if key[0] in owned and key[1:17] == user}


def parse_export(messages):
    """(records, {note id: audio bytes}) of an export's stream."""
    text, audio = "", {}
    for m in messages:
        if m.chunk.WhichOneof("piece") == "records":
            text += m.chunk.records
        else:
            a = m.chunk.audio
            assert a.offset == len(audio.get(a.voice_note_id, b"")), a.offset
            audio[a.voice_note_id] = audio.get(a.voice_note_id, b"") + a.data
    return [json.loads(line) for line in text.splitlines()], audio, text


def make_data(test, twd, me):
    tasks = task_service_pb2_grpc.TaskServiceStub(twd.channel())
    for i in range(3):
        task = tasks.CreateTask(task_service_pb2.CreateTaskRequest(
            task=task_service_pb2.Task(title=f"task {i}", labels=["export"])),
            metadata=me.metadata, timeout=RPC_TIMEOUT_S).task
    tasks.CompleteTask(task_service_pb2.CompleteTaskRequest(id=task.id), metadata=me.metadata,
                       timeout=RPC_TIMEOUT_S)
    logs = hl_grpc.HealthLogServiceStub(twd.channel())
    start = datetime.datetime(2025, 1, 15, 9, 0, tzinfo=datetime.timezone.utc)
    entry = hl.HealthLog(water=hl.HealthWater(volume_ml=330))
    entry.start_time.FromDatetime(start)
    logs.CreateHealthLog(hl.CreateHealthLogRequest(health_log=entry), metadata=me.metadata,
                         timeout=RPC_TIMEOUT_S)
    calls = VoiceCalls(test, twd, me)
    note = calls.upload(read(MP3), "memo.mp3")
    # Its transcription (Deepgram unreachable: FAILED) writes to the note:
    # wait for it, so the data holds still while it is compared.
    calls.watch(note.id)
    return note


class ExportTest(unittest.TestCase):
    def test_the_export_is_the_users_keys_all_of_them_and_only_theirs(self):
        with Twd(env=NO_DECODER) as twd:
            me, other = twd.sign_up(), twd.sign_up()
            note = make_data(self, twd, me)
            make_data(self, twd, other)
            stub = export_service_pb2_grpc.ExportServiceStub(twd.channel())
            lines, audio, _ = parse_export(stub.ExportMyData(
                export_service_pb2.ExportMyDataRequest(), metadata=me.metadata, timeout=60))
            stored = user_records(twd.store_records(), me.user_id)

        self.assertEqual({line["key_hex"] for line in lines}, set(stored))
        self.assertEqual(len(lines), len(stored))  # no line twice
        families = {line["family"] for line in lines}
        for family in ("USER", "SESSION", "TASK", "TASK_COMPLETION", "HEALTH_LOG", "VOICE_NOTE",
                       "CHANGE", "CHANGE_HEAD", "UNIQUE_BY_OWNER"):
            self.assertIn(family, families)
        db = symbol_database.Default()
        for line in lines:
            value = stored[line["key_hex"]]
            with self.subTest(family=line["family"], key=line["key_hex"]):
                self.assertEqual(line["key"]["user" if "user" in line["key"] else "owner"],
                                 me.user_id)
                if line["type"] == "none":
                    self.assertIsNone(line["value"])
                    self.assertEqual(value, b"")
                elif line["type"] == "u64":
                    self.assertEqual(int(line["value"]), int.from_bytes(value, "little"))
                elif line["type"] == "id":
                    self.assertEqual(line["value"], str(uuid.UUID(bytes=value)))
                else:
                    cls = db.GetSymbol(line["type"])
                    expected = cls.FromString(value)
                    for field in line.get("redacted", []):
                        expected.ClearField(field)
                    got = json_format.ParseDict(line["value"], cls())
                    self.assertEqual(got, expected)
        redacted = [line for line in lines if line.get("redacted")]
        self.assertTrue(all("password_hash" not in line["value"] for line in redacted))
        self.assertEqual(set(audio), {note.id})
        self.assertEqual(hashlib.sha256(audio[note.id]).hexdigest(), note.sha256)
        self.assertNotIn(other.user_id, json.dumps(lines))

    def test_an_admin_exports_a_user_to_files_as_the_user_would(self):
        with Twd(env=NO_DECODER) as twd, tempfile.TemporaryDirectory() as out:
            me = twd.sign_up()
            note = make_data(self, twd, me)
            stub = export_service_pb2_grpc.ExportServiceStub(twd.channel())
            _, _, text = parse_export(stub.ExportMyData(
                export_service_pb2.ExportMyDataRequest(), metadata=me.metadata, timeout=60))
            run = subprocess.run([TWD, "admin", "user", "export", "--email", me.email, "--out",
                                  out, "--data-dir", twd.data_dir], capture_output=True,
                                 text=True, timeout=120)
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertRegex(run.stdout, r"^exported \d+ records and 1 recordings")
            with open(os.path.join(out, "records.jsonl"), encoding="utf-8") as f:
                admin_lines = f.read().splitlines()
            user_lines = text.splitlines()
            # The admin's call left its own trace nowhere in the user's keys.
            self.assertEqual(admin_lines, user_lines)
            with open(os.path.join(out, "audio", note.id), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), note.sha256)

    def test_an_export_needs_a_signed_in_user(self):
        import grpc
        with Twd(env=NO_DECODER) as twd:
            stub = export_service_pb2_grpc.ExportServiceStub(twd.channel())
            with self.assertRaises(grpc.RpcError) as caught:
                list(stub.ExportMyData(export_service_pb2.ExportMyDataRequest(),
                                       timeout=RPC_TIMEOUT_S))
            self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)


if __name__ == "__main__":
    unittest.main(verbosity=2)
