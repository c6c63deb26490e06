//! The vault's unit tests.
use super::*;

#[test]
fn sealed_data_opens_only_under_its_subjects_key() {
    let a = SubjectKey {
        subject: Uuid::new_v4(),
        cipher: Aes256Gcm::new(&[7u8; 32].into()),
    };
    let sealed = a.seal("ada@example.com");
    assert!(!sealed.0.contains("ada"));
    assert_eq!(a.open(&sealed.0).unwrap(), "ada@example.com");
    let b = SubjectKey {
        subject: Uuid::new_v4(),
        cipher: Aes256Gcm::new(&[7u8; 32].into()),
    };
    assert!(b.open(&sealed.0).is_err(), "bound to the subject by AAD");
}

#[test]
fn the_email_index_is_keyed() {
    let one = Vault::new([1u8; 32]);
    let two = Vault::new([2u8; 32]);
    assert_eq!(one.email_index("a@b.co"), one.email_index("a@b.co"));
    assert_ne!(one.email_index("a@b.co"), two.email_index("a@b.co"));
}

#[test]
fn a_bad_configured_kek_is_refused() {
    let dir = std::env::temp_dir();
    assert!(matches!(
        Vault::load(Some("c2hvcnQ="), None, &dir),
        Err(VaultError::BadKek)
    ));
}

#[test]
fn a_successor_opens_what_its_predecessor_sealed_and_keeps_the_index() {
    let old = Vault::new([1u8; 32]);
    let next = old.successor([2u8; 32]);
    let sealed = old.seal_service(b"ctx", b"secret");
    assert_eq!(next.open_service(b"ctx", &sealed).unwrap(), b"secret");
    assert!(Vault::new([2u8; 32]).open_service(b"ctx", &sealed).is_err());
    assert_eq!(next.email_index("a@b.co"), old.email_index("a@b.co"));
    assert_ne!(next.kek_id(), old.kek_id());
    let resealed = next.seal_service(b"ctx", b"secret");
    assert!(
        old.open_service(b"ctx", &resealed).is_err(),
        "sealed only under the new KEK"
    );
}
