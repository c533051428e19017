#!/usr/bin/env python3
"""Golden rows for Apple's POSIX key names (src/key/apple/golden.rs).

No Apple machine and no Qt for macOS are available here, so these rows are not produced by Qt:
they are Qt 6.11's algorithm (qtbase src/corelib/ipc/qtipccommon.cpp, Darwin branches)
transcribed into Python, independently of the Rust code they check:

* legacy key, not sandboxed: "/" + the first SHM_NAME_MAX - 1 = 29 hex digits of
  SHA-1(UTF-8 key) (legacyPlatformSafeKey), the same for segment and semaphore;
* legacy key, sandboxed: the key itself;
* platformSafeKey: "/" + QStringView(key).left(29), 29 UTF-16 code units; the bytes the
  system sees are QFile::encodeName's UTF-8, where a surrogate half left alone by the cut
  becomes "?" (QUtf8::convertFromUnicode);
* a name the kernel accepts has at most SHM_NAME_MAX = 30 bytes (NUL not counted); a
  sandboxed one must also be <application group>/<name>.

Run: python3 tests/qt/gen_apple_key_rows.py > src/key/apple/golden.rs
"""
import hashlib

SHM_NAME_MAX = 30

KEYS = [
    "", "a", "hello", "my key/ä!", "A-b_C 9", "日本", "/abs/path", "x" * 29, "x" * 30, "x" * 31,
    "y" * 200, "é" * 14, "é" * 15, "é" * 29, "é" * 30, "日本語のキー", "\U0001F600", "\U0001F600" * 15,
    "a" * 28 + "\U0001F600", "a" * 27 + "\U0001F600", "Ünïcödé-Kéy", "key with spaces",
    "TEAMID1234.com.example/shm", "TEAMID1234.com.example/a-rather-long-name",
    "group.com.example.app/s", "ABCDE12345.grp/", "/leading", "noslash", "g/n", "g/n/m",
    "ABCDE12345.com.example.longgroup/x", "group.x/日本", "tab\tkey", "\ufeffbom", "null-ish %00",
    "SingleApplication-block-1234567890abcdef",
]


def utf16_units(s):
    units = []
    for ch in s:
        c = ord(ch)
        if c >= 0x10000:
            c -= 0x10000
            units += [0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF)]
        else:
            units.append(c)
    return units


def encode_units(units):
    """QUtf8::convertFromUnicode: pairs as one character, a lone half as '?'."""
    out, i = b"", 0
    while i < len(units):
        u = units[i]
        if 0xD800 <= u < 0xDC00 and i + 1 < len(units) and 0xDC00 <= units[i + 1] < 0xE000:
            c = 0x10000 + ((u - 0xD800) << 10) + (units[i + 1] - 0xDC00)
            out += chr(c).encode()
            i += 2
        elif 0xD800 <= u < 0xE000:
            out += b"?"
            i += 1
        else:
            out += chr(u).encode()
            i += 1
    return out.decode()


def legacy(key):
    if not key:
        return ""
    return "/" + hashlib.sha1(key.encode()).hexdigest()[: SHM_NAME_MAX - 1]


def platform_safe(key):
    if not key:
        return ""
    return "/" + encode_units(utf16_units(key)[: SHM_NAME_MAX - 1])


def accepted(name, sandboxed):
    raw = name.encode()
    if not raw or b"\0" in raw or len(raw) > SHM_NAME_MAX:
        return False
    if sandboxed:
        group, slash, rest = name.partition("/")
        return bool(group) and bool(slash) and bool(rest)
    return True


def lit(s):
    out = '"'
    for ch in s:
        if ch in '"\\':
            out += "\\" + ch
        elif ch == "\t":
            out += "\\t"
        elif ord(ch) < 0x20 or ord(ch) == 0xFEFF:
            out += "\\u{%x}" % ord(ch)
        else:
            out += ch
    return out + '"'


print("//! Golden rows for Apple's POSIX names, from `tests/qt/gen_apple_key_rows.py` (Qt 6.11's")
print("//! algorithm transcribed into Python; see that file). Do not edit by hand, regenerate.")
print()
print("/// `(key, legacy name, legacy name accepted, key accepted as a sandboxed name,")
print("/// platform-safe name, platform-safe name accepted)`.")
print("pub(super) const ROWS: &[(&str, &str, bool, bool, &str, bool)] = &[")
for key in KEYS:
    leg, safe = legacy(key), platform_safe(key)
    row = (lit(key), lit(leg), str(accepted(leg, False)).lower(), str(accepted(key, True)).lower(),
           lit(safe), str(accepted(safe, False)).lower())
    print("    (" + ", ".join(row) + "),")
print("];")
