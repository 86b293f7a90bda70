"""
The store's operator commands against real twd processes: an online backup
through the operator socket while twd serves, verify (and its failure on a
damaged backup), restore into a new data directory that twd then serves,
check, migrate, and who may call AdminService at all.
"""
import glob
import os
import re
import stat
import tempfile
import unittest

import grpc

from twd_harness import RPC_TIMEOUT_S, Twd, assert_rpc_error, run_twd
from tw.v1 import admin_service_pb2, admin_service_pb2_grpc  # noqa: E402


def operator_stub(twd):
    """AdminService over the operator socket, as `twd backup create` reaches it."""
    channel = grpc.insecure_channel("unix:" + os.path.join(twd.data_dir, "twd.sock"))
    return channel, admin_service_pb2_grpc.AdminServiceStub(channel)


class OnlineBackupTest(unittest.TestCase):
    def test_backup_while_serving_then_verify_restore_and_serve_it(self):
        with tempfile.TemporaryDirectory(prefix="twd-e2e-backup-") as scratch:
            backup_dir = os.path.join(scratch, "backups")
            restored = os.path.join(scratch, "restored")
            with Twd() as twd:
                made = run_twd("backup", "create", "--to", backup_dir, "--data-dir", twd.data_dir)
                self.assertEqual(made.returncode, 0, made.stderr)
                self.assertRegex(made.stdout, r"^backup 1 in .*: \d+ files, \d+ bytes")
                # It went through the running server, which logged the call.
                twd.wait_for_call_log(method="/tw.v1.AdminService/CreateBackup", status="OK")
                self.assertTrue(twd.is_serving())

                checked = run_twd("check", "--data-dir", twd.data_dir)
                self.assertEqual(checked.returncode, 0, checked.stderr)
                self.assertTrue(checked.stdout.startswith("ok: "), checked.stdout)

            verified = run_twd("backup", "verify", "--from", backup_dir)
            self.assertEqual(verified.returncode, 0, verified.stderr)
            self.assertIn("restored and checked", verified.stdout)

            restore = run_twd("backup", "restore", "--from", backup_dir, "--data-dir", restored)
            self.assertEqual(restore.returncode, 0, restore.stderr)
            again = run_twd("backup", "restore", "--from", backup_dir, "--data-dir", restored)
            self.assertNotEqual(again.returncode, 0, "restored over an existing store")
            self.assertTrue(again.stderr.startswith("twd: restore from "), again.stderr)

            with Twd(extra_args=("--data-dir", restored)) as twd:
                self.assertTrue(twd.is_serving())

    def test_verify_fails_on_a_damaged_backup(self):
        with tempfile.TemporaryDirectory(prefix="twd-e2e-backup-") as scratch:
            backup_dir = os.path.join(scratch, "backups")
            with Twd() as twd:
                made = run_twd("backup", "create", "--to", backup_dir, "--data-dir", twd.data_dir)
                self.assertEqual(made.returncode, 0, made.stderr)
            files = [f for f in glob.glob(os.path.join(backup_dir, "**", "*"), recursive=True)
                     if os.path.isfile(f) and "/meta/" not in f and os.path.getsize(f) > 0]
            self.assertTrue(files, "the backup holds no data files")
            victim = max(files, key=os.path.getsize)
            with open(victim, "r+b") as f:
                f.seek(os.path.getsize(victim) // 2)
                f.write(b"\xde\xad\xbe\xef")
            verified = run_twd("backup", "verify", "--from", backup_dir)
            self.assertEqual(verified.returncode, 1, verified.stdout)
            self.assertTrue(verified.stderr.startswith("twd: backup in "), verified.stderr)

    def test_verify_of_an_empty_directory_fails(self):
        with tempfile.TemporaryDirectory(prefix="twd-e2e-backup-") as empty:
            verified = run_twd("backup", "verify", "--from", empty)
            self.assertEqual(verified.returncode, 1)

    def test_backup_commands_need_their_directory(self):
        for args in (("backup", "create"), ("backup", "verify"), ("backup", "nonsense")):
            result = run_twd(*args)
            self.assertEqual(result.returncode, 2, args)
            self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)


class AdminAccessTest(unittest.TestCase):
    def test_admin_calls_over_tcp_need_a_token(self):
        with Twd() as twd:
            admin = twd.stub(admin_service_pb2_grpc.AdminServiceStub)
            request = admin_service_pb2.CreateBackupRequest(directory="/tmp/never")
            assert_rpc_error(self, lambda: admin.CreateBackup(request, timeout=RPC_TIMEOUT_S),
                             grpc.StatusCode.UNAUTHENTICATED, "AUTH_002")
            self.assertFalse(os.path.exists("/tmp/never"))

    def test_operator_socket_is_private_and_validates_requests(self):
        with Twd() as twd:
            socket_path = os.path.join(twd.data_dir, "twd.sock")
            mode = stat.S_IMODE(os.stat(socket_path).st_mode)
            self.assertEqual(mode & 0o077, 0, f"socket mode {mode:o}")
            self.assertEqual(stat.S_IMODE(os.stat(twd.data_dir).st_mode) & 0o077, 0)
            channel, admin = operator_stub(twd)
            with channel:
                request = admin_service_pb2.CreateBackupRequest(directory="relative/dir")
                _, details = assert_rpc_error(
                    self, lambda: admin.CreateBackup(request, timeout=RPC_TIMEOUT_S),
                    grpc.StatusCode.INVALID_ARGUMENT, "VAL_001")
                self.assertEqual([field for field, _ in details.field_violations], ["directory"])


class MigrateAndCheckTest(unittest.TestCase):
    def test_migrations_run_at_start_and_go_down_and_up(self):
        with Twd() as twd:
            data_dir = twd.data_dir
            busy = run_twd("migrate", "status", "--data-dir", data_dir)
            self.assertEqual(busy.returncode, 1)
            self.assertIn("a twd serving it must be stopped first", busy.stderr)
            twd.stop()
            status = run_twd("migrate", "status", "--data-dir", data_dir)
            self.assertEqual(status.returncode, 0, status.stderr)
            self.assertRegex(status.stdout, r"^\s+1\s+\S+\s+applied ")
            last = re.findall(r"^\s+(\d+)\s+\S+\s+applied ", status.stdout, re.M)[-1]
            down = run_twd("migrate", "down", "--data-dir", data_dir)
            self.assertEqual(down.stdout.strip(), f"reverted migration {last}")
            self.assertIn("pending", run_twd("migrate", "status", "--data-dir", data_dir).stdout)
            up = run_twd("migrate", "up", "--data-dir", data_dir)
            self.assertEqual(up.stdout.strip(), "applied 1 migration(s)")
            self.assertEqual(run_twd("check", "--data-dir", data_dir).returncode, 0)

    def test_migrate_needs_an_action(self):
        result = run_twd("migrate", "sideways")
        self.assertEqual(result.returncode, 2)
        self.assertIn("usage: twd migrate status|up|down", result.stderr)

    def test_fast_durability_serves(self):
        with Twd(extra_args=("--durability", "fast")) as twd:
            self.assertTrue(any(line.get("durability") == "fast" for line in twd.logs()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
