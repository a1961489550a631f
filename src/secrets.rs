//! The secret-key rule, shared by every role: a string value held under a key that names a
//! secret (a password, secret, credential, token or SNMP community) is replaced by `***` wherever
//! it would be shown — in error strings, logs, API answers and custom resources.

use serde_json::Value;

// `community` (SNMP `community_name`): the device's read password.
const SECRET_WORDS: [&str; 5] = ["password", "secret", "credential", "token", "community"];
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

/// Whether a JSON key names a secret (`admin_password`, `credentials`, `token`,
/// `community_name`, ...).
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|word| key.contains(word))
}

/// Replaces the value of every secret key, at any depth, by `***` (for answers that keep the
/// document's shape).
pub fn mask_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if is_secret_key(key) && !inner.is_null() {
                    *inner = Value::String(MASK.into());
                } else {
                    mask_secrets(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

/// Removes every secret key, at any depth (for documents that must not even say a secret exists,
/// such as a custom resource's spec).
pub fn strip_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !is_secret_key(key));
            map.values_mut().for_each(strip_secrets);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_secrets),
        _ => {}
    }
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

    #[test]
    fn strips_and_masks_secret_keys_at_any_depth() {
        let body = json!({"name": "lb", "admin_password": "x", "interfaces": [{"community_name": "c", "id": "i"}],
                          "auth": {"token": "t", "user": "u"}});
        let mut stripped = body.clone();
        strip_secrets(&mut stripped);
        assert_eq!(stripped, json!({"name": "lb", "interfaces": [{"id": "i"}], "auth": {"user": "u"}}));
        let mut masked = body;
        mask_secrets(&mut masked);
        assert_eq!(
            masked,
            json!({"name": "lb", "admin_password": "***", "interfaces": [{"community_name": "***", "id": "i"}],
                   "auth": {"token": "***", "user": "u"}})
        );
    }
}
