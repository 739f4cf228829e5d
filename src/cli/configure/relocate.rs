//! `configure --backend NAME`: move every credential from the backend in use to another,
//! and use that one from now on. Copy, verify, switch the record, then erase the old copies:
//! interrupted anywhere, nothing is lost, and running it again finishes the job (the record
//! remembers a move whose old copies are not erased yet).

use super::migrate::{self, Found, Origin};
use super::{Failure, Outcome, fail};
use crate::NAME;
use crate::cli::explain;
use crate::deadline::Deadline;
use crate::hub::cache;
use crate::keychain::{self, Backend, record};
use crate::settings;

pub fn run(target: Backend, dry_run: bool) -> Outcome {
    let service = keychain::service_name();
    let deadline = Deadline::after(settings::timeout());
    let to = keychain::open_backend(target, &service, &deadline).map_err(|e| {
        fail(format!(
            "cannot use the {target}: {}; nothing was moved",
            explain(&e)
        ))
    })?;
    // Where the credentials are now: an interrupted move's source, else the record, else
    // what `auto` would pick.
    let moving =
        record::moving_from(&service).map_err(|e| fail(format!("{e}; nothing was moved")))?;
    let from = match moving {
        Some(from) if from != target => from,
        _ => {
            let (_, selection) = keychain::open(&deadline).map_err(|e| {
                fail(format!(
                    "cannot open the keychain in use: {}; nothing was moved",
                    explain(&e)
                ))
            })?;
            selection.backend
        }
    };
    if from == target {
        record::write(&service, target).map_err(|e| fail(format!("{e}")))?;
        println!("Already using the {target}; nothing to move.");
        return Ok(());
    }
    let source = keychain::open_backend(from, &service, &deadline).map_err(|e| {
        fail(format!(
            "cannot open the {from}, where the credentials are: {}; nothing was moved",
            explain(&e)
        ))
    })?;
    deadline.renew();
    let listed = source.creds.list().map_err(|e| {
        fail(format!(
            "cannot list the credentials in the {from}: {}; nothing was moved",
            explain(&e)
        ))
    })?;
    if dry_run {
        println!("Dry run: nothing is changed.");
        for (url, user) in &listed {
            println!("would move {url} (username {user}) from the {from} to the {target}");
        }
        println!(
            "would use the {target} from then on (recorded in {})",
            record::path_text()
        );
        return Ok(());
    }
    let mut moved = Vec::new();
    for url in listed.keys() {
        deadline.renew();
        let Some(cred) = source.creds.get(url).map_err(|e| {
            fail(format!(
                "cannot read {url} from the {from}: {}; nothing was erased there",
                explain(&e)
            ))
        })?
        else {
            continue;
        };
        let found = Found {
            key: url.clone(),
            cred,
            origin: Origin::Helper(from.id().into()),
        };
        migrate::store_verified(&to, &found).map_err(|e| {
            fail(format!(
                "cannot copy {} to the {target}: {e}; nothing was erased in the {from}, which is still in use; run `{NAME} configure --backend {}` again",
                found.describe(),
                target.id()
            ))
        })?;
        moved.push(found);
    }
    deadline.renew();
    cache::copy(source.internal.as_ref(), to.internal.as_ref());
    record::write_moving(&service, target, from).map_err(|e| {
        fail(format!(
            "the credentials are copied, but {e}; the {from} is still in use"
        ))
    })?;
    for f in &moved {
        deadline.renew();
        if let Err(e) = source.creds.erase(&f.key) {
            return Err(Failure::new(format!(
                "warning: cannot erase {} from the {from}: {}; run `{NAME} configure --backend {}` again",
                f.key,
                explain(&e),
                target.id()
            )));
        }
        println!("moved {} from the {from} to the {target}", f.describe());
    }
    let _ = cache::clear(source.internal.as_ref());
    record::write(&service, target).map_err(|e| fail(format!("{e}")))?;
    println!(
        "Using the {target} from now on ({} credential(s) moved; recorded in {}).",
        moved.len(),
        record::path_text()
    );
    Ok(())
}
