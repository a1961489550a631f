//! The two JSON dialects of the original system, for the few places where a JSON document is
//! stored *inside* a JSON string and so its exact text is part of the record's value.
//!
//! * Gohan (Go `encoding/json`): compact, keys sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped.
//!   Used for the double-encoded `/config` `body`.
//! * esi-worker (Python `json.dumps`): `", "` and `": "` separators, ASCII only, keys in the order
//!   the value holds them. Used for `/state.state.heat_outputs`.

use serde::Serialize;
use serde_json::Value;
use std::io;

/// Encodes like Go's `json.Marshal` of a decoded `interface{}`: compact with sorted keys.
pub fn go_json(value: &Value) -> String {
    let sorted = sort_keys(value);
    // Structural JSON never contains these characters, so replacing them in the whole text only
    // touches string contents, exactly as Go's HTML-safe escaping does.
    serde_json::to_string(&sorted)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn sort_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sort_keys(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

/// Encodes like Python's `json.dumps(value)` with its default arguments.
pub fn python_json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Serializing plain data into a Vec cannot fail.
    if value.serialize(&mut serializer).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        // Python prints integral floats as `1.0`, as serde_json does; the rest agree too
        // except for exponents, which the protocol's values never carry.
        let text = serde_json::Number::from_f64(value).map_or_else(|| "NaN".to_owned(), |n| n.to_string());
        w.write_all(text.as_bytes())
    }

    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        // `ensure_ascii=True`: every non-ASCII character as \uXXXX, astral ones as a surrogate pair.
        for ch in fragment.chars() {
            if ch.is_ascii() {
                w.write_all(&[ch as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_style_sorts_and_escapes_html() {
        let v = json!({"b": "<a&b>", "a": [1, {"d": true, "c": null}]});
        assert_eq!(go_json(&v), r#"{"a":[1,{"c":null,"d":true}],"b":"\u003ca\u0026b\u003e"}"#);
    }

    #[test]
    fn python_style_separators_and_ascii() {
        let v = json!([{"output_value": "é😀", "description": "x"}, 2]);
        assert_eq!(python_json(&v), r#"[{"output_value": "\u00e9\ud83d\ude00", "description": "x"}, 2]"#);
    }
}
