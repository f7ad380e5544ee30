use super::*;
use crate::store::console::Role;

fn user(roles: &[Role]) -> ConsoleUser {
    ConsoleUser {
        id: 1,
        username: "u".into(),
        display_name: String::new(),
        email: String::new(),
        password_hash: String::new(),
        roles: roles.to_vec(),
        holdernames: vec![uuid::Uuid::nil()],
        suspended: false,
        confirmed_at: None,
        updated_at: 0,
    }
}

#[test]
fn each_route_is_written_once_and_only_pages_are_navigated_to() {
    for (i, r) in ROUTES.iter().enumerate() {
        assert!(
            !ROUTES[..i]
                .iter()
                .any(|o| o.method == r.method && o.path == r.path),
            "{} {} twice",
            r.method,
            r.path
        );
        assert!(r.nav.is_none() || r.method == Method::GET, "{}", r.path);
        // Every action but signing out and a user's own account needs a role.
        if r.method == Method::POST && r.path != "/sign-out" && !r.path.starts_with("/account/") {
            assert!(r.action.is_some(), "POST {} needs no role", r.path);
        }
    }
}

#[test]
fn the_navigation_lists_what_the_roles_open_in_the_tables_order() {
    let hrefs =
        |roles: &[Role]| -> Vec<&str> { nav(&user(roles)).iter().map(|n| n.href).collect() };
    assert_eq!(
        hrefs(&[Role::Ptc]),
        ["/certificates", "/account", "/organisation"]
    );
    assert_eq!(
        hrefs(&[Role::Pbc]),
        [
            "/possible-matches",
            "/flagged",
            "/deregister",
            "/schemes",
            "/users",
            "/account",
            "/organisation"
        ]
    );
    assert_eq!(
        hrefs(&[Role::SecurityLead, Role::TestManager]),
        ["/testing", "/account", "/audit", "/organisation"]
    );
    let mut suspended = user(&[Role::Pbc]);
    suspended.suspended = true;
    assert_eq!(
        nav(&suspended).len(),
        2,
        "their account and the organisation only"
    );
}
