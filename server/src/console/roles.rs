//! The connection-portal roles, as PDP's "Roles and responsibilities" defines them, and what
//! each may do in the console.
//!
//! Limits: at most 2 PBCs; 1 to 2 PTCs; at most 2 test managers, 2 service managers and 2
//! security leads; at most `console.scheme_admin_limit` scheme admins (4 by default: PDP
//! approves more case by case). A person holds at most one of PBC, PTC and scheme admin (scheme
//! admin is part of PBC), plus any of test manager, service manager and security lead. Every
//! refusal names its rule ([`RoleRefusal::rule`]). Nobody removes the last way in: the last
//! PBC who is not suspended keeps the role and cannot be suspended (`LAST_ACTIVE_PBC`).

use crate::store::console::{ConsoleUser, Role};

/// A role assignment that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleRefusal {
    /// More holders of a role than allowed.
    #[error("rule {}: at most {max} {}s", rule_name(*role), role.title().to_lowercase())]
    TooMany {
        /// The role.
        role: Role,
        /// Its limit.
        max: usize,
    },
    /// The last PTC (one is required) or the last PBC removed.
    #[error("rule {}: at least one {} is required", min_rule_name(*role), role.title().to_lowercase())]
    TooFew {
        /// The role.
        role: Role,
    },
    /// A person with two of PBC, PTC, scheme admin.
    #[error("rule ONE_PRIMARY_ROLE: a person holds at most one of primary business contact, primary technical contact and scheme admin (scheme admin is part of the PBC role)")]
    OnePrimaryRole,
    /// The last PBC who is not suspended suspended, or their role removed: nobody could then
    /// manage users.
    #[error(
        "rule LAST_ACTIVE_PBC: the last primary business contact who is not suspended keeps \
         the role and stays active; make another user a PBC first"
    )]
    LastActivePbc,
    /// A scheme admin without holdernames.
    #[error("rule SCHEME_ADMIN_HOLDERNAMES: a scheme admin acts on named holdernames; give at least one")]
    SchemeAdminHoldernames,
}

fn rule_name(role: Role) -> &'static str {
    match role {
        Role::Pbc => "PBC_MAX",
        Role::Ptc => "PTC_MAX",
        Role::SchemeAdmin => "SCHEME_ADMIN_MAX",
        Role::TestManager => "TEST_MANAGER_MAX",
        Role::ServiceManager => "SERVICE_MANAGER_MAX",
        Role::SecurityLead => "SECURITY_LEAD_MAX",
    }
}

fn min_rule_name(role: Role) -> &'static str {
    match role {
        Role::Pbc => "PBC_MIN",
        _ => "PTC_MIN",
    }
}

impl RoleRefusal {
    /// The rule's name, as the refusal says it (`PBC_MAX`, `ONE_PRIMARY_ROLE`, ...).
    pub fn rule(&self) -> &'static str {
        match self {
            RoleRefusal::TooMany { role, .. } => rule_name(*role),
            RoleRefusal::TooFew { role } => min_rule_name(*role),
            RoleRefusal::OnePrimaryRole => "ONE_PRIMARY_ROLE",
            RoleRefusal::LastActivePbc => "LAST_ACTIVE_PBC",
            RoleRefusal::SchemeAdminHoldernames => "SCHEME_ADMIN_HOLDERNAMES",
        }
    }
}

/// The limit of holders of `role`.
pub fn limit(role: Role, scheme_admin_limit: usize) -> usize {
    match role {
        Role::SchemeAdmin => scheme_admin_limit,
        _ => 2,
    }
}

/// Checks one person's roles on their own.
pub fn check_person(user: &ConsoleUser) -> Result<(), RoleRefusal> {
    let primary = [Role::Pbc, Role::Ptc, Role::SchemeAdmin]
        .iter()
        .filter(|r| user.has(**r))
        .count();
    if primary > 1 {
        return Err(RoleRefusal::OnePrimaryRole);
    }
    if user.has(Role::SchemeAdmin) && user.holdernames.is_empty() {
        return Err(RoleRefusal::SchemeAdminHoldernames);
    }
    Ok(())
}

/// Checks every user as they would be after a change (`before`: as they are now). Suspended
/// users still hold their roles (as in the portal, a suspended PBC is still one of the two).
/// A minimum (one PTC, one PBC) is enforced only once it has been met: the first PBC is created
/// before any PTC.
pub fn check_all(
    before: &[ConsoleUser],
    after: &[ConsoleUser],
    scheme_admin_limit: usize,
) -> Result<(), RoleRefusal> {
    for u in after {
        check_person(u)?;
    }
    let count = |users: &[ConsoleUser], role| users.iter().filter(|u| u.has(role)).count();
    for role in <Role as strum::VariantArray>::VARIANTS.iter().copied() {
        let max = limit(role, scheme_admin_limit);
        let (was, now) = (count(before, role), count(after, role));
        // A count already over its limit (a limit lowered since) may fall, never rise.
        if now > max && now > was {
            return Err(RoleRefusal::TooMany { role, max });
        }
        if matches!(role, Role::Pbc | Role::Ptc) && was >= 1 && now == 0 {
            return Err(RoleRefusal::TooFew { role });
        }
    }
    let active_pbcs = |users: &[ConsoleUser]| {
        users
            .iter()
            .filter(|u| u.has(Role::Pbc) && !u.suspended)
            .count()
    };
    if active_pbcs(before) >= 1 && active_pbcs(after) == 0 {
        return Err(RoleRefusal::LastActivePbc);
    }
    Ok(())
}

/// Something done in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Users and roles, the organisation's details (PBC).
    ManageUsers,
    /// Possible matches: review, resolve, reveal (PBC; scheme admin for their holdernames).
    ReviewMatches,
    /// De-registration, flagged PeIs (PBC; scheme admin for their holdernames).
    Deregister,
    /// Certificates and keys (PTC).
    Certificates,
    /// Planned downtime, SLA, PDP reports, calculations, failed finds (service manager).
    Service,
    /// Simulator and load runs (test manager).
    Testing,
    /// The audit trail's export (security lead).
    AuditExport,
}

impl Action {
    /// The roles that may do it.
    pub fn roles(self) -> &'static [Role] {
        match self {
            Action::ManageUsers => &[Role::Pbc],
            Action::ReviewMatches | Action::Deregister => &[Role::Pbc, Role::SchemeAdmin],
            Action::Certificates => &[Role::Ptc],
            Action::Service => &[Role::ServiceManager],
            Action::Testing => &[Role::TestManager],
            Action::AuditExport => &[Role::SecurityLead],
        }
    }
}

/// Whether `user` may do `action` (on some holdername: see [`sees_holdername`]).
pub fn may(user: &ConsoleUser, action: Action) -> bool {
    !user.suspended && action.roles().iter().any(|r| user.has(*r))
}

/// Whether `user` sees and acts on data of `holdername`: a PBC on all; a scheme admin on
/// theirs only; any other role on all (read-only pages of the whole connection).
pub fn sees_holdername(user: &ConsoleUser, holdername: uuid::Uuid) -> bool {
    if user.has(Role::Pbc) || !user.has(Role::SchemeAdmin) {
        return true;
    }
    user.holdernames.contains(&holdername)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, roles: &[Role]) -> ConsoleUser {
        ConsoleUser {
            id,
            username: format!("u{id}"),
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
    fn console_roles_follow_the_portal_rules() {
        use Role::*;
        // Combinations a person may hold.
        for roles in [
            &[Pbc, TestManager, ServiceManager, SecurityLead][..],
            &[Ptc, TestManager, SecurityLead],
            &[SchemeAdmin, ServiceManager],
        ] {
            check_person(&user(1, roles)).unwrap();
        }
        for roles in [&[Pbc, Ptc][..], &[Pbc, SchemeAdmin], &[Ptc, SchemeAdmin]] {
            assert_eq!(
                check_person(&user(1, roles)).unwrap_err().rule(),
                "ONE_PRIMARY_ROLE"
            );
        }
        // Limits.
        let two = vec![user(1, &[Pbc]), user(2, &[Pbc])];
        let mut three = two.clone();
        three.push(user(3, &[Pbc]));
        assert_eq!(check_all(&two, &three, 4).unwrap_err().rule(), "PBC_MAX");
        let admins: Vec<_> = (0..4).map(|i| user(i, &[SchemeAdmin])).collect();
        let mut five = admins.clone();
        five.push(user(9, &[SchemeAdmin]));
        assert_eq!(
            check_all(&admins, &five, 4).unwrap_err().rule(),
            "SCHEME_ADMIN_MAX"
        );
        check_all(&admins, &five, 5).unwrap();
        // The last PTC stays.
        let before = vec![user(1, &[Pbc]), user(2, &[Ptc])];
        let after = vec![user(1, &[Pbc]), user(2, &[TestManager])];
        assert_eq!(check_all(&before, &after, 4).unwrap_err().rule(), "PTC_MIN");
        // The last active PBC stays: not suspended, not stripped of the role; another active
        // PBC lets either go.
        let mut suspended = before.clone();
        suspended[0].suspended = true;
        assert_eq!(
            check_all(&before, &suspended, 4).unwrap_err().rule(),
            "LAST_ACTIVE_PBC"
        );
        let two = vec![user(1, &[Pbc]), user(2, &[Ptc]), user(3, &[Pbc])];
        let mut one_left = two.clone();
        one_left[0].suspended = true;
        check_all(&two, &one_left, 4).unwrap();
        let mut none_left = one_left.clone();
        none_left[2].roles = vec![TestManager];
        assert_eq!(
            check_all(&one_left, &none_left, 4).unwrap_err().rule(),
            "LAST_ACTIVE_PBC"
        );
        // Permissions.
        assert!(may(&user(1, &[Pbc]), Action::ManageUsers));
        assert!(!may(&user(1, &[Ptc]), Action::ReviewMatches));
        let mut admin = user(1, &[SchemeAdmin]);
        admin.holdernames = vec![uuid::Uuid::from_u128(1)];
        assert!(sees_holdername(&admin, uuid::Uuid::from_u128(1)));
        assert!(!sees_holdername(&admin, uuid::Uuid::from_u128(2)));
    }
}
