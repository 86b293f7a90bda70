"""
Backups with audio (server/ops/backup.h), end to end: a backup holds every
voice note's audio beside the database, content-addressed so a later backup
copies only new recordings; a restore into a new data directory serves every
note with the same SHA-256; a damaged recording fails verify; scheduled
backups run from the configuration, are uploaded to S3 (s3rver) and show in
/health/detailed and /metrics.

Transcription is pointed at a Deepgram nobody serves: notes store their
audio at once and no PocketSphinx decoder is loaded.
"""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

import grpc

from twd_harness import (RPC_TIMEOUT_S, TEST_AUDIO_DIR, TWD, Twd, assert_rpc_error, wait_until)
from test_blob_backend import BUCKET, S3rver
from test_voice import VoiceCalls, read
from tw.v1 import admin_service_pb2, admin_service_pb2_grpc  # noqa: E402

NO_DECODER = {"TW_VOICE_ENGINE": "deepgram", "TW_DEEPGRAM_API_KEY": "unused",
              "TW_DEEPGRAM_BASE_URL": "http://127.0.0.1:9", "TW_VOICE_JOB_ATTEMPTS": "1",
              "TW_DEEPGRAM_MAX_ATTEMPTS": "1"}
MP3 = os.path.join(TEST_AUDIO_DIR, "speech.mp3")
WAV = os.path.join(TEST_AUDIO_DIR, "speech-44k.wav")
COMMAND_TIMEOUT_S = 120


def twd_command(*args):
    return subprocess.run([TWD, *args], capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT_S)


def admin_json(twd, *args):
    """`twd admin ... --json` against twd's operator socket, parsed."""
    run = twd_command("admin", *args, "--json", "--data-dir", twd.data_dir)
    if run.returncode != 0:
        raise AssertionError(f"twd admin {' '.join(args)}: {run.stderr}")
    return json.loads(run.stdout)


class BackupWithAudioTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="twd-e2e-backups-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_backup_restore_and_verify_keep_every_recording(self):
        backups = os.path.join(self.dir, "backups")
        restored = os.path.join(self.dir, "restored")
        mp3, wav = read(MP3), read(WAV)
        with Twd(env=NO_DECODER) as twd:
            me = twd.sign_up()
            calls = VoiceCalls(self, twd, me)
            notes = {calls.upload(mp3, "a.mp3").id: mp3, calls.upload(wav, "b.wav").id: wav,
                     calls.upload(mp3, "again.mp3").id: mp3}
            first = admin_json(twd, "backup", "create", "--directory", backups)
            self.assertEqual(first["audio_files"], "2")  # the same recording twice: one copy
            self.assertEqual(int(first["audio_bytes_copied"]), len(mp3) + len(wav))
            second = admin_json(twd, "backup", "create", "--directory", backups)
            self.assertEqual(second["backup_id"], first["backup_id"] + 1)
            self.assertEqual(second["audio_bytes_copied"], "0")  # nothing new: nothing copied
            extra = bytes(mp3[:-1]) + b"\0"  # another recording
            notes[calls.upload(extra, "c.mp3").id] = extra
            third = admin_json(twd, "backup", "create", "--directory", backups)
            self.assertEqual(int(third["audio_bytes_copied"]), len(extra))
            self.assertEqual(len(glob.glob(os.path.join(backups, "audio", "??", "*"))), 3)
            verified = admin_json(twd, "backup", "verify", "--directory", backups)
            self.assertEqual(verified["voice_notes"], "4")

        run = twd_command("backup", "restore", "--from", backups, "--data-dir", restored)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("with the audio of 4 voice notes", run.stdout)
        with Twd(env=NO_DECODER, data_dir=restored) as twd:
            again = twd.sign_in(me.email, me.password)
            calls = VoiceCalls(self, twd, again)
            for note_id, audio in notes.items():
                got = calls.download(note_id)
                self.assertEqual(hashlib.sha256(got).hexdigest(),
                                 hashlib.sha256(audio).hexdigest(), note_id)

        # Damage one recording in place: verify names it and fails.
        victim = sorted(glob.glob(os.path.join(backups, "audio", "??", "*")))[0]
        with open(victim, "r+b") as f:
            f.seek(100)
            byte = f.read(1)
            f.seek(100)
            f.write(bytes([byte[0] ^ 0xFF]))
        run = twd_command("backup", "verify", "--from", backups)
        self.assertEqual(run.returncode, 1, run.stdout)
        self.assertIn("damaged", run.stderr)
        self.assertIn("does not match the note's sha256", run.stderr)
        with Twd(env=NO_DECODER) as twd:
            admin = admin_service_pb2_grpc.AdminServiceStub(twd.operator_channel())
            assert_rpc_error(self, lambda: admin.VerifyBackup(
                admin_service_pb2.VerifyBackupRequest(directory=backups), timeout=60),
                grpc.StatusCode.DATA_LOSS, "DB_002")

    def test_a_restore_over_a_store_or_into_the_serving_one_is_refused(self):
        backups = os.path.join(self.dir, "backups")
        with Twd(env=NO_DECODER) as twd:
            admin_json(twd, "backup", "create", "--directory", backups)
            admin = admin_service_pb2_grpc.AdminServiceStub(twd.operator_channel())
            assert_rpc_error(self, lambda: admin.RestoreBackup(
                admin_service_pb2.RestoreBackupRequest(directory=backups,
                                                       target_data_dir=twd.data_dir),
                timeout=60), grpc.StatusCode.FAILED_PRECONDITION, "STATE_001")
            _, details = assert_rpc_error(self, lambda: admin.RestoreBackup(
                admin_service_pb2.RestoreBackupRequest(directory="relative",
                                                       target_data_dir="also/relative"),
                timeout=60), grpc.StatusCode.INVALID_ARGUMENT, "VAL_001")
            self.assertEqual(details.field_violations[0][0], "directory")
            fresh = os.path.join(self.dir, "fresh")
            reply = admin.RestoreBackup(admin_service_pb2.RestoreBackupRequest(
                directory=backups, target_data_dir=fresh), timeout=60)
            self.assertEqual(reply.voice_notes, 0)
            self.assertTrue(os.path.exists(os.path.join(fresh, "db", "CURRENT")))


class ScheduledBackupTest(unittest.TestCase):
    def test_a_scheduled_backup_runs_is_uploaded_and_reported(self):
        with tempfile.TemporaryDirectory(prefix="twd-e2e-sched-") as tmp, S3rver() as s3:
            backups = os.path.join(tmp, "backups")
            env = {**NO_DECODER, "TW_BACKUP_DIR": backups, "TW_BACKUP_UPLOAD": "true",
                   "TW_BACKUP_KEEP": "2", "TW_S3_ENDPOINT": s3.endpoint, "TW_S3_BUCKET": BUCKET,
                   "TW_S3_ACCESS_KEY_ID": "S3RVER", "TW_S3_SECRET_ACCESS_KEY": "unused"}
            with Twd(env=env) as twd:
                # No backup in backup_dir yet: the first one runs at start-up.
                def reported():
                    d = json.loads(twd.http_get("/health/detailed")[2])
                    return d["store"]["last_backup"] if d["store"]["last_backup"]["result"] != \
                        "none" else None
                last = wait_until(reported, 60, "the scheduled backup")
                self.assertEqual(last["result"], "ok", last)
                self.assertEqual(last["directory"], backups)
                metrics = twd.http_get("/metrics")[2]
                self.assertIn("tw_backup_last_success 1", metrics)
                self.assertIn('tw_backups_total{result="ok"} 1', metrics)
                listing = urllib.request.urlopen(
                    f"{s3.endpoint}/{BUCKET}?list-type=2&prefix=backups/", timeout=10).read()
                self.assertIn(b"<Key>backups/meta/1</Key>", listing)
                self.assertIn(b"<Key>backups/audio/manifests/1</Key>", listing)


if __name__ == "__main__":
    unittest.main(verbosity=2)
