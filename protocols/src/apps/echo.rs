//! UDP echo server (RFC 862): every datagram goes back to its sender unchanged.

use crate::app::{App, Os};
use crate::udp::SocketId;
use sim_core::packet::Payload;
use std::net::SocketAddrV4;

#[derive(Clone, Debug, PartialEq)]
pub struct UdpEchoConfig {
    pub name: String,
    pub port: u16,
}

pub struct UdpEcho {
    cfg: UdpEchoConfig,
    sock: Option<SocketId>,
    echoed: u64,
    error: Option<String>,
}

impl UdpEcho {
    pub fn new(cfg: UdpEchoConfig) -> Self {
        UdpEcho {
            cfg,
            sock: None,
            echoed: 0,
            error: None,
        }
    }
}

impl App for UdpEcho {
    fn name(&self) -> &str {
        &self.cfg.name
    }
    fn start(&mut self, os: &mut Os<'_, '_>) {
        match os.udp_bind(Some(self.cfg.port)) {
            Ok(s) => self.sock = Some(s),
            Err(e) => self.error = Some(e.to_string()),
        }
    }
    fn on_udp(
        &mut self,
        os: &mut Os<'_, '_>,
        sock: SocketId,
        from: SocketAddrV4,
        payload: &Payload,
    ) {
        self.echoed += 1;
        let _ = os.udp_send(sock, from, payload.clone(), None);
    }
    fn report(&self) -> Vec<String> {
        match &self.error {
            Some(e) => vec![format!(
                "udp echo on port {}: bind failed: {e}",
                self.cfg.port
            )],
            None => vec![format!(
                "udp echo on port {}: echoed {} datagrams",
                self.cfg.port, self.echoed
            )],
        }
    }
}
