//! The mails Gatehouse writes, in plain text and HTML from one pair of
//! templates (`templates/mail/letter.{txt,html}`): a greeting, paragraphs,
//! at most one action (a link), a footnote.

use askama::Template;
use serde::{Deserialize, Serialize};

/// One mail, ready to render.
#[derive(Clone, Serialize, Deserialize)]
pub struct Letter {
    /// The recipient's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Opening line.
    pub greeting: String,
    /// Body paragraphs.
    pub paragraphs: Vec<String>,
    /// The one thing to do: a label and a link.
    pub action: Option<(String, String)>,
    /// A closing note in small print.
    pub footnote: String,
}

impl std::fmt::Debug for Letter {
    // The address is personal data and the link may carry a token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Letter")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

#[derive(Template)]
#[template(path = "mail/letter.txt")]
struct Text<'a> {
    l: &'a Letter,
}

#[derive(Template)]
#[template(path = "mail/letter.html")]
struct Html<'a> {
    l: &'a Letter,
}

impl Letter {
    /// The plain-text body.
    pub fn text(&self) -> Result<String, askama::Error> {
        Text { l: self }.render()
    }

    /// The HTML body.
    pub fn html(&self) -> Result<String, askama::Error> {
        Html { l: self }.render()
    }

    /// "Confirm your email address" for a new account.
    pub fn verify_email(to: &str, name: &str, link: &str, hours: i64) -> Letter {
        Letter {
            to: to.to_owned(),
            subject: "Confirm your email address for Gatehouse".into(),
            greeting: format!("Hello {name},"),
            paragraphs: vec![
                "Someone, hopefully you, created a Gatehouse account with this address. \
                 Confirm the address to accept invitations to organisations and to keep \
                 the account if anyone else signs up with it."
                    .into(),
            ],
            action: Some(("Confirm my email address".into(), link.to_owned())),
            footnote: format!(
                "The link works once, for {hours} hours. If you did not sign up, ignore this \
                 mail: the account will never hold your address."
            ),
        }
    }

    /// Someone signed up with an address an account already holds.
    pub fn account_exists(to: &str, sign_in: &str, reset: &str) -> Letter {
        Letter {
            to: to.to_owned(),
            subject: "Your Gatehouse account".into(),
            greeting: "Hello,".into(),
            paragraphs: vec![
                "Someone tried to create a Gatehouse account with this address, which \
                 already has one. No new account was made."
                    .into(),
                format!("If it was you, sign in at {sign_in}, or set a new password:"),
            ],
            action: Some(("Reset my password".into(), reset.to_owned())),
            footnote: "If it was not you, no action is needed.".into(),
        }
    }

    /// An invitation to an organisation.
    pub fn invitation(to: &str, org: &str, role: &str, link: &str, days: i64) -> Letter {
        Letter {
            to: to.to_owned(),
            subject: format!("You are invited to {org} on Gatehouse"),
            greeting: "Hello,".into(),
            paragraphs: vec![format!(
                "You are invited to join the organisation {org} as {role}. Sign in (or \
                 create an account), then open the link to accept."
            )],
            action: Some(("Accept the invitation".into(), link.to_owned())),
            footnote: format!(
                "The link works once, for {days} days, for whoever opens it while signed in: \
                 do not forward this mail."
            ),
        }
    }

    /// A password reset link.
    pub fn password_reset(to: &str, link: &str, minutes: i64) -> Letter {
        Letter {
            to: to.to_owned(),
            subject: "Reset your Gatehouse password".into(),
            greeting: "Hello,".into(),
            paragraphs: vec![
                "Someone asked to reset the password of the Gatehouse account with this \
                 address. Setting a new password signs the account out everywhere."
                    .into(),
            ],
            action: Some(("Set a new password".into(), link.to_owned())),
            footnote: format!(
                "The link works once, for {minutes} minutes. If you did not ask, ignore this \
                 mail: your password stays as it is."
            ),
        }
    }
}

impl Letter {
    /// A notice about one of the organisation's apps.
    pub fn notice(
        to: &str,
        name: &str,
        kind: &str,
        app: &str,
        message: &str,
        link: &str,
    ) -> Letter {
        let subject = match kind {
            "key_rotation_required" => "An API key must be rotated",
            "key_leaked" => "An API key was found in public",
            "client_secret_leaked" => "An OAuth client secret was found in public",
            "key_expiring" => "An API key expires soon",
            "webhook_disabled" => "A webhook endpoint was disabled",
            k if k.starts_with("product_access") => "A product access decision",
            k if k.starts_with("distribution") => "A distribution decision",
            _ => "A notice about your app",
        };
        Letter {
            to: to.to_owned(),
            subject: format!("{subject}: {app}"),
            greeting: format!("Hello {name},"),
            paragraphs: vec![message.to_owned()],
            action: Some(("Open the console".into(), link.to_owned())),
            footnote: "You receive this because you manage the apps of this organisation.".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_bodies_carry_the_link_and_html_is_escaped() {
        let l = Letter::invitation(
            "ada@example.com",
            "<Acme & Co>",
            "developer",
            "https://portal.example/invitations/accept?token=abc&x=1",
            7,
        );
        let text = l.text().unwrap();
        assert!(text.contains("https://portal.example/invitations/accept?token=abc&x=1"));
        assert!(text.contains("<Acme & Co>"), "plain text is not escaped");
        let html = l.html().unwrap();
        assert!(html.contains("&#60;Acme &#38; Co&#62;"), "{html}");
        assert!(html.contains("token=abc&#38;x=1"), "{html}");
        assert!(!html.contains("<Acme"), "{html}");
        assert!(!format!("{l:?}").contains("token"), "Debug hides the link");
    }
}
