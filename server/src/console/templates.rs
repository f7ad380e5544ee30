//! The pages' templates (minijinja, in `templates/`) and the stylesheet, compiled into the
//! binary: there is no front-end build step.

use minijinja::Value;

use super::Console;

/// The stylesheet every page links (`/static/console.css`).
pub(super) const CSS: &str = include_str!("templates/console.css");

/// The templates, compiled into the binary.
pub(super) fn templates() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    for (name, text) in [
        ("base.html", include_str!("templates/base.html")),
        ("sign_in.html", include_str!("templates/sign_in.html")),
        ("overview.html", include_str!("templates/overview.html")),
        (
            "possible_matches.html",
            include_str!("templates/possible_matches.html"),
        ),
        ("reveal.html", include_str!("templates/reveal.html")),
        ("deregister.html", include_str!("templates/deregister.html")),
        ("downtime.html", include_str!("templates/downtime.html")),
        ("table.html", include_str!("templates/table.html")),
        ("users.html", include_str!("templates/users.html")),
        ("user_edit.html", include_str!("templates/user_edit.html")),
        ("account.html", include_str!("templates/account.html")),
        ("mfa_enrol.html", include_str!("templates/mfa_enrol.html")),
        ("mfa_code.html", include_str!("templates/mfa_code.html")),
        (
            "mfa_recovery.html",
            include_str!("templates/mfa_recovery.html"),
        ),
        ("audit.html", include_str!("templates/audit.html")),
        ("schemes.html", include_str!("templates/schemes.html")),
        (
            "possible_match_confirm.html",
            include_str!("templates/possible_match_confirm.html"),
        ),
        (
            "organisation.html",
            include_str!("templates/organisation.html"),
        ),
    ] {
        env.add_template(name, text)
            .expect("console template parses");
    }
    env
}

/// Renders template `name`; a page saying it could not be shown if it fails (logged).
pub(super) fn render(console: &Console, name: &str, ctx: Value) -> String {
    match console
        .templates
        .get_template(name)
        .and_then(|t| t.render(ctx))
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(template = name, error = %e, "console template failed");
            "<!doctype html><title>error</title><p>The page could not be shown.</p>".into()
        }
    }
}
