//! Who an email address belongs to, folded from its stream
//! (`email-<email_index>`), and the accounts themselves, folded from
//! theirs (`user-<user_id>`).
//!
//! An address is an identity only once proven: any number of accounts may
//! *register* it, but it is *held* by the one that last proved it (opened a
//! link mailed to it). Sign-in by address reaches the holder, or, while
//! nobody holds it, the newest registration, so an account that squats an
//! address never keeps its real owner out.

use event_schemas::user::AccountEvent;
use uuid::Uuid;

/// How many unproven registrations of one address a sign-in tries (each
/// costs a password hash).
pub const SIGN_IN_CANDIDATES: usize = 5;

/// The state of one address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// The account holding the address, if one proved it.
    pub holder: Option<Uuid>,
    /// Accounts that registered it, oldest first.
    pub registered: Vec<Uuid>,
    /// Events in its stream (for the next append's expected version).
    pub version: u64,
}

impl Address {
    /// Folds the address's stream.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a AccountEvent>) -> Address {
        let mut address = Address::default();
        for e in events {
            address.version += 1;
            match e {
                AccountEvent::EmailRegistered(r) => address.registered.push(r.user_id),
                AccountEvent::EmailClaimed(c) => address.holder = Some(c.user_id),
                _ => {}
            }
        }
        address
    }

    /// The account a password reset with this address reaches: its holder,
    /// or while nobody holds it, its newest registration.
    pub fn account(&self) -> Option<Uuid> {
        self.holder.or_else(|| self.registered.last().copied())
    }

    /// The accounts a sign-in with this address may be for, in the order
    /// to try them: its holder alone; while nobody holds it, its newest
    /// [`SIGN_IN_CANDIDATES`] registrations, newest first, so a later
    /// squatter does not lock an earlier, unproven owner out (the password
    /// tells them apart).
    pub fn sign_in_candidates(&self) -> Vec<Uuid> {
        if let Some(holder) = self.holder {
            return vec![holder];
        }
        let mut out: Vec<Uuid> = Vec::new();
        for u in self.registered.iter().rev() {
            if !out.contains(u) {
                out.push(*u);
            }
            if out.len() == SIGN_IN_CANDIDATES {
                break;
            }
        }
        out
    }

    /// Whether a sign-up with this address creates an account: not while
    /// an account holds it (the holder is told by mail instead, and the
    /// answer is the same either way).
    pub fn open_for_sign_up(&self) -> bool {
        self.holder.is_none()
    }

    /// Decides `user`'s proof of this address. `holder_verified` says
    /// whether the current holder proved it; a holder from before
    /// addresses were verified did not.
    pub fn verify(&self, user: Uuid, holder_verified: bool) -> Verification {
        match self.holder {
            Some(h) if h == user && holder_verified => Verification::AlreadyHeld,
            Some(h) if h != user && holder_verified => Verification::HeldByAnother,
            _ => Verification::Claim {
                release: self
                    .registered
                    .iter()
                    .chain(self.holder.iter())
                    .copied()
                    .filter(|u| *u != user)
                    .fold(Vec::new(), |mut v, u| {
                        if !v.contains(&u) {
                            v.push(u);
                        }
                        v
                    }),
            },
        }
    }
}

/// The outcome of proving an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The account already holds it: nothing to record.
    AlreadyHeld,
    /// Another account proved it first: refused (the link is stale).
    HeldByAnother,
    /// The account claims it; these other accounts lose it.
    Claim {
        /// Unproven accounts that registered (or held) it.
        release: Vec<Uuid>,
    },
}

/// One account, folded from its own stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    /// Whether it signed up at all.
    pub exists: bool,
    /// Keyed hash of its address.
    pub email_index: String,
    /// Whether it proved its address.
    pub email_verified: bool,
    /// Whether another account proved its address (it can no longer sign
    /// in with it).
    pub email_released: bool,
    /// Whether its personal data was erased (it can no longer sign in).
    pub erased: bool,
    /// Events in its stream.
    pub version: u64,
}

impl Account {
    /// Folds the account's stream.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a AccountEvent>) -> Account {
        let mut account = Account::default();
        for e in events {
            account.version += 1;
            match e {
                AccountEvent::UserSignedUp(u) => {
                    account.exists = true;
                    account.email_index = u.email_index.clone();
                }
                AccountEvent::UserEmailVerified(_) => {
                    account.email_verified = true;
                    account.email_released = false;
                }
                AccountEvent::UserEmailReleased(_) => {
                    account.email_verified = false;
                    account.email_released = true;
                }
                AccountEvent::PersonalDataErased(_) => account.erased = true,
                _ => {}
            }
        }
        account
    }

    /// Whether it may sign in (or reset its password) at all.
    pub fn can_sign_in(&self) -> bool {
        self.exists && !self.erased && !self.email_released
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_schemas::user::{EmailClaimed, EmailRegistered};

    fn reg(n: u128) -> AccountEvent {
        AccountEvent::EmailRegistered(EmailRegistered {
            user_id: Uuid::from_u128(n),
        })
    }

    fn claim(n: u128) -> AccountEvent {
        AccountEvent::EmailClaimed(EmailClaimed {
            user_id: Uuid::from_u128(n),
        })
    }

    #[test]
    fn the_newest_registration_signs_in_until_someone_proves_the_address() {
        let a = Address::fold(&[reg(1), reg(2)]);
        assert_eq!(a.account(), Some(Uuid::from_u128(2)));
        assert!(a.open_for_sign_up());
        let a = Address::fold(&[reg(1), reg(2), claim(1)]);
        assert_eq!(a.account(), Some(Uuid::from_u128(1)));
        assert!(!a.open_for_sign_up());
        assert_eq!(a.version, 3);
    }

    #[test]
    fn a_sign_in_tries_the_holder_alone_or_the_newest_registrations() {
        let a = Address::fold(&[reg(1), reg(2), reg(3), reg(4), reg(5), reg(6), reg(7)]);
        let ids: Vec<u128> = a.sign_in_candidates().iter().map(|u| u.as_u128()).collect();
        assert_eq!(ids, vec![7, 6, 5, 4, 3]);
        let held = Address::fold(&[reg(1), reg(2), claim(1)]);
        assert_eq!(held.sign_in_candidates(), vec![Uuid::from_u128(1)]);
    }

    #[test]
    fn proving_an_address_releases_every_squatter_but_never_a_proven_holder() {
        let a = Address::fold(&[reg(1), reg(2), reg(3)]);
        assert_eq!(
            a.verify(Uuid::from_u128(2), false),
            Verification::Claim {
                release: vec![Uuid::from_u128(1), Uuid::from_u128(3)]
            }
        );
        let held = Address::fold(&[reg(1), reg(2), claim(2)]);
        assert_eq!(
            held.verify(Uuid::from_u128(1), true),
            Verification::HeldByAnother
        );
        assert_eq!(
            held.verify(Uuid::from_u128(2), true),
            Verification::AlreadyHeld
        );
        // A holder from before verification existed never proved it.
        let legacy = Address::fold(&[claim(1)]);
        assert_eq!(
            legacy.verify(Uuid::from_u128(2), false),
            Verification::Claim {
                release: vec![Uuid::from_u128(1)]
            }
        );
    }
}
