"""
Voice notes transcribed by the Deepgram engine (voice_engine=deepgram), end
to end: a real twd, the generated stubs, and tests/unit/clients/fake_vendor.py
on loopback answering POST /v1/listen as Deepgram's documentation shows (the
clients' unit tests use the same server and answers, tests/data/deepgram).

Each job run makes one call (deepgram_max_attempts=1), so the retries seen
here are the durable job queue's: a 429 or a 500 or a hang past the timeout
is tried again after the job's backoff, and the note ends FAILED after the
last of voice_job_attempts; a 400 or a 401 ends it FAILED at once. The
circuit breaker stops calling Deepgram after repeated failures.
"""
import hashlib
import json
import os
import unittest
import urllib.request

from twd_harness import REPO_DIR, TEST_AUDIO_DIR, PortPrinter, Twd, run_twd
from test_voice import VOICE_ENV, VoiceCalls, read
from tw.v1 import voice_service_pb2 as pb  # noqa: E402

FAKE_VENDOR = os.path.join(REPO_DIR, "tests", "unit", "clients", "fake_vendor.py")
DEEPGRAM_DATA = os.path.join(REPO_DIR, "tests", "data", "deepgram")
SPEECH_MP3 = os.path.join(TEST_AUDIO_DIR, "speech.mp3")
KEY = "dg-e2e-key"
ATTEMPTS = 3
TIMEOUT_MS = 1000
# Three attempts, one timeout each and backoffs of 1 s and 2 s between them.
FINAL_TIMEOUT_S = 120.0

Status = pb.VoiceNoteStatus


class FakeDeepgram(PortPrinter):
    """fake_vendor.py on a free loopback port."""

    def __init__(self):
        super().__init__(["/usr/bin/python3", FAKE_VENDOR, "--data", DEEPGRAM_DATA, "--key", KEY],
                         "fake_vendor.py")

    def __enter__(self):
        super().__enter__()
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def _call(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(req, timeout=10) as reply:
            return reply.read()

    def script(self, *steps):
        self._call("POST", "/_script", list(steps))

    def reset(self):
        self._call("POST", "/_reset", [])

    def requests(self):
        return [r for r in json.loads(self._call("GET", "/_requests")) if r["path"] == "/v1/listen"]

    def env(self, key=KEY, **more):
        return {**VOICE_ENV, "TW_VOICE_ENGINE": "deepgram", "TW_DEEPGRAM_BASE_URL": self.url,
                "TW_DEEPGRAM_API_KEY": key, "TW_DEEPGRAM_MAX_ATTEMPTS": "1",
                "TW_DEEPGRAM_TIMEOUT_MS": str(TIMEOUT_MS),
                "TW_DEEPGRAM_BREAKER_FAILURES": "1000", "TW_VOICE_JOB_ATTEMPTS": str(ATTEMPTS),
                **more}


def upload_mp3(calls, **metadata):
    """Uploads speech.mp3 (tests/audio/make_speech) as calls' account."""
    return calls.voice.UploadVoiceNote(
        iter([pb.UploadVoiceNoteRequest(metadata=pb.VoiceNoteMetadata(
                  file_name="note.mp3", content_type="audio/mpeg", **metadata)),
              pb.UploadVoiceNoteRequest(chunk=read(SPEECH_MP3))]),
        metadata=calls.account.metadata, timeout=60).voice_note


def final(calls, note_id):
    done = calls.watch(note_id, timeout=FINAL_TIMEOUT_S)[-1]
    calls.test.assertIn(done.status, (Status.VOICE_NOTE_STATUS_TRANSCRIBED,
                                      Status.VOICE_NOTE_STATUS_FAILED))
    return done


class VoiceDeepgramTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = FakeDeepgram().__enter__()
        try:
            cls.twd = Twd(env=cls.fake.env()).__enter__()
        except BaseException:
            cls.fake.__exit__()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.twd.__exit__(None, None, None)
        finally:  # also when twd failed: a fake left running would hold ctest's output open
            cls.fake.__exit__()

    def setUp(self):
        self.fake.reset()
        self.me = self.twd.sign_up()
        self.calls = VoiceCalls(self, self.twd, self.me)

    def upload(self, **metadata):
        return upload_mp3(self.calls, **metadata)

    def test_success_maps_text_language_confidence_and_words(self):
        note = self.upload(language="en-US", vocabulary=[pb.VocabularyTerm(phrase="tranquility"),
                                                         pb.VocabularyTerm(phrase="posterity")])
        done = final(self.calls, note.id)
        self.assertEqual(done.status, Status.VOICE_NOTE_STATUS_TRANSCRIBED, done.failure_reason)
        t = done.transcript
        self.assertEqual(t.engine, "deepgram")
        self.assertTrue(t.text.startswith("We, the people of The United States"), t.text)
        self.assertEqual(t.language, "en-US")  # the answer has no detected_language
        self.assertAlmostEqual(t.confidence, 0.9977381, places=5)
        self.assertEqual(len(t.words), 52)
        self.assertEqual(t.words[0].word, "We,")
        self.assertEqual(t.words[0].start_offset.ToMilliseconds(), 320)
        self.assertEqual(t.words[0].end_offset.ToMilliseconds(), 800)
        self.assertAlmostEqual(t.words[0].confidence, 0.8624499, places=5)
        self.assertTrue(all(a.start_offset.ToMilliseconds() <= b.start_offset.ToMilliseconds()
                            for a, b in zip(t.words, t.words[1:])))
        self.assertEqual(self.calls.get(note.id).transcript, t)

        # What Deepgram was sent: the stored audio as is, with the options.
        [sent] = self.fake.requests()
        self.assertEqual(sent["method"], "POST")
        self.assertEqual(sent["headers"]["authorization"], "Token " + KEY)
        self.assertEqual(sent["headers"]["content-type"], "audio/mpeg")
        audio = read(SPEECH_MP3)
        self.assertEqual(sent["body_len"], len(audio))
        self.assertEqual(sent["body_sha256"], note.sha256)
        self.assertEqual(sent["body_sha256"], hashlib.sha256(audio).hexdigest())
        query = sent["query"]
        self.assertIn(["model", "nova-3"], query)
        self.assertIn(["smart_format", "true"], query)
        self.assertIn(["language", "en-US"], query)
        self.assertEqual([v for k, v in query if k == "keyterm"], ["tranquility", "posterity"])

    def test_400_fails_the_note_at_once(self):
        self.fake.script({"status": 400, "body_file": "error-400.json"})
        done = final(self.calls, self.upload().id)
        self.assertEqual(done.status, Status.VOICE_NOTE_STATUS_FAILED)
        self.assertIn("HTTP 400", done.failure_reason)
        self.assertIn("corrupt or unsupported data", done.failure_reason)
        self.assertFalse(done.HasField("transcript"))
        self.assertEqual(len(self.fake.requests()), 1)

    def test_500_is_retried_by_the_job_then_fails_after_the_last_attempt(self):
        self.fake.script(*[{"status": 500, "body_file": "error-500.json"}] * ATTEMPTS)
        done = final(self.calls, self.upload().id)
        self.assertEqual(done.status, Status.VOICE_NOTE_STATUS_FAILED)
        self.assertIn(f"failed {ATTEMPTS} times", done.failure_reason)
        self.assertIn("HTTP 500", done.failure_reason)
        self.assertEqual(len(self.fake.requests()), ATTEMPTS)

    def test_a_hang_past_the_timeout_is_retried_then_fails(self):
        self.fake.script(*[{"hang_ms": 5 * TIMEOUT_MS}] * ATTEMPTS)
        done = final(self.calls, self.upload().id)
        self.assertEqual(done.status, Status.VOICE_NOTE_STATUS_FAILED)
        self.assertIn(f"failed {ATTEMPTS} times", done.failure_reason)
        self.assertIn(f"no answer within {TIMEOUT_MS} ms", done.failure_reason)
        self.assertEqual(len(self.fake.requests()), ATTEMPTS)

    def test_429_with_retry_after_is_retried_and_then_transcribed(self):
        # Longer than the job's first backoff (at most 1 s) and its poll.
        retry_after_s = 3
        self.fake.script({"status": 429, "headers": {"Retry-After": str(retry_after_s)},
                          "body_file": "error-429.json"},
                         {"status": 503, "body_file": "error-500.json"})
        note = self.upload()
        done = final(self.calls, note.id)
        self.assertEqual(done.status, Status.VOICE_NOTE_STATUS_TRANSCRIBED, done.failure_reason)
        self.assertEqual(len(done.transcript.words), 52)
        requests = self.fake.requests()
        self.assertEqual(len(requests), 3)
        # The job ran again no sooner than Deepgram asked.
        self.assertGreaterEqual(requests[1]["monotonic_s"] - requests[0]["monotonic_s"],
                                retry_after_s)
        failed = [l for l in self.twd.logs() if l.get("msg") == "job failed"
                  and l.get("type") == "voice_transcribe" and "HTTP 429" in l.get("error", "")]
        self.assertTrue(failed, "the 429 was not a failed job run")


class VoiceDeepgramKeyTest(unittest.TestCase):
    def test_a_wrong_key_gets_401_and_fails_the_note_at_once(self):
        with FakeDeepgram() as fake, Twd(env=fake.env(key="not-the-key")) as twd:
            me = twd.sign_up()
            calls = VoiceCalls(self, twd, me)
            note = upload_mp3(calls)
            done = final(calls, note.id)
            self.assertEqual(done.status, Status.VOICE_NOTE_STATUS_FAILED)
            self.assertIn("HTTP 401", done.failure_reason)
            self.assertIn("Invalid credentials", done.failure_reason)
            self.assertNotIn("not-the-key", twd.stderr_text())
            self.assertEqual(len(fake.requests()), 1)

    def test_the_breaker_stops_calling_after_repeated_failures(self):
        with FakeDeepgram() as fake, Twd(env=fake.env(TW_DEEPGRAM_BREAKER_FAILURES="2",
                                                      TW_DEEPGRAM_BREAKER_COOLDOWN_MS="600000",
                                                      TW_VOICE_JOB_ATTEMPTS="4")) as twd:
            fake.script(*[{"status": 500, "body_file": "error-500.json"}] * 4)
            me = twd.sign_up()
            calls = VoiceCalls(self, twd, me)
            note = upload_mp3(calls)
            done = final(calls, note.id)
            self.assertEqual(done.status, Status.VOICE_NOTE_STATUS_FAILED)
            self.assertIn("failed 4 times", done.failure_reason)
            # Two calls opened the breaker; the last two attempts never left twd.
            self.assertEqual(len(fake.requests()), 2)


class VoiceDeepgramStartTest(unittest.TestCase):
    def test_deepgram_without_a_key_and_an_unknown_engine_stop_start_up(self):
        for env, expected in (
                ({"TW_VOICE_ENGINE": "deepgram"},
                 "voice_engine=deepgram needs setting deepgram_api_key"),
                ({"TW_VOICE_ENGINE": "whisper"}, "voice_engine")):
            with self.subTest(env=env):
                result = run_twd("serve", "--listen", "127.0.0.1:0", env=env, timeout=30)
                self.assertNotEqual(result.returncode, 0)
                lines = [l for l in result.stderr.splitlines() if not l.startswith("{")]
                self.assertEqual(len(lines), 1, result.stderr)
                self.assertTrue(lines[0].startswith("twd: "), lines[0])
                self.assertIn(expected, lines[0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
