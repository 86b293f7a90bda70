"""
The README's example works as written: the shell block marked
`<!-- example: calling ... -->` in README.md is run with sh from the
repository root, exactly as printed, with only the documented address
(127.0.0.1:50051, where `make run` serves) replaced by the test server's.
"""
import os
import re
import subprocess
import unittest

from twd_harness import REPO_DIR, TwdTestCase

README_ADDRESS = "127.0.0.1:50051"
EXAMPLE_TIMEOUT_S = 120


def readme_example():
    """The sh block that follows the example marker in README.md."""
    with open(os.path.join(REPO_DIR, "README.md"), encoding="utf-8") as f:
        text = f.read()
    match = re.search(r"<!-- example: calling[^>]*-->\s*```sh\n(.*?)```", text, re.S)
    return match.group(1) if match else None


class ReadmeExampleTest(TwdTestCase):
    def test_the_example_signs_up_signs_in_and_calls_as_the_user(self):
        script = readme_example()
        self.assertIsNotNone(script, "README.md lost its example block")
        run = subprocess.run(["sh", "-eu", "-c", script.replace(README_ADDRESS, self.twd.address)],
                             cwd=REPO_DIR, capture_output=True, text=True,
                             timeout=EXAMPLE_TIMEOUT_S)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("tw.v1.AuthService", run.stdout.split())
        # The last call is GetMe with the token Login returned.
        self.assertRegex(run.stdout, r'"email": "ada@example.com"[^}]*\}\s*\}\s*$')
        self.twd.wait_for_call_log(method="/tw.v1.AuthService/GetMe", status="OK")

    def test_readme_documents_the_address_make_run_serves(self):
        with open(os.path.join(REPO_DIR, "server", "config.c"), encoding="utf-8") as f:
            self.assertTrue(re.search(r'"listen".*"%s"' % re.escape(README_ADDRESS), f.read()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
