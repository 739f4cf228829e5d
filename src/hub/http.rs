//! What every Docker-side HTTP client here shares: the base URLs read from the environment
//! (the Hub API, Docker's OAuth tenant, the registry's token service and the registry),
//! each checked the same way, a client built for one of them, and bodies read under a cap
//! while they stream.
//!
//! Every request to these services can carry a password, a PAT, a JWT or a refresh token,
//! so a URL is `https://`, or plain `http://` only to this machine (a test mock, a local
//! proxy), and such a loopback URL is never sent through a proxy.

use std::io::Read;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::header::HeaderValue;

use super::client::HubError;
use super::redact::sanitize_for;
use crate::secret::Secret;
use crate::{NAME, VERSION};

const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One Docker service: the variable that overrides its URL, and its real URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    pub var: &'static str,
    pub default: &'static str,
}

/// The Hub API (logins, access tokens).
pub const API: Service = Service {
    var: "DOCKER_HUB_API_URL",
    default: "https://hub.docker.com",
};
/// Docker's OAuth tenant, where `docker login`'s web login gets its tokens and `docker
/// logout` revokes them (docker/cli `internal/oauth/manager/util.go`: `login.docker.com`).
pub const OAUTH: Service = Service {
    var: "DOCKER_HUB_OAUTH_URL",
    default: "https://login.docker.com",
};
/// The registry's token service (docker/docs `content/manuals/docker-hub/usage/pulls.md`).
pub const AUTH: Service = Service {
    var: "DOCKER_HUB_AUTH_URL",
    default: "https://auth.docker.io",
};
/// The registry itself (same page).
pub const REGISTRY: Service = Service {
    var: "DOCKER_HUB_REGISTRY_URL",
    default: "https://registry-1.docker.io",
};

/// A checked base URL, without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    service: Service,
    url: String,
}

impl Service {
    /// The URL from the variable (blank counts as unset), else the real one.
    pub fn endpoint(self) -> Result<Endpoint, HubError> {
        let raw = std::env::var(self.var)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| self.default.to_string());
        self.check(&raw)
    }

    fn check(self, raw: &str) -> Result<Endpoint, HubError> {
        let var = self.var;
        let bad = || {
            HubError::Unavailable(format!(
                "{var} must be an https:// URL such as {}; fix or unset it",
                self.default
            ))
        };
        let url = reqwest::Url::parse(raw).map_err(|_| bad())?;
        match url.scheme() {
            "https" if url.host().is_some() => {}
            "http" if is_loopback(&url) => {}
            "http" if url.host().is_some() => {
                return Err(HubError::Unavailable(format!(
                    "{var} ({}) is plain http:// to a host that is not this machine, and a password or token must never travel in clear text: https is required; use https://, or unset {var}",
                    shown(raw)
                )));
            }
            _ => return Err(bad()),
        }
        Ok(Endpoint {
            service: self,
            url: raw.trim_end_matches('/').to_string(),
        })
    }
}

impl Endpoint {
    /// `path` (starting with `/`) on this endpoint.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The URL, fit for messages.
    pub fn shown(&self) -> String {
        shown(&self.url)
    }

    /// The variable that sets this URL, for messages.
    pub fn var(&self) -> &'static str {
        self.service.var
    }

    /// A client for this endpoint whose every request ends within `timeout`: the proxy from
    /// the environment unless the URL is plain loopback http, the OS trust store, no
    /// redirects (a body with a secret is never resent to wherever one points).
    pub fn client(&self, timeout: Duration) -> Result<Client, HubError> {
        // reqwest is built with `rustls-no-provider`: pick ring once per process. An error
        // only means a provider is installed already, which is what we want.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = Client::builder();
        if self.url.starts_with("http://") {
            builder = builder.no_proxy();
        }
        builder
            .user_agent(format!("{NAME}/{VERSION}"))
            .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                HubError::Unavailable(format!("cannot set up the HTTPS client: {}", innermost(&e)))
            })
    }
}

/// 127.0.0.0/8, ::1 and `localhost`.
fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A URL for messages: without any `user:password@` part.
pub fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string().trim_end_matches('/').to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "(a URL that does not parse)".into(),
    }
}

pub enum BodyError {
    Read(std::io::Error),
    TooLarge,
}

/// The body, read while it streams and never past `max`: a huge or endless answer costs at
/// most `max` bytes of memory and ends at once.
pub fn read_capped(resp: Response, max: usize) -> Result<Vec<u8>, BodyError> {
    let mut bytes = Vec::new();
    resp.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(BodyError::Read)?;
    if bytes.len() > max {
        return Err(BodyError::TooLarge);
    }
    Ok(bytes)
}

/// True when a body read failed because the request's time ran out.
pub fn is_timeout(e: &std::io::Error) -> bool {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    loop {
        if let Some(re) = cur.downcast_ref::<reqwest::Error>()
            && re.is_timeout()
        {
            return true;
        }
        if let Some(io) = cur.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        match cur.source() {
            Some(next) => cur = next,
            None => return false,
        }
    }
}

/// The root cause of a transport error ("Connection refused (os error 111)"), which names
/// no URL and so cannot carry credentials embedded in one.
pub fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    sanitize_for(&cur.to_string(), None, &[])
}

// ------------------------------------------------------------- secrets in requests
//
// Every request that carries a secret (a password, an access token, a JWT, a refresh token)
// builds it with these: in buffers that never grow (so no outgrown copy is left in freed
// memory) and are wiped when dropped, and headers marked sensitive (so that http's `Debug`
// and HTTP/2's header compression leave them out). Copies hyper or rustls make into their
// own buffers are beyond our reach.

/// A JSON object of string fields, for a request body that holds a secret. It is written
/// straight from the borrowed strings (no `Value` holding copies) into a buffer with room
/// for the worst case (every byte escaped as `\u00XX`).
pub fn json_body(fields: &[(&str, &str)]) -> Secret<Vec<u8>> {
    struct Fields<'a>(&'a [(&'a str, &'a str)]);
    impl serde::Serialize for Fields<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().copied())
        }
    }
    let len: usize = fields.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    let mut out = Secret::new(Vec::with_capacity(len * 6 + 16));
    serde_json::to_writer(out.expose_mut(), &Fields(fields))
        .expect("serialising strings cannot fail");
    out
}

/// An `application/x-www-form-urlencoded` body of `fields`, in a buffer with room for the
/// worst case (every byte percent-encoded).
pub fn form_body(fields: &[(&str, &str)]) -> Secret<Vec<u8>> {
    let len: usize = fields
        .iter()
        .map(|(k, v)| 3 * (k.len() + v.len()) + 2)
        .sum();
    let mut out = Secret::new(Vec::with_capacity(len));
    for (i, (key, value)) in fields.iter().enumerate() {
        let buf = out.expose_mut();
        if i > 0 {
            buf.push(b'&');
        }
        buf.extend(url::form_urlencoded::byte_serialize(key.as_bytes()).flat_map(str::bytes));
        buf.push(b'=');
        buf.extend(url::form_urlencoded::byte_serialize(value.as_bytes()).flat_map(str::bytes));
    }
    out
}

/// Bytes for reqwest that are wiped when reqwest (and hyper) drop their last reference.
pub fn wiped_bytes(bytes: Vec<u8>) -> bytes::Bytes {
    struct Wiped(Vec<u8>);
    impl AsRef<[u8]> for Wiped {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }
    impl Drop for Wiped {
        fn drop(&mut self) {
            zeroize::Zeroize::zeroize(&mut self.0);
        }
    }
    bytes::Bytes::from_owner(Wiped(bytes))
}

/// A copy of `body` for reqwest, wiped when it is done with it.
pub fn wiped_body(body: &Secret<Vec<u8>>) -> bytes::Bytes {
    wiped_bytes(body.expose().clone())
}

/// A sensitive header value `<scheme> <credentials>`, built in a wiped buffer; `None` when
/// the credentials cannot go in a header.
fn auth_value(scheme: &str, credentials: &[u8]) -> Option<HeaderValue> {
    let mut text = Vec::with_capacity(scheme.len() + 1 + credentials.len());
    text.extend_from_slice(scheme.as_bytes());
    text.push(b' ');
    text.extend_from_slice(credentials);
    let mut value = HeaderValue::from_maybe_shared(wiped_bytes(text)).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// `Authorization: Bearer <token>`; `None` for a token that cannot go in a header (a JWT is
/// base64url and dots, so that is no token to send).
pub fn bearer_value(token: &Secret<String>) -> Option<HeaderValue> {
    auth_value("Bearer", token.expose().as_bytes())
}

/// `Authorization: Basic <base64(user:secret)>`, as reqwest's `basic_auth` writes it, but
/// without its unwiped copies.
pub fn basic_value(user: &str, secret: &Secret<String>) -> Option<HeaderValue> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut pair = Secret::new(Vec::with_capacity(user.len() + 1 + secret.expose().len()));
    pair.expose_mut().extend_from_slice(user.as_bytes());
    pair.expose_mut().push(b':');
    pair.expose_mut()
        .extend_from_slice(secret.expose().as_bytes());
    let mut encoded = Secret::new(vec![0; base64::encoded_len(pair.expose().len(), true)?]);
    let n = engine
        .encode_slice(pair.expose(), encoded.expose_mut())
        .ok()?;
    auth_value("Basic", &encoded.expose()[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request that carries a secret builds it in wiped buffers: a JSON body, a form
    /// body, the copy handed to reqwest, and the Bearer and Basic headers leave no copy of the
    /// secret in freed memory.
    #[test]
    fn secrets_in_requests_leave_no_copy_in_freed_memory() {
        let watch = crate::wipe_check::Watch::new();
        let secret = Secret::new(watch.canary().to_string());
        let body = json_body(&[("username", "u<&>"), ("password", secret.expose())]);
        let text = std::str::from_utf8(body.expose()).unwrap();
        assert!(text.starts_with(r#"{"username":"u<&>","password":"wipecheck"#));
        let sent = wiped_body(&body);
        assert_eq!(&sent[..], body.expose());
        drop(sent);
        drop(body);
        // The revoke form of `logout`: the refresh token percent-encoded as docker sends it.
        // Characters to escape after the canary: a buffer that grew there would leave it
        // behind in the block it outgrew.
        let built = |parts: &[&str], tail: &str| {
            let mut s = Secret::new(String::with_capacity(1024));
            parts.iter().for_each(|p| s.expose_mut().push_str(p));
            (0..64).for_each(|_| s.expose_mut().push_str(tail));
            s
        };
        let refresh = built(&[watch.canary()], "+/=");
        let form = form_body(&[("client_id", "c l"), ("token", refresh.expose())]);
        let expected = built(&["client_id=c+l&token=", watch.canary()], "%2B%2F%3D");
        assert_eq!(form.expose(), expected.expose().as_bytes());
        let sent = wiped_body(&form);
        drop(sent);
        drop((form, expected, refresh));
        let header = bearer_value(&secret).unwrap();
        assert!(header.is_sensitive());
        assert!(header.as_bytes().ends_with(watch.canary().as_bytes()));
        drop(header);
        // The pull quota's HTTP Basic with the stored password: the canary is in the
        // header only in base64, so look for a decoded copy.
        let basic = basic_value("alice", &secret).unwrap();
        assert!(basic.is_sensitive());
        let encoded = basic
            .to_str()
            .unwrap()
            .strip_prefix("Basic ")
            .unwrap()
            .to_string();
        let decoded = Secret::new(
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &encoded).unwrap(),
        );
        assert_eq!(&decoded.expose()[..6], b"alice:");
        assert_eq!(&decoded.expose()[6..], watch.canary().as_bytes());
        drop(decoded);
        drop(basic);
        drop(secret);
        assert_eq!(watch.freed_copies(), 0);
        drop(encoded);
    }

    #[test]
    fn headers_are_what_reqwest_would_send() {
        let secret = Secret::new("pa:ss wörd".to_string());
        let ours = basic_value("bob", &secret).unwrap();
        let client = API.check("http://127.0.0.1:1").unwrap();
        let theirs = client
            .client(Duration::from_secs(1))
            .unwrap()
            .get("http://127.0.0.1:1/")
            .basic_auth("bob", Some("pa:ss wörd"))
            .build()
            .unwrap();
        assert_eq!(
            Some(&ours),
            theirs.headers().get(reqwest::header::AUTHORIZATION)
        );
        assert!(bearer_value(&Secret::new("a\nb".into())).is_none());
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(
            shown("https://u:p@hub.example/x@y"),
            "https://hub.example/x@y"
        );
        assert_eq!(shown("http://127.0.0.1:80"), "http://127.0.0.1:80");
    }

    #[test]
    fn plain_http_is_only_for_loopback_for_every_service() {
        for service in [API, OAUTH, AUTH, REGISTRY] {
            for ok in [
                "http://127.0.0.1:5000",
                "http://127.8.9.10",
                "http://[::1]:80",
                "http://localhost:1",
                "http://LOCALHOST",
                "https://hub.docker.com",
            ] {
                assert!(service.check(ok).is_ok(), "{ok}");
            }
            for refused in [
                "http://hub.docker.com",
                "http://10.0.0.1",
                "http://localhost.evil.example",
                "http://[::2]",
                "http://127.0.0.1.nip.io",
            ] {
                let e = service.check(refused).unwrap_err().to_string();
                assert!(e.contains("https is required"), "{refused}: {e}");
                assert!(e.contains(service.var), "{refused}: {e}");
            }
            for bad in ["ftp://x", "not a url"] {
                let e = service.check(bad).unwrap_err().to_string();
                assert!(e.starts_with(service.var), "{bad}: {e}");
                assert!(e.contains(service.default), "{bad}: {e}");
            }
            assert_eq!(
                service.check("https://x.example/").unwrap().join("/p"),
                "https://x.example/p"
            );
        }
    }

    #[test]
    fn the_real_services_are_https() {
        for service in [API, OAUTH, AUTH, REGISTRY] {
            let e = service.check(service.default).unwrap();
            assert!(e.shown().starts_with("https://"), "{}", e.shown());
            assert_eq!(e.var(), service.var);
        }
    }
}
