"""
docker/ without a container engine (none runs on CI's machine): the image's
build stage runs the very steps CI runs (scripts/bootstrap and the CMake
build), its slim runtime stage installs a package for every shared library
the twd that CI built links, and it runs as a non-root user with a data
volume and a health check on /health; the compose file wires twd to MinIO,
Prometheus and Grafana with the files this directory holds.
"""
import os
import re
import subprocess
import unittest

from twd_harness import REPO_DIR, TWD

DOCKER = os.path.join(REPO_DIR, "docker")


def read(*parts):
    with open(os.path.join(REPO_DIR, *parts), encoding="utf-8") as f:
        return f.read()


def runtime_packages(dockerfile):
    """The packages the runtime stage's apt-get install names."""
    runtime = dockerfile.split("AS runtime", 1)[1]
    install = re.search(r"apt-get install -y --no-install-recommends(.*?)&&", runtime, re.S)
    return set(install.group(1).replace("\\", " ").split())


# The runtimes a sanitizer build of twd links in addition to the image's.
SANITIZER_RUNTIMES = ("libasan.so", "libubsan.so", "liblsan.so", "libtsan.so")


def linked_packages(binary):
    """The Debian package owning each library binary names as NEEDED."""
    dynamic = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True,
                             check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic)
    resolved = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(
        ["ldd", binary], capture_output=True, text=True, check=True).stdout, re.M))
    packages = {}
    for lib in needed:
        path = os.path.realpath(resolved[lib])
        for candidate in (path, path.replace("/usr/lib/", "/lib/", 1)):
            owner = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if owner.returncode == 0:
                packages[lib] = owner.stdout.split(":")[0]
                break
        else:
            packages[lib] = None
    return packages


class DockerfileTest(unittest.TestCase):
    dockerfile = read("docker", "Dockerfile")

    def test_the_build_stage_runs_what_ci_runs(self):
        build = self.dockerfile.split("AS runtime", 1)[0]
        self.assertIn("FROM debian:12 AS build", build)
        self.assertIn("scripts/bootstrap", build)
        makefile = read("Makefile")
        # make build: cmake -S . -B $(BUILD_DIR) ..., then cmake --build.
        self.assertIn("cmake -S . -B $(BUILD_DIR)", makefile)
        self.assertIn("cmake -S . -B build", build)
        self.assertIn("cmake --build build", build)
        self.assertIn("make test", read(".ci", "run"))

    def test_the_runtime_stage_has_every_library_twd_links(self):
        have = runtime_packages(self.dockerfile)
        for lib, package in linked_packages(TWD).items():
            if package in ("libc6",):
                continue  # in every Debian image
            if lib.startswith(SANITIZER_RUNTIMES):
                continue  # a sanitizer build's (make test SANITIZE=...), never the image's
            with self.subTest(lib=lib):
                self.assertIsNotNone(package, f"no Debian package owns {lib}")
                self.assertIn(package, have, f"{lib} comes from {package}")
        self.assertIn("pocketsphinx-en-us", have)  # the default engine's model
        self.assertIn("curl", have)  # the health check

    def test_it_runs_unprivileged_with_a_volume_and_a_health_check(self):
        runtime = self.dockerfile.split("AS runtime", 1)[1]
        self.assertIn("FROM debian:12-slim AS runtime", self.dockerfile)
        self.assertRegex(runtime, r"\nUSER twd\n")
        self.assertRegex(runtime, r'VOLUME \["/var/lib/twd"\]')
        self.assertRegex(runtime, r"HEALTHCHECK .*\n\s+CMD curl -fsS http://127.0.0.1:8080/health")
        self.assertIn("TW_HTTP_LISTEN=0.0.0.0:8080", runtime)


class ComposeTest(unittest.TestCase):
    compose = read("docker", "compose.yaml")

    def test_every_neighbour_is_there(self):
        for service in ("twd:", "minio:", "prometheus:", "grafana:"):
            self.assertIn(f"\n  {service}", self.compose)

    def test_the_files_it_mounts_exist(self):
        for path in re.findall(r"- \./([\w/.-]+):", self.compose):
            self.assertTrue(os.path.exists(os.path.join(DOCKER, path)), path)

    def test_twd_settings_are_settings_twd_knows(self):
        known = subprocess.run([TWD, "--help"], capture_output=True, text=True).stdout
        for var in re.findall(r"\b(TW_[A-Z0-9_]+):", self.compose):
            self.assertIn(var, known)


if __name__ == "__main__":
    unittest.main(verbosity=2)
