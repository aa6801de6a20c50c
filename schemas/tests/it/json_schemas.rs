//! The checked-in JSON Schemas are what the types generate.

use std::collections::BTreeSet;

use crate::{blessing, crate_dir};

#[test]
fn checked_in_schemas_are_current() {
    let root = crate_dir();
    let mut stale = Vec::new();
    let mut expected = BTreeSet::new();
    for (path, text) in schemas::json_schema::files() {
        let file = root.join(&path);
        expected.insert(file.clone());
        let on_disk = std::fs::read_to_string(&file).unwrap_or_default();
        if on_disk != text {
            if blessing() {
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, text).unwrap();
            } else {
                stale.push(path);
            }
        }
    }
    // A schema file whose type is gone is stale too.
    for entry in std::fs::read_dir(root.join("json/events"))
        .into_iter()
        .flatten()
    {
        let file = entry.unwrap().path();
        if !expected.contains(&file) {
            if blessing() {
                std::fs::remove_file(&file).unwrap();
            } else {
                stale.push(file.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale JSON Schemas (regenerate with LEDGERCLOCK_BLESS=1 cargo test -p schemas): {stale:#?}"
    );
}

#[test]
fn every_kind_has_a_schema() {
    let files = schemas::json_schema::files();
    for kind in schemas::Event::KINDS {
        let path = format!("json/events/{kind}.schema.json");
        assert!(
            files.iter().any(|(p, _)| *p == path),
            "no schema for {kind}"
        );
    }
    assert_eq!(files.len(), schemas::Event::KINDS.len() + 1);
}
