//! Keeping passwords out of error strings and logs: every string value held under a key that
//! names a secret is replaced by `***` wherever it appears.

use serde_json::Value;

const SECRET_WORDS: [&str; 4] = ["password", "secret", "credential", "token"];
pub const MASK: &str = "***";

/// The secret values found in some JSON documents (job params, resource bodies).
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    pub fn collect<'a>(documents: impl IntoIterator<Item = (&'a str, &'a Value)>) -> Self {
        let mut secrets = Secrets::default();
        for (key, value) in documents {
            secrets.visit(is_secret_key(key), value);
        }
        // Longest first, so a secret containing another is masked whole.
        secrets.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        secrets.values.dedup();
        secrets
    }

    fn visit(&mut self, under_secret: bool, value: &Value) {
        match value {
            // Very short values would mask ordinary words; they are no secret worth the name.
            Value::String(s) if under_secret && s.len() >= 3 => self.values.push(s.clone()),
            Value::Object(map) => {
                for (key, inner) in map {
                    self.visit(under_secret || is_secret_key(key), inner);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| self.visit(under_secret, item)),
            _ => {}
        }
    }

    /// `text` with every secret value replaced by `***`.
    pub fn mask(&self, text: &str) -> String {
        let mut masked = text.to_owned();
        for secret in &self.values {
            masked = masked.replace(secret.as_str(), MASK);
            // Secrets also appear JSON-escaped inside error bodies.
            let escaped = serde_json::to_string(secret).unwrap_or_default();
            let escaped = escaped.trim_matches('"');
            if escaped != secret {
                masked = masked.replace(escaped, MASK);
            }
        }
        masked
    }
}

/// Whether a JSON key names a secret (`admin_password`, `credentials`, `token`, ...).
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|word| key.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_every_secret_value() {
        let body = json!({"admin_password": "RBvaP4je2j5Q", "user_password": "lGxS\"VYS", "name": "lb",
                          "credentials": {"username": "vfwadmin", "password": "pw-123"}, "other_password": ""});
        let secrets = Secrets::collect([("resource_input", &body)]);
        let text = "HTTPBadRequest: {\"admin_password\": \"RBvaP4je2j5Q\", \"u\": \"lGxS\\\"VYS\", \"c\": \"pw-123\", \"user\": \"vfwadmin\", \"name\": \"lb\"}";
        let masked = secrets.mask(text);
        for secret in ["RBvaP4je2j5Q", "lGxS", "pw-123", "vfwadmin"] {
            assert!(!masked.contains(secret), "{masked}");
        }
        assert!(masked.contains("\"name\": \"lb\""), "{masked}");
    }
}
