//! Server URL resolution. Keys are stored exactly as docker sends them; the only
//! translation is the documented set of Docker Hub aliases onto docker's Hub key.

/// The key docker itself uses for Docker Hub (docker/cli `registry.IndexServer`).
pub const HUB_KEY: &str = "https://index.docker.io/v1/";

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
            "https://index.docker.io/v1/access-token",
            "https://index.docker.io/v1/refresh-token",
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
