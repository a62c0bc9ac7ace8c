//! `wg show IFACE dump`: the running interface, one tab-separated line for
//! the interface and one per peer. The interface line holds the private key
//! and peer lines their preshared keys, so a malformed line is reported by
//! its number and the field that is wrong, never by its text.

use std::net::IpAddr;

use ipnet::IpNet;

/// Private and preshared keys: kept for writing the server's config file,
/// never shown.
pub use crate::targets::common::Secret;

#[derive(Debug, Clone, Default)]
pub struct Dump {
    pub private_key: Option<Secret>,
    pub public_key: Option<String>,
    pub listen_port: Option<u16>,
    pub peers: Vec<LivePeer>,
}

#[derive(Debug, Clone)]
pub struct LivePeer {
    pub public_key: String,
    pub preshared_key: Option<Secret>,
    pub endpoint: Option<String>,
    pub allowed_ips: Vec<IpNet>,
    /// Seconds since the epoch; 0: never.
    pub latest_handshake: u64,
    pub keepalive: Option<u16>,
}

impl LivePeer {
    /// The peer's one host address, if its allowed IPs are exactly that.
    pub fn host_address(&self) -> Option<IpAddr> {
        match self.allowed_ips.as_slice() {
            [net] if net.prefix_len() == net.max_prefix_len() => Some(net.addr()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed `wg show dump` output, line {line}: {what}")]
pub struct DumpError {
    pub line: usize,
    pub what: String,
}

pub use crate::targets::common::wg_quick::is_key;

fn none(field: &str) -> Option<&str> {
    (field != "(none)" && !field.is_empty()).then_some(field)
}

impl Dump {
    pub fn parse(text: &str) -> Result<Dump, DumpError> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, first)) = lines.next() else {
            return Err(DumpError {
                line: 1,
                what: "empty output (no interface line)".into(),
            });
        };
        let fields: Vec<&str> = first.split('\t').collect();
        let err = |line: usize, what: String| DumpError { line, what };
        if fields.len() != 4 {
            return Err(err(
                1,
                format!("the interface line has {} fields, expected 4", fields.len()),
            ));
        }
        let key = |line: usize, field: &str, name: &str| -> Result<Option<String>, DumpError> {
            match none(field) {
                None => Ok(None),
                Some(k) if is_key(k) => Ok(Some(k.to_string())),
                Some(_) => Err(err(line, format!("the {name} is not a WireGuard key"))),
            }
        };
        let mut dump =
            Dump {
                private_key: key(1, fields[0], "private key")?.map(Secret::new),
                public_key: key(1, fields[1], "public key")?,
                listen_port: match fields[2] {
                    "0" | "(none)" => None,
                    port => Some(port.parse().map_err(|_| {
                        err(1, format!("listen port \"{port}\" is not a port number"))
                    })?),
                },
                peers: Vec::new(),
            };
        for (index, line) in lines {
            let n = index + 1;
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() != 8 {
                return Err(err(
                    n,
                    format!("a peer line has {} fields, expected 8", fields.len()),
                ));
            }
            let public_key = key(n, fields[0], "public key")?
                .ok_or_else(|| err(n, "a peer without a public key".into()))?;
            let allowed_ips = match none(fields[3]) {
                None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(|net| {
                        net.trim().parse::<IpNet>().map_err(|_| {
                            err(n, format!("allowed IP \"{}\" is not a network", net.trim()))
                        })
                    })
                    .collect::<Result<_, _>>()?,
            };
            let number = |field: &str, name: &str| -> Result<u64, DumpError> {
                field
                    .parse()
                    .map_err(|_| err(n, format!("{name} \"{field}\" is not a number")))
            };
            dump.peers.push(LivePeer {
                public_key,
                preshared_key: key(n, fields[1], "preshared key")?.map(Secret::new),
                endpoint: none(fields[2]).map(str::to_string),
                allowed_ips,
                latest_handshake: number(fields[4], "latest handshake")?,
                keepalive: match fields[7] {
                    "off" | "0" => None,
                    k => Some(
                        number(k, "keepalive")?
                            .try_into()
                            .map_err(|_| err(n, format!("keepalive \"{k}\" is out of range")))?,
                    ),
                },
            });
            number(fields[5], "received bytes")?;
            number(fields[6], "sent bytes")?;
        }
        Ok(dump)
    }

    pub fn peer(&self, public_key: &str) -> Option<&LivePeer> {
        self.peers.iter().find(|p| p.public_key == public_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIV: &str = "uH5uQZ0bVx0nDLcjMNNHoEsp9fqzbIkE1r8g2e0bqmM=";
    const PUB1: &str = "f9KXCoD/J7BARlrVCl/yLpKE5Fv28FaF1f+LG8DP1no=";
    const PUB2: &str = "8uoSH1hCaQxkRTz2Uj0TXvGDGfZr28+4sygmSCt1xjs=";
    const PSK: &str = "QOHsu9NjPzh3sHtq+ymMTDIz7vF6tRiLUnEa7aKyZ98=";
    const K3: &str = "0Qm4TnWfAq1jsaY3VDwCzXqFnfSxxwDIKn4jv0YQ3lQ=";

    #[test]
    fn reads_interface_and_peers() {
        let text = format!(
            "{PRIV}\t{PUB2}\t51820\toff\n\
             {PUB1}\t{PSK}\t192.0.2.7:41000\t10.20.0.2/32\t1700000000\t1234\t5678\t25\n\
             {PUB2}\t(none)\t(none)\t10.20.0.3/32,10.99.0.0/24\t0\t0\t0\toff\n\
             {K3}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n"
        );
        let dump = Dump::parse(&text).unwrap();
        assert_eq!(dump.private_key, Some(Secret::new(PRIV)));
        assert_eq!(dump.listen_port, Some(51820));
        assert_eq!(dump.peers.len(), 3);
        let first = &dump.peers[0];
        assert_eq!(first.preshared_key, Some(Secret::new(PSK)));
        assert_eq!(first.endpoint.as_deref(), Some("192.0.2.7:41000"));
        assert_eq!(first.host_address(), Some("10.20.0.2".parse().unwrap()));
        assert_eq!(first.keepalive, Some(25));
        assert_eq!(first.latest_handshake, 1_700_000_000);
        assert_eq!(dump.peers[1].allowed_ips.len(), 2);
        assert_eq!(dump.peers[1].host_address(), None);
        assert!(dump.peers[2].allowed_ips.is_empty());
        assert!(!format!("{dump:?}").contains(PRIV), "Debug shows a key");
        assert!(!format!("{dump:?}").contains(PSK), "Debug shows a key");
    }

    #[test]
    fn an_interface_without_key_or_port() {
        let dump = Dump::parse("(none)\t(none)\t0\toff\n").unwrap();
        assert!(dump.private_key.is_none() && dump.public_key.is_none());
        assert_eq!(dump.listen_port, None);
        assert!(dump.peers.is_empty());
    }

    #[test]
    fn malformed_output_names_the_line_never_its_text() {
        let iface = format!("{PRIV}\t{PUB2}\t51820\toff\n");
        for (text, line, what) in [
            (String::new(), 1, "empty output"),
            ("interface: wg0\n".to_string(), 1, "has 1 fields"),
            (format!("{PRIV}\tnot-a-key\t51820\toff\n"), 1, "public key"),
            (format!("{PRIV}\t{PUB1}\tport\toff\n"), 1, "listen port"),
            (format!("{iface}{PUB1}\t{PSK}\t(none)\n"), 2, "has 3 fields"),
            (
                format!("{iface}{PUB1}\t{PSK}x\t(none)\t10.0.0.1/32\t0\t0\t0\toff\n"),
                2,
                "preshared key",
            ),
            (
                format!("{iface}\n{PUB1}\t{PSK}\t(none)\t10.0.0.300/32\t0\t0\t0\toff\n"),
                3,
                "allowed IP \"10.0.0.300/32\"",
            ),
            (
                format!("{iface}{PUB1}\t(none)\t(none)\t(none)\tsoon\t0\t0\toff\n"),
                2,
                "latest handshake",
            ),
        ] {
            let err = Dump::parse(&text).unwrap_err();
            assert_eq!(err.line, line, "{err}");
            let message = err.to_string();
            assert!(message.contains(what), "{message}");
            assert!(
                !message.contains(PRIV) && !message.contains(PSK),
                "{message}"
            );
        }
    }
}
