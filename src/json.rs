//! Naming JSON in messages without quoting it (a request or a config file may hold secrets):
//! what kind a value is, and what kind of problem a parse met.

use serde_json::Value;

/// "string", "object", …: what a value is, for "a JSON number, not a string".
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// What went wrong in a parse, in words; serde_json's own messages never quote the input
/// either, but its categories read better.
pub fn problem(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "it ends too early",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Io => "read error",
    }
}
