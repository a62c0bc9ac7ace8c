//! The `wg-quick` file format, read once for every WireGuard kind: a live
//! gateway's file, so that what homebase does not manage survives a rewrite
//! word for word (the `[Interface]` section with Address, PostUp, …, and
//! hand-made peers with their comments); the `wireguard-file` server file;
//! and the comments above each `[Peer]` that `adopt` matches to persons.
//! Written once too: both server files come from [`render`].

use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::IpAddr;

use ipnet::IpNet;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::Secret;

/// Whether `text` is a WireGuard key: base64 of 32 bytes.
pub fn is_key(text: &str) -> bool {
    text.len() == 44 && B64.decode(text).is_ok_and(|b| b.len() == 32)
}

#[derive(Debug, Clone, Default)]
pub struct ConfFile {
    /// Everything before the first `[Peer]` (and its comments), as written.
    pub interface: Vec<String>,
    pub peers: Vec<ConfPeer>,
}

#[derive(Debug, Clone, Default)]
pub struct ConfPeer {
    /// The comment lines right above `[Peer]`, without `#`, trimmed.
    pub comments: Vec<String>,
    /// The section as written: its comments, `[Peer]` and its lines.
    pub raw: Vec<String>,
    pub public_key: Option<String>,
    pub preshared_key: Option<Secret>,
    pub allowed_ips: Vec<String>,
}

impl ConfPeer {
    /// The id of a `# homebase: ID` comment (a peer homebase wrote).
    pub fn homebase_id(&self) -> Option<&str> {
        self.comments
            .iter()
            .find_map(|c| c.strip_prefix("homebase:").map(str::trim))
    }

    /// The peer's one host address, if its allowed IPs are exactly that.
    pub fn host_address(&self) -> Option<IpAddr> {
        match self.allowed_ips.as_slice() {
            [one] => {
                let net: ipnet::IpNet = one.parse().ok()?;
                (net.prefix_len() == net.max_prefix_len()).then(|| net.addr())
            }
            _ => None,
        }
    }
}

impl ConfFile {
    /// A lenient reader: unknown lines are kept, not judged (`wg` judges).
    pub fn parse(text: &str) -> ConfFile {
        let mut file = ConfFile::default();
        // Comments and blank lines wait here until the next section claims
        // them (comments above `[Peer]` belong to that peer) or a key line of
        // the current section does.
        let mut pending: Vec<&str> = Vec::new();
        let mut in_peer = false;
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                pending.push(line);
                continue;
            }
            if trimmed.eq_ignore_ascii_case("[Peer]") {
                // Comments directly above (after the last blank line) are the peer's.
                let split = pending
                    .iter()
                    .rposition(|l| l.trim().is_empty())
                    .map_or(0, |i| i + 1);
                let (before, own) = pending.split_at(split);
                file.section_lines(in_peer)
                    .extend(before.iter().map(|l| l.to_string()));
                file.peers.push(ConfPeer {
                    comments: own
                        .iter()
                        .map(|l| l.trim().trim_start_matches('#').trim().to_string())
                        .collect(),
                    raw: own.iter().map(|l| l.to_string()).collect(),
                    ..ConfPeer::default()
                });
                pending.clear();
                in_peer = true;
                file.section_lines(true).push(line.to_string());
                continue;
            }
            if trimmed.starts_with('[') {
                // `[Interface]` or anything else: part of what is kept as written.
                in_peer = false;
            }
            let lines = file.section_lines(in_peer);
            lines.extend(pending.drain(..).map(str::to_string));
            lines.push(line.to_string());
            if !in_peer {
                continue;
            }
            let Some((key, value)) = trimmed.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let Some(peer) = file.peers.last_mut() else {
                continue;
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "publickey" => peer.public_key = Some(value.to_string()),
                "presharedkey" if is_key(value) => peer.preshared_key = Some(Secret::new(value)),
                "allowedips" => peer.allowed_ips.extend(
                    value
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty()),
                ),
                _ => {}
            }
        }
        file.section_lines(in_peer)
            .extend(pending.iter().map(|l| l.to_string()));
        file
    }

    fn section_lines(&mut self, in_peer: bool) -> &mut Vec<String> {
        match self.peers.last_mut() {
            Some(peer) if in_peer => &mut peer.raw,
            _ => &mut self.interface,
        }
    }

    /// The value of `key` in the `[Interface]` section (case-insensitive).
    pub fn interface_value(&self, key: &str) -> Option<String> {
        self.interface.iter().find_map(|line| {
            let (k, v) = line.trim().split_once('=')?;
            (!k.trim_start().starts_with('#') && k.trim().eq_ignore_ascii_case(key))
                .then(|| v.trim().to_string())
        })
    }

    pub fn peer(&self, public_key: &str) -> Option<&ConfPeer> {
        self.peers
            .iter()
            .find(|p| p.public_key.as_deref() == Some(public_key))
    }
}

/// One peer homebase manages, as written into the file.
pub struct ManagedPeer<'a> {
    pub person: &'a str,
    pub username: &'a str,
    pub public_key: &'a str,
    pub preshared_key: Option<&'a Secret>,
    pub address: IpAddr,
}

impl ManagedPeer<'_> {
    /// The peer's `[Peer]` block, tagged with its person (a blank line first).
    fn write(&self, out: &mut String) {
        let bits = if self.address.is_ipv4() { 32 } else { 128 };
        let _ = writeln!(out, "\n# homebase: {}", self.person);
        let _ = writeln!(out, "# user: {}", self.username);
        let _ = writeln!(out, "[Peer]");
        let _ = writeln!(out, "PublicKey = {}", self.public_key);
        if let Some(psk) = self.preshared_key {
            let _ = writeln!(out, "PresharedKey = {}", psk.expose());
        }
        let _ = writeln!(out, "AllowedIPs = {}/{bits}", self.address);
    }
}

/// The file: `interface` as given, homebase's peers (tagged `# homebase: ID`),
/// then the hand-made peers exactly as they were written.
pub fn render(interface: &[String], managed: &[ManagedPeer], foreign: &[&ConfPeer]) -> String {
    let mut out = String::with_capacity(256 + managed.len() * 180);
    let mut interface = interface.to_vec();
    while interface.last().is_some_and(|l| l.trim().is_empty()) {
        interface.pop();
    }
    for line in &interface {
        let _ = writeln!(out, "{line}");
    }
    for peer in managed {
        peer.write(&mut out);
    }
    for peer in foreign {
        let mut raw = peer.raw.clone();
        while raw.last().is_some_and(|l| l.trim().is_empty()) {
            raw.pop();
        }
        out.push('\n');
        for line in &raw {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// Every address a foreign peer routes, for networks of up to 4,096
/// addresses (a larger one is a site or a default route, not a pool's part:
/// its first address stands for it).
pub fn reserve(into: &mut BTreeSet<IpAddr>, nets: &[IpNet]) {
    for net in nets {
        let host_bits = net.max_prefix_len() - net.prefix_len();
        if host_bits <= 12 {
            match net {
                IpNet::V4(v4) => into.extend(
                    v4.trunc()
                        .subnets(32)
                        .into_iter()
                        .flatten()
                        .map(|n| IpAddr::V4(n.addr())),
                ),
                IpNet::V6(v6) => into.extend(
                    v6.trunc()
                        .subnets(128)
                        .into_iter()
                        .flatten()
                        .map(|n| IpAddr::V6(n.addr())),
                ),
            }
        } else {
            into.insert(net.network());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "f9KXCoD/J7BARlrVCl/yLpKE5Fv28FaF1f+LG8DP1no=";
    const K2: &str = "8uoSH1hCaQxkRTz2Uj0TXvGDGfZr28+4sygmSCt1xjs=";
    const PSK: &str = "QOHsu9NjPzh3sHtq+ymMTDIz7vF6tRiLUnEa7aKyZ98=";

    fn text() -> String {
        format!(
            "# gateway 1\n[Interface]\nAddress = 10.20.0.1/16\nListenPort = 51820\n\
             PrivateKey = SERVER\nPostUp = iptables -A FORWARD -i %i -j ACCEPT\n\n\
             # printer in the town hall\n[Peer]\nPublicKey = {K2}\nAllowedIPs = 10.20.5.5/32\n\
             Endpoint = 192.0.2.1:51820 # static\n\n\
             # homebase: P100001\n# user: emustermann\n[Peer]\nPublicKey = {K1}\n\
             PresharedKey = {PSK}\nAllowedIPs = 10.20.0.2/32, fd00::2/128\n"
        )
    }

    #[test]
    fn sections_comments_and_values() {
        let file = ConfFile::parse(&text());
        assert_eq!(file.interface.len(), 7, "{:?}", file.interface);
        assert_eq!(file.interface[0], "# gateway 1");
        assert_eq!(file.peers.len(), 2);
        let printer = &file.peers[0];
        assert_eq!(printer.comments, ["printer in the town hall"]);
        assert_eq!(printer.host_address(), Some("10.20.5.5".parse().unwrap()));
        assert_eq!(printer.homebase_id(), None);
        let ours = file.peer(K1).unwrap();
        assert_eq!(ours.homebase_id(), Some("P100001"));
        assert_eq!(ours.preshared_key, Some(Secret::new(PSK)));
        assert_eq!(ours.allowed_ips, ["10.20.0.2/32", "fd00::2/128"]);
        assert_eq!(ours.host_address(), None);
    }

    #[test]
    fn a_rewrite_keeps_interface_and_foreign_peers_word_for_word() {
        let file = ConfFile::parse(&text());
        let foreign: Vec<&ConfPeer> = file
            .peers
            .iter()
            .filter(|p| p.homebase_id().is_none())
            .collect();
        let psk = Secret::new(PSK);
        let managed = [ManagedPeer {
            person: "P100001",
            username: "emustermann",
            public_key: K1,
            preshared_key: Some(&psk),
            address: "10.20.0.2".parse().unwrap(),
        }];
        let out = render(&file.interface, &managed, &foreign);
        assert!(out.starts_with(
            "# gateway 1\n[Interface]\nAddress = 10.20.0.1/16\nListenPort = 51820\nPrivateKey = SERVER\nPostUp = iptables -A FORWARD -i %i -j ACCEPT\n\n# homebase: P100001\n"
        ), "{out}");
        assert!(out.ends_with(&format!(
            "\n\n# printer in the town hall\n[Peer]\nPublicKey = {K2}\nAllowedIPs = 10.20.5.5/32\nEndpoint = 192.0.2.1:51820 # static\n"
        )), "{out}");
        // Reading the rewrite gives the same peers back: a second rewrite is identical.
        let again = ConfFile::parse(&out);
        let foreign: Vec<&ConfPeer> = again
            .peers
            .iter()
            .filter(|p| p.homebase_id().is_none())
            .collect();
        assert_eq!(render(&again.interface, &managed, &foreign), out);
    }

    #[test]
    fn foreign_networks_reserve_their_addresses() {
        let mut set = BTreeSet::new();
        let nets: Vec<IpNet> = ["10.20.5.7/32", "10.20.6.0/30", "10.0.0.0/8"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        reserve(&mut set, &nets);
        let got: Vec<String> = set.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "10.0.0.0",
                "10.20.5.7",
                "10.20.6.0",
                "10.20.6.1",
                "10.20.6.2",
                "10.20.6.3"
            ]
        );
    }
}
