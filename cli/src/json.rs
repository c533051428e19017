//! The `--json` output: JSON Lines (one object per line) of flat objects of strings,
//! numbers, booleans and nulls, each starting with `"verb"` and `"schema"` ([`SCHEMA`]).
//!
//! Hand-written instead of serde + serde_json: every object here is a flat list of fields,
//! which a 40-line builder and escaper cover exactly, without two more crates (and their
//! proc-macro build) in a tool that must build quickly on 2 cores.

use std::fmt::Write;

/// The version of the `--json` format (docs/cli.md): raised when a field changes meaning or
/// goes; new fields may appear without a new version.
pub(crate) const SCHEMA: u32 = 1;

/// A JSON object being built, field by field, in order.
#[derive(Debug)]
pub(crate) struct Obj {
    out: String,
}

impl Obj {
    /// `{"verb":<verb>,"schema":<SCHEMA>` …
    pub(crate) fn new(verb: &str) -> Obj {
        Obj {
            out: String::from("{"),
        }
        .str("verb", verb)
        .num("schema", SCHEMA)
    }

    fn key(&mut self, key: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        escape_into(&mut self.out, key);
        self.out.push(':');
    }

    pub(crate) fn str(mut self, key: &str, value: &str) -> Obj {
        self.key(key);
        escape_into(&mut self.out, value);
        self
    }

    pub(crate) fn opt_str(self, key: &str, value: Option<&str>) -> Obj {
        match value {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    pub(crate) fn num(mut self, key: &str, value: impl Into<i128>) -> Obj {
        self.key(key);
        let _ = write!(self.out, "{}", value.into());
        self
    }

    #[cfg_attr(windows, allow(dead_code))] // only the Unix-only verbs have such fields
    pub(crate) fn opt_num(self, key: &str, value: Option<impl Into<i128>>) -> Obj {
        match value {
            Some(v) => self.num(key, v),
            None => self.null(key),
        }
    }

    pub(crate) fn float(mut self, key: &str, value: f64) -> Obj {
        self.key(key);
        if value.is_finite() {
            let _ = write!(self.out, "{value:.3}");
        } else {
            self.out.push_str("null");
        }
        self
    }

    pub(crate) fn bool(mut self, key: &str, value: bool) -> Obj {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    #[cfg_attr(windows, allow(dead_code))] // only the Unix-only verbs have such fields
    pub(crate) fn opt_bool(self, key: &str, value: Option<bool>) -> Obj {
        match value {
            Some(v) => self.bool(key, v),
            None => self.null(key),
        }
    }

    pub(crate) fn null(mut self, key: &str) -> Obj {
        self.key(key);
        self.out.push_str("null");
        self
    }

    /// The finished object text.
    pub(crate) fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// Appends `s` as a JSON string (RFC 8259: `"` `\` and control characters escaped).
fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Lower-case hexadecimal of `bytes` (binary data in JSON).
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_types() {
        let o = Obj::new("x")
            .str("s", "a\"b\\c\n\u{1}é")
            .num("n", -5i64)
            .opt_num("m", None::<u32>)
            .bool("b", true)
            .float("f", 1.5)
            .finish();
        assert_eq!(
            o,
            r#"{"verb":"x","schema":1,"s":"a\"b\\c\n\u0001é","n":-5,"m":null,"b":true,"f":1.500}"#
        );
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
    }
}
