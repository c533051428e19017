"""Fixtures of qshm's Python tests: unique keys, cleanup, child processes and the Qt peer.

Every test names its segments with ``key()`` (pid + counter: unique across processes and
``pytest -n``), registers what it creates with ``cleanup`` (run even when the test fails),
and waits on children with timeouts; ``pytest-timeout`` (``pytest.ini``) is the watchdog.
"""

from __future__ import annotations

import itertools
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import qshm

REPO = Path(__file__).resolve().parents[2]
PEER = REPO / "tests" / "qt" / "peer.py"

_counter = itertools.count()


def pytest_report_header(config):
    return f"qshm from {Path(qshm._qshm.__file__).resolve()}, Qt peer: {qt_python()}"


def unique(prefix: str = "qpy") -> str:
    """A key no other test (of this or another process) uses."""
    return f"{prefix}{os.getpid()}_{next(_counter)}"


@pytest.fixture
def key():
    return unique


@pytest.fixture
def cleanup():
    """Register callables to run after the test, pass or fail (last registered first)."""
    fns = []
    yield fns.append
    errors = []
    for fn in reversed(fns):
        try:
            fn()
        except Exception as e:  # keep cleaning
            errors.append(e)


def detach_quietly(obj) -> None:
    try:
        if obj.is_attached:
            obj.detach()
    except qshm.Error:
        pass


@pytest.fixture
def shm(cleanup):
    """Make SharedMemory objects that are detached after the test."""

    def make(*args, **kwargs):
        if "native" in kwargs:
            m = qshm.SharedMemory.from_native(kwargs.pop("native"))
        else:
            m = qshm.SharedMemory(*args, **kwargs)
        cleanup(lambda: detach_quietly(m))
        return m

    return make


CHILD_PRELUDE = """
import faulthandler, os, sys, time, signal
faulthandler.register(signal.SIGQUIT)
# Python's own Ctrl-C handler, even where SIGINT came ignored (pytest-xdist's workers).
signal.signal(signal.SIGINT, signal.default_int_handler)
import qshm
def say(*a):
    print(*a, flush=True)
"""


class Lines:
    """Lines of a pipe, read with a timeout (select on the raw descriptor, own buffer: a
    buffered file object hides lines it has read ahead from select)."""

    def __init__(self, pipe):
        self.fd = pipe.fileno()
        self.buf = b""

    def next(self, timeout: float):
        """The next line (str, without the newline), ``None`` at EOF; TimeoutError."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line in time")
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    return None
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


class Child:
    """A Python child process running ``code``, talking over lines of stdout/stdin."""

    def __init__(self, code: str, *, python: str | None = None, env=None, **popen):
        src = CHILD_PRELUDE + textwrap.dedent(code)
        self.proc = subprocess.Popen(
            # -I: not the current directory on sys.path (python/qshm there is the source tree,
            # without the extension), nor user site-packages.
            [python or sys.executable, "-I", "-c", src],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            **popen,
        )
        self.lines = Lines(self.proc.stdout)

    def line(self, timeout: float = 20.0) -> str:
        """The child's next line of stdout."""
        try:
            text = self.lines.next(timeout)
        except TimeoutError:
            self.proc.send_signal(signal.SIGQUIT)  # faulthandler: where it hangs
            try:
                err = self.proc.communicate(timeout=5)[1]
            except subprocess.TimeoutExpired:
                self.kill()
                err = self.proc.stderr.read()
            raise TimeoutError(f"no line from the child in time; its stderr: {err}") from None
        if text is None:
            err = self.proc.stderr.read()
            raise EOFError(f"child exited ({self.proc.wait()}): {err}")
        return text

    def send(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def wait(self, timeout: float = 60.0) -> int:
        rc = self.proc.wait(timeout)
        return rc

    def check(self, timeout: float = 60.0) -> None:
        """Waits for a zero exit status, failing with the child's stderr otherwise."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        assert self.proc.returncode == 0, f"child failed ({self.proc.returncode}): {err}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def sigkill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def child(cleanup):
    """Start Python children (killed after the test if still running)."""

    def start(code: str, **kwargs) -> Child:
        c = Child(code, **kwargs)
        cleanup(c.kill)
        return c

    return start


# ----------------------------------------------------------------------------- the Qt peer


def qt_python() -> str | None:
    """The interpreter with PyQt6: $QSHM_PYTHON, else the repository's .venv."""
    env = os.environ.get("QSHM_PYTHON")
    if env:
        return env
    for root in (REPO, REPO.parent / "main"):
        p = root / ".venv" / "bin" / "python"
        if p.exists():
            return str(p)
    return None


def enc(data) -> str:
    if not data:
        return "-"
    if isinstance(data, str):
        data = data.encode()
    return bytes(data).hex()


def dec(field: str) -> bytes:
    return b"" if field == "-" else bytes.fromhex(field)


class QtFail(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(f"Qt error {code}: {message}")
        self.code = code


class QtPeer:
    """tests/qt/peer.py (PyQt6) in a child process: one command line in, one answer out.
    Answers are ``(t_ns, fields)``; ``t_ns`` is the peer's CLOCK_MONOTONIC, comparable with
    ``time.monotonic_ns()`` here."""

    def __init__(self, python: str):
        self.proc = subprocess.Popen(
            [python, str(PEER), "6"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines = Lines(self.proc.stdout)

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def recv(self, timeout: float = 20.0):
        try:
            text = self.lines.next(timeout)
        except TimeoutError:
            raise TimeoutError("the Qt peer did not answer in time") from None
        line = (text or "").split()
        if not line:
            raise EOFError(f"the Qt peer exited: {self.proc.stderr.read()}")
        if line[0] == "err":
            raise QtFail(int(line[2]), dec(line[3]).decode(errors="replace"))
        return int(line[1]), line[2:]

    def cmd(self, line: str, timeout: float = 20.0):
        self.send(line)
        return self.recv(timeout)

    def close(self) -> None:
        """EOF: Qt's destructors run (detaching, removing what the peer owns)."""
        try:
            self.proc.stdin.close()
            self.proc.wait(5)
        except Exception:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def qt(cleanup):
    python = qt_python()
    if python is None or not Path(python).exists():
        pytest.skip("no PyQt6 interpreter: set QSHM_PYTHON")

    def start() -> QtPeer:
        p = QtPeer(python)
        cleanup(p.close)
        return p

    return start
