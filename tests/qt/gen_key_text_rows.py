#!/usr/bin/env python3
"""Golden rows for src/key/text.rs (in src/key/text/golden.rs) (QNativeIpcKey::toString / fromString), taken from real Qt.

Needs PyQt6 (Qt 6.6 or later). Usage:

    python3 tests/qt/gen_key_text_rows.py --write src/key/text/golden.rs
        replaces everything from the `#[cfg(test)]` line of the `tests` module to the end of
        the file with freshly generated tests;
    python3 tests/qt/gen_key_text_rows.py --fuzz N FILE
        writes N extra random cases (not committed) as tab-separated hex fields, for a wider
        one-off comparison:  P <input> <valid 0/1> <type> <native> <legacy or -> <toString>
                             F <type> <native> <legacy or -> <toString>

Every row is produced by Qt itself; the script only chooses the inputs. The random inputs are
seeded, so the output is reproducible for a given Qt version (and $TMPDIR, which appears in the
System V legacy native keys).
"""

import random
import re
import sys

from PyQt6.QtCore import QNativeIpcKey, QSharedMemory

T = QNativeIpcKey.Type

# tst_qnativeipckey.cpp payloads (toString_data / legacyKeys_data).
PAYLOADS = ["", "foobar", "/sometext", "Global\\sometext", ":/", "/:", "%", "?#", "#?", "//",
            "///", "\xe9", "\xa0\xff", "\u0100.\u2000.\U00010000", ":\u0100.\u2000.\U00010000"]
PREFIX_TYPES = [0x51, 0x100, 0x101, 1, 84, 255]

EXTRA_NATIVE = ["a b", "x y?z#w%q&r=s", "//double", "/tmp/qipc_sharedmemory_x", "\x00\x1f\x7f\x80",
                "[]@!$'()*+,;=", "\"<>^`{|}\\", "%25", "%zz", "?", "#", "/?legacyKey=x", "a\ufffe\uffff",
                "\U0010ffff", "/\u00ad\u200b", "://", "/%2F", "a:b", "@", "-._~"]
EXTRA_LEGACY = ["hello", "my key/\xe4!", "a%b&c=d#e?f+g h", "&", "=", "legacyKey=x", "%41", "\x00\x01\x7f",
                "x\ufffe", "a\ufeffb", "[]@:/?", "\U0001f600", " ", "+"]

# fromString inputs: tst_qnativeipckey.cpp's plus the corner cases of QUrl's tolerant parser.
PARSE_INPUTS = [
    "systemv-81:", "systemv-009:", "posix:%2f%66o%6f", "posix:%C4%80.%E2%80%80.%F0%90%80%80",
    "posix:/foo#bar", "posix:/foo#bar?baz", "posix:/foo?bar", "posix:/foo?bar#baz", "81", "-81",
    "invalidprefix:", "systemv255", "systemv--255:", "systemv+255", "systemv-0x01:", "systemv-0:",
    "systemv-256", "systemv-32769:", "systemv-65537:", "systemv-2147483649:", "systemv-4294967297:",
] + [s for name in ["systemv", "posix", "windows", "systemv-1", "systemv-255"]
     for s in (name, name + "junk", "junk:" + name + ":")] + [
    # scheme
    "POSIX:/x", "PoSiX:/x", "Systemv-009:x", "SYSTEMV:x", "WINDOWS:Global\\x", "systemv-:x",
    "systemv-1.:x", "systemv-+1:x", "systemv- 1:x", "systemv-0000000000000000000081:x",
    "systemv-00000000000000000000000:x", "systemv1:x", "systemv-99999999999999999999:x",
    " posix:/x", "posix :/x", "\tposix:/x", "posix:/x ", "", ":", ":/x", "posix", "posix?:/x",
    "posix#:/x", "po six:/x", "1posix:/x", "posix+:/x", "posix.:/x", "posi\u017f:/x",
    # authority
    "posix:///foo", "posix://", "posix://@/x", "posix://:/x", "posix://@:/x", "posix://@:",
    "posix://:", "posix://@", "posix://:@/x", "posix://u@/x", "posix://a@b/x", "posix://host/foo",
    "posix://host", "posix://:0/x", "posix://:80/x", "posix://::/x", "posix://@@/x",
    "posix://%40/x", "posix://[]/x", "posix://[::1]/x", "posix://[::]:/x", "posix://./x",
    "posix://\u00ad/x", "posix://%C2%AD/x", "posix://\u200b/x", "posix://?legacyKey=z",
    "posix://#x", "posix:////x", "posix:///", "posix://@/", "posix:/%2F", "posix:/%2F/x",
    "posix:/a//b", "posix:a:b", "posix:/a:b", "posix:a@b", "posix:/a@b:c",
    # percent-decoding
    "posix:%41%zz", "posix:%C3%A4%2", "posix:%", "posix:%%", "posix:%4", "posix:/%4g",
    "posix:%c3%a4", "posix:%C3%A4", "posix:%C3%41", "posix:%C3", "posix:%C3x", "posix:%E0%A4",
    "posix:%F0%9F%98%80", "posix:%F0%9F%98", "posix:%EF%BF%BE", "posix:%EF%BF%BF",
    "posix:%EF%B7%90", "posix:%EF%B7%AF", "posix:%EF%B7%B0", "posix:%F0%9F%BF%BF",
    "posix:%F4%8F%BF%BF", "posix:%F4%90%80%80", "posix:%ED%A0%80", "posix:%C0%80", "posix:%E0%80%80",
    "posix:%80", "posix:%FF", "posix:%00%1F%7F", "posix:%2525", "posix:%3F%23%26%3D",
    "posix:\u00e4%C3%A4", "posix:%E2%82\u20ac", "posix:\ufffe%EF%BF%BE", "posix:%25%41",
    # query
    "posix:/x?legacyKey=", "posix:/x?legacyKey", "posix:/x?", "posix:/x?&", "posix:/x?legacyKey=a&",
    "posix:/x?&legacyKey=a", "posix:/x?legacyKey=a&&legacyKey=b", "posix:/x?legacy%4Bey=a",
    "posix:/x?legacyKe%79=a", "posix:/x?LegacyKey=a", "posix:/x?legacykey=a", "posix:/x?other=1",
    "posix:/x?legacyKey=a&other=1", "posix:/x?legacyKey=a&legacyKey=b", "posix:/x?legacyKey=a&legacyKey=",
    "posix:/x?legacyKey=a&legacyKey", "posix:/x?legacyKey=%zz&legacyKey=%41",
    "posix:/%41?legacyKey=%zz", "posix:/x?legacyKey=%41", "posix:/x?legacyKey=a=b%3D%26",
    "posix:/x?legacyKey=a+b%20c", "posix:/x?legacyKey=%EF%BF%BEx", "posix:/x?legacyKey=%00%7F",
    "posix:/x?legacyKey=a#?legacyKey=b", "posix:/x?a?legacyKey=b", "posix:?legacyKey=b",
    "posix:/x?legacyKey=%E0%A4", "posix:/x?legacyKey=%E1%80%E1%80%80", "posix:/x?legacyKey=%C3%A4",
    "posix:/x?legacyKey=\u00e4%E2%82", "posix:/x?legacyKey=a?b", "posix:/x?legacyKey==",
    "posix:/x?legacyKey=%3D", "posix:/x?legacy%25Key=a", "posix:/x?legacyKey%3Da",
    "posix:/x?legacyKey=%", "posix:/x?legacyKey=%4", "posix:/x?legacyKey=%25",
    "systemv:/tmp/qipc_sharedmemory_helloaaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d?legacyKey=hello",
    # byte order marks (QString::fromUtf8 drops a leading one from the legacy key only)
    "posix:%EF%BB%BFx", "posix:\ufeffx", "posix:?legacyKey=%EF%BB%BFx", "posix:?legacyKey=\ufeffx",
    "posix:?legacyKey=%EF%BB%BF%EF%BB%BFx", "posix:?legacyKey=\ufeff%zz", "posix:?legacyKey=%EF%BB%BF",
    # more authorities, overlong and out-of-range UTF-8, odd queries
    "posix://\u034f/x", "posix://%20/x", "posix://:65536/x", "posix://@::/x", "posix://[/x",
    "posix:%F0%8F%BF%BF", "posix:?legacyKey=%E0%9F%BF", "posix:?legacyKey=%ED%9F%BF%ED%A0%80",
    "systemv-0255:", "systemv-1000:", "posix:?=", "posix:?legacyKey=&", "posix:/x#?legacyKey=a&b",
]

SCHEMES = ["posix", "POSIX", "Posix", "systemv", "SystemV", "systemv-1", "systemv-81", "systemv-081",
           "systemv-009", "systemv-255", "systemv-256", "systemv-0", "systemv--1", "systemv-", "windows",
           "WINDOWS", "junk", "", " posix", "posix ", "x", "posix:posix", "systemv-1a", "1"]
PIECES = ["/", "//", "///", ":", "?", "#", "%", "&", "=", "[", "]", "@", " ", "+", ".", "-", "~", "\\",
          "a", "Z", "0", "9", "foo", "\x00", "\x01", "\x1f", "\x7f", "\x80", "\xa0", "\xe9", "\xff",
          "\u0100", "\u2000", "\ufffd", "\ufffe", "\U00010000", "\U0001f600", "\U0010ffff",
          "legacyKey=", "?legacyKey=", "&legacyKey=", "LegacyKey=", "legacyKey", "%2F", "%2f", "%25",
          "%3F", "%23", "%26", "%3D", "%40", "%3A", "%41", "%7e", "%zz", "%4", "%g1"]
CHAR_POOL = ("/:?#%&=[]@ +.-~\\\"<>^`{|}!$'()*,;azAZ09\x00\x01\x09\x0a\x1f\x7f\x80\x9f\xa0\xad\xe9\xff"
             "\u0100\u2000\u200b\ufdd0\ufeff\ufffd\ufffe\uffff\U00010000\U0001fffe\U0010ffff")


def rand_escape(rng):
    """A random %XX escape, a valid UTF-8 escape sequence, or a broken one."""
    kind = rng.randrange(4)
    if kind == 0:
        hexdigits = "%02X" % rng.randrange(256)
        return "%" + (hexdigits.lower() if rng.random() < 0.3 else hexdigits)
    if kind == 1:
        ch = rng.choice(CHAR_POOL + "\u00e4\u20ac\ufdef\U0001ffff")
        return "".join("%%%02X" % b for b in ch.encode("utf-8"))
    if kind == 2:
        ch = rng.choice("\u00e4\u20ac\U0001f600")
        seq = ch.encode("utf-8")
        return "".join("%%%02X" % b for b in seq[:rng.randrange(1, len(seq))])
    return rng.choice(["%", "%4", "%G0", "%%", "%C0%80", "%ED%A0%80", "%F4%90%80%80"])


def rand_text(rng, max_pieces=8):
    out = []
    for _ in range(rng.randrange(max_pieces + 1)):
        r = rng.random()
        if r < 0.35:
            out.append(rng.choice(PIECES))
        elif r < 0.6:
            out.append(rand_escape(rng))
        else:
            out.append(rng.choice(CHAR_POOL))
    return "".join(out)


def rand_parse_input(rng):
    scheme = rng.choice(SCHEMES)
    if rng.random() < 0.2:
        scheme = "".join(c.upper() if rng.random() < 0.5 else c for c in scheme)
    colon = ":" if rng.random() < 0.9 else rng.choice(["", "?", "#", "/"])
    body = rand_text(rng)
    if rng.random() < 0.4:
        body += "?legacyKey=" + rand_text(rng, 4)
    if rng.random() < 0.1:
        body += "#" + rand_text(rng, 3)
    text = scheme + colon + body
    return text if pyqt_safe(text) else "x" + text


def rand_format_input(rng):
    raw = rng.choice([0x51, 0x100, 0x101, 1, 84, 255, rng.randrange(1, 256)])
    native = rand_text(rng).replace("%", "") if rng.random() < 0.3 else rand_text(rng)
    legacy = rand_text(rng, 5) if rng.random() < 0.6 else None
    native = native if pyqt_safe(native) else "a" + native
    legacy = legacy if pyqt_safe(legacy) else "a" + legacy
    return raw, native, legacy or None


def pyqt_safe(s):
    """PyQt drops a leading U+FEFF or U+FFFE of a str it hands to Qt (it reads it as a BOM)."""
    return s is None or not s.startswith(("\ufeff", "\ufffe"))


def legacy_of(key):
    """The legacy key of a parsed key, read back from Qt's own (unambiguous) toString."""
    text = key.toString()
    query = text.find("?")
    if query < 0:
        return None
    assert text.startswith("?legacyKey=", query), text
    value = text[query + len("?legacyKey="):]
    raw = re.sub(rb"%([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), value.encode())
    return raw.decode("utf-8")


def qt_parse(text):
    assert pyqt_safe(text), text
    key = QNativeIpcKey.fromString(text)
    if not key.isValid():
        return None
    # Qt's round trip holds except for a legacy key starting with U+FEFF, which
    # QString::fromUtf8 drops when parsing.
    legacy = legacy_of(key)
    bom = (legacy or "").startswith("\ufeff")
    assert (QNativeIpcKey.fromString(key.toString()) == key) != bom, text
    return key.type().value, key.nativeKey(), legacy, key.toString()


def qt_format(raw, native, legacy):
    # Qt can't attach an arbitrary legacy key to an arbitrary native key, but toString is
    # prefix ":" path ["?" query]: take the query from a legacy key of the same legacy key.
    assert pyqt_safe(native) and pyqt_safe(legacy), (native, legacy)
    text = QNativeIpcKey(native, T(raw)).toString()
    if legacy:
        derived = QSharedMemory.legacyNativeKey(legacy, T.PosixRealtime).toString()
        text += derived[derived.index("?"):]
    parsed = qt_parse(text)
    assert parsed is not None and parsed[:3] == (raw, native, legacy), (text, parsed)
    return text


def rust(s):
    """A Rust string literal; invisible and unusual characters are escaped."""
    if s is None:
        return "None"
    out = []
    for ch in s:
        if ch in "\\\"":
            out.append("\\" + ch)
        elif " " <= ch <= "~" or (ord(ch) > 0x7f and ch.isprintable() and ch not in "\ufffd\u00ad"):
            out.append(ch)
        else:
            out.append("\\u{%x}" % ord(ch))
    return '"' + "".join(out) + '"'


def some(s):
    return "None" if s is None else "Some(%s)" % rust(s)


def format_rows():
    rows = [(raw, native, None) for raw in PREFIX_TYPES for native in PAYLOADS]
    rows += [(raw, native, None) for raw in (0x51, 0x100) for native in EXTRA_NATIVE]
    for raw in (0x100, 0x51):  # DefaultTypeForOs and legacyDefaultTypeForOs
        for legacy in PAYLOADS + EXTRA_LEGACY:
            key = QSharedMemory.legacyNativeKey(legacy, T(raw))
            rows.append((raw, key.nativeKey(), legacy or None))
    rng = random.Random(6_11)
    rows += [rand_format_input(rng) for _ in range(150)]
    return [(raw, native, legacy, qt_format(raw, native, legacy)) for raw, native, legacy in rows]


def parse_rows():
    rng = random.Random(6_06)
    inputs = PARSE_INPUTS + [rand_parse_input(rng) for _ in range(300)]
    return [(text, qt_parse(text)) for text in dict.fromkeys(inputs)]


TESTS = r'''#[cfg(test)]
mod tests {
    //! Golden rows produced by Qt 6.11 (PyQt6) with `tests/qt/gen_key_text_rows.py`; do not
    //! edit by hand, regenerate.

    use std::num::NonZeroU8;

    use super::*;

    type Parsed = (KeyType, String, Option<String>);

    /// `(type, native key, legacy key, QNativeIpcKey::toString())`.
    type Row = (u16, &'static str, Option<&'static str>, &'static str);

    fn key_type(raw: u16) -> KeyType {
        KeyType::from_raw(raw).expect("valid raw type")
    }

    fn owned(raw: u16, native: &str, legacy: Option<&str>) -> Parsed {
        (key_type(raw), native.to_owned(), legacy.map(str::to_owned))
    }

    #[test]
    fn format_matches_qt() {
        for &(raw, native, legacy, expected) in FORMAT_ROWS {
            let key = owned(raw, native, legacy);
            assert_eq!(format(key.0, native, legacy), expected, "{key:?}");
            assert_eq!(parse(expected), Some(key), "{expected:?}");
        }
    }

    #[test]
    fn parse_matches_qt() {
        for &(text, expected) in PARSE_ROWS {
            let parsed = parse(text);
            let expected_key = expected.map(|(raw, native, legacy, _)| owned(raw, native, legacy));
            assert_eq!(parsed, expected_key, "{text:?}");
            let (Some((key_type, native, legacy)), Some((.., canonical))) = (&parsed, expected)
            else {
                continue;
            };
            let legacy = legacy.as_deref();
            assert_eq!(format(*key_type, native, legacy), canonical, "{text:?}");
            // Qt's own round trip loses a legacy key's leading U+FEFF.
            if !legacy.is_some_and(|legacy| legacy.starts_with('\u{feff}')) {
                assert_eq!(parse(canonical), parsed, "{canonical:?}");
            }
        }
    }

    #[test]
    fn empty_legacy_key_is_absent() {
        assert_eq!(format(KeyType::PosixRealtime, "/x", Some("")), "posix:/x");
        assert_eq!(parse("posix:/x?legacyKey="), Some(owned(0x100, "/x", None)));
    }

    #[test]
    fn project_id_81_is_plain_system_v() {
        let id = KeyType::SystemVProject(NonZeroU8::new(0x51).unwrap());
        assert_eq!(format(id, "/x", None), "systemv:/x");
    }

    #[test]
    fn never_panics_on_pieces_of_the_rows() {
        for &(text, _) in PARSE_ROWS {
            for (i, _) in text.char_indices() {
                let _ = (parse(&text[..i]), parse(&text[i..]));
            }
        }
    }

    /// Keys and their text form.
    #[rustfmt::skip]
    const FORMAT_ROWS: &[Row] = &[
%(format_rows)s
    ];

    /// Texts and `QNativeIpcKey::fromString(text)`: `None` when invalid.
    #[rustfmt::skip]
    const PARSE_ROWS: &[(&str, Option<Row>)] = &[
%(parse_rows)s
    ];
}
'''


def render_tests():
    frows = "\n".join("        (%#x, %s, %s, %s)," % (raw, rust(n), some(l), rust(e))
                      for raw, n, l, e in format_rows())
    prows = []
    for text, parsed in parse_rows():
        if parsed is None:
            prows.append("        (%s, None)," % rust(text))
        else:
            raw, n, l, canonical = parsed
            prows.append("        (%s, Some((%#x, %s, %s, %s)))," % (rust(text), raw, rust(n), some(l), rust(canonical)))
    return TESTS % {"format_rows": frows, "parse_rows": "\n".join(prows)}


def hexs(s):
    return "-" if s is None else s.encode("utf-8").hex() or "="


def fuzz(count, path):
    rng = random.Random()
    with open(path, "w") as out:
        for _ in range(count):
            text = rand_parse_input(rng)
            parsed = qt_parse(text)
            if parsed is None:
                out.write("P\t%s\t0\n" % hexs(text))
            else:
                raw, native, legacy, canonical = parsed
                out.write("P\t%s\t1\t%d\t%s\t%s\t%s\n" % (hexs(text), raw, hexs(native), hexs(legacy), hexs(canonical)))
            raw, native, legacy = rand_format_input(rng)
            out.write("F\t%d\t%s\t%s\t%s\n" % (raw, hexs(native), hexs(legacy), hexs(qt_format(raw, native, legacy))))


def main():
    if sys.argv[1:2] == ["--write"]:
        # The module file src/key/text/golden.rs: the body of the `mod tests` block rendered
        # above, without the block around it.
        path = sys.argv[2]
        body = render_tests().split("mod tests {", 1)[1].rsplit("}", 1)[0]
        lines = [line[4:] if line.startswith("    ") else line for line in body.split("\n")]
        open(path, "w", encoding="utf-8").write("\n".join(lines).strip("\n") + "\n")
    elif sys.argv[1:2] == ["--fuzz"]:
        fuzz(int(sys.argv[2]), sys.argv[3])
    else:
        sys.stdout.write(render_tests())


if __name__ == "__main__":
    main()
