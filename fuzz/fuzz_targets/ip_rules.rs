//! IP allow-lists: each line of the input is an entry (address or CIDR block), the last line
//! an address to check. An accepted block has no host bits; an address is allowed exactly when
//! one entry contains it (IPv4-mapped IPv6 read as IPv4).
#![no_main]

use std::net::IpAddr;

use auth_core::token::IpAllowList;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines: Vec<&str> = text.split('\n').collect();
    let Some(address) = lines.pop() else {
        return;
    };
    let Ok(list) = IpAllowList::parse(&lines) else {
        return;
    };
    let entries: Vec<String> = list.entries().collect();
    assert_eq!(entries.len(), lines.len());
    // What it lists reads back as the same list.
    let again = IpAllowList::parse(&entries).expect("its own entries parse");
    assert_eq!(again, list);
    let Ok(ip) = address.trim().parse::<IpAddr>() else {
        return;
    };
    let canonical = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let contained = entries
        .iter()
        .any(|entry| match entry.parse::<ipnet::IpNet>() {
            Ok(net) => net.contains(&canonical),
            Err(_) => entry.parse::<IpAddr>() == Ok(canonical),
        });
    assert_eq!(
        list.allows(ip),
        list.is_empty() || contained,
        "{entries:?} {ip}"
    );
});
