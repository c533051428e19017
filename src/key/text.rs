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

/// The golden rows, from real Qt (`tests/qt/gen_key_text_rows.py --write src/key/text/golden.rs`).
#[cfg(test)]
mod golden;
