//! Free loopback ports for the servers tests start.

use std::net::TcpListener;

pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct free ports: every listener is held until all are
/// chosen, so the system cannot hand the same port out twice (it did:
/// bearerbox's admin port and the fake SMSC's once collided).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}
