"""
The README's examples work as written: every `npx buf curl` line in
README.md is run from the repository root exactly as printed, with only the
documented address (127.0.0.1:50051, where `make run` serves) replaced by the
test server's.
"""
import json
import os
import re
import shlex
import subprocess
import unittest

from twd_harness import REPO_DIR, TwdTestCase

README_ADDRESS = "127.0.0.1:50051"
BUF_TIMEOUT_S = 60


def readme_buf_commands():
    with open(os.path.join(REPO_DIR, "README.md"), encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip().startswith("npx buf curl")]


class ReadmeExamplesTest(TwdTestCase):
    def test_readme_has_buf_curl_examples(self):
        self.assertGreaterEqual(len(readme_buf_commands()), 2)

    def test_every_buf_curl_example_works(self):
        for command in readme_buf_commands():
            with self.subTest(command=command):
                args = shlex.split(command.replace(README_ADDRESS, self.twd.address))
                run = subprocess.run(args, cwd=REPO_DIR, capture_output=True, text=True,
                                     timeout=BUF_TIMEOUT_S)
                self.assertEqual(run.returncode, 0, run.stderr)
                if "--list-services" in args:
                    self.assertIn("tw.v1.ServerInfoService", run.stdout.split())
                else:
                    self.assertEqual(json.loads(run.stdout)["apiVersion"], "tw.v1")

    def test_readme_documents_the_address_make_run_serves(self):
        with open(os.path.join(REPO_DIR, "server", "config.c"), encoding="utf-8") as f:
            self.assertTrue(re.search(r'"listen".*"%s"' % re.escape(README_ADDRESS), f.read()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
