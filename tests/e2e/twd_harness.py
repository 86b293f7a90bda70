"""
twd_harness: start a real twd and call it as an app would.

Every end-to-end test imports this module. It starts `twd serve` on a free
loopback port with a fresh data directory, waits until gRPC health says
SERVING, hands out channels and stubs generated from proto/, reads the
server's JSON log, decodes google.rpc.Status error details, and fails the
test when the server's stderr shows a sanitizer report.

ctest sets its inputs (tests/e2e/CMakeLists.txt):
  TWD           the twd binary under test
  TW_E2E_STUBS  Python stubs from proto/ and the standard protos
  TW_REPO       the source checkout (node_modules/.bin/buf, proto/)
Run one file with its output: `ctest --test-dir build -R e2e_health -V`.

    class HealthTest(TwdTestCase):          # one twd shared by the class
        twd_env = {"TW_LOG_LEVEL": "debug"}
        def test_x(self):
            health = self.twd.stub(health_pb2_grpc.HealthStub)

    with Twd(extra_args=("--shutdown-grace-ms", "0")) as twd:   # a twd of its own
        code = twd.stop()

Signed-in calls: `twd.sign_up()` registers a fresh account (a unique email
and a password of its own unless given) through AuthService.Register and
returns an Account; pass its `metadata` with each call that needs a token:

    me = twd.sign_up()                      # Account(email, password, user_id, ...)
    tasks = self.twd.stub(task_service_pb2_grpc.TaskServiceStub)
    tasks.ListTasks(request, metadata=me.metadata, timeout=RPC_TIMEOUT_S)
    other = twd.sign_up(email="b@example.com", password="a long password")
    again = twd.sign_in(other.email, other.password)   # a second session

Account fields: email, password, user_id (UUID text), session_id,
access_token, refresh_token, metadata ([("authorization", "Bearer ...")]).
twd.operator_channel() reaches the operator socket (admin role, no token).
Every Twd sets TW_PASSWORD_SCRYPT_LOG2_N=12 (fast hashes) unless env says
otherwise; twd's default is 17. Its HTTP side (/health, /metrics) listens on
a free loopback port (TW_HTTP_LISTEN=127.0.0.1:0 unless env says otherwise):
`twd.http_get("/health")` returns (status, headers, body text). It also logs
every call (TW_LOG_SAMPLE=1, TW_LOG_LINES_PER_S=0, where twd samples and
bounds call lines), since tests wait for a call's log line; tests of the
log's own policy set their own.

Only the standard library, grpc and google.protobuf: no pytest.
"""
import dataclasses
import glob
import importlib
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import grpc


def _required_env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"twd_harness: ${name} is not set; run the end-to-end tests through ctest "
                 f"(ctest --test-dir BUILD_DIR -R e2e), which sets TWD, TW_E2E_STUBS and TW_REPO")
    return os.path.abspath(value)


TWD = _required_env("TWD")
# tests/tools/store_dump.c: prints every key and value of a store (read-only).
STORE_DUMP = os.environ.get("TW_STORE_DUMP")
STUBS_DIR = _required_env("TW_E2E_STUBS")
REPO_DIR = _required_env("TW_REPO")
# Speech recordings the build made (tests/audio/make_speech).
TEST_AUDIO_DIR = _required_env("TW_TEST_AUDIO_DIR")

# The generated modules live at their proto paths: google/rpc/status_pb2.py,
# grpc/health/v1/health_pb2.py, tw/v1/..._pb2.py. `google` is a namespace
# package, so a sys.path entry is enough; `grpc` is grpcio's own regular
# package, so its __path__ must also cover our grpc/health and grpc/reflection.
sys.path.insert(0, STUBS_DIR)
grpc.__path__.append(os.path.join(STUBS_DIR, "grpc"))

from google.rpc import error_details_pb2, status_pb2  # noqa: E402
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

ERROR_DOMAIN = "timeandwellness"
SERVING = health_pb2.HealthCheckResponse.SERVING

# Bounds on waiting; generous because sanitizer builds run several times slower.
STARTUP_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0
RPC_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.05
# Tries at a port: another process can take a free port before twd binds it.
PORT_ATTEMPTS = 5

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
# Password hashing cost for test servers: fast, unless a test sets its own.
TEST_SCRYPT_LOG2_N = "12"
# Every call logged, unbounded: tests wait for call lines (call_logs()).
TEST_CALL_LOG = {"TW_LOG_SAMPLE": "1", "TW_LOG_LINES_PER_S": "0"}
_account_numbers = itertools.count(1)


# ---- small utilities ---------------------------------------------------------

def wait_until(predicate, timeout, what):
    """Polls predicate every POLL_INTERVAL_S until it returns something truthy,
    and returns that; fails with `what` once timeout seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL_INTERVAL_S)


def free_port():
    """A loopback port nobody listens on right now. SO_REUSEADDR stays off so
    that a port still held by anyone (even in TIME_WAIT) is not offered."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PortPrinter:
    """A helper server (s3rver, the fake vendor) started as cmd, which
    prints "PORT <n>" once it listens on 127.0.0.1; as a context manager,
    self.port is that port and the process is stopped on exit."""

    START_TIMEOUT_S = 30.0

    def __init__(self, cmd, what):
        self.cmd, self.what = cmd, what

    def __enter__(self):
        self.process = subprocess.Popen(self.cmd, stdout=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + self.START_TIMEOUT_S
        line = ""
        while time.monotonic() < deadline and not line.startswith("PORT "):
            line = self.process.stdout.readline()
            if line == "" and self.process.poll() is not None:
                break
        if not line.startswith("PORT "):
            self.__exit__(None, None, None)
            raise RuntimeError(f"{self.what} did not start")
        self.port = int(line.split()[1])
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


def sanitizer_report(text):
    """The part of a process's stderr from its first sanitizer error on (the
    whole report, stacks included), or "" when there is none."""
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines)
                  if any(marker in line for marker in SANITIZER_MARKERS)), None)
    return "" if first is None else "\n".join(lines[first:])


def _fail_on_sanitizer_report(text, who):
    report = sanitizer_report(text)
    if report:
        raise AssertionError(f"{who} reported sanitizer errors:\n{report}")


def _merged_env(overrides):
    env = dict(os.environ)
    env.update(overrides or {})
    return env


class FakeClock:
    """A wall clock a test moves for a twd it starts with `env=clock.env`:
    Debian's libfaketime, preloaded, shifts twd's real-time clock by an
    offset it rereads from a file on every call (the monotonic clock, which
    deadlines and timers use, stays real). For history that an API only
    accepts as it happens (a focus session started days ago)."""

    LIBRARY = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"

    def __init__(self):
        self._dir = tempfile.mkdtemp(prefix="twd-e2e-clock-")
        self._file = os.path.join(self._dir, "offset")
        self.reset()

    @property
    def env(self):
        asan = os.environ.get("ASAN_OPTIONS", "")
        return {"LD_PRELOAD": self.LIBRARY, "FAKETIME_TIMESTAMP_FILE": self._file,
                "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                # The sanitizer runtime wants to come first; libfaketime only
                # wraps the clock, so the order does not matter here.
                "ASAN_OPTIONS": ":".join(filter(None, [asan, "verify_asan_link_order=0"]))}

    def set(self, when):
        """twd's clock reads `when` (a datetime) from now on, and ticks on."""
        offset = when.timestamp() - time.time()
        with open(self._file + ".tmp", "w") as f:
            f.write(f"{offset:+.3f}\n")
        os.replace(self._file + ".tmp", self._file)

    def reset(self):
        with open(self._file, "w") as f:
            f.write("+0\n")

    def close(self):
        shutil.rmtree(self._dir, ignore_errors=True)


def run_twd(*args, env=None, timeout=30.0):
    """Runs a one-shot twd command (--version, methods, a serve that must
    fail) in a scratch working directory, so a default ./data lands there.
    Returns the CompletedProcess with text stdout and stderr."""
    with tempfile.TemporaryDirectory(prefix="twd-e2e-run-") as cwd:
        result = subprocess.run([TWD, *args], cwd=cwd, env=_merged_env(env), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    _fail_on_sanitizer_report(result.stderr, f"twd {' '.join(args)}")
    return result


def api_service_names():
    """Full names of every tw.v1 service, read from the generated stubs, so a
    new service is covered without editing the tests."""
    names = []
    for path in sorted(glob.glob(os.path.join(STUBS_DIR, "tw", "v1", "*_pb2.py"))):
        module = importlib.import_module("tw.v1." + os.path.basename(path)[:-3])
        names.extend(s.full_name for s in module.DESCRIPTOR.services_by_name.values())
    return names


def api_methods(standard=True):
    """(service descriptor, method descriptor) of every method twd serves:
    every tw.v1 service and, with standard, gRPC health and reflection. Tests
    that must cover every method take them from here, so a new method is
    covered without editing a list."""
    from google.protobuf import symbol_database
    pool = symbol_database.Default().pool
    services = [pool.FindServiceByName(name) for name in api_service_names()]
    if standard:
        from grpc.health.v1 import health_pb2
        from grpc.reflection.v1 import reflection_pb2
        services.append(health_pb2.DESCRIPTOR.services_by_name["Health"])
        services.append(reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"])
    return [(s, m) for s in services for m in s.methods]


def method_flags():
    """{"/pkg.Service/Method": {"admin", "write", ...}} as `twd methods` lists
    them: who may call a method (public, admin) comes from the server's own
    method tables."""
    result = run_twd("methods")
    if result.returncode != 0:
        raise AssertionError(f"twd methods failed: {result.stderr}")
    flags = {}
    for line in result.stdout.splitlines():
        path, kind, *rest = line.split(None, 2)
        flags[path] = set(rest[0].split()) if rest else set()
    return flags


def message_class(descriptor):
    """The generated class of a message descriptor."""
    from google.protobuf import symbol_database
    return symbol_database.Default().GetPrototype(descriptor)


def call_method(channel, service, method, request, metadata=None, timeout=10.0,
                stream_timeout=1.5):
    """Calls any method by its descriptors, as a generated stub would: a
    client stream sends `request` as a list of messages, a server stream is
    read until it ends or stream_timeout passes. Returns the response (a list
    for a server stream) or raises grpc.RpcError."""
    path = f"/{service.full_name}/{method.name}"
    pack = lambda m: m.SerializeToString()  # noqa: E731
    unpack = message_class(method.output_type).FromString
    if method.client_streaming and method.server_streaming:
        return list(channel.stream_stream(path, pack, unpack)(
            iter(request), timeout=stream_timeout, metadata=metadata))
    if method.client_streaming:
        return channel.stream_unary(path, pack, unpack)(
            iter(request), timeout=timeout, metadata=metadata)
    if method.server_streaming:
        return list(channel.unary_stream(path, pack, unpack)(
            request, timeout=stream_timeout, metadata=metadata))
    return channel.unary_unary(path, pack, unpack)(request, timeout=timeout, metadata=metadata)


# ---- error details -----------------------------------------------------------

@dataclasses.dataclass
class ErrorDetails:
    """A google.rpc.Status from grpc-status-details-bin, with its details unpacked."""
    code: grpc.StatusCode
    message: str
    reason: str = None          # google.rpc.ErrorInfo
    domain: str = None
    metadata: dict = dataclasses.field(default_factory=dict)
    field_violations: list = dataclasses.field(default_factory=list)  # (field, description)
    retry_delay: float = None   # google.rpc.RetryInfo, in seconds
    status: status_pb2.Status = None


def rpc_error_details(rpc_error):
    """Decodes the grpc-status-details-bin trailer of a failed call, as any
    standard client would; None when the server sent none."""
    raw = next((value for key, value in rpc_error.trailing_metadata() or ()
                if key == "grpc-status-details-bin"), None)
    if raw is None:
        return None
    status = status_pb2.Status.FromString(raw)
    details = ErrorDetails(code=_STATUS_BY_NUMBER.get(status.code, status.code),
                           message=status.message, status=status)
    for any_detail in status.details:
        info = error_details_pb2.ErrorInfo()
        bad_request = error_details_pb2.BadRequest()
        retry = error_details_pb2.RetryInfo()
        if any_detail.Unpack(info):
            details.reason, details.domain = info.reason, info.domain
            details.metadata = dict(info.metadata)
        elif any_detail.Unpack(bad_request):
            details.field_violations = [(v.field, v.description)
                                        for v in bad_request.field_violations]
        elif any_detail.Unpack(retry):
            details.retry_delay = retry.retry_delay.ToTimedelta().total_seconds()
    return details


def assert_rpc_error(test, call, code, reason=None):
    """Runs call() and checks that it fails with the gRPC status `code`. With
    a reason, also checks the error details a client relies on: a
    google.rpc.Status that agrees with the status, an ErrorInfo with that
    reason in our domain, and the request id. Returns (rpc_error, details)."""
    with test.assertRaises(grpc.RpcError) as caught:
        call()
    error = caught.exception
    test.assertEqual(error.code(), code, f"status of {error!r}")
    details = rpc_error_details(error)
    if reason is not None:
        test.assertIsNotNone(details, "no grpc-status-details-bin trailer")
        test.assertEqual(details.code, code)
        test.assertEqual(details.message, error.details())
        test.assertEqual(details.reason, reason)
        test.assertEqual(details.domain, ERROR_DOMAIN)
        test.assertTrue(details.metadata.get("request_id"), "no request_id in ErrorInfo")
    return error, details


# ---- a running twd -------------------------------------------------------------

class Twd:
    """One `twd serve` process on 127.0.0.1 with a data directory of its own.

    As a context manager it starts twd and waits until it is SERVING; on exit
    it closes its channels, stops twd (SIGTERM, then SIGKILL after
    STOP_TIMEOUT_S), prints the log tail when the block failed, and fails when
    twd did not exit 0 or its stderr shows a sanitizer report.

    extra_args: more `serve` options; env: TW_* and other variables on top of
    ours; config: a dict written as the JSON --config file; tls_root: the PEM
    certificate to trust when twd serves TLS (then every channel is TLS);
    data_dir: serve this (kept) data directory instead of a fresh one, as a
    restart of an earlier Twd does with that Twd's data_dir."""

    def __init__(self, extra_args=(), env=None, config=None, tls_root=None, data_dir=None):
        self.extra_args = tuple(extra_args)
        self.tls_root = tls_root
        self.given_data_dir = data_dir
        # Plan limits (100 metered calls a period on the free plan) are
        # counted but not enforced, so that tests of other features can
        # make more; test_billing turns them on.
        self.env = {"TW_PASSWORD_SCRYPT_LOG2_N": TEST_SCRYPT_LOG2_N,
                    "TW_HTTP_LISTEN": "127.0.0.1:0", "TW_PLAN_LIMITS": "count",
                    **TEST_CALL_LOG, **(env or {})}
        self.config = config
        self.port = None
        self.http_port = None
        self.process = None
        self.temp_dir = None
        self.data_dir = None
        self.stderr_path = None
        self._channels = []
        self._default_channel = None
        self._exit_code = None  # set once we have reaped twd

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    # -- starting ---------------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self._cleanup()
            raise
        return self

    def start(self):
        self.temp_dir = tempfile.mkdtemp(prefix="twd-e2e-")
        self.data_dir = self.given_data_dir or os.path.join(self.temp_dir, "data")
        self.stderr_path = os.path.join(self.temp_dir, "twd.stderr")
        args = ["serve", "--data-dir", self.data_dir]
        if self.config is not None:
            config_path = os.path.join(self.temp_dir, "config.json")
            with open(config_path, "w") as f:
                json.dump(self.config, f)
            args += ["--config", config_path]

        for _ in range(PORT_ATTEMPTS):
            self.port = free_port()
            self._launch([*args, "--listen", self.address, *self.extra_args])
            if self._wait_until_serving():
                return
            if "Address already in use" not in self.stderr_text():
                raise RuntimeError(f"twd exited with {self._exit_code} while starting:\n"
                                   + self.stderr_text())
        raise RuntimeError(f"no free port after {PORT_ATTEMPTS} tries:\n" + self.stderr_text())

    def _launch(self, args):
        with open(self.stderr_path, "wb") as log:
            self.process = subprocess.Popen([TWD, *args], cwd=self.temp_dir,
                                            env=_merged_env(self.env), stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log)
        self._exit_code = None

    def _wait_until_serving(self):
        """True once twd answers Check("") with SERVING; False when it exited."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._exit_code = self.process.returncode
                return False
            # A fresh channel per try: a channel that failed to connect backs
            # off for a second or more before it tries again.
            with self._new_channel() as channel:
                try:
                    reply = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=1.0)
                    if reply.status == SERVING and self._listening_here():
                        return True
                except grpc.RpcError:
                    pass
            time.sleep(POLL_INTERVAL_S)
        self.kill()
        raise RuntimeError(f"twd was not SERVING within {STARTUP_TIMEOUT_S:g} s:\n"
                           + self.stderr_text())

    def _listening_here(self):
        """Whether our twd logged that it listens on our port: what answered
        health is then ours, not another server's. Notes its HTTP port."""
        for line in self.logs():
            if line.get("msg") == "listening" and line.get("port") == self.port:
                self.http_port = line.get("http_port")
                return True
        return False

    # -- calling ------------------------------------------------------------------

    def _new_channel(self, options=()):
        if self.tls_root is None:
            return grpc.insecure_channel(self.address, options=list(options))
        credentials = grpc.ssl_channel_credentials(root_certificates=self.tls_root)
        return grpc.secure_channel(self.address, credentials, options=list(options))

    def channel(self, options=()):
        """A new channel to twd (TLS when tls_root is set), closed when the
        harness stops."""
        channel = self._new_channel(options)
        self._channels.append(channel)
        return channel

    def stub(self, stub_class):
        """A generated stub on a channel shared by this harness's stubs."""
        if self._default_channel is None:
            self._default_channel = self.channel()
        return stub_class(self._default_channel)

    def operator_channel(self):
        """A channel to the operator socket (calls act with the admin role),
        closed when the harness stops."""
        channel = grpc.insecure_channel("unix:" + os.path.join(self.data_dir, "twd.sock"))
        self._channels.append(channel)
        return channel

    def http_get(self, path, headers=None, method="GET", body=None, timeout=RPC_TIMEOUT_S):
        """One request to twd's HTTP side (HTTPS when tls_root is set):
        (status, headers as a dict with lower-case names, body text)."""
        import http.client
        import ssl
        if self.tls_root is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        else:
            context = ssl.create_default_context(cadata=self.tls_root.decode())
            context.check_hostname = False
            conn = http.client.HTTPSConnection("127.0.0.1", self.http_port, timeout=timeout,
                                               context=context)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            reply = conn.getresponse()
            return (reply.status, {k.lower(): v for k, v in reply.getheaders()},
                    reply.read().decode())
        finally:
            conn.close()

    # -- accounts -------------------------------------------------------------

    def sign_up(self, email=None, password=None, display_name="Test User", **fields):
        """Registers a new account through AuthService.Register and returns
        its Account (signed in). email and password default to fresh ones;
        fields are more RegisterRequest fields (time_zone, locale, device)."""
        from tw.v1 import auth_service_pb2, auth_service_pb2_grpc
        if email is None:
            email = f"user{next(_account_numbers)}-{secrets.token_hex(4)}@example.com"
        if password is None:
            password = "pw-" + secrets.token_urlsafe(12)
        auth = self.stub(auth_service_pb2_grpc.AuthServiceStub)
        reply = auth.Register(auth_service_pb2.RegisterRequest(
            email=email, password=password, display_name=display_name, **fields),
            timeout=RPC_TIMEOUT_S)
        return Account.from_reply(email, password, reply)

    def sign_in(self, email, password, **fields):
        """Logs in (a new session) through AuthService.Login; an Account."""
        from tw.v1 import auth_service_pb2, auth_service_pb2_grpc
        auth = self.stub(auth_service_pb2_grpc.AuthServiceStub)
        reply = auth.Login(auth_service_pb2.LoginRequest(email=email, password=password,
                                                          **fields), timeout=RPC_TIMEOUT_S)
        return Account.from_reply(email, password, reply)

    def store_records(self):
        """Every (column family, key bytes, value bytes) in twd's store, read
        with tw-store-dump (read-only: twd may keep serving)."""
        if not STORE_DUMP:
            raise unittest.SkipTest("TW_STORE_DUMP is not set")
        result = subprocess.run([STORE_DUMP, self.data_dir], text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=RPC_TIMEOUT_S)
        if result.returncode != 0:
            raise AssertionError(f"tw-store-dump failed: {result.stderr}")
        records = []
        for line in result.stdout.splitlines():
            row = json.loads(line)
            records.append((row["cf"], bytes.fromhex(row["key"]), bytes.fromhex(row["value"])))
        return records

    def is_serving(self):
        """Whether twd answers health Check("") with SERVING, on a new channel."""
        with self._new_channel() as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                              timeout=RPC_TIMEOUT_S)
        return reply.status == SERVING

    # -- the log ------------------------------------------------------------------

    def stderr_text(self, since=0):
        """What twd wrote to stderr (and stdout), from byte offset `since`."""
        if self.stderr_path is None or not os.path.exists(self.stderr_path):
            return ""
        with open(self.stderr_path, "rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")

    def log_size(self):
        """Bytes of log so far: an offset for since= in logs() and log_tail()."""
        return os.path.getsize(self.stderr_path)

    def logs(self, since=0):
        """twd's stderr, one dict per line: the JSON log line, or {"raw": text}
        for anything else (gRPC or sanitizer output, `twd:` lines)."""
        lines = []
        for text in self.stderr_text(since).splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                line = None
            lines.append(line if isinstance(line, dict) else {"raw": text})
        return lines

    def call_logs(self, **fields):
        """The per-call log lines ("msg": "call") whose fields equal `fields`,
        e.g. call_logs(request_id="abc")."""
        return [line for line in self.logs() if line.get("msg") == "call"
                and all(line.get(k) == v for k, v in fields.items())]

    def wait_for_call_log(self, timeout=RPC_TIMEOUT_S, **fields):
        """The log line of a call matching `fields`, waiting for it: twd writes
        it when the call is released, which may be after the client returns."""
        matches = wait_until(lambda: self.call_logs(**fields), timeout,
                             f"a call log line with {fields}")
        return matches[0]

    def log_tail(self, lines=40, since=0):
        return "\n".join(self.stderr_text(since).splitlines()[-lines:])

    # -- stopping -------------------------------------------------------------------

    def send_signal(self, sig):
        self.process.send_signal(sig)

    def wait(self, timeout):
        """twd's exit code; fails when it has not exited within timeout seconds."""
        try:
            self._exit_code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"twd did not exit within {timeout:g} s") from None
        return self._exit_code

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT_S):
        """Sends sig and returns the exit code; kills twd and fails when it
        does not exit within timeout seconds."""
        if self.process.poll() is None:
            self.send_signal(sig)
        try:
            return self.wait(timeout)
        except AssertionError:
            self.kill()
            raise

    def kill(self):
        """SIGKILL; returns the exit code (-9)."""
        if self.process.poll() is None:
            self.process.kill()
        self._exit_code = self.process.wait()
        return self._exit_code

    def __exit__(self, exc_type, exc, tb):
        problems = []
        for channel in self._channels:
            channel.close()
        self._channels.clear()
        if self.process is not None and self._exit_code is None:
            try:
                code = self.stop()
                if code != 0:
                    problems.append(f"twd exited with {code} when stopped with SIGTERM")
            except AssertionError as error:
                problems.append(f"{error} after SIGTERM; killed it")
        report = sanitizer_report(self.stderr_text())
        if report:
            problems.append(f"sanitizer errors in twd's stderr:\n{report}")
        if (exc_type is not None and not issubclass(exc_type, unittest.SkipTest)) or problems:
            print(f"\n--- twd on {self.address}: last lines of its log ---\n"
                  f"{self.log_tail()}\n---", file=sys.stderr)
        self._cleanup()
        if problems and exc_type is None:
            raise AssertionError("\n".join(problems))
        return False

    def _cleanup(self):
        if self.process is not None and self.process.poll() is None:
            self.kill()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


# ---- test cases with a shared twd ------------------------------------------------

class TwdTestCase(unittest.TestCase):
    """Tests that share one twd, started once for the class as self.twd.
    Subclasses set twd_args / twd_env / twd_config to configure it. When a
    test fails, what twd logged during that test is printed."""

    twd_args = ()
    twd_env = None
    twd_config = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.twd = cls.enterClassContext(Twd(cls.twd_args, cls.twd_env, cls.twd_config))

    def run(self, result=None):
        if result is None or not hasattr(type(self), "twd"):
            return super().run(result)
        problems_before = len(result.failures) + len(result.errors)
        log_start = self.twd.log_size()
        outcome = super().run(result)
        log = self.twd.log_tail(since=log_start)
        if len(result.failures) + len(result.errors) > problems_before and log:
            print(f"\n--- twd log during {self.id()} ---\n"
                  f"{log}\n---", file=sys.stderr)
        return outcome

    def assertServing(self):
        """The shared twd still answers health checks (after a test abused it)."""
        self.assertTrue(self.twd.is_serving(), "twd is no longer SERVING")


@dataclasses.dataclass
class Account:
    """A signed-in account, as Twd.sign_up and Twd.sign_in return it."""
    email: str
    password: str
    user_id: str
    session_id: str
    access_token: str
    refresh_token: str

    @classmethod
    def from_reply(cls, email, password, reply):
        return cls(email=email, password=password, user_id=reply.user.id,
                   session_id=reply.tokens.session_id, access_token=reply.tokens.access_token,
                   refresh_token=reply.tokens.refresh_token)

    @property
    def metadata(self):
        """Call metadata carrying the access token, ready for metadata=."""
        return [("authorization", f"Bearer {self.access_token}")]


def metadata(**entries):
    """gRPC metadata from keyword arguments: metadata(x_request_id="abc")
    gives [("x-request-id", "abc")]."""
    return [(key.replace("_", "-"), value) for key, value in entries.items()]


def initial_metadata(call):
    """A call's initial (response header) metadata as a dict."""
    return dict(call.initial_metadata())
