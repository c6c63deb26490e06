//! Mail as the tests receive it: from the `.eml` files a server without
//! `--smtp-url` writes under `<data-dir>/mail/`, or from a real SMTP server
//! on loopback ([`SmtpSink`]) that a server sends to.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One received mail.
#[derive(Debug, Clone)]
pub struct Mail {
    /// `To`.
    pub to: String,
    /// `Subject`.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
    /// The raw message.
    pub raw: Vec<u8>,
}

impl Mail {
    /// Parses a raw message.
    pub fn parse(raw: &[u8]) -> Mail {
        let m = mail_parser::MessageParser::default()
            .parse(raw)
            .expect("a mail parses");
        let to = m
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_owned();
        Mail {
            to,
            subject: m.subject().unwrap_or_default().to_owned(),
            text: m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            html: m.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
            raw: raw.to_vec(),
        }
    }

    /// The first link in the text body starting with `prefix` (a path such
    /// as `/verify-email`), whole.
    pub fn link(&self, path: &str) -> String {
        self.text
            .split_whitespace()
            .find(|w| w.starts_with("http") && w.contains(path))
            .unwrap_or_else(|| panic!("no {path} link in: {}", self.text))
            .to_owned()
    }

    /// Every `token` parameter of every link in the text body.
    pub fn tokens(&self) -> Vec<String> {
        self.text
            .split_whitespace()
            .filter_map(|w| w.split("token=").nth(1))
            .map(|t| t.split('&').next().unwrap_or(t).to_owned())
            .collect()
    }

    /// The `token` parameter of the link to `path`.
    pub fn token(&self, path: &str) -> String {
        let link = self.link(path);
        link.split("token=")
            .nth(1)
            .and_then(|t| t.split('&').next())
            .unwrap_or_else(|| panic!("no token in {link}"))
            .to_owned()
    }
}

/// Mail received so far, and the wait for more.
#[derive(Clone, Default)]
pub struct Inbox {
    received: Arc<Mutex<Vec<Mail>>>,
    taken: Arc<Mutex<HashSet<usize>>>,
    dir: Option<PathBuf>,
}

impl Inbox {
    /// The `.eml` files written under `dir`.
    pub fn files(dir: &Path) -> Inbox {
        Inbox {
            dir: Some(dir.to_path_buf()),
            ..Inbox::default()
        }
    }

    fn refresh(&self) {
        let Some(dir) = &self.dir else { return };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        files.sort();
        let mut received = self.received.lock().unwrap();
        // Files are only ever added; those already read come first by time.
        let known: HashSet<Vec<u8>> = received.iter().map(|m| m.raw.clone()).collect();
        for (_, path) in files {
            if let Ok(raw) = std::fs::read(&path) {
                if !known.contains(&raw) {
                    received.push(Mail::parse(&raw));
                }
            }
        }
    }

    /// Every mail received so far.
    pub fn all(&self) -> Vec<Mail> {
        self.refresh();
        self.received.lock().unwrap().clone()
    }

    /// Waits (up to 20 s) for the next mail to `to` whose subject contains
    /// `subject` that no earlier call returned.
    pub async fn next(&self, to: &str, subject: &str) -> Mail {
        for _ in 0..800 {
            self.refresh();
            {
                let received = self.received.lock().unwrap();
                let mut taken = self.taken.lock().unwrap();
                if let Some((i, m)) = received.iter().enumerate().find(|(i, m)| {
                    !taken.contains(i)
                        && m.to.eq_ignore_ascii_case(to)
                        && m.subject.contains(subject)
                }) {
                    taken.insert(i);
                    return m.clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no mail to {to} about {subject:?} arrived in 20 s");
    }
}

/// A real SMTP server on loopback (`mailin-embedded`), keeping every mail
/// it receives in an [`Inbox`].
pub struct SmtpSink {
    /// `smtp://127.0.0.1:<port>`.
    pub url: String,
    /// What arrived.
    pub inbox: Inbox,
    /// Transactions refused so far (see [`SmtpSink::refuse_next`]).
    refuse: Arc<Mutex<usize>>,
}

#[derive(Clone)]
struct SinkHandler {
    inbox: Inbox,
    refuse: Arc<Mutex<usize>>,
    data: Vec<u8>,
}

impl mailin_embedded::Handler for SinkHandler {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> mailin_embedded::Response {
        self.data.clear();
        let mut refuse = self.refuse.lock().unwrap();
        if *refuse > 0 {
            *refuse -= 1;
            return mailin_embedded::response::INTERNAL_ERROR;
        }
        mailin_embedded::response::START_DATA
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        let mail = Mail::parse(&self.data);
        self.inbox.received.lock().unwrap().push(mail);
        mailin_embedded::response::OK
    }
}

impl SmtpSink {
    /// Starts the server on a free loopback port, on its own threads.
    pub fn start() -> SmtpSink {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let inbox = Inbox::default();
        let refuse = Arc::new(Mutex::new(0));
        let handler = SinkHandler {
            inbox: inbox.clone(),
            refuse: refuse.clone(),
            data: Vec::new(),
        };
        let mut server = mailin_embedded::Server::new(handler);
        server
            .with_name("sink.test")
            .with_ssl(mailin_embedded::SslConfig::None)
            .unwrap()
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpSink {
            url: format!("smtp://127.0.0.1:{port}"),
            inbox,
            refuse,
        }
    }

    /// Answers the next `n` mail transactions with a temporary failure.
    pub fn refuse_next(&self, n: usize) {
        *self.refuse.lock().unwrap() = n;
    }
}
