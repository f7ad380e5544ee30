//! Certificate and key expiry ([`Action::Certificates`](crate::console::roles::Action)): days
//! until each configured certificate expires (renewed and reloaded without a restart).

use crate::console::page::Page;
use crate::console::respond::Resp;
use crate::console::ConsoleError;

/// The certificates.
pub(crate) async fn page(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let rows = crate::upkeep::certificate_files(&p.console.config)
        .into_iter()
        .map(|(name, path)| {
            let expiry = crate::upkeep::chain_expiry(&path).ok().flatten();
            vec![
                name.to_owned(),
                path.display().to_string(),
                match expiry {
                    Some(s) => format!("{} days", s / 86_400),
                    None => "unreadable".into(),
                },
            ]
        })
        .collect();
    p.table(
        "/certificates",
        "Certificates and keys",
        "Days until each certificate expires; renew and reload without a restart (SIGHUP).",
        &["Certificate", "File", "Expires in"],
        rows,
        "No certificate configured.",
        None,
    )
}
