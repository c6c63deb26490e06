//! A console visitor over plain HTTP: it keeps the console's cookies (the
//! `__Host-` ones a cookie store would never send over `http://`), follows
//! redirects as a browser does, sends the `Origin` a browser sends, and
//! parses each page with `scraper`.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::redirect::Policy;
use scraper::{Html, Selector};

/// One answer: status, headers and the parsed page.
pub struct Answer {
    /// Status of the last hop.
    pub status: u16,
    /// Headers of the last hop.
    pub headers: HeaderMap,
    /// Its body.
    pub body: String,
    /// Every hop's path (after redirects).
    pub path: String,
}

impl Answer {
    /// The page, parsed.
    pub fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }

    /// The text of every element matching `css`.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let sel = Selector::parse(css).expect("a valid selector");
        self.html()
            .select(&sel)
            .map(|e| e.text().collect::<String>().trim().to_owned())
            .collect()
    }

    /// Attribute `attr` of every element matching `css`.
    pub fn attrs(&self, css: &str, attr: &str) -> Vec<String> {
        let sel = Selector::parse(css).expect("a valid selector");
        self.html()
            .select(&sel)
            .filter_map(|e| e.value().attr(attr).map(str::to_owned))
            .collect()
    }

    /// The form token the page's forms carry.
    pub fn form_token(&self) -> String {
        self.attrs("input[name=_form_token]", "value")
            .into_iter()
            .next()
            .unwrap_or_default()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// A person at the console.
pub struct Visitor {
    base: String,
    http: reqwest::Client,
    /// The cookies the console set.
    pub cookies: BTreeMap<String, String>,
}

impl Visitor {
    /// A visitor of the console at `base`.
    pub fn new(base: &str) -> Self {
        Visitor {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn keep(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn follow(&mut self, mut r: reqwest::Response, mut path: String) -> Answer {
        loop {
            self.keep(r.headers());
            if r.status().is_redirection() {
                path = r.headers()[LOCATION].to_str().unwrap().to_owned();
                r = self
                    .http
                    .get(format!("{}{path}", self.base))
                    .header(COOKIE, self.cookie_header())
                    .send()
                    .await
                    .unwrap();
                continue;
            }
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.text().await.unwrap();
            return Answer {
                status,
                headers,
                body,
                path,
            };
        }
    }

    /// Opens `path`.
    pub async fn get(&mut self, path: &str) -> Answer {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.follow(r, path.to_owned()).await
    }

    /// Sends a form to `path` from one of the console's pages.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        self.post_from(path, fields, &self.base.clone()).await
    }

    /// Sends a form to `path` from a page of `origin`.
    pub async fn post_from(&mut self, path: &str, fields: &[(&str, &str)], origin: &str) -> Answer {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header(ORIGIN, origin)
            .form(fields)
            .send()
            .await
            .unwrap();
        self.follow(r, path.to_owned()).await
    }
}
