//! Where two JSON values first differ, for failure messages. Object key order never counts.

use serde_json::Value;

/// `None` when equal, else `"<path>: expected <a>, found <b>"` for the first difference.
pub fn first_difference(expected: &Value, found: &Value) -> Option<String> {
    diff_at(String::new(), expected, found)
}

fn diff_at(path: String, expected: &Value, found: &Value) -> Option<String> {
    match (expected, found) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let child = format!("{path}/{key}");
                match b.get(key) {
                    Some(other) => {
                        if let Some(d) = diff_at(child, value, other) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{child}: missing")),
                }
            }
            b.keys().find(|k| !a.contains_key(*k)).map(|k| format!("{path}/{k}: unexpected"))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            a.iter().zip(b).enumerate().find_map(|(n, (x, y))| diff_at(format!("{path}/{n}"), x, y))
        }
        _ if expected == found => None,
        _ => Some(format!(
            "{}: expected {}, found {}",
            if path.is_empty() { "/" } else { &path },
            short(expected),
            short(found)
        )),
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_first_difference() {
        assert_eq!(first_difference(&json!({"a": 1, "b": [1]}), &json!({"b": [1], "a": 1})), None);
        assert_eq!(
            first_difference(&json!({"a": [1, 2]}), &json!({"a": [1, 3]})).unwrap(),
            "/a/1: expected 2, found 3"
        );
        assert_eq!(first_difference(&json!({"a": 1}), &json!({})).unwrap(), "/a: missing");
        assert_eq!(first_difference(&json!({}), &json!({"z": 1})).unwrap(), "/z: unexpected");
    }
}
