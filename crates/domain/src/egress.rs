//! Where the service may send a request whose destination a tenant wrote (SSRF guard): webhook
//! executor URLs and PSA URLs (ConnectWise `site_url`, Autotask `zone_url`, Halo `url`). Such a
//! URL must be `http` or `https`; by default its host may not be a private, loopback,
//! link-local, unspecified, shared (CGNAT), unique-local, multicast, documentation or otherwise
//! reserved address, nor a `localhost` name. The same address check runs again at connect time
//! on every address a name resolves to (the egress client's resolver), so a name that resolves
//! (or is rebound) to such an address is refused too. `--egress-allow-private` turns the
//! address and name checks off; the scheme check always applies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether outbound calls may target private addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    pub allow_private: bool,
}

/// Why a URL or an address is refused. The message never contains the URL's user info,
/// path or query (they may carry credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Denied {}

const ALLOW_HINT: &str =
    "private targets are refused unless the service runs with --egress-allow-private";

impl EgressPolicy {
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }

    /// Checks a URL as written (scheme, and the host when it is an address or a
    /// `localhost` name). Names are checked again, resolved, at dispatch ([`Self::check_ip`]).
    pub fn check_url(&self, raw: &str) -> Result<url::Url, Denied> {
        let u = url::Url::parse(raw).map_err(|e| Denied(format!("not a valid URL: {e}")))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(Denied(format!(
                "the URL must use http or https, not {:?}",
                u.scheme()
            )));
        }
        match u.host() {
            None => return Err(Denied("the URL has no host".into())),
            Some(_) if self.allow_private => {}
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip))?,
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    return Err(Denied(format!(
                        "the host {name:?} is a loopback name; {ALLOW_HINT}"
                    )));
                }
            }
        }
        Ok(u)
    }

    /// Checks one address a call would connect to.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Denied> {
        if self.allow_private {
            return Ok(());
        }
        match classify(ip) {
            None => Ok(()),
            Some(class) => Err(Denied(format!("the address {ip} is {class}; {ALLOW_HINT}"))),
        }
    }
}

/// The class of a non-public address, or `None` for a public one.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const NETS: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "unspecified (0.0.0.0/8)"),
        ([10, 0, 0, 0], 8, "private (10.0.0.0/8)"),
        (
            [100, 64, 0, 0],
            10,
            "shared address space (100.64.0.0/10, CGNAT)",
        ),
        ([127, 0, 0, 0], 8, "loopback (127.0.0.0/8)"),
        ([169, 254, 0, 0], 16, "link-local (169.254.0.0/16)"),
        ([172, 16, 0, 0], 12, "private (172.16.0.0/12)"),
        ([192, 0, 0, 0], 24, "reserved (192.0.0.0/24)"),
        ([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
        ([192, 168, 0, 0], 16, "private (192.168.0.0/16)"),
        ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
        ([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
        ([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
        ([224, 0, 0, 0], 4, "multicast (224.0.0.0/4)"),
        ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
    ];
    NETS.iter()
        .find(|(net, len, _)| in_v4(ip, *net, *len))
        .map(|(_, _, class)| *class)
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded_v4 = |hi: usize| {
        Ipv4Addr::new(
            (s[hi] >> 8) as u8,
            s[hi] as u8,
            (s[hi + 1] >> 8) as u8,
            s[hi + 1] as u8,
        )
    };
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback (::1)");
    }
    // ::ffff:a.b.c.d (IPv4-mapped), ::a.b.c.d (IPv4-compatible), 64:ff9b::a.b.c.d (NAT64):
    // the embedded IPv4 address decides.
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return classify_v4(embedded_v4(6));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded_v4(6));
    }
    // 2002:a.b.c.d::/48 (6to4) embeds an IPv4 address too.
    if s[0] == 0x2002 {
        return classify_v4(embedded_v4(1));
    }
    match s[0] {
        x if x & 0xfe00 == 0xfc00 => Some("unique-local (fc00::/7)"),
        x if x & 0xffc0 == 0xfe80 => Some("link-local (fe80::/10)"),
        x if x & 0xffc0 == 0xfec0 => Some("site-local (fec0::/10)"),
        x if x & 0xff00 == 0xff00 => Some("multicast (ff00::/8)"),
        0x2001 if s[1] == 0x0db8 => Some("documentation (2001:db8::/32)"),
        0x0100 if s[1..4] == [0, 0, 0] => Some("discard-only (100::/64)"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny() -> EgressPolicy {
        EgressPolicy::new(false)
    }

    #[test]
    fn every_non_public_class_is_denied_by_default() {
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(classify(ip).is_some(), "{ip} should be refused");
            let e = deny().check_ip(ip).unwrap_err();
            assert!(e.0.contains("--egress-allow-private"), "{e}");
            assert!(EgressPolicy::new(true).check_ip(ip).is_ok());
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(classify(ip), None, "{ip}");
        }
    }

    #[test]
    fn urls_scheme_literals_and_localhost_names() {
        let ok = |u: &str| deny().check_url(u).map(|_| ()).map_err(|e| e.0);
        assert!(ok("https://automation.example.com/neo").is_ok());
        assert!(ok("http://93.184.215.14:8080/hook").is_ok());
        for bad in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "gopher://example.com",
            "javascript:alert(1)",
            "not a url",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
        // Literal addresses in every spelling the URL parser normalises.
        for bad in [
            "http://127.0.0.1:9000/hook",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.1.1/",
            "http://0.0.0.0/",
            "http://localhost:8080/",
            "http://LOCALHOST./",
            "http://api.localhost/",
        ] {
            let e = ok(bad).unwrap_err();
            assert!(e.contains("--egress-allow-private"), "{bad}: {e}");
        }
        // Allowed with the flag; the scheme check still applies.
        let allow = EgressPolicy::new(true);
        assert!(allow.check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(allow.check_url("http://localhost/").is_ok());
        assert!(allow.check_url("ftp://127.0.0.1/").is_err());
    }

    #[test]
    fn messages_do_not_echo_credentials_in_the_url() {
        let e = deny()
            .check_url("http://user:hunter2hunter2@127.0.0.1/x?token=s3cr3t")
            .unwrap_err();
        assert!(!e.0.contains("hunter2") && !e.0.contains("s3cr3t"), "{e}");
    }
}
