"""
VoiceService end to end: a real twd, a signed-in user, and the Python stubs
generated from proto/ by standard tooling, as an app would call it.

Speech is made here with espeak-ng and converted with ffmpeg into each of
the four formats; each is accepted and transcribed (PocketSphinx hears
espeak-ng's voice poorly, so only that a transcript arrives is checked;
accuracy is test_voice_accuracy.py's). Refusals (a PNG renamed .mp3, a WAV
declared as webm), 25 MiB + 1 byte, a cancel and a deadline mid-stream all
leave nothing in the store or on disk; the same request_id stores once;
Download returns the exact bytes; Delete removes the audio; and a
transcription interrupted by a restart (SIGTERM, or SIGKILL and its lease
running out) finishes.
"""
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET

import grpc

from twd_harness import (RPC_TIMEOUT_S, TEST_AUDIO_DIR, Twd, TwdTestCase, assert_rpc_error,
                         wait_until)
# Generated stubs import only after twd_harness has put them on the path.
from test_blob_backend import BUCKET, S3rver  # noqa: E402
from test_account_data import DELETION_TIMEOUT_S, user_traces  # noqa: E402
from tw.v1 import auth_service_pb2, auth_service_pb2_grpc  # noqa: E402
from tw.v1 import task_service_pb2, task_service_pb2_grpc  # noqa: E402
from tw.v1 import sync_service_pb2, sync_service_pb2_grpc  # noqa: E402
from tw.v1 import voice_service_pb2 as pb  # noqa: E402
from tw.v1 import voice_service_pb2_grpc as pb_grpc  # noqa: E402

KiB = 1024
MiB = 1024 * KiB
MAX_BYTES = 25 * MiB  # twd's default voice_max_bytes
CHUNK = 64 * KiB
# The request_id a phone would keep for one recording while it retries.
PHONE_REQUEST_ID = "0190a6b2-0000-7000-8000-000000000042"
# Bounds on waiting; generous because sanitizer builds run several times slower.
TRANSCRIBE_TIMEOUT_S = 600.0
CLEANUP_TIMEOUT_S = 20.0
UPLOAD_TIMEOUT_S = 300.0
SPEECH_WAV = os.path.join(TEST_AUDIO_DIR, "speech-44k.wav")
# One decoder of each kind: these twd processes run beside other tests.
VOICE_ENV = {"TW_VOICE_TRANSCRIBERS": "1", "TW_VOICE_LIVE_DECODERS": "1"}

Status = pb.VoiceNoteStatus
FINAL = (Status.VOICE_NOTE_STATUS_TRANSCRIBED, Status.VOICE_NOTE_STATUS_FAILED)

SENTENCE = "please remind me to call the dentist tomorrow morning and buy some milk"


def read(path):
    with open(path, "rb") as f:
        return f.read()


def run(*args):
    subprocess.run(args, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=120)


def make_speech(directory):
    """The sentence spoken by espeak-ng in each format: {ext: bytes}."""
    wav = os.path.join(directory, "speech.wav")
    run("espeak-ng", "-w", wav, SENTENCE)
    made = {"wav": read(wav)}
    for ext, codec in (("mp3", "libmp3lame"), ("m4a", "aac"), ("webm", "libopus")):
        path = os.path.join(directory, f"speech.{ext}")
        run("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", wav, "-c:a", codec, path)
        made[ext] = read(path)
    return made


def make_png(directory):
    path = os.path.join(directory, "photo.png")
    run("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
        "color=c=red:s=64x64", "-frames:v", "1", path)
    return read(path)


def wav_of_size(size):
    """A WAV header (16 kHz mono, 16-bit) and zeros: `size` bytes."""
    header = (b"RIFF" + (size - 8).to_bytes(4, "little") + b"WAVEfmt "
              + (16).to_bytes(4, "little") + (1).to_bytes(2, "little")
              + (1).to_bytes(2, "little") + (16000).to_bytes(4, "little")
              + (32000).to_bytes(4, "little") + (2).to_bytes(2, "little")
              + (16).to_bytes(2, "little") + b"data" + (size - 44).to_bytes(4, "little"))
    return header + bytes(size - len(header))


def upload_requests(data, file_name, content_type="", request_id="", chunk=CHUNK,
                    hold=None, hold_after=0, task_id=""):
    """The messages of an upload: metadata, then the data in chunks. With
    hold (a threading.Event), stops after hold_after bytes until it is set
    (bounded), as a client whose microphone is still recording."""
    yield pb.UploadVoiceNoteRequest(metadata=pb.VoiceNoteMetadata(
        file_name=file_name, content_type=content_type, request_id=request_id, task_id=task_id))
    for offset in range(0, len(data), chunk):
        if hold is not None and offset >= hold_after:
            hold.wait(timeout=60)
            return
        yield pb.UploadVoiceNoteRequest(chunk=data[offset:offset + chunk])


def files_under(path):
    found = []
    for root, _, names in os.walk(path):
        found.extend(os.path.join(root, name) for name in names)
    return found


class VoiceCalls:
    """What the tests do, for a twd and a signed-in account."""

    def __init__(self, test, twd, account):
        self.test, self.twd, self.account = test, twd, account
        self.voice = pb_grpc.VoiceServiceStub(twd.channel())

    def upload(self, data, file_name, content_type="", request_id="", chunk=CHUNK, task_id=""):
        reply = self.voice.UploadVoiceNote(
            upload_requests(data, file_name, content_type, request_id, chunk, task_id=task_id),
            metadata=self.account.metadata, timeout=UPLOAD_TIMEOUT_S)
        return reply.voice_note

    def watch(self, note_id, timeout=TRANSCRIBE_TIMEOUT_S):
        """Every note WatchVoiceNote sends, until it ends."""
        return [m.voice_note for m in self.voice.WatchVoiceNote(
            pb.WatchVoiceNoteRequest(id=note_id), metadata=self.account.metadata,
            timeout=timeout)]

    def final(self, note_id):
        seen = self.watch(note_id)
        self.test.assertIn(seen[-1].status, FINAL)
        return seen[-1]

    def get(self, note_id):
        return self.voice.GetVoiceNote(pb.GetVoiceNoteRequest(id=note_id),
                                       metadata=self.account.metadata,
                                       timeout=RPC_TIMEOUT_S).voice_note

    def list(self):
        return list(self.voice.ListVoiceNotes(pb.ListVoiceNotesRequest(page_size=500),
                                              metadata=self.account.metadata,
                                              timeout=RPC_TIMEOUT_S).voice_notes)

    def download(self, note_id):
        return b"".join(m.chunk for m in self.voice.DownloadVoiceNote(
            pb.DownloadVoiceNoteRequest(id=note_id), metadata=self.account.metadata,
            timeout=UPLOAD_TIMEOUT_S))

    def delete(self, note_id):
        self.voice.DeleteVoiceNote(pb.DeleteVoiceNoteRequest(id=note_id),
                                   metadata=self.account.metadata, timeout=RPC_TIMEOUT_S)

    def blob_path(self, note_id):
        return os.path.join(self.twd.data_dir, "blobs", self.account.user_id, note_id)

    def assert_nothing_stored(self):
        """No note, and no byte on disk: not under the user's blobs, not in
        blob storage's temporary directory. The refusal is answered first
        and the half-written file goes a moment later, so wait (bounded)."""
        self.test.assertEqual(self.list(), [])
        blobs = os.path.join(self.twd.data_dir, "blobs")
        left = lambda: (files_under(os.path.join(blobs, self.account.user_id))
                        + files_under(os.path.join(blobs, ".tmp")))
        wait_until(lambda: not left(), CLEANUP_TIMEOUT_S, "the upload's files to be removed")


class VoiceTest(TwdTestCase):
    twd_env = VOICE_ENV

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.work = tempfile.mkdtemp(prefix="twd-e2e-voice-")
        cls.speech = make_speech(cls.work)
        cls.png = make_png(cls.work)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        self.me = self.twd.sign_up()
        self.calls = VoiceCalls(self, self.twd, self.me)

    def test_each_format_made_with_espeak_is_accepted_and_transcribed(self):
        types = {"wav": "audio/wav", "mp3": "audio/mpeg", "m4a": "audio/mp4",
                 "webm": "audio/webm;codecs=opus"}
        formats = {"wav": pb.AUDIO_FORMAT_WAV, "mp3": pb.AUDIO_FORMAT_MP3,
                   "m4a": pb.AUDIO_FORMAT_M4A, "webm": pb.AUDIO_FORMAT_WEBM}
        for ext, data in self.speech.items():
            with self.subTest(ext):
                note = self.calls.upload(data, f"reminder.{ext}", types[ext],
                                         request_id=str(uuid.uuid4()))
                self.assertEqual(note.format, formats[ext])
                self.assertEqual(note.size_bytes, len(data))
                self.assertEqual(note.sha256, hashlib.sha256(data).hexdigest())
                self.assertIn(note.status, (Status.VOICE_NOTE_STATUS_PENDING,
                                            Status.VOICE_NOTE_STATUS_TRANSCRIBING))
                self.assertTrue(os.path.exists(self.calls.blob_path(note.id)))
                done = self.calls.final(note.id)
                self.assertEqual(done.status, Status.VOICE_NOTE_STATUS_TRANSCRIBED,
                                 done.failure_reason)
                self.assertEqual(done.transcript.engine, "pocketsphinx")
                self.assertEqual(done.transcript.language, "en-US")
                # espeak-ng says the sentence in about four seconds.
                self.assertGreater(done.duration.ToMilliseconds(), 2000)
                self.assertLess(done.duration.ToMilliseconds(), 10000)
        self.assertEqual(len(self.calls.list()), 4)

    def test_png_renamed_mp3_and_wav_declared_webm_are_refused_and_nothing_stored(self):
        _, details = assert_rpc_error(
            self, lambda: self.calls.upload(self.png, "photo.mp3"),
            grpc.StatusCode.INVALID_ARGUMENT, "VOICE_001")
        self.assertIn("a PNG image, not mp3", details.message)
        self.calls.assert_nothing_stored()
        _, details = assert_rpc_error(
            self, lambda: self.calls.upload(self.speech["wav"], "note.webm", "audio/webm"),
            grpc.StatusCode.INVALID_ARGUMENT, "VOICE_001")
        self.assertIn("WAV audio, but it was declared as webm", details.message)
        self.calls.assert_nothing_stored()
        _, details = assert_rpc_error(
            self, lambda: self.calls.upload(self.speech["mp3"], "note.mp3", "text/plain"),
            grpc.StatusCode.INVALID_ARGUMENT, "VOICE_001")
        self.assertEqual(details.field_violations[0][0], "metadata.content_type")
        self.calls.assert_nothing_stored()

    def test_25_mib_and_one_byte_is_refused_and_nothing_is_left_on_disk(self):
        data = wav_of_size(MAX_BYTES + 1)
        _, details = assert_rpc_error(self, lambda: self.calls.upload(data, "long.wav"),
                                      grpc.StatusCode.RESOURCE_EXHAUSTED, "SIZE_001")
        self.assertIn(f"at most {MAX_BYTES} bytes", details.message)
        self.calls.assert_nothing_stored()

    def held_upload(self, timeout):
        """An upload that sends 2 MiB and then waits, as its future and the
        event that would let it go on. twd writes what it receives in
        batches, into 1 MiB blocks: 2 MiB received puts the first block on
        disk."""
        hold = threading.Event()
        future = self.calls.voice.UploadVoiceNote.future(
            upload_requests(self.speech_padding(), "long.wav", hold=hold, hold_after=2 * MiB),
            metadata=self.me.metadata, timeout=timeout)
        tmp = os.path.join(self.twd.data_dir, "blobs", ".tmp")
        wait_until(lambda: any(os.path.getsize(p) > 0 for p in files_under(tmp)),
                   CLEANUP_TIMEOUT_S, "the upload's first bytes in blob storage")
        return future, hold

    def speech_padding(self):
        return wav_of_size(4 * MiB)

    def test_cancel_mid_stream_leaves_nothing(self):
        future, hold = self.held_upload(UPLOAD_TIMEOUT_S)
        future.cancel()
        hold.set()
        with self.assertRaises(grpc.FutureCancelledError):
            future.result()
        self.calls.assert_nothing_stored()

    def test_deadline_mid_stream_leaves_nothing(self):
        future, hold = self.held_upload(3)
        with self.assertRaises(grpc.RpcError) as caught:
            future.result()
        hold.set()
        self.assertEqual(caught.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.calls.assert_nothing_stored()

    def test_the_same_request_id_stores_once(self):
        data = self.speech["m4a"]
        first = self.calls.upload(data, "a.m4a", request_id=PHONE_REQUEST_ID)
        again = self.calls.upload(data, "a.m4a", request_id=PHONE_REQUEST_ID)
        self.assertEqual(again.id, first.id)
        # A retry that sends only its metadata gets the note at once.
        reply = self.calls.voice.UploadVoiceNote(
            upload_requests(b"", "a.m4a", request_id=PHONE_REQUEST_ID), metadata=self.me.metadata,
            timeout=RPC_TIMEOUT_S)
        self.assertEqual(reply.voice_note, first, "a retry gets the first answer")
        # The same request_id with other metadata is refused.
        _, details = assert_rpc_error(
            self, lambda: self.calls.upload(data, "b.m4a", request_id=PHONE_REQUEST_ID),
            grpc.StatusCode.INVALID_ARGUMENT, "VAL_001")
        self.assertEqual(details.field_violations,
                         [("request_id", "was already used for a different request")])
        self.assertEqual([n.id for n in self.calls.list()], [first.id])
        self.assertEqual(files_under(os.path.join(self.twd.data_dir, "blobs",
                                                  self.me.user_id)),
                         [self.calls.blob_path(first.id)])

    def test_every_bad_metadata_field_is_reported_and_nothing_stored(self):
        metadata = pb.VoiceNoteMetadata(file_name="x" * 256 + ".wav", language="not a tag",
                                        vocabulary=[pb.VocabularyTerm(phrase="")])
        _, details = assert_rpc_error(
            self, lambda: self.calls.voice.UploadVoiceNote(
                iter([pb.UploadVoiceNoteRequest(metadata=metadata)]),
                metadata=self.me.metadata, timeout=RPC_TIMEOUT_S),
            grpc.StatusCode.INVALID_ARGUMENT, "VAL_001")
        self.assertEqual([f for f, _ in details.field_violations],
                         ["metadata.file_name", "metadata.language",
                          "metadata.vocabulary[0].phrase"])
        self.calls.assert_nothing_stored()

    def test_download_returns_the_exact_bytes(self):
        data = read(SPEECH_WAV) * 5  # 10.9 MB, more than a stream's backlog
        data = data[:len(data) // 2 * 2]
        note = self.calls.upload(data, "five-times.wav")
        got = self.calls.download(note.id)
        self.assertEqual(len(got), len(data))
        self.assertEqual(hashlib.sha256(got).hexdigest(), note.sha256)
        self.assertEqual(got, data)
        self.calls.delete(note.id)  # and its transcription, not needed here

    def test_deleting_the_account_leaves_no_note_index_entry_or_audio(self):
        # The notes-by-age index is shared by all users: the account's key
        # prefix alone does not reach it.
        note = self.calls.upload(self.speech["mp3"], "a.mp3")
        self.calls.final(note.id)
        self.assertTrue(user_traces(self.twd, self.me.user_id, self.me.email))
        auth = self.twd.stub(auth_service_pb2_grpc.AuthServiceStub)
        auth.DeleteAccount(auth_service_pb2.DeleteAccountRequest(password=self.me.password),
                           metadata=self.me.metadata, timeout=RPC_TIMEOUT_S)
        wait_until(lambda: not user_traces(self.twd, self.me.user_id, self.me.email),
                   DELETION_TIMEOUT_S, "no key or value of the deleted user left")
        self.assertEqual(files_under(os.path.join(self.twd.data_dir, "blobs", self.me.user_id)),
                         [])

    def test_delete_removes_the_blob(self):
        note = self.calls.upload(self.speech["mp3"], "a.mp3")
        path = self.calls.blob_path(note.id)
        self.assertTrue(os.path.exists(path))
        self.calls.delete(note.id)
        self.assertFalse(os.path.exists(path))
        assert_rpc_error(self, lambda: self.calls.get(note.id), grpc.StatusCode.NOT_FOUND,
                         "RES_001")
        assert_rpc_error(self, lambda: self.calls.delete(note.id), grpc.StatusCode.NOT_FOUND,
                         "RES_001")
        self.calls.assert_nothing_stored()

    def test_another_users_notes_do_not_exist(self):
        note = self.calls.upload(self.speech["mp3"], "a.mp3")
        other = VoiceCalls(self, self.twd, self.twd.sign_up())
        for call in (lambda: other.get(note.id), lambda: other.download(note.id),
                     lambda: other.delete(note.id), lambda: other.watch(note.id)):
            assert_rpc_error(self, call, grpc.StatusCode.NOT_FOUND, "RES_001")
        self.assertEqual(other.list(), [])
        self.assertTrue(os.path.exists(self.calls.blob_path(note.id)))

    def test_a_note_links_only_to_one_of_the_callers_tasks(self):
        def new_task(account):
            tasks = task_service_pb2_grpc.TaskServiceStub(self.twd.channel())
            return tasks.CreateTask(
                task_service_pb2.CreateTaskRequest(task=task_service_pb2.Task(title="Call Ann")),
                metadata=account.metadata, timeout=RPC_TIMEOUT_S).task.id

        mine = new_task(self.me)
        note = self.calls.upload(self.speech["mp3"], "a.mp3", task_id=mine)
        self.assertEqual(note.task_id, mine)
        self.calls.delete(note.id)
        # Another user's task, and one that never existed: the same answer.
        for task_id in (new_task(self.twd.sign_up()), str(uuid.uuid4())):
            with self.subTest(task_id=task_id):
                assert_rpc_error(self, lambda: self.calls.upload(self.speech["mp3"], "a.mp3",
                                                                 task_id=task_id),
                                 grpc.StatusCode.NOT_FOUND, "RES_001")
                self.calls.assert_nothing_stored()

    def pull(self, token):
        """Every voice_note change after token (a full sync for ""), and the
        token after them."""
        sync = sync_service_pb2_grpc.SyncServiceStub(self.twd.channel())
        changes = []
        for _ in range(100):
            reply = sync.Pull(sync_service_pb2.PullRequest(since_token=token,
                                                           resource_types=["voice_note"]),
                              metadata=self.me.metadata, timeout=RPC_TIMEOUT_S)
            self.assertFalse(reply.full_resync_required)
            changes.extend(reply.changes)
            token = reply.next_token
            if not reply.has_more:
                return changes, token
        raise AssertionError("Pull kept saying has_more")

    def test_sync_pull_carries_the_transcribed_note_then_its_tombstone(self):
        note = self.calls.upload(self.speech["mp3"], "sync.mp3")
        done = self.calls.final(note.id)
        self.assertEqual(done.status, Status.VOICE_NOTE_STATUS_TRANSCRIBED, done.failure_reason)

        # A full sync: the note as it is now, transcript included.
        changes, token = self.pull("")
        self.assertEqual([(c.resource_type, c.resource_id) for c in changes],
                         [("voice_note", note.id)])
        self.assertEqual(changes[0].WhichOneof("resource"), "voice_note")
        self.assertEqual(changes[0].voice_note, self.calls.get(note.id))
        self.assertEqual(changes[0].voice_note.transcript, done.transcript)
        self.assertTrue(changes[0].voice_note.transcript.words)

        # Nothing since the full sync; then the delete is one tombstone.
        changes, _ = self.pull(token)
        self.assertEqual(changes, [])
        self.calls.delete(note.id)
        changes, _ = self.pull(token)
        self.assertEqual(len(changes), 1, changes)
        self.assertEqual(changes[0].resource_type, "voice_note")
        self.assertEqual(changes[0].resource_id, note.id)
        self.assertTrue(changes[0].deleted)
        self.assertIsNone(changes[0].WhichOneof("resource"))
        self.assertGreater(changes[0].sequence, 0)

    def test_calls_need_a_signed_in_user(self):
        voice = pb_grpc.VoiceServiceStub(self.twd.channel())
        assert_rpc_error(self, lambda: voice.ListVoiceNotes(pb.ListVoiceNotesRequest(),
                                                            timeout=RPC_TIMEOUT_S),
                         grpc.StatusCode.UNAUTHENTICATED, "AUTH_002")


class VoiceRestartTest(unittest.TestCase):
    """A transcription under way when twd stops finishes after it starts again."""

    def start_transcription(self, twd):
        """Uploads 26 s of speech (seconds of decoding) and returns once
        its transcription job has started."""
        me = twd.sign_up()
        calls = VoiceCalls(self, twd, me)
        note = calls.upload(read(SPEECH_WAV), "long.wav")
        stream = calls.voice.WatchVoiceNote(pb.WatchVoiceNoteRequest(id=note.id),
                                            metadata=me.metadata, timeout=TRANSCRIBE_TIMEOUT_S)
        for change in stream:
            if change.voice_note.status != Status.VOICE_NOTE_STATUS_PENDING:
                break
        stream.cancel()
        self.assertEqual(change.voice_note.status, Status.VOICE_NOTE_STATUS_TRANSCRIBING)
        return me, note

    def assert_finishes(self, twd, me, note):
        calls = VoiceCalls(self, twd, me)
        done = calls.final(note.id)
        self.assertEqual(done.status, Status.VOICE_NOTE_STATUS_TRANSCRIBED, done.failure_reason)
        # The whole recording, not the part heard before the stop.
        self.assertGreater(len(done.transcript.words), 20)
        self.assertGreater(done.transcript.words[-1].end_offset.ToMilliseconds(), 20000)
        # By a second lease of the job: the first one died with the old twd.
        # (The job's log line follows the transcript that ended the watch.)
        runs = wait_until(lambda: [line for line in twd.logs() if line.get("msg") == "job done"
                                   and line.get("type") == "voice_transcribe"],
                          CLEANUP_TIMEOUT_S, "the transcription job's log line")
        self.assertEqual(len(runs), 1, runs)
        self.assertGreaterEqual(runs[0]["attempt"], 2)

    def test_sigterm_during_transcription_then_restart_finishes_the_job(self):
        with Twd(env=VOICE_ENV) as twd:
            me, note = self.start_transcription(twd)
            data_dir = twd.data_dir
            self.assertEqual(twd.stop(), 0)
            self.assertTrue(any(line.get("msg") == "job failed"
                                and "twd is stopping" in line.get("error", "")
                                for line in twd.logs()), "the job was not interrupted")
            with Twd(env=VOICE_ENV, data_dir=data_dir) as restarted:
                self.assert_finishes(restarted, me, note)

    def test_sigkill_during_transcription_then_restart_finishes_after_the_lease(self):
        env = {**VOICE_ENV, "TW_VOICE_JOB_LEASE_S": "10"}
        with Twd(env=env) as twd:
            me, note = self.start_transcription(twd)
            data_dir = twd.data_dir
            twd.stop(signal.SIGKILL)
            with Twd(env=env, data_dir=data_dir) as restarted:
                self.assert_finishes(restarted, me, note)


# How many times a listing of s3rver is asked while it is mid-write.
LIST_TRIES = 50


class VoiceS3Test(unittest.TestCase):
    """The same upload path with blob_backend=s3, against s3rver on loopback
    (see test_blob_backend.py): a note larger than a part (5 MiB) goes up as
    a multipart upload, comes back identical and leaves the bucket when
    deleted; a refusal or a cancel aborts the multipart upload, leaving no
    object and no incomplete upload. The bucket is read over plain HTTP
    (s3rver checks no signature)."""

    def s3_get(self, s3, path):
        """(status, body) of an unsigned GET on s3rver."""
        try:
            with urllib.request.urlopen(f"{s3.endpoint}/{BUCKET}{path}", timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def s3_list(self, s3, query, entry):
        """The keys of a listing's entries. s3rver lists from its files on
        disk: while twd's part or object is being written it can answer 500
        or list an entry whose key is still empty. Such a listing is asked
        again (at most LIST_TRIES times, 0.1 s apart); any other answer is
        taken as it is."""
        for _ in range(LIST_TRIES):
            status, body = self.s3_get(s3, query)
            keys = ([e.findtext("{*}Key") for e in ET.fromstring(body).findall(entry)]
                    if status == 200 else None)
            if keys is not None and all(keys):
                return keys
            if status not in (200, 500):
                break
            time.sleep(0.1)
        self.fail(f"s3rver's listing {query}: {status} {body[:300]!r}")

    def incomplete_uploads(self, s3):
        """The keys of the bucket's incomplete multipart uploads
        (ListMultipartUploads)."""
        return self.s3_list(s3, "?uploads", "{*}Upload")

    def objects(self, s3):
        """The keys of the bucket's objects (ListObjectsV2; s3rver's answer
        has a namespace of its own, so any is taken)."""
        return self.s3_list(s3, "?list-type=2", "{*}Contents")

    def test_notes_refusals_and_cancels_on_s3(self):
        with S3rver() as s3, Twd(env={**VOICE_ENV, **s3.env()}) as twd:
            me = twd.sign_up()
            calls = VoiceCalls(self, twd, me)
            nothing_left = lambda: not self.objects(s3) and not self.incomplete_uploads(s3)

            # 12 MiB: held after 7 MiB, when one 5 MiB part has gone up as
            # a multipart upload, then sent to its end.
            data = (read(SPEECH_WAV) * 6)[:12 * MiB]
            hold = threading.Event()
            future = calls.voice.UploadVoiceNote.future(
                held_requests(data, "big.wav", hold, 7 * MiB), metadata=me.metadata,
                timeout=UPLOAD_TIMEOUT_S)
            uploading = wait_until(lambda: self.incomplete_uploads(s3), CLEANUP_TIMEOUT_S,
                                   "a multipart upload under way")
            self.assertEqual(len(uploading), 1)
            self.assertTrue(uploading[0].startswith(me.user_id + "/"), uploading)
            self.assertEqual(self.objects(s3), [])  # nothing shows before the commit
            hold.set()
            note = future.result().voice_note
            key = f"{me.user_id}/{note.id}"
            self.assertEqual(uploading, [key])
            self.assertEqual(self.incomplete_uploads(s3), [])
            self.assertEqual(self.objects(s3), [key])
            status, stored = self.s3_get(s3, "/" + key)
            self.assertEqual(status, 200)
            self.assertEqual(hashlib.sha256(stored).hexdigest(), hashlib.sha256(data).hexdigest())
            self.assertEqual(note.sha256, hashlib.sha256(data).hexdigest())
            got = calls.download(note.id)
            self.assertEqual(hashlib.sha256(got).hexdigest(), note.sha256)
            self.assertEqual(got, data)
            calls.delete(note.id)
            self.assertEqual(self.s3_get(s3, "/" + key)[0], 404)
            self.assertTrue(nothing_left())

            # 25 MiB + 1 byte: five parts were sent before the refusal.
            assert_rpc_error(self, lambda: calls.upload(wav_of_size(MAX_BYTES + 1), "x.wav"),
                             grpc.StatusCode.RESOURCE_EXHAUSTED, "SIZE_001")
            wait_until(nothing_left, CLEANUP_TIMEOUT_S, "the refused upload's parts to be aborted")

            # A cancel after more than a part.
            hold = threading.Event()
            future = calls.voice.UploadVoiceNote.future(
                upload_requests(wav_of_size(12 * MiB), "held.wav", hold=hold,
                                hold_after=7 * MiB),
                metadata=me.metadata, timeout=UPLOAD_TIMEOUT_S)
            wait_until(lambda: self.incomplete_uploads(s3), CLEANUP_TIMEOUT_S,
                       "a multipart upload under way")
            future.cancel()
            hold.set()
            wait_until(nothing_left, CLEANUP_TIMEOUT_S,
                       "the cancelled upload's multipart upload to be aborted")
            self.assertEqual(calls.list(), [])


def held_requests(data, file_name, hold, hold_after):
    """An upload that waits (bounded) after hold_after bytes until hold is
    set, then sends the rest."""
    yield pb.UploadVoiceNoteRequest(metadata=pb.VoiceNoteMetadata(file_name=file_name))
    for offset in range(0, len(data), CHUNK):
        if offset == hold_after:
            hold.wait(timeout=60)
        yield pb.UploadVoiceNoteRequest(chunk=data[offset:offset + CHUNK])


if __name__ == "__main__":
    unittest.main(verbosity=2)
