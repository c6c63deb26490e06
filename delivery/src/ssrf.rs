//! The guard against server-side request forgery: a webhook URL may not
//! reach private, loopback, link-local, unique-local, CGNAT, metadata or
//! otherwise special addresses. It is checked when an endpoint is created
//! and again at connect time: the HTTP client resolves names through
//! [`GuardedResolver`], which answers only allowed addresses, so the
//! connection goes to the address that was checked (a DNS rebinding
//! between check and connect cannot reach inside).
//!
//! The client never uses a proxy from the environment (`HTTP(S)_PROXY`):
//! a proxy resolves the name itself, past the guard. A proxy configured
//! explicitly is used, and the destination is then checked before each
//! attempt (the narrower window between that check and the proxy's own
//! resolution is the price of a proxy).
//!
//! A refusal says why in general terms only: the address a name resolved
//! to stays in the server's log, never in an answer or the delivery log.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// What destinations may be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Allow every address (development and tests only).
    pub allow_private: bool,
}

/// How long resolving a destination's name may take.
pub const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a destination is refused. Displayed without the resolved address
/// (which may be an internal one); `Debug` keeps it for the server's log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The host is, or resolves to, a forbidden address.
    #[error(
        "resolves to an address webhooks may not reach (private, loopback, link-local or \
         another special-purpose network)"
    )]
    Forbidden {
        /// The host as given.
        host: String,
        /// The first forbidden address.
        addr: IpAddr,
        /// Which kind.
        kind: &'static str,
    },
    /// The host does not resolve (in time).
    #[error("does not resolve")]
    Unresolved {
        /// The host as given.
        host: String,
    },
}

/// The kind of special address `ip` is, if it is one webhooks may not
/// reach.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let seg = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if seg[..6] == [0; 6] {
                // ::/96, IPv4-compatible (deprecated): an IPv4 address in
                // disguise, routed as such by some stacks.
                Some("ipv4-compatible")
            } else if seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2] == 0x0001 {
                // 64:ff9b:1::/48, NAT64 for local use (RFC 8215).
                Some("local NAT64")
            } else if seg[0] & 0xffc0 == 0xfec0 {
                Some("site-local")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("unique-local")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if seg[0] & 0xff00 == 0xff00 {
                Some("multicast")
            } else if seg[0] == 0x0064 && seg[1] == 0xff9b {
                // NAT64 embeds an IPv4 address in its last 32 bits.
                forbidden_v4(Ipv4Addr::new(
                    (seg[6] >> 8) as u8,
                    seg[6] as u8,
                    (seg[7] >> 8) as u8,
                    seg[7] as u8,
                ))
            } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
                Some("documentation")
            } else if v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
                Some("metadata")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if o == [169, 254, 169, 254] {
        Some("metadata")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        Some("CGNAT")
    } else if o[0] == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() || o[0] >= 240 {
        Some("reserved")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if (o[0] == 192 && o[1] == 0 && o[2] == 0) || (o[0] == 198 && (o[1] & 0xfe) == 18) {
        Some("special-purpose")
    } else if ip.is_documentation() {
        Some("documentation")
    } else {
        None
    }
}

impl Policy {
    /// Resolves `host` and answers the addresses that may be reached: all
    /// of them, or an error naming the first forbidden one. An IP literal
    /// is checked as it is.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((bare, port)))
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or_else(|| Refused::Unresolved { host: host.into() })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(Refused::Unresolved { host: host.into() });
        }
        if !self.allow_private {
            // Every address must be allowed: a name answering one public
            // and one private address could otherwise be steered inside.
            if let Some((addr, kind)) = addrs
                .iter()
                .find_map(|a| forbidden(a.ip()).map(|k| (a.ip(), k)))
            {
                return Err(Refused::Forbidden {
                    host: host.into(),
                    addr,
                    kind,
                });
            }
        }
        Ok(addrs)
    }

    /// Checks a URL's host (and port) as [`Policy::resolve`] does.
    pub async fn check_url(&self, url: &reqwest::Url) -> Result<(), Refused> {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(443);
        self.resolve(host, port).await.map(|_| ())
    }
}

/// The HTTP client's resolver: names resolve only to allowed addresses,
/// checked at connect time.
#[derive(Debug, Clone)]
pub struct GuardedResolver(pub Policy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        Box::pin(async move {
            let addrs = policy
                .resolve(name.as_str(), 0)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An HTTP client for deliveries: names resolved through the guard, no
/// proxy but `proxy` (never one from the environment), no redirects
/// followed (a 3xx is the endpoint's answer), `timeout` per attempt.
pub fn client(
    policy: Policy,
    timeout: std::time::Duration,
    proxy: Option<&reqwest::Url>,
) -> reqwest::Client {
    let builder = match proxy {
        Some(url) => reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(url.clone()).expect("a parsed URL is a proxy")),
        None => reqwest::Client::builder().no_proxy(),
    };
    builder
        .dns_resolver(Arc::new(GuardedResolver(policy)))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(std::time::Duration::from_secs(10)))
        .pool_max_idle_per_host(32)
        .user_agent(concat!("Gatehouse-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_addresses_are_forbidden_and_public_ones_allowed() {
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "metadata"),
            ("169.254.10.1", "link-local"),
            ("100.64.0.1", "CGNAT"),
            ("0.0.0.0", "unspecified"),
            ("::1", "loopback"),
            ("fd12::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::7f00:1", "ipv4-compatible"),
            ("::a00:1", "ipv4-compatible"),
            ("64:ff9b:1::a00:1", "local NAT64"),
            ("fec0::1", "site-local"),
            ("64:ff9b::a00:1", "private"),
            ("fd00:ec2::254", "unique-local"),
        ] {
            assert_eq!(forbidden(ip.parse().unwrap()), Some(kind), "{ip}");
        }
        for ip in ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert_eq!(forbidden(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[tokio::test]
    async fn names_and_literals_that_reach_inside_are_refused_unless_allowed() {
        let strict = Policy::default();
        for host in [
            "127.0.0.1",
            "[::1]",
            "10.0.0.8",
            "169.254.169.254",
            "localhost",
        ] {
            let e = strict.resolve(host, 80).await.unwrap_err();
            assert!(matches!(e, Refused::Forbidden { .. }), "{host}: {e}");
        }
        let open = Policy {
            allow_private: true,
        };
        assert!(open.resolve("127.0.0.1", 80).await.is_ok());
    }

    #[tokio::test]
    async fn the_client_refuses_at_connect_time_and_the_listener_sees_nothing() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = tokio::spawn(async move {
            tokio::time::timeout(std::time::Duration::from_millis(500), listener.accept())
                .await
                .is_ok()
        });
        let c = client(Policy::default(), std::time::Duration::from_secs(2), None);
        // `localhost` resolves through the guard, which answers no address.
        let e = c
            .post(format!("http://localhost:{port}/hook"))
            .send()
            .await
            .unwrap_err();
        assert!(e.is_connect() || e.is_request(), "{e}");
        assert!(
            !accepted.await.unwrap(),
            "nothing connected to the listener"
        );
    }

    /// `HTTP_PROXY` in the environment would resolve names past the guard:
    /// the client never uses it. The "proxy" here is a listener that would
    /// see the request.
    #[tokio::test]
    async fn a_proxy_from_the_environment_is_never_used() {
        let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
        std::env::set_var("HTTP_PROXY", &proxy_url);
        std::env::set_var("http_proxy", &proxy_url);
        std::env::set_var("HTTPS_PROXY", &proxy_url);
        let proxied = tokio::spawn(async move {
            tokio::time::timeout(std::time::Duration::from_millis(500), proxy.accept())
                .await
                .is_ok()
        });
        let c = client(Policy::default(), std::time::Duration::from_secs(2), None);
        let e = c
            .post("http://internal.invalid:8080/hook")
            .send()
            .await
            .unwrap_err();
        assert!(e.is_connect() || e.is_request(), "{e}");
        assert!(!proxied.await.unwrap(), "the request went to the proxy");
    }
}
