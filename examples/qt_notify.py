#!/usr/bin/env python3
"""The Qt side of examples/qt_notify.rs: data through PyQt6's QSharedMemory and its lock,
change notifications through the qshm Python package's Notifier of the same Qt key.

    python qt_notify.py KEY

Waits for "ping N" (without polling), answers "pong N" and notifies, until "bye".
A message is a little-endian u32 length followed by that many bytes of UTF-8, at offset 0.
"""

import struct
import sys

from PyQt6.QtCore import QSharedMemory, qVersion

import qshm


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


def main():
    key = sys.argv[1]
    mem = QSharedMemory(key)
    if not mem.attach():
        sys.exit("qt_notify.py: attach failed: %s" % mem.errorString())
    # qshm only for the notifier: the same Qt key, the segment's companion.
    watcher = qshm.SharedMemory(key)
    watcher.attach(readonly=True)
    changes = watcher.notifier()
    answered = 0
    while True:
        seen = changes.current
        mem.lock()
        text = read_message(mem)
        if text.startswith("ping ") and text != "ping %d" % answered:
            answered = int(text.split()[1])
            write_message(mem, "pong %d" % answered)
            mem.unlock()
            changes.notify()
            print("Qt %s: woken, read %r, answered pong %d" % (qVersion(), text, answered), flush=True)
            continue
        mem.unlock()
        if text == "bye":
            break
        changes.wait(seen, timeout=20)
    watcher.detach()
    mem.detach()


if __name__ == "__main__":
    main()
