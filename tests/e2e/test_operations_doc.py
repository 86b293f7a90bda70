"""
docs/operations.md works as written: every sh block marked `<!-- run -->` is
run, in order, with sh -eu against a live twd, with only the page's stated
assumptions replaced (data in ./data, gRPC on 127.0.0.1:50051, HTTP on
127.0.0.1:8080, /srv/twd-backups, /srv/twd-restored) and `twd` on PATH.
The page's own account (ada@example.com) exists first.
"""
import os
import re
import subprocess
import tempfile
import unittest

from twd_harness import REPO_DIR, TWD, TwdTestCase

BLOCK_TIMEOUT_S = 300


def runnable_blocks():
    with open(os.path.join(REPO_DIR, "docs", "operations.md"), encoding="utf-8") as f:
        return re.findall(r"<!-- run -->\s*```sh\n(.*?)```", f.read(), re.S)


class OperationsDocTest(TwdTestCase):
    def test_every_command_of_the_page_runs(self):
        blocks = runnable_blocks()
        self.assertGreaterEqual(len(blocks), 10)
        self.twd.sign_up(email="ada@example.com")
        with tempfile.TemporaryDirectory(prefix="twd-ops-doc-") as work:
            with open(os.path.join(work, "admin-password.txt"), "w") as f:
                f.write("correct horse battery staple\n")
            replace = {
                "127.0.0.1:50051": self.twd.address,
                "127.0.0.1:8080": f"127.0.0.1:{self.twd.http_port}",
                "/srv/twd-backups": os.path.join(work, "backups"),
                "/srv/twd-restored": os.path.join(work, "restored"),
            }
            env = dict(os.environ, TW_DATA_DIR=self.twd.data_dir,
                       PATH=os.path.dirname(TWD) + os.pathsep + os.environ["PATH"])
            for block in blocks:
                script = block
                for old, new in replace.items():
                    script = script.replace(old, new)
                with self.subTest(block=block.splitlines()[0]):
                    run = subprocess.run(["sh", "-eu", "-c", script], cwd=work, env=env,
                                         capture_output=True, text=True,
                                         timeout=BLOCK_TIMEOUT_S)
                    self.assertEqual(run.returncode, 0,
                                     f"{block}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}")
                    self.assertTrue(run.stdout.strip(), f"{block} printed nothing")
            self.assertTrue(os.path.exists(os.path.join(work, "ada-export", "records.jsonl")))
            self.assertTrue(os.path.exists(os.path.join(work, "restored", "db", "CURRENT")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
