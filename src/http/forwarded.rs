//! Who the client is: the TCP peer, unless the peer is a reverse proxy the
//! operator named (`--trusted-proxy`). Then `X-Forwarded-For` is read from
//! the right, where each proxy appends the address it received the request
//! from: the right-most address that is not itself a trusted proxy is the
//! client. Everything left of it was written by the client (or by proxies
//! nobody vouches for) and is ignored, so a client cannot choose the
//! address it is throttled and audited as. Without trusted proxies the
//! header is never read.

use actix_web::http::header::HeaderMap;
use std::net::{IpAddr, SocketAddr};

const X_FORWARDED_FOR: &str = "x-forwarded-for";

fn trusted(ip: IpAddr, proxies: &[IpAddr]) -> bool {
    let ip = ip.to_canonical();
    proxies.iter().any(|p| p.to_canonical() == ip)
}

/// One hop: an address, possibly with a port (`203.0.113.7:4711`,
/// `[2001:db8::1]:443`), as proxies write them.
fn hop(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

/// Is `peer` one of the operator's trusted proxies?
pub fn is_trusted_proxy(peer: IpAddr, proxies: &[IpAddr]) -> bool {
    trusted(peer, proxies)
}

/// The client's address for a request from `peer` with `headers`.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, proxies: &[IpAddr]) -> IpAddr {
    if !trusted(peer, proxies) {
        return peer;
    }
    // Every X-Forwarded-For header, in order, is one comma-separated list.
    let values: Vec<_> = headers.get_all(X_FORWARDED_FOR).collect();
    let mut client = peer;
    for value in values.into_iter().rev() {
        // Not text: a trusted proxy would not have written it, so the
        // nearest trusted hop is all that is known (and the same for an
        // entry that is not an address).
        let Ok(value) = value.to_str() else {
            return client;
        };
        for entry in value.rsplit(',') {
            match hop(entry) {
                Some(ip) if trusted(ip, proxies) => client = ip,
                Some(ip) => return ip,
                None => return client,
            }
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn client(peer: &str, xff: &[&str], proxies: &[&str]) -> IpAddr {
        let mut headers = HeaderMap::new();
        for v in xff {
            headers.append(
                HeaderName::from_static(X_FORWARDED_FOR),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let proxies: Vec<IpAddr> = proxies.iter().map(|p| ip(p)).collect();
        client_address(ip(peer), &headers, &proxies)
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        assert_eq!(client("127.0.0.1", &["fd00::b"], &[]), ip("127.0.0.1"));
        assert_eq!(
            client("10.0.0.9", &["fd00::b"], &["127.0.0.1"]),
            ip("10.0.0.9"),
            "only a trusted peer's header is read"
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let lo = ["127.0.0.1"];
        assert_eq!(client("127.0.0.1", &["fd00:1::b"], &lo), ip("fd00:1::b"));
        // A client cannot choose: what it wrote itself is left of the hop
        // the proxy appended.
        assert_eq!(
            client("127.0.0.1", &["1.2.3.4, 10.0.0.5"], &lo),
            ip("10.0.0.5")
        );
        // Two proxies, both trusted; several headers are one list.
        let two = ["127.0.0.1", "10.0.0.2"];
        assert_eq!(
            client("127.0.0.1", &["6.6.6.6, 192.0.2.7", "10.0.0.2"], &two),
            ip("192.0.2.7")
        );
        assert_eq!(
            client("127.0.0.1", &["192.0.2.7,10.0.0.2 , 127.0.0.1"], &two),
            ip("192.0.2.7")
        );
        // Ports, brackets, IPv4-mapped IPv6.
        assert_eq!(
            client("127.0.0.1", &["[2001:db8::1]:443"], &lo),
            ip("2001:db8::1")
        );
        assert_eq!(
            client("127.0.0.1", &["192.0.2.7:4711"], &lo),
            ip("192.0.2.7")
        );
        assert_eq!(
            client("::ffff:127.0.0.1", &["::ffff:192.0.2.7"], &lo),
            ip("192.0.2.7")
        );
    }

    #[test]
    fn without_a_usable_hop_the_nearest_trusted_one_is_the_client() {
        let two = ["127.0.0.1", "10.0.0.2"];
        assert_eq!(client("127.0.0.1", &[], &two), ip("127.0.0.1"));
        assert_eq!(client("127.0.0.1", &["10.0.0.2"], &two), ip("10.0.0.2"));
        assert_eq!(
            client("127.0.0.1", &["192.0.2.7, unknown, 10.0.0.2"], &two),
            ip("10.0.0.2")
        );
        assert_eq!(client("127.0.0.1", &["garbage"], &two), ip("127.0.0.1"));
        assert_eq!(client("127.0.0.1", &[""], &two), ip("127.0.0.1"));
        // A value that is not text hides nothing behind it.
        let mut headers = HeaderMap::new();
        let name = HeaderName::from_static(X_FORWARDED_FOR);
        headers.append(name.clone(), HeaderValue::from_static("6.6.6.6"));
        headers.append(name, HeaderValue::from_bytes(b"\xff 192.0.2.7").unwrap());
        let proxies = [ip("127.0.0.1")];
        assert_eq!(
            client_address(ip("127.0.0.1"), &headers, &proxies),
            ip("127.0.0.1")
        );
    }
}
