//! VPN address allocation: one address per person from the profile's pool,
//! never the network, broadcast or gateway address, never one in use.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;

/// Hands out addresses of one pool in ascending order, skipping reserved ones.
/// Persons are allocated in staff-id order, so the result is deterministic.
pub struct PoolAllocator {
    hosts: Box<dyn Iterator<Item = IpAddr> + Send>,
    /// Capacity: usable addresses of the pool (saturating for huge IPv6 pools).
    pub size: u64,
}

impl PoolAllocator {
    pub fn new(pool: IpNet) -> PoolAllocator {
        let size = usable_size(pool);
        let hosts: Box<dyn Iterator<Item = IpAddr> + Send> = match pool {
            // `hosts()` already leaves out network and broadcast for IPv4 (< /31).
            IpNet::V4(net) => Box::new(net.hosts().map(IpAddr::V4)),
            // IPv6 has no broadcast; leave out the subnet-router anycast (network) address.
            IpNet::V6(net) => Box::new(net.hosts().skip(1).map(IpAddr::V6)),
        };
        PoolAllocator { hosts, size }
    }

    /// The next address that is not in `used`; `None` when the pool is exhausted.
    pub fn next_free(&mut self, used: &BTreeSet<IpAddr>) -> Option<IpAddr> {
        self.hosts.by_ref().find(|addr| !used.contains(addr))
    }
}

/// Whether `addr` may be handed out from `pool` (inside, not network/broadcast).
pub fn is_assignable(pool: IpNet, addr: IpAddr) -> bool {
    if !pool.contains(&addr) || addr == pool.network() {
        return false;
    }
    match pool {
        IpNet::V4(net) if net.prefix_len() < 31 => addr != IpAddr::V4(net.broadcast()),
        _ => true,
    }
}

fn usable_size(pool: IpNet) -> u64 {
    let host_bits = u32::from(pool.max_prefix_len() - pool.prefix_len());
    let total = if host_bits >= 64 {
        u64::MAX
    } else {
        1u64 << host_bits
    };
    match pool {
        IpNet::V4(_) if host_bits >= 2 => total - 2,
        IpNet::V4(_) => total,
        IpNet::V6(_) => total.saturating_sub(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn skips_network_gateway_broadcast_and_used() {
        let pool: IpNet = "10.0.0.0/29".parse().unwrap();
        let mut alloc = PoolAllocator::new(pool);
        assert_eq!(alloc.size, 6);
        let used: BTreeSet<IpAddr> = [ip("10.0.0.1"), ip("10.0.0.3")].into();
        let got: Vec<IpAddr> = std::iter::from_fn(|| alloc.next_free(&used)).collect();
        assert_eq!(
            got,
            vec![
                ip("10.0.0.2"),
                ip("10.0.0.4"),
                ip("10.0.0.5"),
                ip("10.0.0.6")
            ]
        );
    }

    #[test]
    fn ipv6_pool_skips_network_address() {
        let pool: IpNet = "fd00::/120".parse().unwrap();
        let mut alloc = PoolAllocator::new(pool);
        assert_eq!(alloc.next_free(&BTreeSet::new()), Some(ip("fd00::1")));
        assert_eq!(alloc.size, 255);
    }

    #[test]
    fn assignable_checks_bounds() {
        let pool: IpNet = "10.0.0.0/24".parse().unwrap();
        assert!(is_assignable(pool, ip("10.0.0.7")));
        assert!(!is_assignable(pool, ip("10.0.0.0")));
        assert!(!is_assignable(pool, ip("10.0.0.255")));
        assert!(!is_assignable(pool, ip("10.0.1.7")));
    }
}
