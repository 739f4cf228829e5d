//! Server URL resolution. Keys are stored exactly as docker sends them; the only
//! translation is the documented set of Docker Hub aliases onto docker's Hub key.

/// The key docker itself uses for Docker Hub (docker/cli `registry.IndexServer`).
pub const HUB_KEY: &str = "https://index.docker.io/v1/";

/// Where docker's web login (CLI 27.2 and later) keeps its OAuth access token
/// (docker/cli `internal/oauth/manager`, `accessTokenKey`).
pub const ACCESS_TOKEN_KEY: &str = "https://index.docker.io/v1/access-token";

/// Where the web login keeps its refresh token, as `<refresh>..<clientID>` (docker/cli
/// `internal/oauth/manager`, `refreshTokenKey`).
pub const REFRESH_TOKEN_KEY: &str = "https://index.docker.io/v1/refresh-token";

const HUB_HOSTS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// True when `url` names Docker Hub's main credential: one of its hosts, with no
/// scheme or `https://`, and no path, `/`, `/v1` or `/v1/`. `http://`, ports, other
/// paths (such as `/v1/access-token`) and user info never match.
pub fn is_hub_alias(url: &str) -> bool {
    let rest = match url.get(..8) {
        Some(p) if p.eq_ignore_ascii_case("https://") => &url[8..],
        _ => url,
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    HUB_HOSTS.iter().any(|h| h.eq_ignore_ascii_case(host))
        && matches!(path, "" | "/" | "/v1" | "/v1/")
}

/// The keys `get` tries, in order: the exact key, then Docker Hub's key for an alias.
pub fn lookup_keys(url: &str) -> Vec<&str> {
    let mut keys = vec![url];
    if url != HUB_KEY && is_hub_alias(url) {
        keys.push(HUB_KEY);
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_aliases_resolve_to_the_hub_key() {
        for alias in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "https://docker.io",
            "https://index.docker.io/v1/",
            "https://index.docker.io/v1",
            "index.docker.io/v1/",
            "https://registry-1.docker.io/",
            "Docker.IO",
        ] {
            assert!(is_hub_alias(alias), "{alias}");
            assert_eq!(*lookup_keys(alias).last().unwrap(), HUB_KEY, "{alias}");
        }
    }

    #[test]
    fn other_urls_are_never_translated() {
        for url in [
            "http://index.docker.io/v1/",
            ACCESS_TOKEN_KEY,
            REFRESH_TOKEN_KEY,
            "https://index.docker.io:443/v1/",
            "https://index.docker.io/v2/",
            "https://user@index.docker.io/v1/",
            "evil-docker.io",
            "docker.io.evil.com",
            "ghcr.io",
            "localhost:5000",
            "",
        ] {
            assert!(!is_hub_alias(url), "{url}");
            assert_eq!(lookup_keys(url), vec![url], "{url}");
        }
    }

    #[test]
    fn the_exact_key_is_always_tried_first() {
        assert_eq!(lookup_keys("docker.io"), vec!["docker.io", HUB_KEY]);
        assert_eq!(lookup_keys(HUB_KEY), vec![HUB_KEY]);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn scheme() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("https://".to_string()),
            Just("http://".to_string()),
            Just("HTTPS://".to_string()),
            Just("ftp://".to_string()),
            Just("//".to_string()),
        ]
    }

    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("docker.io".to_string()),
            Just("index.docker.io".to_string()),
            Just("registry-1.docker.io".to_string()),
            Just("Index.Docker.IO".to_string()),
            Just("ghcr.io".to_string()),
            Just("docker.io.evil.example".to_string()),
            Just("evil-docker.io".to_string()),
            Just("user@index.docker.io".to_string()),
            "[a-z0-9.-]{1,20}",
            "\\PC{0,12}",
        ]
    }

    fn port() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            (0u32..70000).prop_map(|p| format!(":{p}"))
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("/".to_string()),
            Just("/v1".to_string()),
            Just("/v1/".to_string()),
            Just("/v1/access-token".to_string()),
            Just("/v1/refresh-token".to_string()),
            Just("/v2/".to_string()),
            Just("/v1//".to_string()),
            "/[a-z0-9/._-]{0,20}",
            "\\PC{0,12}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// A request is only ever translated to Docker Hub's key, and only from a
        /// documented alias: https or no scheme, a Hub host, no port, no other path.
        #[test]
        fn resolution_never_crosses_host_port_scheme_or_path(
            s in scheme(), h in host(), p in port(), pa in path()
        ) {
            let url = format!("{s}{h}{p}{pa}");
            let keys = lookup_keys(&url);
            prop_assert_eq!(keys[0], url.as_str());
            prop_assert!(keys.len() <= 2);
            if keys.len() == 2 {
                prop_assert_eq!(keys[1], HUB_KEY);
                prop_assert!(s.is_empty() || s.eq_ignore_ascii_case("https://"), "scheme {}", s);
                prop_assert!(HUB_HOSTS.iter().any(|x| x.eq_ignore_ascii_case(&h)), "host {}", h);
                prop_assert!(p.is_empty(), "port {}", p);
                prop_assert!(["", "/", "/v1", "/v1/"].contains(&pa.as_str()), "path {}", pa);
            }
        }

        /// Every documented alias does resolve.
        #[test]
        fn documented_aliases_resolve(
            s in prop_oneof![Just(""), Just("https://")],
            h in prop_oneof![Just("docker.io"), Just("index.docker.io"), Just("registry-1.docker.io")],
            pa in prop_oneof![Just(""), Just("/"), Just("/v1"), Just("/v1/")],
        ) {
            let url = format!("{s}{h}{pa}");
            prop_assert_eq!(*lookup_keys(&url).last().unwrap(), HUB_KEY);
        }

        /// Arbitrary text never panics and is always tried verbatim first.
        #[test]
        fn arbitrary_text_is_tried_verbatim(url in "\\PC{0,64}") {
            prop_assert_eq!(lookup_keys(&url)[0], url.as_str());
        }
    }
}
