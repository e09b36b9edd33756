//! Showing a URL without what may be secret in it.

/// `url` without user info (`user:password@`), query or fragment: safe to
/// show in errors, logs and reports.
pub fn url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

/// `url` with its user info shown as `***` (`redis://***@host:6379`): for a
/// service's own connection URLs, where that a password is set is worth
/// seeing and the host must stay.
pub fn credentials(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            super::credentials("redis://:hunter2@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(super::credentials("rediss://u:p@h"), "rediss://***@h");
        assert_eq!(super::credentials("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn user_info_query_and_fragment_are_left_out() {
        assert_eq!(
            super::url("https://user:s3cret@api.example.com:8443/v1/chat?key=abc#x"),
            "https://api.example.com:8443/v1/chat"
        );
        assert_eq!(super::url("http://127.0.0.1:1/v1"), "http://127.0.0.1:1/v1");
        assert_eq!(super::url("http://a@b@host/p"), "http://host/p");
    }
}
