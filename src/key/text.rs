//! Qt's text form of a native key (`QNativeIpcKey::toString` / `fromString`).
//!
//! Qt builds and parses this form with `QUrl` in tolerant mode: the key type is the scheme, the
//! native key the path and the legacy key a `legacyKey` query item. This module reproduces
//! exactly the part of `QUrl` that those two functions exercise (checked against Qt 6.11).

use std::fmt::Write;

use super::KeyType;

/// `QNativeIpcKey::toString`.
///
/// `%`, `?`, `#` and control characters of the native key are percent-encoded (everything
/// else, non-ASCII included, is kept as is), and a leading `//` becomes `/%2F` so that it is
/// not read back as an authority. A non-empty legacy key is appended as `?legacyKey=…` with
/// `%`, `#`, `&`, `=` and control characters encoded.
pub(crate) fn format(key_type: KeyType, native: &str, legacy: Option<&str>) -> String {
    let mut out = match key_type.to_raw() {
        0x51 => "systemv:".to_owned(),
        0x100 => "posix:".to_owned(),
        0x101 => "windows:".to_owned(),
        id => format!("systemv-{id}:"),
    };
    let path_start = out.len();
    encode_into(&mut out, native, "%?#");
    if out[path_start..].starts_with("//") {
        out.replace_range(path_start..path_start + 2, "/%2F");
    }
    if let Some(legacy) = legacy.filter(|legacy| !legacy.is_empty()) {
        out.push_str("?legacyKey=");
        encode_into(&mut out, legacy, "%#&=");
    }
    out
}

/// `QNativeIpcKey::fromString`: `None` where Qt gives an invalid key (`isValid()` false).
///
/// An empty legacy key (`?legacyKey=`) is returned as `None`, as Qt treats it as absent. Like
/// Qt, this drops a leading U+FEFF from the legacy key, so such a key does not survive
/// [`format`] and `parse`.
pub(crate) fn parse(text: &str) -> Option<(KeyType, String, Option<String>)> {
    // QUrl's delimiters: the fragment (ignored) starts at the first '#', the query at the first
    // '?' before it, and the scheme ends at the first ':' before both.
    let text = text.find('#').map_or(text, |hash| &text[..hash]);
    let (hier, query) = match text.split_once('?') {
        Some((hier, query)) => (hier, Some(query)),
        None => (text, None),
    };
    let (scheme, hier) = hier.split_once(':')?;
    let key_type = scheme_type(scheme)?;

    // "//" starts an authority, which runs to the next '/'. Qt rejects any user name,
    // password, host or port, which leaves only these spellings of an empty one.
    let path = match hier.strip_prefix("//") {
        Some(rest) => {
            let end = rest.find('/').unwrap_or(rest.len());
            if !matches!(&rest[..end], "" | ":" | "@" | "@:") {
                return None;
            }
            &rest[end..]
        }
        None => hier,
    };
    let native = percent_decode(path, false);

    let mut legacy = None;
    // QUrlQuery splits on '&' (a trailing one ends the list) and then on the first '='.
    // A malformed escape anywhere in the query makes QUrl encode every '%' of it.
    if let Some(query) = query.filter(|query| !query.is_empty()) {
        let malformed = !well_formed(query);
        let decode = |part: &str| {
            if malformed {
                part.to_owned()
            } else {
                percent_decode(part, true)
            }
        };
        for item in query.strip_suffix('&').unwrap_or(query).split('&') {
            let (name, value) = item.split_once('=').unwrap_or((item, ""));
            if decode(name) != "legacyKey" {
                return None;
            }
            // QString::fromUtf8 drops a leading byte order mark.
            let value = decode(value);
            let value = value.strip_prefix('\u{feff}').unwrap_or(&value);
            legacy = (!value.is_empty()).then(|| value.to_owned());
        }
    }
    Some((key_type, native, legacy))
}

/// The key type of a URL scheme (`stringToType`), matched case-insensitively as QUrl
/// lower-cases schemes. `systemv-N` takes a decimal N from 1 to 255, leading zeros allowed.
fn scheme_type(scheme: &str) -> Option<KeyType> {
    match scheme.to_ascii_lowercase().as_str() {
        "systemv" => Some(KeyType::SystemV),
        "posix" => Some(KeyType::PosixRealtime),
        "windows" => Some(KeyType::Windows),
        other => {
            let digits = other.strip_prefix("systemv-")?;
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let id: u16 = digits.trim_start_matches('0').parse().ok()?;
            KeyType::from_raw(id).filter(|_| id <= 0xff)
        }
    }
}

/// Appends `text` with `special`, C0 controls and DEL percent-encoded (upper-case hex).
fn encode_into(out: &mut String, text: &str, special: &str) {
    for c in text.chars() {
        if c < ' ' || c == '\x7f' || special.contains(c) {
            let _ = write!(out, "%{:02X}", u32::from(c));
        } else {
            out.push(c);
        }
    }
}

/// The byte encoded by a `%XX` escape at `bytes[i]`, if there is one.
fn escaped_byte(bytes: &[u8], i: usize) -> Option<u8> {
    let hex = |i: usize| (*bytes.get(i)? as char).to_digit(16);
    if bytes.get(i) != Some(&b'%') {
        return None;
    }
    Some((hex(i + 1)? * 16 + hex(i + 2)?) as u8)
}

/// Whether every `%` of `text` starts a `%XX` escape.
fn well_formed(text: &str) -> bool {
    let bytes = text.as_bytes();
    (0..bytes.len()).all(|i| bytes[i] != b'%' || escaped_byte(bytes, i).is_some())
}

/// Decodes the `%XX` escapes of `text`, as UTF-8, the way QUrl does.
///
/// A malformed escape anywhere leaves the whole text as it is. Escaped bytes that do not form
/// valid UTF-8 become U+FFFD one by one; escaped noncharacters (U+FFFE, U+FDD0, …) count as
/// invalid unless `allow_nonchars` (the path rejects them, the legacy key does not).
fn percent_decode(text: &str, allow_nonchars: bool) -> String {
    if !well_formed(text) {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut run = Vec::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        if let Some(byte) = escaped_byte(bytes, i) {
            run.push(byte);
            chars.nth(1); // the two hex digits
        } else {
            push_utf8(&mut out, &run, allow_nonchars);
            run.clear();
            out.push(c);
        }
    }
    push_utf8(&mut out, &run, allow_nonchars);
    out
}

/// Appends `bytes` decoded as UTF-8, replacing each byte that does not start a valid
/// sequence with U+FFFD (Qt's rule, unlike `String::from_utf8_lossy`).
fn push_utf8(out: &mut String, mut bytes: &[u8], allow_nonchars: bool) {
    while let Some(&first) = bytes.first() {
        let len = match first {
            0x00..=0x7f => 1,
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 0,
        };
        let decoded = bytes
            .get(..len)
            .and_then(|seq| std::str::from_utf8(seq).ok())
            .and_then(|seq| seq.chars().next())
            .filter(|&c| allow_nonchars || !is_noncharacter(c));
        match decoded {
            Some(c) => {
                out.push(c);
                bytes = &bytes[len..];
            }
            None => {
                out.push(char::REPLACEMENT_CHARACTER);
                bytes = &bytes[1..];
            }
        }
    }
}

/// Unicode noncharacters: U+FDD0..=U+FDEF and the last two code points of every plane.
fn is_noncharacter(c: char) -> bool {
    let c = u32::from(c);
    (0xfdd0..=0xfdef).contains(&c) || c & 0xfffe == 0xfffe
}

#[cfg(test)]
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
        (0x51, "", None, "systemv:"),
        (0x51, "foobar", None, "systemv:foobar"),
        (0x51, "/sometext", None, "systemv:/sometext"),
        (0x51, "Global\\sometext", None, "systemv:Global\\sometext"),
        (0x51, ":/", None, "systemv::/"),
        (0x51, "/:", None, "systemv:/:"),
        (0x51, "%", None, "systemv:%25"),
        (0x51, "?#", None, "systemv:%3F%23"),
        (0x51, "#?", None, "systemv:%23%3F"),
        (0x51, "//", None, "systemv:/%2F"),
        (0x51, "///", None, "systemv:/%2F/"),
        (0x51, "é", None, "systemv:é"),
        (0x51, "\u{a0}ÿ", None, "systemv:\u{a0}ÿ"),
        (0x51, "Ā.\u{2000}.𐀀", None, "systemv:Ā.\u{2000}.𐀀"),
        (0x51, ":Ā.\u{2000}.𐀀", None, "systemv::Ā.\u{2000}.𐀀"),
        (0x100, "", None, "posix:"),
        (0x100, "foobar", None, "posix:foobar"),
        (0x100, "/sometext", None, "posix:/sometext"),
        (0x100, "Global\\sometext", None, "posix:Global\\sometext"),
        (0x100, ":/", None, "posix::/"),
        (0x100, "/:", None, "posix:/:"),
        (0x100, "%", None, "posix:%25"),
        (0x100, "?#", None, "posix:%3F%23"),
        (0x100, "#?", None, "posix:%23%3F"),
        (0x100, "//", None, "posix:/%2F"),
        (0x100, "///", None, "posix:/%2F/"),
        (0x100, "é", None, "posix:é"),
        (0x100, "\u{a0}ÿ", None, "posix:\u{a0}ÿ"),
        (0x100, "Ā.\u{2000}.𐀀", None, "posix:Ā.\u{2000}.𐀀"),
        (0x100, ":Ā.\u{2000}.𐀀", None, "posix::Ā.\u{2000}.𐀀"),
        (0x101, "", None, "windows:"),
        (0x101, "foobar", None, "windows:foobar"),
        (0x101, "/sometext", None, "windows:/sometext"),
        (0x101, "Global\\sometext", None, "windows:Global\\sometext"),
        (0x101, ":/", None, "windows::/"),
        (0x101, "/:", None, "windows:/:"),
        (0x101, "%", None, "windows:%25"),
        (0x101, "?#", None, "windows:%3F%23"),
        (0x101, "#?", None, "windows:%23%3F"),
        (0x101, "//", None, "windows:/%2F"),
        (0x101, "///", None, "windows:/%2F/"),
        (0x101, "é", None, "windows:é"),
        (0x101, "\u{a0}ÿ", None, "windows:\u{a0}ÿ"),
        (0x101, "Ā.\u{2000}.𐀀", None, "windows:Ā.\u{2000}.𐀀"),
        (0x101, ":Ā.\u{2000}.𐀀", None, "windows::Ā.\u{2000}.𐀀"),
        (0x1, "", None, "systemv-1:"),
        (0x1, "foobar", None, "systemv-1:foobar"),
        (0x1, "/sometext", None, "systemv-1:/sometext"),
        (0x1, "Global\\sometext", None, "systemv-1:Global\\sometext"),
        (0x1, ":/", None, "systemv-1::/"),
        (0x1, "/:", None, "systemv-1:/:"),
        (0x1, "%", None, "systemv-1:%25"),
        (0x1, "?#", None, "systemv-1:%3F%23"),
        (0x1, "#?", None, "systemv-1:%23%3F"),
        (0x1, "//", None, "systemv-1:/%2F"),
        (0x1, "///", None, "systemv-1:/%2F/"),
        (0x1, "é", None, "systemv-1:é"),
        (0x1, "\u{a0}ÿ", None, "systemv-1:\u{a0}ÿ"),
        (0x1, "Ā.\u{2000}.𐀀", None, "systemv-1:Ā.\u{2000}.𐀀"),
        (0x1, ":Ā.\u{2000}.𐀀", None, "systemv-1::Ā.\u{2000}.𐀀"),
        (0x54, "", None, "systemv-84:"),
        (0x54, "foobar", None, "systemv-84:foobar"),
        (0x54, "/sometext", None, "systemv-84:/sometext"),
        (0x54, "Global\\sometext", None, "systemv-84:Global\\sometext"),
        (0x54, ":/", None, "systemv-84::/"),
        (0x54, "/:", None, "systemv-84:/:"),
        (0x54, "%", None, "systemv-84:%25"),
        (0x54, "?#", None, "systemv-84:%3F%23"),
        (0x54, "#?", None, "systemv-84:%23%3F"),
        (0x54, "//", None, "systemv-84:/%2F"),
        (0x54, "///", None, "systemv-84:/%2F/"),
        (0x54, "é", None, "systemv-84:é"),
        (0x54, "\u{a0}ÿ", None, "systemv-84:\u{a0}ÿ"),
        (0x54, "Ā.\u{2000}.𐀀", None, "systemv-84:Ā.\u{2000}.𐀀"),
        (0x54, ":Ā.\u{2000}.𐀀", None, "systemv-84::Ā.\u{2000}.𐀀"),
        (0xff, "", None, "systemv-255:"),
        (0xff, "foobar", None, "systemv-255:foobar"),
        (0xff, "/sometext", None, "systemv-255:/sometext"),
        (0xff, "Global\\sometext", None, "systemv-255:Global\\sometext"),
        (0xff, ":/", None, "systemv-255::/"),
        (0xff, "/:", None, "systemv-255:/:"),
        (0xff, "%", None, "systemv-255:%25"),
        (0xff, "?#", None, "systemv-255:%3F%23"),
        (0xff, "#?", None, "systemv-255:%23%3F"),
        (0xff, "//", None, "systemv-255:/%2F"),
        (0xff, "///", None, "systemv-255:/%2F/"),
        (0xff, "é", None, "systemv-255:é"),
        (0xff, "\u{a0}ÿ", None, "systemv-255:\u{a0}ÿ"),
        (0xff, "Ā.\u{2000}.𐀀", None, "systemv-255:Ā.\u{2000}.𐀀"),
        (0xff, ":Ā.\u{2000}.𐀀", None, "systemv-255::Ā.\u{2000}.𐀀"),
        (0x51, "a b", None, "systemv:a b"),
        (0x51, "x y?z#w%q&r=s", None, "systemv:x y%3Fz%23w%25q&r=s"),
        (0x51, "//double", None, "systemv:/%2Fdouble"),
        (0x51, "/tmp/qipc_sharedmemory_x", None, "systemv:/tmp/qipc_sharedmemory_x"),
        (0x51, "\u{0}\u{1f}\u{7f}\u{80}", None, "systemv:%00%1F%7F\u{80}"),
        (0x51, "[]@!$'()*+,;=", None, "systemv:[]@!$'()*+,;="),
        (0x51, "\"<>^`{|}\\", None, "systemv:\"<>^`{|}\\"),
        (0x51, "%25", None, "systemv:%2525"),
        (0x51, "%zz", None, "systemv:%25zz"),
        (0x51, "?", None, "systemv:%3F"),
        (0x51, "#", None, "systemv:%23"),
        (0x51, "/?legacyKey=x", None, "systemv:/%3FlegacyKey=x"),
        (0x51, "a\u{fffe}\u{ffff}", None, "systemv:a\u{fffe}\u{ffff}"),
        (0x51, "\u{10ffff}", None, "systemv:\u{10ffff}"),
        (0x51, "/\u{ad}\u{200b}", None, "systemv:/\u{ad}\u{200b}"),
        (0x51, "://", None, "systemv:://"),
        (0x51, "/%2F", None, "systemv:/%252F"),
        (0x51, "a:b", None, "systemv:a:b"),
        (0x51, "@", None, "systemv:@"),
        (0x51, "-._~", None, "systemv:-._~"),
        (0x100, "a b", None, "posix:a b"),
        (0x100, "x y?z#w%q&r=s", None, "posix:x y%3Fz%23w%25q&r=s"),
        (0x100, "//double", None, "posix:/%2Fdouble"),
        (0x100, "/tmp/qipc_sharedmemory_x", None, "posix:/tmp/qipc_sharedmemory_x"),
        (0x100, "\u{0}\u{1f}\u{7f}\u{80}", None, "posix:%00%1F%7F\u{80}"),
        (0x100, "[]@!$'()*+,;=", None, "posix:[]@!$'()*+,;="),
        (0x100, "\"<>^`{|}\\", None, "posix:\"<>^`{|}\\"),
        (0x100, "%25", None, "posix:%2525"),
        (0x100, "%zz", None, "posix:%25zz"),
        (0x100, "?", None, "posix:%3F"),
        (0x100, "#", None, "posix:%23"),
        (0x100, "/?legacyKey=x", None, "posix:/%3FlegacyKey=x"),
        (0x100, "a\u{fffe}\u{ffff}", None, "posix:a\u{fffe}\u{ffff}"),
        (0x100, "\u{10ffff}", None, "posix:\u{10ffff}"),
        (0x100, "/\u{ad}\u{200b}", None, "posix:/\u{ad}\u{200b}"),
        (0x100, "://", None, "posix:://"),
        (0x100, "/%2F", None, "posix:/%252F"),
        (0x100, "a:b", None, "posix:a:b"),
        (0x100, "@", None, "posix:@"),
        (0x100, "-._~", None, "posix:-._~"),
        (0x100, "", None, "posix:"),
        (0x100, "/qipc_sharedmemory_foobar8843d7f92416211de9ebb963ff4ce28125932878", Some("foobar"), "posix:/qipc_sharedmemory_foobar8843d7f92416211de9ebb963ff4ce28125932878?legacyKey=foobar"),
        (0x100, "/qipc_sharedmemory_sometextecfbdf0f21d97ac8ff2823501a02e75ede4e73c5", Some("/sometext"), "posix:/qipc_sharedmemory_sometextecfbdf0f21d97ac8ff2823501a02e75ede4e73c5?legacyKey=/sometext"),
        (0x100, "/qipc_sharedmemory_Globalsometext2bd86b9f7d2e72411678a453934081dff521a9eb", Some("Global\\sometext"), "posix:/qipc_sharedmemory_Globalsometext2bd86b9f7d2e72411678a453934081dff521a9eb?legacyKey=Global\\sometext"),
        (0x100, "/qipc_sharedmemory_ee06d89f7fa9c0c3b7f0a0db6dbff1c30c6827df", Some(":/"), "posix:/qipc_sharedmemory_ee06d89f7fa9c0c3b7f0a0db6dbff1c30c6827df?legacyKey=:/"),
        (0x100, "/qipc_sharedmemory_1e0b7e3a6a58a2863eba020d3621199e16cedb50", Some("/:"), "posix:/qipc_sharedmemory_1e0b7e3a6a58a2863eba020d3621199e16cedb50?legacyKey=/:"),
        (0x100, "/qipc_sharedmemory_4345cb1fa27885a8fbfe7c0c830a592cc76a552b", Some("%"), "posix:/qipc_sharedmemory_4345cb1fa27885a8fbfe7c0c830a592cc76a552b?legacyKey=%25"),
        (0x100, "/qipc_sharedmemory_caf8e8097950a374a6ee2af129a030f65b9ab260", Some("?#"), "posix:/qipc_sharedmemory_caf8e8097950a374a6ee2af129a030f65b9ab260?legacyKey=?%23"),
        (0x100, "/qipc_sharedmemory_60a01c52bf3c14a2b4dc6880e5a3b3583cf10a8f", Some("#?"), "posix:/qipc_sharedmemory_60a01c52bf3c14a2b4dc6880e5a3b3583cf10a8f?legacyKey=%23?"),
        (0x100, "/qipc_sharedmemory_ebbffb7d7ea5362a22bfa1bab0bfdeb1617cd610", Some("//"), "posix:/qipc_sharedmemory_ebbffb7d7ea5362a22bfa1bab0bfdeb1617cd610?legacyKey=//"),
        (0x100, "/qipc_sharedmemory_c64b8480a468e7f8b15abd0cb49a4f9a451af542", Some("///"), "posix:/qipc_sharedmemory_c64b8480a468e7f8b15abd0cb49a4f9a451af542?legacyKey=///"),
        (0x100, "/qipc_sharedmemory_bf15be717ac1b080b4f1c456692825891ff5073d", Some("é"), "posix:/qipc_sharedmemory_bf15be717ac1b080b4f1c456692825891ff5073d?legacyKey=é"),
        (0x100, "/qipc_sharedmemory_4ee6d8c75016b05332a8b73833535b5acdf1af01", Some("\u{a0}ÿ"), "posix:/qipc_sharedmemory_4ee6d8c75016b05332a8b73833535b5acdf1af01?legacyKey=\u{a0}ÿ"),
        (0x100, "/qipc_sharedmemory_b112ecf765f5c0f994296dab249cd1960bb5adf2", Some("Ā.\u{2000}.𐀀"), "posix:/qipc_sharedmemory_b112ecf765f5c0f994296dab249cd1960bb5adf2?legacyKey=Ā.\u{2000}.𐀀"),
        (0x100, "/qipc_sharedmemory_c0eda906dfa44aefd6aa929a13b2e87edf1b382c", Some(":Ā.\u{2000}.𐀀"), "posix:/qipc_sharedmemory_c0eda906dfa44aefd6aa929a13b2e87edf1b382c?legacyKey=:Ā.\u{2000}.𐀀"),
        (0x100, "/qipc_sharedmemory_helloaaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", Some("hello"), "posix:/qipc_sharedmemory_helloaaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d?legacyKey=hello"),
        (0x100, "/qipc_sharedmemory_mykey0eede1c3d5b68f1af7c03a9ff7f3aecfdccb5908", Some("my key/ä!"), "posix:/qipc_sharedmemory_mykey0eede1c3d5b68f1af7c03a9ff7f3aecfdccb5908?legacyKey=my key/ä!"),
        (0x100, "/qipc_sharedmemory_abcdefghd2e986e965ce0463be416ec9c11b3d230bc30292", Some("a%b&c=d#e?f+g h"), "posix:/qipc_sharedmemory_abcdefghd2e986e965ce0463be416ec9c11b3d230bc30292?legacyKey=a%25b%26c%3Dd%23e?f+g h"),
        (0x100, "/qipc_sharedmemory_7c4d33785daa5c2370201ffa236b427aa37c9996", Some("&"), "posix:/qipc_sharedmemory_7c4d33785daa5c2370201ffa236b427aa37c9996?legacyKey=%26"),
        (0x100, "/qipc_sharedmemory_21606782c65e44cac7afbb90977d8b6f82140e76", Some("="), "posix:/qipc_sharedmemory_21606782c65e44cac7afbb90977d8b6f82140e76?legacyKey=%3D"),
        (0x100, "/qipc_sharedmemory_legacyKeyx4950e1c9540aa1564e56e0d2f101190c85ff4c50", Some("legacyKey=x"), "posix:/qipc_sharedmemory_legacyKeyx4950e1c9540aa1564e56e0d2f101190c85ff4c50?legacyKey=legacyKey%3Dx"),
        (0x100, "/qipc_sharedmemory_081bfdbbfac29dac796e98a66999312c8eab132e", Some("%41"), "posix:/qipc_sharedmemory_081bfdbbfac29dac796e98a66999312c8eab132e?legacyKey=%2541"),
        (0x100, "/qipc_sharedmemory_d5620b62b131744f6c918ca3d47c39809c49bcc4", Some("\u{0}\u{1}\u{7f}"), "posix:/qipc_sharedmemory_d5620b62b131744f6c918ca3d47c39809c49bcc4?legacyKey=%00%01%7F"),
        (0x100, "/qipc_sharedmemory_x7716ec453dadd585921fe7180a0ef9f9540998cf", Some("x\u{fffe}"), "posix:/qipc_sharedmemory_x7716ec453dadd585921fe7180a0ef9f9540998cf?legacyKey=x\u{fffe}"),
        (0x100, "/qipc_sharedmemory_ab42f140d4d321debba29eb9e5b0f84004eb35b04d", Some("a\u{feff}b"), "posix:/qipc_sharedmemory_ab42f140d4d321debba29eb9e5b0f84004eb35b04d?legacyKey=a\u{feff}b"),
        (0x100, "/qipc_sharedmemory_832d919f00fcb224c918a57ce3b524e135bec3b3", Some("[]@:/?"), "posix:/qipc_sharedmemory_832d919f00fcb224c918a57ce3b524e135bec3b3?legacyKey=[]@:/?"),
        (0x100, "/qipc_sharedmemory_9c533688a979a858cbd6a43c9f91aba624651f18", Some("😀"), "posix:/qipc_sharedmemory_9c533688a979a858cbd6a43c9f91aba624651f18?legacyKey=😀"),
        (0x100, "/qipc_sharedmemory_b858cb282617fb0956d960215c8e84d1ccf909c6", Some(" "), "posix:/qipc_sharedmemory_b858cb282617fb0956d960215c8e84d1ccf909c6?legacyKey= "),
        (0x100, "/qipc_sharedmemory_a979ef10cc6f6a36df6b8a323307ee3bb2e2db9c", Some("+"), "posix:/qipc_sharedmemory_a979ef10cc6f6a36df6b8a323307ee3bb2e2db9c?legacyKey=+"),
        (0x51, "", None, "systemv:"),
        (0x51, "/tmp/qipc_sharedmemory_foobar8843d7f92416211de9ebb963ff4ce28125932878", Some("foobar"), "systemv:/tmp/qipc_sharedmemory_foobar8843d7f92416211de9ebb963ff4ce28125932878?legacyKey=foobar"),
        (0x51, "/tmp/qipc_sharedmemory_sometextecfbdf0f21d97ac8ff2823501a02e75ede4e73c5", Some("/sometext"), "systemv:/tmp/qipc_sharedmemory_sometextecfbdf0f21d97ac8ff2823501a02e75ede4e73c5?legacyKey=/sometext"),
        (0x51, "/tmp/qipc_sharedmemory_Globalsometext2bd86b9f7d2e72411678a453934081dff521a9eb", Some("Global\\sometext"), "systemv:/tmp/qipc_sharedmemory_Globalsometext2bd86b9f7d2e72411678a453934081dff521a9eb?legacyKey=Global\\sometext"),
        (0x51, "/tmp/qipc_sharedmemory_ee06d89f7fa9c0c3b7f0a0db6dbff1c30c6827df", Some(":/"), "systemv:/tmp/qipc_sharedmemory_ee06d89f7fa9c0c3b7f0a0db6dbff1c30c6827df?legacyKey=:/"),
        (0x51, "/tmp/qipc_sharedmemory_1e0b7e3a6a58a2863eba020d3621199e16cedb50", Some("/:"), "systemv:/tmp/qipc_sharedmemory_1e0b7e3a6a58a2863eba020d3621199e16cedb50?legacyKey=/:"),
        (0x51, "/tmp/qipc_sharedmemory_4345cb1fa27885a8fbfe7c0c830a592cc76a552b", Some("%"), "systemv:/tmp/qipc_sharedmemory_4345cb1fa27885a8fbfe7c0c830a592cc76a552b?legacyKey=%25"),
        (0x51, "/tmp/qipc_sharedmemory_caf8e8097950a374a6ee2af129a030f65b9ab260", Some("?#"), "systemv:/tmp/qipc_sharedmemory_caf8e8097950a374a6ee2af129a030f65b9ab260?legacyKey=?%23"),
        (0x51, "/tmp/qipc_sharedmemory_60a01c52bf3c14a2b4dc6880e5a3b3583cf10a8f", Some("#?"), "systemv:/tmp/qipc_sharedmemory_60a01c52bf3c14a2b4dc6880e5a3b3583cf10a8f?legacyKey=%23?"),
        (0x51, "/tmp/qipc_sharedmemory_ebbffb7d7ea5362a22bfa1bab0bfdeb1617cd610", Some("//"), "systemv:/tmp/qipc_sharedmemory_ebbffb7d7ea5362a22bfa1bab0bfdeb1617cd610?legacyKey=//"),
        (0x51, "/tmp/qipc_sharedmemory_c64b8480a468e7f8b15abd0cb49a4f9a451af542", Some("///"), "systemv:/tmp/qipc_sharedmemory_c64b8480a468e7f8b15abd0cb49a4f9a451af542?legacyKey=///"),
        (0x51, "/tmp/qipc_sharedmemory_bf15be717ac1b080b4f1c456692825891ff5073d", Some("é"), "systemv:/tmp/qipc_sharedmemory_bf15be717ac1b080b4f1c456692825891ff5073d?legacyKey=é"),
        (0x51, "/tmp/qipc_sharedmemory_4ee6d8c75016b05332a8b73833535b5acdf1af01", Some("\u{a0}ÿ"), "systemv:/tmp/qipc_sharedmemory_4ee6d8c75016b05332a8b73833535b5acdf1af01?legacyKey=\u{a0}ÿ"),
        (0x51, "/tmp/qipc_sharedmemory_b112ecf765f5c0f994296dab249cd1960bb5adf2", Some("Ā.\u{2000}.𐀀"), "systemv:/tmp/qipc_sharedmemory_b112ecf765f5c0f994296dab249cd1960bb5adf2?legacyKey=Ā.\u{2000}.𐀀"),
        (0x51, "/tmp/qipc_sharedmemory_c0eda906dfa44aefd6aa929a13b2e87edf1b382c", Some(":Ā.\u{2000}.𐀀"), "systemv:/tmp/qipc_sharedmemory_c0eda906dfa44aefd6aa929a13b2e87edf1b382c?legacyKey=:Ā.\u{2000}.𐀀"),
        (0x51, "/tmp/qipc_sharedmemory_helloaaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", Some("hello"), "systemv:/tmp/qipc_sharedmemory_helloaaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d?legacyKey=hello"),
        (0x51, "/tmp/qipc_sharedmemory_mykey0eede1c3d5b68f1af7c03a9ff7f3aecfdccb5908", Some("my key/ä!"), "systemv:/tmp/qipc_sharedmemory_mykey0eede1c3d5b68f1af7c03a9ff7f3aecfdccb5908?legacyKey=my key/ä!"),
        (0x51, "/tmp/qipc_sharedmemory_abcdefghd2e986e965ce0463be416ec9c11b3d230bc30292", Some("a%b&c=d#e?f+g h"), "systemv:/tmp/qipc_sharedmemory_abcdefghd2e986e965ce0463be416ec9c11b3d230bc30292?legacyKey=a%25b%26c%3Dd%23e?f+g h"),
        (0x51, "/tmp/qipc_sharedmemory_7c4d33785daa5c2370201ffa236b427aa37c9996", Some("&"), "systemv:/tmp/qipc_sharedmemory_7c4d33785daa5c2370201ffa236b427aa37c9996?legacyKey=%26"),
        (0x51, "/tmp/qipc_sharedmemory_21606782c65e44cac7afbb90977d8b6f82140e76", Some("="), "systemv:/tmp/qipc_sharedmemory_21606782c65e44cac7afbb90977d8b6f82140e76?legacyKey=%3D"),
        (0x51, "/tmp/qipc_sharedmemory_legacyKeyx4950e1c9540aa1564e56e0d2f101190c85ff4c50", Some("legacyKey=x"), "systemv:/tmp/qipc_sharedmemory_legacyKeyx4950e1c9540aa1564e56e0d2f101190c85ff4c50?legacyKey=legacyKey%3Dx"),
        (0x51, "/tmp/qipc_sharedmemory_081bfdbbfac29dac796e98a66999312c8eab132e", Some("%41"), "systemv:/tmp/qipc_sharedmemory_081bfdbbfac29dac796e98a66999312c8eab132e?legacyKey=%2541"),
        (0x51, "/tmp/qipc_sharedmemory_d5620b62b131744f6c918ca3d47c39809c49bcc4", Some("\u{0}\u{1}\u{7f}"), "systemv:/tmp/qipc_sharedmemory_d5620b62b131744f6c918ca3d47c39809c49bcc4?legacyKey=%00%01%7F"),
        (0x51, "/tmp/qipc_sharedmemory_x7716ec453dadd585921fe7180a0ef9f9540998cf", Some("x\u{fffe}"), "systemv:/tmp/qipc_sharedmemory_x7716ec453dadd585921fe7180a0ef9f9540998cf?legacyKey=x\u{fffe}"),
        (0x51, "/tmp/qipc_sharedmemory_ab42f140d4d321debba29eb9e5b0f84004eb35b04d", Some("a\u{feff}b"), "systemv:/tmp/qipc_sharedmemory_ab42f140d4d321debba29eb9e5b0f84004eb35b04d?legacyKey=a\u{feff}b"),
        (0x51, "/tmp/qipc_sharedmemory_832d919f00fcb224c918a57ce3b524e135bec3b3", Some("[]@:/?"), "systemv:/tmp/qipc_sharedmemory_832d919f00fcb224c918a57ce3b524e135bec3b3?legacyKey=[]@:/?"),
        (0x51, "/tmp/qipc_sharedmemory_9c533688a979a858cbd6a43c9f91aba624651f18", Some("😀"), "systemv:/tmp/qipc_sharedmemory_9c533688a979a858cbd6a43c9f91aba624651f18?legacyKey=😀"),
        (0x51, "/tmp/qipc_sharedmemory_b858cb282617fb0956d960215c8e84d1ccf909c6", Some(" "), "systemv:/tmp/qipc_sharedmemory_b858cb282617fb0956d960215c8e84d1ccf909c6?legacyKey= "),
        (0x51, "/tmp/qipc_sharedmemory_a979ef10cc6f6a36df6b8a323307ee3bb2e2db9c", Some("+"), "systemv:/tmp/qipc_sharedmemory_a979ef10cc6f6a36df6b8a323307ee3bb2e2db9c?legacyKey=+"),
        (0x101, "%4%29]%25?legacyKey=", Some(";%2F %23\u{7f}"), "windows:%254%2529]%2525%3FlegacyKey=?legacyKey=;%252F %2523%7F"),
        (0xdd, "3F F4908080", None, "systemv-221:3F F4908080"),
        (0x51, "\u{fffd}%3F%\u{0} \u{1fffe}", Some("%E2%80%80%C7]#%F4%90%80%80"), "systemv:\u{fffd}%253F%25%00 \u{1fffe}?legacyKey=%25E2%2580%2580%25C7]%23%25F4%2590%2580%2580"),
        (0xff, "|\u{0}0&", None, "systemv-255:|%000&"),
        (0x7d, "%C3%3A", None, "systemv-125:%25C3%253A"),
        (0x1, " ]F0", Some("%C3'%F4%90%80%80-"), "systemv-1: ]F0?legacyKey=%25C3'%25F4%2590%2580%2580-"),
        (0x51, "%7C\u{7f}%4C%DF#\u{10ffff}\u{fffe}%C0%80", None, "systemv:%257C%7F%254C%25DF%23\u{10ffff}\u{fffe}%25C0%2580"),
        (0x100, "*%93\u{2000}legacyKey[%G0", None, "posix:*%2593\u{2000}legacyKey[%25G0"),
        (0x101, "é\u{1}", Some("%4é/"), "windows:é%01?legacyKey=%254é/"),
        (0x1, "\\(\u{fffe}).LegacyKey=%G0", Some("."), "systemv-1:\\(\u{fffe}).LegacyKey=%25G0?legacyKey=."),
        (0x101, "\u{1}%C30!ÿ", Some("%zz<"), "windows:%01%25C30!ÿ?legacyKey=%25zz<"),
        (0x101, "%06.", Some("%4\u{80}Z>"), "windows:%2506.?legacyKey=%254\u{80}Z>"),
        (0x100, "%70%%%%%F0legacyKey^\u{1fffe}%", None, "posix:%2570%25%25%25%25%25F0legacyKey^\u{1fffe}%25"),
        (0xb8, "!", Some("]~|%23"), "systemv-184:!?legacyKey=]~|%2523"),
        (0xd6, "%3A%4%26\u{10ffff}é\u{fffe}%01", None, "systemv-214:%253A%254%2526\u{10ffff}é\u{fffe}%2501"),
        (0x1d, "%20\u{ad}\u{a0}-legacyKey=0", None, "systemv-29:%2520\u{ad}\u{a0}-legacyKey=0"),
        (0x51, "%G0#\u{fdd0}", None, "systemv:%25G0%23\u{fdd0}"),
        (0x100, "%2E%62$%4#Ā%E2%25", None, "posix:%252E%2562$%254%23Ā%25E2%2525"),
        (0x100, "zzG0", Some("é%EF%B7%AF"), "posix:zzG0?legacyKey=é%25EF%25B7%25AF"),
        (0x101, "%18%E2%80%8B///%F0", Some("%23%\u{1f}"), "windows:%2518%25E2%2580%258B///%25F0?legacyKey=%2523%25%1F"),
        (0x51, "%G0", Some("%C3%BF\u{fffe};\u{a}"), "systemv:%25G0?legacyKey=%25C3%25BF\u{fffe};%0A"),
        (0x32, "=?a%%E2%82+%4", None, "systemv-50:=%3Fa%25%25E2%2582+%254"),
        (0x101, "[`%4", Some("\u{ad}>Ā\u{0}"), "windows:[`%254?legacyKey=\u{ad}>Ā%00"),
        (0x51, "%F0%9F(:", None, "systemv:%25F0%259F(:"),
        (0x1, "6b", None, "systemv-1:6b"),
        (0xff, "$\u{ffff}\u{ffff}%C0%80\"", None, "systemv-255:$\u{ffff}\u{ffff}%25C0%2580\""),
        (0x1, "%26%3A%%\u{1f}%F0%9F%BF%BF%3F%4", Some("a\u{fffe}"), "systemv-1:%2526%253A%25%25%1F%25F0%259F%25BF%25BF%253F%254?legacyKey=a\u{fffe}"),
        (0x97, "(%E2%80%80\u{80}", Some("-,>$%88"), "systemv-151:(%25E2%2580%2580\u{80}?legacyKey=-,>$%2588"),
        (0x50, "25@A25C3A9legacyKey=\u{1}", None, "systemv-80:25@A25C3A9legacyKey=%01"),
        (0x100, "\u{1}\u{10ffff}@\u{0}", Some(" \u{ffff}%be%F4%90%80%80%"), "posix:%01\u{10ffff}@%00?legacyKey= \u{ffff}%25be%25F4%2590%2580%2580%25"),
        (0x100, "`%G0.\u{2000}%C0%80%", Some("Z%C3%A4%C0%80\u{9f}@"), "posix:`%25G0.\u{2000}%25C0%2580%25?legacyKey=Z%25C3%25A4%25C0%2580\u{9f}@"),
        (0x54, "\u{1fffe}", Some("/éLegacyKey="), "systemv-84:\u{1fffe}?legacyKey=/éLegacyKey%3D"),
        (0x1, "%2f%E2%82", None, "systemv-1:%252f%25E2%2582"),
        (0x54, "%G0a%40\u{200b}?", None, "systemv-84:%25G0a%2540\u{200b}%3F"),
        (0x1, "ÿ9Z\u{0}[\\2F", Some("%E2%F0%9F%98"), "systemv-1:ÿ9Z%00[\\2F?legacyKey=%25E2%25F0%259F%2598"),
        (0x100, "//\u{feff}%23^\u{80}%%C2%80", None, "posix:/%2F\u{feff}%2523^\u{80}%25%25C2%2580"),
        (0x100, "+E2827e", None, "posix:+E2827e"),
        (0xff, "", Some("[%40"), "systemv-255:?legacyKey=[%2540"),
        (0x54, "[%G0%4", Some("%F0%9F%98"), "systemv-84:[%25G0%254?legacyKey=%25F0%259F%2598"),
        (0x1, "%259\u{a}%10|", None, "systemv-1:%25259%0A%2510|"),
        (0x100, "9%F3\"!-%ae\\%AD", None, "posix:9%25F3\"!-%25ae\\%25AD"),
        (0xff, "\\>%E2%C3%70%5C%E2", Some("%5E"), "systemv-255:\\>%25E2%25C3%2570%255C%25E2?legacyKey=%255E"),
        (0xff, "%%+-%C3aÿ", None, "systemv-255:%25%25+-%25C3aÿ"),
        (0x1, "3A ", None, "systemv-1:3A "),
        (0x101, "\u{a}=%419", Some("a"), "windows:%0A=%25419?legacyKey=a"),
        (0xff, "}|", Some("%C0%80"), "systemv-255:}|?legacyKey=%25C0%2580"),
        (0x100, "", None, "posix:"),
        (0x1, "", None, "systemv-1:"),
        (0x1, "", None, "systemv-1:"),
        (0x101, "", None, "windows:"),
        (0x51, "", Some("%0C%2F@%ED%A0%80%F4%90%80%80"), "systemv:?legacyKey=%250C%252F@%25ED%25A0%2580%25F4%2590%2580%2580"),
        (0xff, "\u{200b}~Ā", Some("\u{ad}\u{7f}Z"), "systemv-255:\u{200b}~Ā?legacyKey=\u{ad}%7FZ"),
        (0x56, ":///a[,%F0", Some("\u{80}%00#"), "systemv-86::///a[,%25F0?legacyKey=\u{80}%2500%23"),
        (0x54, "", Some("0.{"), "systemv-84:?legacyKey=0.{"),
        (0x54, "~ÿ", None, "systemv-84:~ÿ"),
        (0x54, "%A5%2F!%E2%80%80%*%FF%24", Some("~%2f//"), "systemv-84:%25A5%252F!%25E2%2580%2580%25*%25FF%2524?legacyKey=~%252f//"),
        (0xf2, "-\u{fffe}%5DlegacyKey=a%2f\\", Some("^\u{80}"), "systemv-242:-\u{fffe}%255DlegacyKey=a%252f\\?legacyKey=^\u{80}"),
        (0x1, "\u{7f}%15&\u{fdd0}%G0%G0", Some("𐀀"), "systemv-1:%7F%2515&\u{fdd0}%25G0%25G0?legacyKey=𐀀"),
        (0xff, "=/~C080ZC312", Some("%16"), "systemv-255:=/~C080ZC312?legacyKey=%2516"),
        (0x1, "%5E%ED%A0%80%4.Z.$", None, "systemv-1:%255E%25ED%25A0%2580%254.Z.$"),
        (0x54, "b3E2A223/17430E", None, "systemv-84:b3E2A223/17430E"),
        (0x51, "%41,%F0%9F %01legacyKeyZ%4", None, "systemv:%2541,%25F0%259F %2501legacyKeyZ%254"),
        (0xff, "/\u{ad}=%%9", Some("LegacyKey="), "systemv-255:/\u{ad}=%25%259?legacyKey=LegacyKey%3D"),
        (0x1, "", Some(" "), "systemv-1:?legacyKey= "),
        (0x1, "@Ā\\", Some("%23%3F&%00%3F"), "systemv-1:@Ā\\?legacyKey=%2523%253F%26%2500%253F"),
        (0x86, "\u{1f}", Some("%7F%23\\"), "systemv-134:%1F?legacyKey=%257F%2523\\"),
        (0xff, "%3D~%5B", Some("%69%6C𐀀\u{10ffff}"), "systemv-255:%253D~%255B?legacyKey=%2569%256C𐀀\u{10ffff}"),
        (0x100, "ÿ\u{ad}legacyKey%C3%3F\u{1f}", Some("a𐀀"), "posix:ÿ\u{ad}legacyKey%25C3%253F%1F?legacyKey=a𐀀"),
        (0x54, "%00\u{80}-%23", Some("%F4%90%80%80@@Ā"), "systemv-84:%2500\u{80}-%2523?legacyKey=%25F4%2590%2580%2580@@Ā"),
        (0x1, "-😀:%26%2f`%ED%A0%80=", None, "systemv-1:-😀:%2526%252f`%25ED%25A0%2580="),
        (0x51, "ZlegacyKey=)%40𐀀%42%52\u{fdd0}", Some("+"), "systemv:ZlegacyKey=)%2540𐀀%2542%2552\u{fdd0}?legacyKey=+"),
        (0x100, "=%E2%82\u{2000}=\u{fdd0}\u{ad}", Some("%C3"), "posix:=%25E2%2582\u{2000}=\u{fdd0}\u{ad}?legacyKey=%25C3"),
        (0x1, "", None, "systemv-1:"),
        (0xff, "%EB%7e", Some("%%09\""), "systemv-255:%25EB%257e?legacyKey=%25%2509\""),
        (0x54, "9&legacyKey=3EZ𐀀", None, "systemv-84:9&legacyKey=3EZ𐀀"),
        (0x101, "^", None, "windows:^"),
        (0x101, "", None, "windows:"),
        (0x1, "4?aE282", None, "systemv-1:4%3FaE282"),
        (0x54, "3A``", None, "systemv-84:3A``"),
        (0xff, "é+{", Some("|///"), "systemv-255:é+{?legacyKey=|///"),
        (0x51, "\u{80}%38%C3=~AĀ%E2%82", Some("z"), "systemv:\u{80}%2538%25C3=~AĀ%25E2%2582?legacyKey=z"),
        (0x54, "#%E5%18%D2\u{a0}/\u{fffd}\u{9f}", Some("?-%/Z"), "systemv-84:%23%25E5%2518%25D2\u{a0}/\u{fffd}\u{9f}?legacyKey=?-%25/Z"),
        (0x54, "%f2Ā>%g1\u{7f}%41[", None, "systemv-84:%25f2Ā>%25g1%7F%2541["),
        (0x54, "%C3%E2%E2%82%C0%80", Some("="), "systemv-84:%25C3%25E2%25E2%2582%25C0%2580?legacyKey=%3D"),
        (0x101, "#-\u{fffd}%3D\u{ffff}\u{ad}\u{7f}%81", Some(">%63.\u{7f}%09"), "windows:%23-\u{fffd}%253D\u{ffff}\u{ad}%7F%2581?legacyKey=>%2563.%7F%2509"),
        (0xbc, "204`?[[", Some("%3Fa\u{9f}%F4%90%80%80"), "systemv-188:204`%3F[[?legacyKey=%253Fa\u{9f}%25F4%2590%2580%2580"),
        (0x54, "4]E2\u{2000}5E", None, "systemv-84:4]E2\u{2000}5E"),
        (0x1, "%9%44\u{fffe}", Some("%87%E2%80%8B\u{fffe}"), "systemv-1:%259%2544\u{fffe}?legacyKey=%2587%25E2%2580%258B\u{fffe}"),
        (0x4a, "$40", None, "systemv-74:$40"),
        (0x1, "\\\u{80}%C2%A0%F0%9F%98", Some("%23"), "systemv-1:\\\u{80}%25C2%25A0%25F0%259F%2598?legacyKey=%2523"),
        (0x101, ";.%E2Z\u{10ffff}ÿ", None, "windows:;.%25E2Z\u{10ffff}ÿ"),
        (0x51, "\u{2000}&%F0%9F%5A:", Some("\u{1fffe}%41-|\u{1fffe}"), "systemv:\u{2000}&%25F0%259F%255A:?legacyKey=\u{1fffe}%2541-|\u{1fffe}"),
        (0x51, "%2F\u{2000}&'%3A%g1", None, "systemv:%252F\u{2000}&'%253A%25g1"),
        (0x54, "~A", None, "systemv-84:~A"),
        (0x86, "\u{1f}", Some("%5C"), "systemv-134:%1F?legacyKey=%255C"),
        (0xff, "alegacyKey//%44+&", None, "systemv-255:alegacyKey//%2544+&"),
        (0x8e, "A%409%zz\u{7f}%2F", Some("\"?%G0>\u{9f}"), "systemv-142:A%25409%25zz%7F%252F?legacyKey=\"?%25G0>\u{9f}"),
        (0x100, "#\"%25%40", Some("😀\\\u{fffe}legacyKey"), "posix:%23\"%2525%2540?legacyKey=😀\\\u{fffe}legacyKey"),
        (0x100, "A", Some("?é%0E"), "posix:A?legacyKey=?é%250E"),
        (0xff, "*<\"7e29", None, "systemv-255:*<\"7e29"),
        (0x100, "&\u{a}/%3DZ!\\%9c", Some("%E0😀:%5d%ED%A0%80"), "posix:&%0A/%253DZ!\\%259c?legacyKey=%25E0😀:%255d%25ED%25A0%2580"),
        (0x101, "%32%26&\u{a0}", None, "windows:%2532%2526&\u{a0}"),
        (0x45, "\u{1f}\\", Some("@foo.Z"), "systemv-69:%1F\\?legacyKey=@foo.Z"),
        (0x1, "\u{1}\u{feff}3A?legacyKey=E2824///", Some("Ā"), "systemv-1:%01\u{feff}3A%3FlegacyKey=E2824///?legacyKey=Ā"),
        (0x100, "\"%3A𐀀-\u{a0}/%G0\u{a}", None, "posix:\"%253A𐀀-\u{a0}/%25G0%0A"),
        (0x101, "\u{80}\u{7f}%75%", Some("0"), "windows:\u{80}%7F%2575%25?legacyKey=0"),
        (0x51, "'?///\u{0}C3\u{2000}Ā`", Some("////zé"), "systemv:'%3F///%00C3\u{2000}Ā`?legacyKey=////zé"),
        (0xff, "", Some("legacyKey"), "systemv-255:?legacyKey=legacyKey"),
        (0xff, "%", Some("%23%29\u{0}'"), "systemv-255:%25?legacyKey=%2523%2529%00'"),
        (0x1, "%C3%A4é[%52%40a", Some("a\u{feff}[*9"), "systemv-1:%25C3%25A4é[%2552%2540a?legacyKey=a\u{feff}[*9"),
        (0x101, "a", None, "windows:a"),
        (0x54, "", None, "systemv-84:"),
        (0x59, "😀\u{0}+", Some("a~%26\u{1f}."), "systemv-89:😀%00+?legacyKey=a~%2526%1F."),
        (0x54, "%3D?+\u{ffff}\u{0},", None, "systemv-84:%253D%3F+\u{ffff}%00,"),
        (0x101, "%7E]ÿlegacyKey#", None, "windows:%257E]ÿlegacyKey%23"),
        (0xae, "%2F%\u{0}///\u{9}", None, "systemv-174:%252F%25%00///%09"),
        (0x54, "%ED%A0%80%G0[", None, "systemv-84:%25ED%25A0%2580%25G0["),
        (0x101, "C280E282ĀD4F0908080", None, "windows:C280E282ĀD4F0908080"),
        (0x1, "%C0%80 \u{ffff}", None, "systemv-1:%25C0%2580 \u{ffff}"),
        (0x100, "%", None, "posix:%25"),
        (0x101, "F4908080😀=", Some("\u{0}%%C3"), "windows:F4908080😀=?legacyKey=%00%25%25C3"),
        (0x54, "%7e\u{80}%33", Some("\\Z/"), "systemv-84:%257e\u{80}%2533?legacyKey=\\Z/"),
        (0x54, "", None, "systemv-84:"),
        (0x1, "'\u{9f}%C0%80A", Some("\u{1fffe}%7B\u{fffe}\u{7f}"), "systemv-1:'\u{9f}%25C0%2580A?legacyKey=\u{1fffe}%257B\u{fffe}%7F"),
        (0xff, "A\u{a0}foo*Z'", None, "systemv-255:A\u{a0}foo*Z'"),
        (0x54, "\u{fffd}", None, "systemv-84:\u{fffd}"),
        (0x100, "]#%7eĀ%%F0%9F%%23", None, "posix:]%23%257eĀ%25%25F0%259F%25%2523"),
        (0x101, "%C3\\", None, "windows:%25C3\\"),
        (0x9a, "fooZ", None, "systemv-154:fooZ"),
        (0xff, "*=%4%C3", Some("%26é%40"), "systemv-255:*=%254%25C3?legacyKey=%2526é%2540"),
        (0x51, "", None, "systemv:"),
        (0x21, ",%02 #", None, "systemv-33:,%2502 %23"),
        (0xff, "],", Some("\u{2000}a\"\u{feff}"), "systemv-255:],?legacyKey=\u{2000}a\"\u{feff}"),
        (0x51, "7B\u{200b}", None, "systemv:7B\u{200b}"),
        (0x100, "9C3ÿ7C`\u{2000}F09F", None, "posix:9C3ÿ7C`\u{2000}F09F"),
        (0x51, "\u{0}😀legacyKey=", None, "systemv:%00😀legacyKey="),
        (0x1, "%c1~<?legacyKey=%E2", None, "systemv-1:%25c1~<%3FlegacyKey=%25E2"),
        (0x19, "&legacyKey=%b3]", None, "systemv-25:&legacyKey=%25b3]"),
        (0x54, "%///+\u{10ffff}%C3", None, "systemv-84:%25///+\u{10ffff}%25C3"),
        (0x1, ")$%", None, "systemv-1:)$%25"),
        (0x15, "", Some("é😀%%\u{0}"), "systemv-21:?legacyKey=é😀%25%25%00"),
        (0x54, "\u{7f}E24", Some("%1F%E2+"), "systemv-84:%7FE24?legacyKey=%251F%25E2+"),
        (0x100, "?legacyKey=*", Some("///é"), "posix:%3FlegacyKey=*?legacyKey=///é"),
        (0x101, "%:{", None, "windows:%25:{"),
        (0xff, "\u{200b} %F4%90%80%80`^%C3", Some("a$]%E2%82"), "systemv-255:\u{200b} %25F4%2590%2580%2580`^%25C3?legacyKey=a$]%25E2%2582"),
        (0x101, "&éLegacyKey=𐀀'ÿ%3F", Some("\\%"), "windows:&éLegacyKey=𐀀'ÿ%253F?legacyKey=\\%25"),
        (0xb4, "", None, "systemv-180:"),
        (0x100, "\u{fdd0}%5C\\", None, "posix:\u{fdd0}%255C\\"),
        (0x101, "9/%A9", None, "windows:9/%25A9"),
        (0x1, "{", None, "systemv-1:{"),
    ];

    /// Texts and `QNativeIpcKey::fromString(text)`: `None` when invalid.
    #[rustfmt::skip]
    const PARSE_ROWS: &[(&str, Option<Row>)] = &[
        ("systemv-81:", Some((0x51, "", None, "systemv:"))),
        ("systemv-009:", Some((0x9, "", None, "systemv-9:"))),
        ("posix:%2f%66o%6f", Some((0x100, "/foo", None, "posix:/foo"))),
        ("posix:%C4%80.%E2%80%80.%F0%90%80%80", Some((0x100, "Ā.\u{2000}.𐀀", None, "posix:Ā.\u{2000}.𐀀"))),
        ("posix:/foo#bar", Some((0x100, "/foo", None, "posix:/foo"))),
        ("posix:/foo#bar?baz", Some((0x100, "/foo", None, "posix:/foo"))),
        ("posix:/foo?bar", None),
        ("posix:/foo?bar#baz", None),
        ("81", None),
        ("-81", None),
        ("invalidprefix:", None),
        ("systemv255", None),
        ("systemv--255:", None),
        ("systemv+255", None),
        ("systemv-0x01:", None),
        ("systemv-0:", None),
        ("systemv-256", None),
        ("systemv-32769:", None),
        ("systemv-65537:", None),
        ("systemv-2147483649:", None),
        ("systemv-4294967297:", None),
        ("systemv", None),
        ("systemvjunk", None),
        ("junk:systemv:", None),
        ("posix", None),
        ("posixjunk", None),
        ("junk:posix:", None),
        ("windows", None),
        ("windowsjunk", None),
        ("junk:windows:", None),
        ("systemv-1", None),
        ("systemv-1junk", None),
        ("junk:systemv-1:", None),
        ("systemv-255", None),
        ("systemv-255junk", None),
        ("junk:systemv-255:", None),
        ("POSIX:/x", Some((0x100, "/x", None, "posix:/x"))),
        ("PoSiX:/x", Some((0x100, "/x", None, "posix:/x"))),
        ("Systemv-009:x", Some((0x9, "x", None, "systemv-9:x"))),
        ("SYSTEMV:x", Some((0x51, "x", None, "systemv:x"))),
        ("WINDOWS:Global\\x", Some((0x101, "Global\\x", None, "windows:Global\\x"))),
        ("systemv-:x", None),
        ("systemv-1.:x", None),
        ("systemv-+1:x", None),
        ("systemv- 1:x", None),
        ("systemv-0000000000000000000081:x", Some((0x51, "x", None, "systemv:x"))),
        ("systemv-00000000000000000000000:x", None),
        ("systemv1:x", None),
        ("systemv-99999999999999999999:x", None),
        (" posix:/x", None),
        ("posix :/x", None),
        ("\u{9}posix:/x", None),
        ("posix:/x ", Some((0x100, "/x ", None, "posix:/x "))),
        ("", None),
        (":", None),
        (":/x", None),
        ("posix?:/x", None),
        ("posix#:/x", None),
        ("po six:/x", None),
        ("1posix:/x", None),
        ("posix+:/x", None),
        ("posix.:/x", None),
        ("posiſ:/x", None),
        ("posix:///foo", Some((0x100, "/foo", None, "posix:/foo"))),
        ("posix://", Some((0x100, "", None, "posix:"))),
        ("posix://@/x", Some((0x100, "/x", None, "posix:/x"))),
        ("posix://:/x", Some((0x100, "/x", None, "posix:/x"))),
        ("posix://@:/x", Some((0x100, "/x", None, "posix:/x"))),
        ("posix://@:", Some((0x100, "", None, "posix:"))),
        ("posix://:", Some((0x100, "", None, "posix:"))),
        ("posix://@", Some((0x100, "", None, "posix:"))),
        ("posix://:@/x", None),
        ("posix://u@/x", None),
        ("posix://a@b/x", None),
        ("posix://host/foo", None),
        ("posix://host", None),
        ("posix://:0/x", None),
        ("posix://:80/x", None),
        ("posix://::/x", None),
        ("posix://@@/x", None),
        ("posix://%40/x", None),
        ("posix://[]/x", None),
        ("posix://[::1]/x", None),
        ("posix://[::]:/x", None),
        ("posix://./x", None),
        ("posix://\u{ad}/x", None),
        ("posix://%C2%AD/x", None),
        ("posix://\u{200b}/x", None),
        ("posix://?legacyKey=z", Some((0x100, "", Some("z"), "posix:?legacyKey=z"))),
        ("posix://#x", Some((0x100, "", None, "posix:"))),
        ("posix:////x", Some((0x100, "//x", None, "posix:/%2Fx"))),
        ("posix:///", Some((0x100, "/", None, "posix:/"))),
        ("posix://@/", Some((0x100, "/", None, "posix:/"))),
        ("posix:/%2F", Some((0x100, "//", None, "posix:/%2F"))),
        ("posix:/%2F/x", Some((0x100, "///x", None, "posix:/%2F/x"))),
        ("posix:/a//b", Some((0x100, "/a//b", None, "posix:/a//b"))),
        ("posix:a:b", Some((0x100, "a:b", None, "posix:a:b"))),
        ("posix:/a:b", Some((0x100, "/a:b", None, "posix:/a:b"))),
        ("posix:a@b", Some((0x100, "a@b", None, "posix:a@b"))),
        ("posix:/a@b:c", Some((0x100, "/a@b:c", None, "posix:/a@b:c"))),
        ("posix:%41%zz", Some((0x100, "%41%zz", None, "posix:%2541%25zz"))),
        ("posix:%C3%A4%2", Some((0x100, "%C3%A4%2", None, "posix:%25C3%25A4%252"))),
        ("posix:%", Some((0x100, "%", None, "posix:%25"))),
        ("posix:%%", Some((0x100, "%%", None, "posix:%25%25"))),
        ("posix:%4", Some((0x100, "%4", None, "posix:%254"))),
        ("posix:/%4g", Some((0x100, "/%4g", None, "posix:/%254g"))),
        ("posix:%c3%a4", Some((0x100, "ä", None, "posix:ä"))),
        ("posix:%C3%A4", Some((0x100, "ä", None, "posix:ä"))),
        ("posix:%C3%41", Some((0x100, "\u{fffd}A", None, "posix:\u{fffd}A"))),
        ("posix:%C3", Some((0x100, "\u{fffd}", None, "posix:\u{fffd}"))),
        ("posix:%C3x", Some((0x100, "\u{fffd}x", None, "posix:\u{fffd}x"))),
        ("posix:%E0%A4", Some((0x100, "\u{fffd}\u{fffd}", None, "posix:\u{fffd}\u{fffd}"))),
        ("posix:%F0%9F%98%80", Some((0x100, "😀", None, "posix:😀"))),
        ("posix:%F0%9F%98", Some((0x100, "\u{fffd}\u{fffd}\u{fffd}", None, "posix:\u{fffd}\u{fffd}\u{fffd}"))),
        ("posix:%EF%BF%BE", Some((0x100, "\u{fffd}\u{fffd}\u{fffd}", None, "posix:\u{fffd}\u{fffd}\u{fffd}"))),
        ("posix:%EF%BF%BF", Some((0x100, "\u{fffd}\u{fffd}\u{fffd}", None, "posix:\u{fffd}\u{fffd}\u{fffd}"))),
        ("posix:%EF%B7%90", Some((0x100, "\u{fffd}\u{fffd}\u{fffd}", None, "posix:\u{fffd}\u{fffd}\u{fffd}"))),
        ("posix:%EF%B7%AF", Some((0x100, "\u{fffd}\u{fffd}\u{fffd}", None, "posix:\u{fffd}\u{fffd}\u{fffd}"))),
        ("posix:%EF%B7%B0", Some((0x100, "ﷰ", None, "posix:ﷰ"))),
        ("posix:%F0%9F%BF%BF", Some((0x100, "\u{fffd}\u{fffd}\u{fffd}\u{fffd}", None, "posix:\u{fffd}\u{fffd}\u{fffd}\u{fffd}"))),
        ("posix:%F4%8F%BF%BF", Some((0x100, "\u{fffd}\u{fffd}\u{fffd}\u{fffd}", None, "posix:\u{fffd}\u{fffd}\u{fffd}\u{fffd}"))),
        ("posix:%F4%90%80%80", Some((0x100, "\u{fffd}\u{fffd}\u{fffd}\u{fffd}", None, "posix:\u{fffd}\u{fffd}\u{fffd}\u{fffd}"))),
        ("posix:%ED%A0%80", Some((0x100, "\u{fffd}\u{fffd}\u{fffd}", None, "posix:\u{fffd}\u{fffd}\u{fffd}"))),
        ("posix:%C0%80", Some((0x100, "\u{fffd}\u{fffd}", None, "posix:\u{fffd}\u{fffd}"))),
        ("posix:%E0%80%80", Some((0x100, "\u{fffd}\u{fffd}\u{fffd}", None, "posix:\u{fffd}\u{fffd}\u{fffd}"))),
        ("posix:%80", Some((0x100, "\u{fffd}", None, "posix:\u{fffd}"))),
        ("posix:%FF", Some((0x100, "\u{fffd}", None, "posix:\u{fffd}"))),
        ("posix:%00%1F%7F", Some((0x100, "\u{0}\u{1f}\u{7f}", None, "posix:%00%1F%7F"))),
        ("posix:%2525", Some((0x100, "%25", None, "posix:%2525"))),
        ("posix:%3F%23%26%3D", Some((0x100, "?#&=", None, "posix:%3F%23&="))),
        ("posix:ä%C3%A4", Some((0x100, "ää", None, "posix:ää"))),
        ("posix:%E2%82€", Some((0x100, "\u{fffd}\u{fffd}€", None, "posix:\u{fffd}\u{fffd}€"))),
        ("posix:\u{fffe}%EF%BF%BE", Some((0x100, "\u{fffe}\u{fffd}\u{fffd}\u{fffd}", None, "posix:\u{fffe}\u{fffd}\u{fffd}\u{fffd}"))),
        ("posix:%25%41", Some((0x100, "%A", None, "posix:%25A"))),
        ("posix:/x?legacyKey=", Some((0x100, "/x", None, "posix:/x"))),
        ("posix:/x?legacyKey", Some((0x100, "/x", None, "posix:/x"))),
        ("posix:/x?", Some((0x100, "/x", None, "posix:/x"))),
        ("posix:/x?&", None),
        ("posix:/x?legacyKey=a&", Some((0x100, "/x", Some("a"), "posix:/x?legacyKey=a"))),
        ("posix:/x?&legacyKey=a", None),
        ("posix:/x?legacyKey=a&&legacyKey=b", None),
        ("posix:/x?legacy%4Bey=a", Some((0x100, "/x", Some("a"), "posix:/x?legacyKey=a"))),
        ("posix:/x?legacyKe%79=a", Some((0x100, "/x", Some("a"), "posix:/x?legacyKey=a"))),
        ("posix:/x?LegacyKey=a", None),
        ("posix:/x?legacykey=a", None),
        ("posix:/x?other=1", None),
        ("posix:/x?legacyKey=a&other=1", None),
        ("posix:/x?legacyKey=a&legacyKey=b", Some((0x100, "/x", Some("b"), "posix:/x?legacyKey=b"))),
        ("posix:/x?legacyKey=a&legacyKey=", Some((0x100, "/x", None, "posix:/x"))),
        ("posix:/x?legacyKey=a&legacyKey", Some((0x100, "/x", None, "posix:/x"))),
        ("posix:/x?legacyKey=%zz&legacyKey=%41", Some((0x100, "/x", Some("%41"), "posix:/x?legacyKey=%2541"))),
        ("posix:/%41?legacyKey=%zz", Some((0x100, "/A", Some("%zz"), "posix:/A?legacyKey=%25zz"))),
        ("posix:/x?legacyKey=%41", Some((0x100, "/x", Some("A"), "posix:/x?legacyKey=A"))),
        ("posix:/x?legacyKey=a=b%3D%26", Some((0x100, "/x", Some("a=b=&"), "posix:/x?legacyKey=a%3Db%3D%26"))),
        ("posix:/x?legacyKey=a+b%20c", Some((0x100, "/x", Some("a+b c"), "posix:/x?legacyKey=a+b c"))),
        ("posix:/x?legacyKey=%EF%BF%BEx", Some((0x100, "/x", Some("\u{fffe}x"), "posix:/x?legacyKey=\u{fffe}x"))),
        ("posix:/x?legacyKey=%00%7F", Some((0x100, "/x", Some("\u{0}\u{7f}"), "posix:/x?legacyKey=%00%7F"))),
        ("posix:/x?legacyKey=a#?legacyKey=b", Some((0x100, "/x", Some("a"), "posix:/x?legacyKey=a"))),
        ("posix:/x?a?legacyKey=b", None),
        ("posix:?legacyKey=b", Some((0x100, "", Some("b"), "posix:?legacyKey=b"))),
        ("posix:/x?legacyKey=%E0%A4", Some((0x100, "/x", Some("\u{fffd}\u{fffd}"), "posix:/x?legacyKey=\u{fffd}\u{fffd}"))),
        ("posix:/x?legacyKey=%E1%80%E1%80%80", Some((0x100, "/x", Some("\u{fffd}\u{fffd}က"), "posix:/x?legacyKey=\u{fffd}\u{fffd}က"))),
        ("posix:/x?legacyKey=%C3%A4", Some((0x100, "/x", Some("ä"), "posix:/x?legacyKey=ä"))),
        ("posix:/x?legacyKey=ä%E2%82", Some((0x100, "/x", Some("ä\u{fffd}\u{fffd}"), "posix:/x?legacyKey=ä\u{fffd}\u{fffd}"))),
        ("posix:/x?legacyKey=a?b", Some((0x100, "/x", Some("a?b"), "posix:/x?legacyKey=a?b"))),
        ("posix:/x?legacyKey==", Some((0x100, "/x", Some("="), "posix:/x?legacyKey=%3D"))),
        ("posix:/x?legacyKey=%3D", Some((0x100, "/x", Some("="), "posix:/x?legacyKey=%3D"))),
        ("posix:/x?legacy%25Key=a", None),
        ("posix:/x?legacyKey%3Da", None),
        ("posix:/x?legacyKey=%", Some((0x100, "/x", Some("%"), "posix:/x?legacyKey=%25"))),
        ("posix:/x?legacyKey=%4", Some((0x100, "/x", Some("%4"), "posix:/x?legacyKey=%254"))),
        ("posix:/x?legacyKey=%25", Some((0x100, "/x", Some("%"), "posix:/x?legacyKey=%25"))),
        ("systemv:/tmp/qipc_sharedmemory_helloaaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d?legacyKey=hello", Some((0x51, "/tmp/qipc_sharedmemory_helloaaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", Some("hello"), "systemv:/tmp/qipc_sharedmemory_helloaaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d?legacyKey=hello"))),
        ("posix:%EF%BB%BFx", Some((0x100, "\u{feff}x", None, "posix:\u{feff}x"))),
        ("posix:\u{feff}x", Some((0x100, "\u{feff}x", None, "posix:\u{feff}x"))),
        ("posix:?legacyKey=%EF%BB%BFx", Some((0x100, "", Some("x"), "posix:?legacyKey=x"))),
        ("posix:?legacyKey=\u{feff}x", Some((0x100, "", Some("x"), "posix:?legacyKey=x"))),
        ("posix:?legacyKey=%EF%BB%BF%EF%BB%BFx", Some((0x100, "", Some("\u{feff}x"), "posix:?legacyKey=\u{feff}x"))),
        ("posix:?legacyKey=\u{feff}%zz", Some((0x100, "", Some("%zz"), "posix:?legacyKey=%25zz"))),
        ("posix:?legacyKey=%EF%BB%BF", Some((0x100, "", None, "posix:"))),
        ("posix://͏/x", None),
        ("posix://%20/x", None),
        ("posix://:65536/x", None),
        ("posix://@::/x", None),
        ("posix://[/x", None),
        ("posix:%F0%8F%BF%BF", Some((0x100, "\u{fffd}\u{fffd}\u{fffd}\u{fffd}", None, "posix:\u{fffd}\u{fffd}\u{fffd}\u{fffd}"))),
        ("posix:?legacyKey=%E0%9F%BF", Some((0x100, "", Some("\u{fffd}\u{fffd}\u{fffd}"), "posix:?legacyKey=\u{fffd}\u{fffd}\u{fffd}"))),
        ("posix:?legacyKey=%ED%9F%BF%ED%A0%80", Some((0x100, "", Some("\u{d7ff}\u{fffd}\u{fffd}\u{fffd}"), "posix:?legacyKey=\u{d7ff}\u{fffd}\u{fffd}\u{fffd}"))),
        ("systemv-0255:", Some((0xff, "", None, "systemv-255:"))),
        ("systemv-1000:", None),
        ("posix:?=", None),
        ("posix:?legacyKey=&", Some((0x100, "", None, "posix:"))),
        ("posix:/x#?legacyKey=a&b", Some((0x100, "/x", None, "posix:/x"))),
        ("1:]%4+:{%c7", None),
        ("WINDOWS:LegacyKey=%F0%9F%98%g1%26%BA\u{fdd0}:Z", Some((0x101, "LegacyKey=%F0%9F%98%g1%26%BA\u{fdd0}:Z", None, "windows:LegacyKey=%25F0%259F%2598%25g1%2526%25BA\u{fdd0}:Z"))),
        ("systemv-081:\u{0}%0a]\u{0}Z?\u{fffe}", None),
        ("SystemV:\u{2000}a\u{9f}\u{1f}%4%5D%ED%A0%80", Some((0x51, "\u{2000}a\u{9f}\u{1f}%4%5D%ED%A0%80", None, "systemv:\u{2000}a\u{9f}%1F%254%255D%25ED%25A0%2580"))),
        ("Posix:%F0%9F\u{ad}/////%65*.%23#%26%25`", Some((0x100, "\u{fffd}\u{fffd}\u{ad}/////e*.#", None, "posix:\u{fffd}\u{fffd}\u{ad}/////e*.%23"))),
        (":0%5E\u{7f}0.:", None),
        (" posix:", None),
        ("systemv-255:%F0%9F%B1é\u{1fffe}%e9?legacyKey=%C0%80", Some((0xff, "\u{fffd}\u{fffd}\u{fffd}é\u{1fffe}\u{fffd}", Some("\u{fffd}\u{fffd}"), "systemv-255:\u{fffd}\u{fffd}\u{fffd}é\u{1fffe}\u{fffd}?legacyKey=\u{fffd}\u{fffd}"))),
        ("SystemV:\u{ffff}0-𐀀)'%4", Some((0x51, "\u{ffff}0-𐀀)'%4", None, "systemv:\u{ffff}0-𐀀)'%254"))),
        ("systemv-0:&%5d%%%F4%90%80%80\\Z\u{1}", None),
        ("SyStemv-256:%C0%80%F0", None),
        ("posix:posix:\u{1}", Some((0x100, "posix:\u{1}", None, "posix:posix:%01"))),
        ("WInDows:%ED%A0%80Z0//^-legacyKey?legacyKey=", Some((0x101, "\u{fffd}\u{fffd}\u{fffd}Z0//^-legacyKey", None, "windows:\u{fffd}\u{fffd}\u{fffd}Z0//^-legacyKey"))),
        ("POSIX:", Some((0x100, "", None, "posix:"))),
        ("systemv-255:?Ā%F0%9F?legacyKey=$\u{1}LegacyKey=", None),
        ("systemv-1:\u{ffff}%7c*", Some((0x1, "\u{ffff}|*", None, "systemv-1:\u{ffff}|*"))),
        ("x:%5e\u{80}.;%9d.", None),
        ("junk:\\*%ed\u{ffff}%7A", None),
        ("POSIX:%28%F0%9F%BF%BF\u{fdd0}.%C3", Some((0x100, "(\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fdd0}.\u{fffd}", None, "posix:(\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fdd0}.\u{fffd}"))),
        ("PoSiX:\u{2000}%00)%AB", Some((0x100, "\u{2000}\u{0})\u{fffd}", None, "posix:\u{2000}%00)\u{fffd}"))),
        ("windows:%C0%80&\u{7f})%23", Some((0x101, "\u{fffd}\u{fffd}&\u{7f})#", None, "windows:\u{fffd}\u{fffd}&%7F)%23"))),
        ("systemv-1a:", None),
        ("windows:?legacyKey=|%3f", Some((0x101, "", Some("|?"), "windows:?legacyKey=|?"))),
        ("posIx:POSIx:?legacyKey=9", Some((0x100, "POSIx:", Some("9"), "posix:POSIx:?legacyKey=9"))),
        ("poSIx:%3D%F0%9F%BF%BE\u{80}%4𐀀ÿ%F0%9F%98%00?legacyKey=", Some((0x100, "%3D%F0%9F%BF%BE\u{80}%4𐀀ÿ%F0%9F%98%00", None, "posix:%253D%25F0%259F%25BF%25BE\u{80}%254𐀀ÿ%25F0%259F%2598%2500"))),
        ("systemv-1a:///?legacyKey=0", None),
        ("WINDOWS:%2Fÿ%63&", Some((0x101, "/ÿc&", None, "windows:/ÿc&"))),
        ("POSIX:?legacyKey=]", Some((0x100, "", Some("]"), "posix:?legacyKey=]"))),
        ("junk:\u{ffff}\u{200b}.%7e%%%F0%9F%23\u{10ffff}", None),
        ("systemv-081?\u{0}%41\u{1}0%C3%A90,-?legacyKey=>%ad", None),
        ("sYsTEmv-0:\u{1}ÿ?legacyKey=?legacyKey=<", None),
        ("systemv-:(%25\u{ad}%5d?legacyKey=", None),
        ("SyStEmV-256:\u{feff}Ā]%G0%C3&legacyKey=\u{1f}\u{fffe}", None),
        ("systemv-255:%4|?legacyKey=\u{9}%FD&legacyKey=", Some((0xff, "%4|", None, "systemv-255:%254|"))),
        ("systemv--1: foo%E2%82?legacyKey='`%%+", None),
        ("1#%41:\u{1fffe}(\\\u{9f}legacyKey", None),
        ("posix:posix:~%26%F0%90%80%80%C2%A0%C3%C3%C3!", Some((0x100, "posix:~&𐀀\u{a0}\u{fffd}\u{fffd}\u{fffd}!", None, "posix:posix:~&𐀀\u{a0}\u{fffd}\u{fffd}\u{fffd}!"))),
        ("WINDOWS:\u{2000} \u{9}^]", Some((0x101, "\u{2000} \u{9}^]", None, "windows:\u{2000} %09^]"))),
        ("JUnK:%g1]ÿ\u{ffff}\\😀9%F0%9F%98?legacyKey=,%E2%82Z", None),
        (":%72LegacyKey=%25?legacyKey=LegacyKey=", None),
        ("WINDOWS:%F0%9F%98/#)a%21#?legacyKey=%2f@a&legacyKey=", Some((0x101, "\u{fffd}\u{fffd}\u{fffd}/", None, "windows:\u{fffd}\u{fffd}\u{fffd}/"))),
        ("junk:\u{7f}\u{1}}%d9?legacyKey=\u{7f}\u{10ffff}\u{a0}", None),
        (" posix:%2f.\u{9}@?legacyKey=///  \u{fdd0}", None),
        ("windows:&%C3%g1?legacyKey=|%%%3F\"", Some((0x101, "&%C3%g1", Some("|%%%3F\""), "windows:&%25C3%25g1?legacyKey=|%25%25%253F\""))),
        ("Posix:\u{1}?legacyKey=%7B%\u{10ffff}?legacyKey=# %E2", Some((0x100, "\u{1}", Some("%7B%\u{10ffff}?legacyKey="), "posix:%01?legacyKey=%257B%25\u{10ffff}?legacyKey%3D"))),
        ("systemv-:~%7e%F0%9F%98(+0?legacyKey=)\u{fffd}", None),
        ("SyStemv-256:\u{7f}\u{10ffff}", None),
        ("sYsTEmv-256:%Ā?legacyKey=é-𐀀\"", None),
        ("Posix:%8A%F0%9F[\u{fdd0}%\u{1f}/😀", Some((0x100, "%8A%F0%9F[\u{fdd0}%\u{1f}/😀", None, "posix:%258A%25F0%259F[\u{fdd0}%25%1F/😀"))),
        ("posix:posix0😀a#%28%55", Some((0x100, "posix0😀a", None, "posix:posix0😀a"))),
        ("systemv-256:\u{1}%\u{fffe}%3F", None),
        ("systemv-0:>;@%%", None),
        ("SYSTeMV:$(?legacyKey=%3F", Some((0x51, "$(", Some("?"), "systemv:$(?legacyKey=?"))),
        ("posix ?𐀀%C2%9F\u{7f}%5C", None),
        (":#\u{0}Ā", None),
        ("posix:\u{feff}\u{fdd0}%F4%90%80%80%3D", Some((0x100, "\u{feff}\u{fdd0}\u{fffd}\u{fffd}\u{fffd}\u{fffd}=", None, "posix:\u{feff}\u{fdd0}\u{fffd}\u{fffd}\u{fffd}\u{fffd}="))),
        ("systemv-255#legacyKeyfoo%23~+ÿ'%4", None),
        ("systemv-:.<*-+>?legacyKey=\\%F4%90%80%80\u{feff}Z", None),
        ("posix:posix:%%#\u{fffe}\u{a0}", Some((0x100, "posix:%%", None, "posix:posix:%25%25"))),
        ("systemv:\u{0}%FDé\u{ffff}\u{1}=%#\u{1}%C0%80\u{7f}", Some((0x51, "\u{0}%FDé\u{ffff}\u{1}=%", None, "systemv:%00%25FDé\u{ffff}%01=%25"))),
        ("posIx:pOsIX:\u{1}[?legacyKey=%5D,<:", Some((0x100, "pOsIX:\u{1}[", Some("],<:"), "posix:pOsIX:%01[?legacyKey=],<:"))),
        ("SystemV&", None),
        ("poSiX:posIx:\u{200b}\u{fffe}@+\u{1f}", Some((0x100, "posIx:\u{200b}\u{fffe}@+\u{1f}", None, "posix:posIx:\u{200b}\u{fffe}@+%1F"))),
        ("x:Ā.𐀀", None),
        ("1:%61\u{0}%40\u{fffd}#\u{1f}%E2z", None),
        ("WINDOWS:#/?legacyKey=%C3:?", Some((0x101, "", None, "windows:"))),
        ("-%ED%A0%80%5B%EA;\u{7f}+:?legacyKey=\u{2000}A%3F:", None),
        ("systemv-1a:%F0\u{80}#legacyKey=%F0%9FlegacyKey=\u{fffd}?legacyKey=%21", None),
        ("systemv:%EF%B7%AF9LegacyKey=[", Some((0x51, "\u{fffd}\u{fffd}\u{fffd}9LegacyKey=[", None, "systemv:\u{fffd}\u{fffd}\u{fffd}9LegacyKey=["))),
        ("systemv--1:\u{9}𐀀\u{a0} |?legacyKey=\u{ad}", None),
        ("juNk:legacyKey%3A", None),
        ("systemv-1a:\\%%BD%41%2f%C0%80%#=%3A", None),
        ("systemv:%zz\u{9}%23&%%-%F0%9F%BF%BF%40", Some((0x51, "%zz\u{9}%23&%%-%F0%9F%BF%BF%40", None, "systemv:%25zz%09%2523&%25%25-%25F0%259F%25BF%25BF%2540"))),
        ("WINDOWS:%b2?legacyKey=\u{fdd0}%", Some((0x101, "\u{fffd}", Some("\u{fdd0}%"), "windows:\u{fffd}?legacyKey=\u{fdd0}%25"))),
        ("windows:%D3^\u{feff}%7B?legacyKey=", Some((0x101, "\u{fffd}^\u{feff}{", None, "windows:\u{fffd}^\u{feff}{"))),
        ("1:\u{ffff}%03%C3legacyKey=\u{fdd0}?legacyKey=", None),
        ("x:\u{fffd}-%4%BC//%G0%C0%80?legacyKey=\u{1f}&legacyKey=", None),
        ("SysteMV--1:(\u{80}%4f", None),
        ("posix :%C3", None),
        ("junk#%7e#%5C", None),
        ("POSIX:%ED%A0%80Ā\u{a}a//\u{fffe}#%3D#'", Some((0x100, "\u{fffd}\u{fffd}\u{fffd}Ā\u{a}a//\u{fffe}", None, "posix:\u{fffd}\u{fffd}\u{fffd}Ā%0Aa//\u{fffe}"))),
        ("POSIX:%4%3A0%2Efoo-%5D)?legacyKey=%25", Some((0x100, "%4%3A0%2Efoo-%5D)", Some("%"), "posix:%254%253A0%252Efoo-%255D)?legacyKey=%25"))),
        ("SystemV:?legacyKey=%4{0", Some((0x51, "", Some("%4{0"), "systemv:?legacyKey=%254{0"))),
        ("posix :\"%G0%46%F0%9F%98\"?:%E2%82%AC", None),
        (":%2f:\u{0}%26", None),
        ("posix :%G0\u{200b}%95%C3%D0[", None),
        ("systemv:=%F4%90%80%80?legacyKey=%g1", Some((0x51, "=\u{fffd}\u{fffd}\u{fffd}\u{fffd}", Some("%g1"), "systemv:=\u{fffd}\u{fffd}\u{fffd}\u{fffd}?legacyKey=%25g1"))),
        ("junk:\u{1f}\u{0}😀:\u{200b}?legacyKey=#/%E2%82%F4%90%80%80", None),
        (":a@%32@%C3%E2%82", None),
        ("WINDOWS:%F0%26\u{1}", Some((0x101, "\u{fffd}&\u{1}", None, "windows:\u{fffd}&%01"))),
        ("systemv-256:<$~/a", None),
        ("systemv--1:\u{9}$?legacyKey=𐀀=\u{7f}&#", None),
        ("SystemV:?legacyKey=+Ā?legacyKey=\u{7f}\\", Some((0x51, "", Some("+Ā?legacyKey=\u{7f}\\"), "systemv:?legacyKey=+Ā?legacyKey%3D%7F\\"))),
        ("systemv-1a:`%C3'", None),
        ("SYSTemv-256#", None),
        ("1:\u{a0}", None),
        ("systemv-0:%F0%9F%98\u{1}&legacyKey=\\%37", None),
        ("posix:posix:%\u{1}%44%3A\u{feff}+%G0%4", Some((0x100, "posix:%\u{1}%44%3A\u{feff}+%G0%4", None, "posix:posix:%25%01%2544%253A\u{feff}+%25G0%254"))),
        ("SystemV: @%C0%80%5A?legacyKey=\u{a0}", Some((0x51, " @\u{fffd}\u{fffd}Z", Some("\u{a0}"), "systemv: @\u{fffd}\u{fffd}Z?legacyKey=\u{a0}"))),
        ("systemv-0:%F0%9F%98*\u{0}\u{1fffe}", None),
        ("systemv-1a:A]Z%2F]\u{10ffff}", None),
        ("systemv-009:?legacyKey=", Some((0x9, "", None, "systemv-9:"))),
        ("SysTeMv-1A:fooÿ%EF%BF%BE%25\u{fffe}", None),
        ("systemv-1a:.\u{0}@%F0%9F\u{fffe}/?legacyKey=\u{2000}%0A", None),
        ("junk::\u{0}%E2Ā\u{fdd0}%C3%BF%7e?legacyKey={%51-", None),
        ("Posix:%F8\u{1f}?legacyKey=@%E2#", Some((0x100, "\u{fffd}\u{1f}", Some("@\u{fffd}"), "posix:\u{fffd}%1F?legacyKey=@\u{fffd}"))),
        ("systemv--1:%C3[%F0%F0%9F%98?legacyKey=A%A9", None),
        ("junk:%C0%80?%23%0D\u{fffe}%E3%9EĀ", None),
        ("SySteMv-:?legacyKey=&\u{200b}ÿ", None),
        ("SyStEMV-009:,# é", Some((0x9, ",", None, "systemv-9:,"))),
        ("systemv-1:ÿ", Some((0x1, "ÿ", None, "systemv-1:ÿ"))),
        ("SystEMV-0%40\u{9f}~-\u{1f}", None),
        ("systemv-81:\u{1}\u{0}", Some((0x51, "\u{1}\u{0}", None, "systemv:%01%00"))),
        ("systemv:@!!//?legacyKey=%%//[9", Some((0x51, "@!!//", Some("%%//[9"), "systemv:@!!//?legacyKey=%25%25//[9"))),
        ("windows:\u{a0}%7e\u{1f}}'%F4%90%80%80?legacyKey=", Some((0x101, "\u{a0}~\u{1f}}'\u{fffd}\u{fffd}\u{fffd}\u{fffd}", None, "windows:\u{a0}~%1F}'\u{fffd}\u{fffd}\u{fffd}\u{fffd}"))),
        ("posix #0", None),
        ("WiNDows:%3F/\u{1}(\u{1fffe}&legacyKey=\u{ffff}?legacyKey=%E2%82%AC%41%ED%A0%80", Some((0x101, "?/\u{1}(\u{1fffe}&legacyKey=\u{ffff}", Some("€A\u{fffd}\u{fffd}\u{fffd}"), "windows:%3F/%01(\u{1fffe}&legacyKey=\u{ffff}?legacyKey=€A\u{fffd}\u{fffd}\u{fffd}"))),
        ("systemv-81:`=%", Some((0x51, "`=%", None, "systemv:`=%25"))),
        ("systemV-009?%23%23%3F+\u{2000}", None),
        ("systemv-256:?legacyKey=", None),
        ("systemv-0:<?ĀlegacyKey=/]Ā", None),
        ("systemv:%E2^\u{9}?legacyKey=é%F0%9F", Some((0x51, "\u{fffd}^\u{9}", Some("é\u{fffd}\u{fffd}"), "systemv:\u{fffd}^%09?legacyKey=é\u{fffd}\u{fffd}"))),
        ("SYsTEmV:%41:%G0%g1%44", Some((0x51, "%41:%G0%g1%44", None, "systemv:%2541:%25G0%25g1%2544"))),
        ("posix:a\u{feff}\u{feff}legacyKey\u{0}/%2D*", Some((0x100, "a\u{feff}\u{feff}legacyKey\u{0}/-*", None, "posix:a\u{feff}\u{feff}legacyKey%00/-*"))),
        ("systemv-0:%3D`\u{a}%ED%A0%80😀%%26#[", None),
        ("posix :%250\u{fffd}\u{0}\u{fffd}?legacyKey=#%A", None),
        ("windows:(a\u{fffe} %F0legacyKey=?legacyKey=", Some((0x101, "(a\u{fffe} \u{fffd}legacyKey=", None, "windows:(a\u{fffe} \u{fffd}legacyKey="))),
        ("systemv#[.~%F4%90%80%80\u{1}%7A", None),
        ("x:.\u{1f}%23\\$?legacyKey=\u{a}", None),
        ("systemv-256:#:`?legacyKey=%C3%3F%4", None),
        ("jUnK:\u{9}\"#%3F%20%20|#%%7A%F0", None),
        ("posIx:posIx:foo%5B%5D\u{a0}\u{a0}@\\", Some((0x100, "posIx:foo[]\u{a0}\u{a0}@\\", None, "posix:posIx:foo[]\u{a0}\u{a0}@\\"))),
        ("x:\u{10ffff}", None),
        ("systemv--1:%2F%ED%A0%80\u{9}\u{1fffe}@%C2%80]LegacyKey=?legacyKey=\\legacyKey=", None),
        ("systemv-009:legacyKey=%26\u{1f}9?legacyKey='$9", Some((0x9, "legacyKey=&\u{1f}9", Some("'$9"), "systemv-9:legacyKey=&%1F9?legacyKey='$9"))),
        ("1:𐀀%7e", None),
        ("posix:\u{fdd0}", Some((0x100, "\u{fdd0}", None, "posix:\u{fdd0}"))),
        ("posix:-%2F", Some((0x100, "-/", None, "posix:-/"))),
        ("posIx :%2f\u{a0}𐀀a-ÿ%AA%73", None),
        ("sYstEmV-81:\u{ffff}ÿ&\u{fdd0}", Some((0x51, "\u{ffff}ÿ&\u{fdd0}", None, "systemv:\u{ffff}ÿ&\u{fdd0}"))),
        ("SystemV: ?legacyKey=%F4%90%80%80 %F4%90%80%80?", Some((0x51, " ", Some("\u{fffd}\u{fffd}\u{fffd}\u{fffd} \u{fffd}\u{fffd}\u{fffd}\u{fffd}?"), "systemv: ?legacyKey=\u{fffd}\u{fffd}\u{fffd}\u{fffd} \u{fffd}\u{fffd}\u{fffd}\u{fffd}?"))),
        ("PoSix:poSiX:a\u{9f}éÿ]\u{9f}\u{10ffff}", Some((0x100, "poSiX:a\u{9f}éÿ]\u{9f}\u{10ffff}", None, "posix:poSiX:a\u{9f}éÿ]\u{9f}\u{10ffff}"))),
        ("sySTeMV-81:[%E2z%40}\u{2000}%4", Some((0x51, "[%E2z%40}\u{2000}%4", None, "systemv:[%25E2z%2540}\u{2000}%254"))),
        ("Posix:\u{fdd0}z&%4#%23?#\"", Some((0x100, "\u{fdd0}z&%4", None, "posix:\u{fdd0}z&%254"))),
        (":\u{2000}z\u{ffff}%\u{9f} 'ÿ?legacyKey=\u{1f}%E7", None),
        (" posix:?legacyKey=%C2%ADa%", None),
        ("POSIX#*+@[%9B", None),
        (":%7e\u{1f}#:\u{0}[\u{1fffe}%2C", None),
        ("systemv-1:%5B\u{80}\u{a0}%C3%A9", Some((0x1, "[\u{80}\u{a0}é", None, "systemv-1:[\u{80}\u{a0}é"))),
        ("junk:0legacyKey", None),
        ("systemv-255: 𐀀?legacyKey=%C0%80", Some((0xff, " 𐀀", Some("\u{fffd}\u{fffd}"), "systemv-255: 𐀀?legacyKey=\u{fffd}\u{fffd}"))),
        ("x::%40\u{ffff}%C3%A4\u{fffd},%2A", None),
        ("systemv-1a:%C3%A9\u{feff}", None),
        ("SySteMv--1#~%!%C3&legacyKey=\u{1f}:%41?legacyKey=a%g1\u{80}\u{10ffff}", None),
        ("systemv--1:%80%C3%BF", None),
        ("SystemV:^%C2%A0%4%F0%90%80%80%2C?legacyKey=%3F%DA[\u{fffe}", Some((0x51, "^%C2%A0%4%F0%90%80%80%2C", Some("?\u{fffd}[\u{fffe}"), "systemv:^%25C2%25A0%254%25F0%2590%2580%2580%252C?legacyKey=?\u{fffd}[\u{fffe}"))),
        ("windoWs:]\u{2000}?legacyKey=*", Some((0x101, "]\u{2000}", Some("*"), "windows:]\u{2000}?legacyKey=*"))),
        ("systemv-009:&0\u{2000}%\u{fdd0}%C4%80&legacyKey=+", Some((0x9, "&0\u{2000}%\u{fdd0}%C4%80&legacyKey=+", None, "systemv-9:&0\u{2000}%25\u{fdd0}%25C4%2580&legacyKey=+"))),
        ("systemv?=%zz%2f%6C%C3%C0%80#z", None),
        ("sYsTEMv-255:%C2%80=\u{10ffff}\"%10\u{fffe}#", Some((0xff, "\u{80}=\u{10ffff}\"\u{10}\u{fffe}", None, "systemv-255:\u{80}=\u{10ffff}\"%10\u{fffe}"))),
        ("windows:\u{9}//%40%g1{:\"%7A?legacyKey=>?legacyKey=%b5", Some((0x101, "\u{9}//%40%g1{:\"%7A", Some(">?legacyKey=\u{fffd}"), "windows:%09//%2540%25g1{:\"%257A?legacyKey=>?legacyKey%3D\u{fffd}"))),
        ("sysTEmv-255:?legacyKey=𐀀𐀀?legacyKey=\u{200b}:,#", Some((0xff, "", Some("𐀀𐀀?legacyKey=\u{200b}:,"), "systemv-255:?legacyKey=𐀀𐀀?legacyKey%3D\u{200b}:,"))),
        ("1:%26?%E2%82%3D///}?legacyKey=(%g1𐀀\u{9}", None),
        ("SySTeMv-009:\u{feff}%C30\u{ad}\u{10ffff}%3F?legacyKey=%ED%A0%80", Some((0x9, "\u{feff}\u{fffd}0\u{ad}\u{10ffff}?", Some("\u{fffd}\u{fffd}\u{fffd}"), "systemv-9:\u{feff}\u{fffd}0\u{ad}\u{10ffff}%3F?legacyKey=\u{fffd}\u{fffd}\u{fffd}"))),
        ("x:%C3<%3D%g1/%C3😀?legacyKey=a\u{9f}!", None),
        ("SySteMV:'", Some((0x51, "'", None, "systemv:'"))),
        ("systemv-81:%26\u{fdd0}&legacyKey=%F0%9F#", Some((0x51, "&\u{fdd0}&legacyKey=\u{fffd}\u{fffd}", None, "systemv:&\u{fdd0}&legacyKey=\u{fffd}\u{fffd}"))),
        ("systemv-81:%23\u{a}%25😀]?legacyKey=", Some((0x51, "#\u{a}%😀]", None, "systemv:%23%0A%25😀]"))),
        ("systemv-0:%C3%7e%{$%A:", None),
        ("windows:\u{1f}/$%41%C3%A9]%CF", Some((0x101, "\u{1f}/$Aé]\u{fffd}", None, "windows:%1F/$Aé]\u{fffd}"))),
        ("systemv--1:%DB%E2", None),
        ("systemv-1:ÿ%C3%BF%E2", Some((0x1, "ÿÿ\u{fffd}", None, "systemv-1:ÿÿ\u{fffd}"))),
        ("systemv-081#\u{fffe}%E2%82|%😀%F4%90%80%80", None),
        ("systemv-0:\u{ad}0'", None),
        ("systemv--1:.\u{a}//", None),
        ("jUNK:\u{7f}%G0", None),
        ("systemv-:\u{fffd}\u{10ffff}**=;", None),
        ("x:𐀀 \u{fffe}.%4%4%41]#\u{10ffff}legacyKey=\\", None),
        ("posix:posix:!]?legacyKey=#", Some((0x100, "posix:!]", None, "posix:posix:!]"))),
        ("systemv-0:\u{7f}\u{fffd}~ÿ\u{2000}%E2%82~", None),
        ("posix :@%///%99%F0%9F%E2?legacyKey=#%26%D0", None),
        ("systemv-255:%C3\u{fffe}\u{1}%ED%A0%80+%zz+", Some((0xff, "%C3\u{fffe}\u{1}%ED%A0%80+%zz+", None, "systemv-255:%25C3\u{fffe}%01%25ED%25A0%2580+%25zz+"))),
        ("1:%00\u{fffd}%G0\u{1}", None),
        ("systemv-009:Ā", Some((0x9, "Ā", None, "systemv-9:Ā"))),
        (" pOsix:", None),
        ("sYstemV-1:?legacyKey=\"", Some((0x1, "", Some("\""), "systemv-1:?legacyKey=\""))),
        ("systemv--1:%C3", None),
        ("systemv-1:%7e?legacyKey=\\legacyKeyÿ", Some((0x1, "~", Some("\\legacyKeyÿ"), "systemv-1:~?legacyKey=\\legacyKeyÿ"))),
        ("systemv-0:\u{1f}`", None),
        (" posix:%zz\u{fffe}%%C0%80z%2F?legacyKey=\u{feff}9\u{1fffe}%2E", None),
        ("Posix:%C3\u{7f}%3D%23ÿ^>??legacyKey=", None),
        ("systemv-009:\u{fffd}\u{1}%EF%B7%AF%F4%90%80%80Z:%G0?legacyKey=%7e!%C3%%", Some((0x9, "\u{fffd}\u{1}%EF%B7%AF%F4%90%80%80Z:%G0", Some("%7e!%C3%%"), "systemv-9:\u{fffd}%01%25EF%25B7%25AF%25F4%2590%2580%2580Z:%25G0?legacyKey=%257e!%25C3%25%25"))),
        ("posix:posix:%23%%?legacyKey=?]", Some((0x100, "posix:%23%%", Some("?]"), "posix:posix:%2523%25%25?legacyKey=?]"))),
        ("POSIX:%g1%3B\"#\u{80}\u{0}\u{7f}", Some((0x100, "%g1%3B\"", None, "posix:%25g1%253B\""))),
        ("systemv?%4#/", None),
        ("pOsIX:pOSIx:%2f\u{ad};\u{1})%C0%80?legacyKey=", Some((0x100, "pOSIx:/\u{ad};\u{1})\u{fffd}\u{fffd}", None, "posix:pOSIx:/\u{ad};%01)\u{fffd}\u{fffd}"))),
        ("systemv-1a:?%\u{7f}\u{fffd}", None),
        ("systemv-0:%𐀀", None),
        ("systemv-1:\u{7f}%E2", Some((0x1, "\u{7f}\u{fffd}", None, "systemv-1:%7F\u{fffd}"))),
        ("SysTemV-256:/%E2%80%80<%93%C2%80\u{a0}", None),
        ("systemv-:Ā\u{1f}%C3%F4%90%80%80\u{7f}%F4%90%80%80\u{ffff}?legacyKey=%4'", None),
        ("systemv-81:legacyKey\u{1}=.%2F?legacyKey=]%C3;%C3", Some((0x51, "legacyKey\u{1}=./", Some("]\u{fffd};\u{fffd}"), "systemv:legacyKey%01=./?legacyKey=]\u{fffd};\u{fffd}"))),
        ("SystEMv-255:", Some((0xff, "", None, "systemv-255:"))),
        ("WINDOWS:#\"", Some((0x101, "", None, "windows:"))),
        ("SystemV:%40|-\u{feff}+", Some((0x51, "@|-\u{feff}+", None, "systemv:@|-\u{feff}+"))),
        ("/", None),
        ("sYsTeMV-256:\u{ffff}?", None),
        ("windows:%4z0==%4%91?legacyKey=", Some((0x101, "%4z0==%4%91", None, "windows:%254z0==%254%2591"))),
        ("systemv-1a:~-", None),
        ("SysteMv-009:.ÿ%3FlegacyKey=%3F%40%A5:", Some((0x9, ".ÿ?legacyKey=?@\u{fffd}:", None, "systemv-9:.ÿ%3FlegacyKey=%3F@\u{fffd}:"))),
        ("systemv-81:~%G0%C3\u{feff}a%A3<?legacyKey=#z", Some((0x51, "~%G0%C3\u{feff}a%A3<", None, "systemv:~%25G0%25C3\u{feff}a%25A3<"))),
        ("systemv-81:%g1%9<%C0%80%C2%AD%g1?legacyKey==@", Some((0x51, "%g1%9<%C0%80%C2%AD%g1", Some("=@"), "systemv:%25g1%259<%25C0%2580%25C2%25AD%25g1?legacyKey=%3D@"))),
        ("WINDOWS:a\u{1}%7eA%F4%90%80%80\u{a}Z\u{0}", Some((0x101, "a\u{1}~A\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{a}Z\u{0}", None, "windows:a%01~A\u{fffd}\u{fffd}\u{fffd}\u{fffd}%0AZ%00"))),
        ("posix:posix:%E2%82%CA%C3?legacyKey=//a", Some((0x100, "posix:\u{fffd}\u{fffd}\u{fffd}\u{fffd}", Some("//a"), "posix:posix:\u{fffd}\u{fffd}\u{fffd}\u{fffd}?legacyKey=//a"))),
        ("Posix:%%B2%!0-%34?legacyKey=%40", Some((0x100, "%%B2%!0-%34", Some("@"), "posix:%25%25B2%25!0-%2534?legacyKey=@"))),
        ("1:%legacyKey=%3D)\u{2000}~`?legacyKey=%C3", None),
        ("POSIX:%3D%E2\u{fffd}ÿ%F0%9F%98", Some((0x100, "=\u{fffd}\u{fffd}ÿ\u{fffd}\u{fffd}\u{fffd}", None, "posix:=\u{fffd}\u{fffd}ÿ\u{fffd}\u{fffd}\u{fffd}"))),
        ("Posix:%C2%9F?legacyKey=", Some((0x100, "\u{9f}", None, "posix:\u{9f}"))),
        ("systemv-009\u{fffe}a:?legacyKey=#", None),
        ("1:%\u{7f}-?legacyKey=", None),
        ("systemv-1a:%41~%3F\u{1}#) {", None),
        ("posix /%C0%80//$*", None),
        (":\u{7f}\u{1fffe}Ā`\u{a0}:?legacyKey=", None),
        ("sySTeMV-256:#%60%5F%F4%90%80%80é~\u{fdd0}?legacyKey=\u{10ffff}%2E%ED%A0%80/#", None),
        ("windows:?legacyKey=%DD\u{fffd}\u{80}[", Some((0x101, "", Some("\u{fffd}\u{fffd}\u{80}["), "windows:?legacyKey=\u{fffd}\u{fffd}\u{80}["))),
        (" posix:😀LegacyKey=%4B=\u{0}?%F0LegacyKey=#{$^", None),
        ("systemv-256:>\u{fffd}=\u{fdd0}%ÿ%C3", None),
        ("Posix:%4///%E2!%F4%90%80%80%F4%8F%BF%BF", Some((0x100, "%4///%E2!%F4%90%80%80%F4%8F%BF%BF", None, "posix:%254///%25E2!%25F4%2590%2580%2580%25F4%258F%25BF%25BF"))),
        ("posix :legacyKey=\u{0})=+%e6?legacyKey=%4>#&a", None),
        ("windows?%E2%82%AC%74 %\"\u{10ffff}%F4%90%80%80?legacyKey=\u{fffe};>9", None),
        (":?legacyKey=}%F0%9F%BF%BF9", None),
        ("systemv-081:%EF%BF%BE,%g1", Some((0x51, "%EF%BF%BE,%g1", None, "systemv:%25EF%25BF%25BE,%25g1"))),
        ("systemv-009:%F4%90%80%80&legacyKey=%%E2^99A", Some((0x9, "%F4%90%80%80&legacyKey=%%E2^99A", None, "systemv-9:%25F4%2590%2580%2580&legacyKey=%25%25E2^99A"))),
        ("systemv-255:ÿ\u{7f}\u{9}:%E2%82?legacyKey=///%%71", Some((0xff, "ÿ\u{7f}\u{9}:\u{fffd}\u{fffd}", Some("///%%71"), "systemv-255:ÿ%7F%09:\u{fffd}\u{fffd}?legacyKey=///%25%2571"))),
        ("systemv-255:\u{1fffe}\u{0}\u{9f}\u{10ffff}", Some((0xff, "\u{1fffe}\u{0}\u{9f}\u{10ffff}", None, "systemv-255:\u{1fffe}%00\u{9f}\u{10ffff}"))),
        ("PoSiX:", Some((0x100, "", None, "posix:"))),
        ("posix :&%E2%82\u{1fffe}\u{fdd0}%A3é?legacyKey=\u{1fffe}%E2%82%AC😀#", None),
        ("systemv-081:9.A%22~\u{1f}%E2Z?legacyKey=", Some((0x51, "9.A\"~\u{1f}\u{fffd}Z", None, "systemv:9.A\"~%1F\u{fffd}Z"))),
        ("systEmV-256:\u{7f}~##\u{a0}", None),
        ("POSIX:\u{80}%A9%E2%82\u{1}\\)?legacyKey=𐀀%E5\u{a0}é", Some((0x100, "\u{80}\u{fffd}\u{fffd}\u{fffd}\u{1}\\)", Some("𐀀\u{fffd}\u{a0}é"), "posix:\u{80}\u{fffd}\u{fffd}\u{fffd}%01\\)?legacyKey=𐀀\u{fffd}\u{a0}é"))),
        ("POSIX:\u{1f}Z%F0\u{ffff}%ED%A0%80", Some((0x100, "\u{1f}Z\u{fffd}\u{ffff}\u{fffd}\u{fffd}\u{fffd}", None, "posix:%1FZ\u{fffd}\u{ffff}\u{fffd}\u{fffd}\u{fffd}"))),
        ("systemv-1a:?legacyKey=%G0%C3%BF%\"", None),
        ("sYStEMV-1a:[?legacyKey=%C4%80-^", None),
        ("systemv-1:\u{7f}%F0?legacyKey=ÿ-\u{2000}#\u{ad}", Some((0x1, "\u{7f}\u{fffd}", Some("ÿ-\u{2000}"), "systemv-1:%7F\u{fffd}?legacyKey=ÿ-\u{2000}"))),
        ("SystemV.%F0%9F%98%B8=%C3%E2%82&legacyKey=?legacyKey=", None),
        (" PoSix:+(\"%7e?\u{0}𐀀?legacyKey=+%3A##\u{feff}\u{7f}9", None),
        ("systemv:?legacyKey=", Some((0x51, "", None, "systemv:"))),
        (" posix:\u{ad}%7e%3Bÿ%23?\u{a0}?legacyKey=+A%4", None),
        ("systemv-081:\u{1}%49%G0", Some((0x51, "\u{1}%49%G0", None, "systemv:%01%2549%25G0"))),
        ("1:%5b%25Ā", None),
        ("systemv-009:\u{0}\u{2000}-\u{2000}%F0%9F%98ÿ ", Some((0x9, "\u{0}\u{2000}-\u{2000}\u{fffd}\u{fffd}\u{fffd}ÿ ", None, "systemv-9:%00\u{2000}-\u{2000}\u{fffd}\u{fffd}\u{fffd}ÿ "))),
        ("systemv-256:𐀀@=+%2F?legacyKey=#", None),
        (":%60\u{0}", None),
        ("SystEmV-0:?", None),
        ("systemv:\u{fffe}%C0%80?legacyKey=}\u{9}]", Some((0x51, "\u{fffe}\u{fffd}\u{fffd}", Some("}\u{9}]"), "systemv:\u{fffe}\u{fffd}\u{fffd}?legacyKey=}%09]"))),
        ("systemv-1:\u{a0}\u{fdd0}\u{fffe}%F0%9F%98#\u{fffe})", Some((0x1, "\u{a0}\u{fdd0}\u{fffe}\u{fffd}\u{fffd}\u{fffd}", None, "systemv-1:\u{a0}\u{fdd0}\u{fffe}\u{fffd}\u{fffd}\u{fffd}"))),
        ("POSIX:\u{0}+%zz\u{1f}", Some((0x100, "\u{0}+%zz\u{1f}", None, "posix:%00+%25zz%1F"))),
        ("systemv-0:%zz.%2D\u{7f}%F4%90%80%80.", None),
        ("systemv-081?\u{1}%E2&", None),
        ("pOsIx:a?\u{ffff}\u{fdd0}", None),
        ("pOSIx :%85?legacyKey=", None),
        ("systemv-:", None),
        ("systemv:\u{200b}%%23%G0 #?legacyKey=&0", Some((0x51, "\u{200b}%%23%G0 ", None, "systemv:\u{200b}%25%2523%25G0 "))),
        ("posix :\u{10ffff}-\u{fffe}%2f0%3A", None),
        ("posix:posix:%40-9😀{\u{2000}legacyKey", Some((0x100, "posix:@-9😀{\u{2000}legacyKey", None, "posix:posix:@-9😀{\u{2000}legacyKey"))),
        ("systemv-1:%24<&legacyKey=\u{ffff}\\a%?legacyKey=\u{1}", Some((0x1, "%24<&legacyKey=\u{ffff}\\a%", Some("\u{1}"), "systemv-1:%2524<&legacyKey=\u{ffff}\\a%25?legacyKey=%01"))),
        ("systemv--1:%4A%60\u{7f}%f6$?legacyKey=]%2B", None),
        ("systemv-0:%2F\u{2000}\u{fffe}%E2@", None),
        ("WINDOWS:%26\u{ad}\u{a0}%21%3F\u{1}a=?legacyKey=a", Some((0x101, "&\u{ad}\u{a0}!?\u{1}a=", Some("a"), "windows:&\u{ad}\u{a0}!%3F%01a=?legacyKey=a"))),
        ("junk:%F4%90%80%80%g1\u{ffff}legacyKeyfoo;%#\u{feff}", None),
        ("posix :\u{200b}", None),
        ("SYSTEMV-0:\u{a0}fooé", None),
        ("1:?legacyKey=%2f %3A%F0%9F%98", None),
        (":%F0%9F%98%2f%3E%40 \u{feff}#", None),
        ("SystemV:", Some((0x51, "", None, "systemv:"))),
        ("WINDOWS:%𐀀\u{fdd0}&%E2%82?legacyKey=,%2f", Some((0x101, "%𐀀\u{fdd0}&%E2%82", Some(",/"), "windows:%25𐀀\u{fdd0}&%25E2%2582?legacyKey=,/"))),
        ("Posix:%6E%g1%2F0?legacyKey=%C3\u{1}\u{1}", Some((0x100, "%6E%g1%2F0", Some("\u{fffd}\u{1}\u{1}"), "posix:%256E%25g1%252F0?legacyKey=\u{fffd}%01%01"))),
        ("systemv-009:|\u{a0}=\u{80}^%E2%82a", Some((0x9, "|\u{a0}=\u{80}^\u{fffd}\u{fffd}a", None, "systemv-9:|\u{a0}=\u{80}^\u{fffd}\u{fffd}a"))),
        ("1:?legacyKey=", None),
        ("systemv-256:%DA%2f~%4B(&?legacyKey=.%E2%82\u{fffe}|", None),
        ("SystemV:|Z", Some((0x51, "|Z", None, "systemv:|Z"))),
        ("systemv-81:>[\u{1f}///#'%7e\u{80}", Some((0x51, ">[\u{1f}///", None, "systemv:>[%1F///"))),
        ("systemv-256:\u{9}///?legacyKey=", None),
        ("x?legacyKey=>~%E2=", None),
        ("systemv--1/\u{10ffff}%G0", None),
        ("x:ÿ%B1-^@%%E2%82?legacyKey=", None),
        ("systemv%27", None),
        (" posix:𐀀9%5c%2Fa#legacyKey", None),
        ("systemv#^/\u{0}?legacyKey=\u{a0}\u{1fffe}0", None),
        ("posix:posix:+%3D?legacyKey=%%\u{2000}", Some((0x100, "posix:+=", Some("%%\u{2000}"), "posix:posix:+=?legacyKey=%25%25\u{2000}"))),
        ("systEmV-81:ZlegacyKey\u{7f}%4%d7!?legacyKey=%zz", Some((0x51, "ZlegacyKey\u{7f}%4%d7!", Some("%zz"), "systemv:ZlegacyKey%7F%254%25d7!?legacyKey=%25zz"))),
        ("junk:%%~]$0%EF%B7%90", None),
        ("SystemV:?legacyKey=é\u{a}", Some((0x51, "", Some("é\u{a}"), "systemv:?legacyKey=é%0A"))),
        ("systemv-009", None),
        ("sySTemv-1A:%g1", None),
        ("POSIX:{\u{7f}%25\u{a0},&%40", Some((0x100, "{\u{7f}%\u{a0},&@", None, "posix:{%7F%25\u{a0},&@"))),
        (": 𐀀", None),
    ];
}
