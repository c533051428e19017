#!/usr/bin/env python3
"""The Qt side of examples/qt_interop.rs: plain PyQt6 QSharedMemory, nothing from qshm.

    python qt_interop.py answer KEY   attach to the segment a Rust program made, lock, read
                                      its message, write an answer, unlock, detach
    python qt_interop.py create KEY   create a segment, write a message under the lock, say
                                      "ready", wait for a line on stdin, then read what the
                                      Rust program wrote back, and detach (the last detach:
                                      the segment goes)

A message is a little-endian u32 length followed by that many bytes of UTF-8, at offset 0.
No QCoreApplication is needed for QSharedMemory.
"""

import struct
import sys

from PyQt6.QtCore import QSharedMemory, qVersion


def read_message(mem):
    p = mem.constData()
    p.setsize(mem.size())
    data = memoryview(p)
    (length,) = struct.unpack_from("<I", data, 0)
    return bytes(data[4 : 4 + length]).decode()


def write_message(mem, text):
    p = mem.data()
    p.setsize(mem.size())
    raw = text.encode()
    memoryview(p)[: 4 + len(raw)] = struct.pack("<I", len(raw)) + raw


def check(ok, mem, what):
    if not ok:
        sys.exit("qt_interop.py: %s failed: %s" % (what, mem.errorString()))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("answer", "create"):
        sys.exit(__doc__)
    mode, key = sys.argv[1], sys.argv[2]
    mem = QSharedMemory(key)  # a Qt key: named exactly as qshm's SharedMemory::with_key
    if mode == "answer":
        check(mem.attach(), mem, "attach")
        check(mem.lock(), mem, "lock")
        print("Qt %s read: %s" % (qVersion(), read_message(mem)), flush=True)
        write_message(mem, "hello from Qt %s" % qVersion())
        mem.unlock()
        mem.detach()
    else:
        check(mem.create(4096), mem, "create")
        check(mem.lock(), mem, "lock")
        write_message(mem, "made by Qt %s" % qVersion())
        mem.unlock()
        print("ready", flush=True)
        sys.stdin.readline()
        check(mem.lock(), mem, "lock")
        print("Qt %s read back: %s" % (qVersion(), read_message(mem)), flush=True)
        mem.unlock()
        mem.detach()


if __name__ == "__main__":
    main()
