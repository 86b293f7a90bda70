"""End-to-end: twd serving with blob_backend=s3 against s3rver on loopback.

twd opens the bucket at start-up, sweeps incomplete multipart uploads older
than a day and says which backend it serves with; a bucket that is not there
stops start-up with one line naming it, and the secret key never reaches
the log. (s3rver checks no signature; tests/unit/clients/test_sigv4.c is
the signature test.)
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from twd_harness import REPO_DIR, Twd, run_twd

LAUNCH = os.path.join(REPO_DIR, "tests", "unit", "clients", "s3rver_launch.js")
NODE = shutil.which("node") or "/usr/bin/node"
SECRET = "e2e-secret-never-logged"
BUCKET = "tw-e2e"
START_TIMEOUT_S = 20.0


class S3rver:
    """s3rver (package.json) on a free loopback port with one bucket."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="twd-e2e-s3rver-")
        self.process = subprocess.Popen(
            [NODE, LAUNCH, os.path.join(REPO_DIR, "node_modules"), self.dir, BUCKET],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        line = ""
        while time.monotonic() < deadline and not line.startswith("PORT "):
            line = self.process.stdout.readline()
            if line == "" and self.process.poll() is not None:
                break
        if not line.startswith("PORT "):
            self.__exit__(None, None, None)
            raise RuntimeError("s3rver did not start")
        self.endpoint = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def env(self, bucket=BUCKET):
        return {"TW_BLOB_BACKEND": "s3", "TW_S3_ENDPOINT": self.endpoint,
                "TW_S3_BUCKET": bucket, "TW_S3_ACCESS_KEY_ID": "S3RVER",
                "TW_S3_SECRET_ACCESS_KEY": SECRET, "TW_S3_MAX_ATTEMPTS": "1"}


class BlobBackendTest(unittest.TestCase):
    def test_twd_serves_with_s3_blob_storage(self):
        with S3rver() as s3, Twd(env=s3.env()) as twd:
            logs = twd.logs()
            listening = [l for l in logs if l.get("msg") == "listening"]
            self.assertEqual(listening[-1]["blob_backend"], "s3")
            self.assertFalse(listening[-1]["deepgram"])
            sweeps = [l for l in logs if l.get("msg") == "s3 sweep of incomplete uploads"]
            self.assertEqual(len(sweeps), 1, logs)
            self.assertEqual(sweeps[0]["aborted"], 0)
            self.assertEqual(sweeps[0]["older_than_ms"], 86400000)
            self.assertNotIn(SECRET, twd.stderr_text())

    def test_a_missing_bucket_stops_start_up_with_one_line(self):
        with S3rver() as s3:
            result = run_twd("serve", "--listen", "127.0.0.1:0", env=s3.env("no-such-bucket"),
                             timeout=30)
        self.assertNotEqual(result.returncode, 0)
        lines = [l for l in result.stderr.splitlines() if not l.startswith("{")]
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("twd: cannot open blob storage in S3 bucket "
                                            "no-such-bucket"), lines[0])
        self.assertNotIn(SECRET, result.stderr)

    def test_s3_without_its_settings_is_a_usage_error(self):
        result = run_twd("serve", env={"TW_BLOB_BACKEND": "s3"}, timeout=10)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("blob_backend=s3 needs setting s3_endpoint", result.stderr)


if __name__ == "__main__":
    unittest.main()
