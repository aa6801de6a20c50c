//! The JSON Schema files checked in under `schemas/json/`, generated from the types.

use crate::envelope::Envelope;
use crate::events::data_schemas;

/// Every schema file: (path relative to the `schemas` crate, pretty JSON with a final newline).
pub fn files() -> Vec<(String, String)> {
    let mut files = vec![(
        "json/envelope.schema.json".to_owned(),
        pretty(&schemars::schema_for!(Envelope)),
    )];
    for (kind, schema) in data_schemas() {
        files.push((format!("json/events/{kind}.schema.json"), pretty(&schema)));
    }
    files
}

fn pretty(schema: &schemars::Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a schema is always JSON");
    text.push('\n');
    text
}
