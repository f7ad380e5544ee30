//! What the report may show of a request or an answer: no token and no personal data. A token
//! the stub scripts is shown by its constant's name (it is public); any other by its kind only.

/// A header's value as shown.
pub fn header(name: &str, value: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "authorization" => match value.strip_prefix("Bearer ") {
            Some(t) => format!("Bearer {}", token(t)),
            None => "[redacted]".into(),
        },
        "www-authenticate" => value
            .split(',')
            .map(|part| match part.trim().split_once('=') {
                Some((k, _)) if k.trim().ends_with("ticket") => {
                    format!("{}=\"[ticket]\"", k.trim())
                }
                _ => part.trim().to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        "set-cookie" | "cookie" => "[redacted]".into(),
        _ => value.to_owned(),
    }
}

/// A token as shown: the stub's constant name, or `[redacted]`.
pub fn token(t: &str) -> String {
    if let Some(name) = crate::magic::aliased_uat(t).and_then(crate::magic::uat_name) {
        return format!("[UAT standing for {name}]");
    }
    match crate::magic::name_of(t) {
        Some(name) => format!("[{name}]"),
        None => "[redacted]".into(),
    }
}

/// Every string and number under `v` replaced, keys and shape kept.
fn blank(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), blank(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(blank).collect()),
        Value::String(_) | Value::Number(_) => Value::String("[redacted]".into()),
        other => other.clone(),
    }
}

/// A request body as shown: a find's UAT by name only, its find data's values redacted.
pub fn request_body(body: &serde_json::Value) -> String {
    let mut shown = blank(body);
    if let (Some(uat), Some(obj)) = (
        body.get("uat").and_then(|u| u.as_str()),
        shown.as_object_mut(),
    ) {
        obj.insert("uat".into(), serde_json::Value::String(token(uat)));
    }
    serde_json::to_string_pretty(&shown).unwrap_or_default()
}

/// An answer's body as shown: a view data token by its length only, other tokens by name.
pub fn response_body(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(mut v) => {
            if let Some(t) = v
                .get("view_data_token")
                .and_then(|t| t.as_str())
                .map(str::len)
            {
                v["view_data_token"] = format!("[signed view data token, {t} characters]").into();
            }
            for key in ["access_token", "ticket", "id_token"] {
                if let Some(t) = v.get(key).and_then(|t| t.as_str()).map(token) {
                    v[key] = t.into();
                }
            }
            serde_json::to_string_pretty(&v).unwrap_or_default()
        }
        Err(_) if body.len() > 2_000 => format!("[{} bytes]", body.len()),
        Err(_) => body.to_owned(),
    }
}
