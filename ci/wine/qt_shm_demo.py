"""Real Qt for Windows under Wine: one QSharedMemory shared by two Wine processes.

    python qt_shm_demo.py create 6|5 [KEY]   creates KEY (default "hello"), writes a
                                             message, prints `ready`, keeps the segment
                                             until its stdin closes
    python qt_shm_demo.py attach 6|5 [KEY]   attaches, reads the message, detaches

Run by ci/wine/smoke.sh with the Windows pythons that ci/wine.sh sets up.
"""

import os
import sys

what, major = sys.argv[1], sys.argv[2]
key = sys.argv[3] if len(sys.argv) > 3 else "hello"
if major == "6":
    from PyQt6.QtCore import QSharedMemory, qVersion
else:
    from PyQt5.QtCore import QSharedMemory, qVersion


def out(*words):
    print(*words, flush=True)


mem = QSharedMemory(key)
out("qt", qVersion(), "pid", os.getpid())
out("nativeKey", mem.nativeKey())
if major == "6":
    out("nativeIpcKey", mem.nativeIpcKey().toString())
    out("legacyNativeKey", QSharedMemory.legacyNativeKey(key).toString())
    out("platformSafeKey", QSharedMemory.platformSafeKey(key).toString())

if what == "create":
    if not mem.create(64):
        out("create failed", mem.error(), mem.errorString())
        sys.exit(1)
    out("size", mem.size())
    message = ("written by Qt %s in pid %d" % (qVersion(), os.getpid())).encode()
    mem.lock()
    p = mem.data()
    p.setsize(mem.size())
    p[: len(message) + 1] = message + b"\0"
    mem.unlock()
    out("wrote", message.decode())
    out("ready")
    sys.stdin.buffer.read()  # until the driver closes our stdin
    mem.detach()
    out("detached")
elif what == "attach":
    if not mem.attach():
        out("attach failed", mem.error(), mem.errorString())
        sys.exit(1)
    mem.lock()
    p = mem.constData()
    p.setsize(mem.size())
    data = bytes(p[: mem.size()]).split(b"\0", 1)[0]
    mem.unlock()
    out("size", mem.size())
    out("read", data.decode())
    mem.detach()
else:
    sys.exit("usage: qt_shm_demo.py create|attach 6|5 [KEY]")
