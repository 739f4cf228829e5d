//! `configure --backend NAME`: move every credential from the backend in use to another,
//! and use that one from now on. Copy, verify, switch the record, then erase the old copies:
//! interrupted anywhere, nothing is lost, and running it again finishes the job (the record
//! remembers a move whose old copies are not erased yet).

use super::{Failed, Outcome, fail};
use crate::NAME;
use crate::deadline::Deadline;
use crate::hub::HUB_JWT;
use crate::keychain::{self, Backend, Keychain, record};
use crate::migrate::{self, Found, Origin};
use crate::settings;

pub fn run(target: Backend, dry_run: bool) -> Outcome {
    let service = keychain::service_name();
    let deadline = Deadline::after(settings::timeout());
    let to = keychain::open_backend(target, &service, &deadline)
        .map_err(|e| fail(format!("cannot use the {target}: {e}; nothing was moved")))?;
    // Where the credentials are now: an interrupted move's source, else the record, else
    // what `auto` would pick.
    let moving =
        record::moving_from(&service).map_err(|e| fail(format!("{e}; nothing was moved")))?;
    let from = match moving {
        Some(from) if from != target => from,
        _ => {
            let (_, selection) = keychain::open(&deadline).map_err(|e| {
                fail(format!(
                    "cannot open the keychain in use: {e}; nothing was moved"
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
            "cannot open the {from}, where the credentials are: {e}; nothing was moved"
        ))
    })?;
    deadline.renew();
    let listed = source.list().map_err(|e| {
        fail(format!(
            "cannot list the credentials in the {from}: {e}; nothing was moved"
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
        let Some(cred) = source.get(url).map_err(|e| {
            fail(format!(
                "cannot read {url} from the {from}: {e}; nothing was erased there"
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
        migrate::store_verified(to.as_ref(), &found).map_err(|e| {
            fail(format!(
                "cannot copy {} to the {target}: {e}; nothing was erased in the {from}, which is still in use; run `{NAME} configure --backend {}` again",
                found.describe(),
                target.id()
            ))
        })?;
        moved.push(found);
    }
    deadline.renew();
    copy_cache(source.as_ref(), to.as_ref());
    record::write_moving(&service, target, from).map_err(|e| {
        fail(format!(
            "the credentials are copied, but {e}; the {from} is still in use"
        ))
    })?;
    for f in &moved {
        deadline.renew();
        if let Err(e) = source.erase(&f.key) {
            eprintln!(
                "{NAME} configure: warning: cannot erase {} from the {from}: {e}; run `{NAME} configure --backend {}` again",
                f.key,
                target.id()
            );
            return Err(Failed);
        }
        println!("moved {} from the {from} to the {target}", f.describe());
    }
    let _ = source.erase_internal(HUB_JWT);
    record::write(&service, target).map_err(|e| fail(format!("{e}")))?;
    println!(
        "Using the {target} from now on ({} credential(s) moved; recorded in {}).",
        moved.len(),
        record::path_text()
    );
    Ok(())
}

/// The cached Hub JWT comes along (it is derived, so a failure only costs a login).
fn copy_cache(from: &dyn Keychain, to: &dyn Keychain) {
    if let Ok(Some(jwt)) = from.get_internal(HUB_JWT) {
        let _ = to.set_internal(HUB_JWT, &jwt);
    }
}
