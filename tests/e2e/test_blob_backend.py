"""End-to-end: twd serving with blob_backend=s3 against s3rver on loopback.

twd opens the bucket at start-up, sweeps incomplete multipart uploads older
than a day and says which backend it serves with; a bucket that is not there
stops start-up with one line naming it, and the secret key never reaches
the log. (s3rver checks no signature; tests/unit/clients/test_sigv4.c is
the signature test.)
"""
import os
import shutil
import tempfile
import unittest

from twd_harness import REPO_DIR, PortPrinter, Twd, run_twd

LAUNCH = os.path.join(REPO_DIR, "tests", "unit", "clients", "s3rver_launch.js")
NODE = shutil.which("node") or "/usr/bin/node"
SECRET = "e2e-secret-never-logged"
BUCKET = "tw-e2e"


class S3rver(PortPrinter):
    """s3rver (package.json) on a free loopback port with one bucket."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="twd-e2e-s3rver-")
        super().__init__([NODE, LAUNCH, os.path.join(REPO_DIR, "node_modules"), self.dir, BUCKET],
                         "s3rver")

    def __enter__(self):
        try:
            super().__enter__()
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.endpoint = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc):
        super().__exit__(*exc)
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
