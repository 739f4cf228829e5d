//! `configure --undo`: put back the recorded credsStore, and unwire the containers tools.

use std::path::Path;

use serde_json::Value;

use super::{
    CREDS_STORE, Outcome, RECORD_SUFFIX, WSL_CREDS_STORE, apply, containers, load, quoted, report,
    sibling,
};
use crate::NAME;
use crate::docker_config::{self, CredsStore, Edit};
use crate::trust::Expect;

const UNDO_RECORD: Expect = Expect::file("configure's undo record");

/// The recorded previous credsStore: `None` without a record, `Some(None)` when there
/// was no credsStore before.
fn read_record(path: &Path) -> Option<Option<String>> {
    let bytes = docker_config::read(&sibling(path, RECORD_SUFFIX), UNDO_RECORD).ok()??;
    let doc: Value = serde_json::from_slice(&bytes).ok()?;
    match doc.get("credsStore") {
        Some(Value::String(s)) if !s.is_empty() => Some(Some(s.clone())),
        Some(Value::Null) | None => Some(None),
        Some(_) => None,
    }
}

pub fn run(dry_run: bool) -> Outcome {
    let loaded = load()?;
    let path = loaded.path.clone();
    let current = docker_config::creds_store(&loaded.doc);
    let unwired = if dry_run {
        containers::planned_undo()
    } else {
        containers::unwire()
    };
    if !matches!(current, Some(CREDS_STORE | WSL_CREDS_STORE)) {
        println!(
            "Nothing to undo: {} has \"credsStore\" {}, not \"hub\" or \"hub.exe\"; nothing changed.",
            crate::fs::display(&path),
            quoted(current)
        );
        report::containers(&unwired);
        return Ok(());
    }
    let record = read_record(&path);
    let change = match &record {
        Some(Some(prev)) if Some(prev.as_str()) != current => CredsStore::Set(prev.clone()),
        _ => CredsStore::Remove,
    };
    let what = match (&change, &record) {
        (CredsStore::Set(prev), _) => format!("put back \"credsStore\": \"{prev}\""),
        (_, Some(_)) => "removed \"credsStore\" (there was none before configure)".to_string(),
        _ => "removed \"credsStore\" (no record of an earlier value was found)".to_string(),
    };
    if dry_run {
        println!("Dry run: nothing is changed.");
        println!("would have {what} in {}", crate::fs::display(&path));
        report::containers(&unwired);
        return Ok(());
    }
    let plan = Edit {
        creds_store: change,
        strip: Vec::new(),
    };
    let new = docker_config::to_bytes(&docker_config::edit(loaded.doc.clone(), &plan));
    apply::replace_config(&loaded, &new)?;
    let _ = std::fs::remove_file(sibling(&path, RECORD_SUFFIX));
    println!("Undone: {what} in {}.", crate::fs::display(&path));
    report::containers(&unwired);
    let erase_hint = if cfg!(windows) {
        format!("`echo REGISTRY| {NAME} erase`")
    } else {
        format!("`printf %s REGISTRY | {NAME} erase`")
    };
    if current == Some(WSL_CREDS_STORE) {
        // Docker in WSL used the Windows binary: the credentials are in the Windows store,
        // which this binary's `list` does not read.
        println!(
            "Your credentials stay in the Windows Credential Manager (or the store the Windows binary uses), where docker here no longer looks. List them with `{NAME}.exe list`; erase one with {erase_hint} using `{NAME}.exe` (or run `docker logout REGISTRY` while configured)."
        );
    } else {
        println!(
            "Your credentials stay in the keychain, where docker no longer looks. List them with `{NAME} list`; erase one with {erase_hint} (or run `docker logout REGISTRY` while configured)."
        );
    }
    println!(
        "Registries whose credentials were plaintext in config.json before configure need `docker login` again."
    );
    Ok(())
}
