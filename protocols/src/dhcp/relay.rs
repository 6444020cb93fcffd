//! The DHCP relay agent's forwarding rules (RFC 2131 section 4.1, RFC 1542 section 4).
//!
//! Owns the decision only: what to do with one message that reached the relay agent on a
//! router. A request from a client gets the address of the interface it arrived on as
//! giaddr (unless another relay set it) and one more hop, and goes to every configured
//! server; a reply from a server goes out of the interface whose address is its giaddr,
//! broadcast if the broadcast flag is set, else to the offered address at the client's
//! MAC. Sockets and interfaces are the caller's.

use super::*;

/// What to do with a message.
#[derive(Clone, Debug, PartialEq)]
pub enum Relay {
    /// Send this request to every server.
    ToServers(Message),
    /// Send this reply to the client out of interface `iface`: broadcast, or to `addr` at
    /// `mac` without ARP.
    ToClient {
        msg: Message,
        iface: u16,
        to: ClientDest,
    },
    Drop(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientDest {
    Broadcast,
    Link { addr: Ipv4Addr, mac: MacAddr },
}

/// A message that arrived on interface `arrived_on`, whose address is `iface_addr`;
/// `local` lists the relay node's interface addresses (interface i at index i).
pub fn relay(mut msg: Message, iface_addr: Ipv4Addr, local: &[Ipv4Addr]) -> Relay {
    match msg.opcode() {
        Opcode::BootRequest => {
            if msg.hops() >= MAX_HOPS {
                return Relay::Drop("too many hops");
            }
            if iface_addr.is_unspecified() {
                return Relay::Drop("no address on the arrival interface");
            }
            msg.set_hops(msg.hops() + 1);
            if msg.giaddr().is_unspecified() {
                msg.set_giaddr(iface_addr);
            }
            Relay::ToServers(msg)
        }
        Opcode::BootReply => {
            let g = msg.giaddr();
            let Some(iface) = local.iter().position(|a| *a == g && !g.is_unspecified()) else {
                return Relay::Drop("giaddr is not one of ours");
            };
            let to = match chaddr_mac(&msg) {
                Some(mac) if !msg.flags().broadcast() && !msg.yiaddr().is_unspecified() => {
                    ClientDest::Link {
                        addr: msg.yiaddr(),
                        mac,
                    }
                }
                _ => ClientDest::Broadcast,
            };
            Relay::ToClient {
                msg,
                iface: iface as u16,
                to,
            }
        }
        Opcode::Unknown(_) => Relay::Drop("unknown op"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 7]);
    const LAN: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
    const UPLINK: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    #[test]
    fn requests_get_giaddr_and_a_hop_replies_go_to_the_giaddr_interface() {
        let d = new_message(Opcode::BootRequest, 9, MAC, MessageType::Discover);
        let Relay::ToServers(fwd) = relay(d, LAN, &[UPLINK, LAN]) else {
            panic!()
        };
        assert_eq!((fwd.giaddr(), fwd.hops()), (LAN, 1));
        // A second relay keeps the first giaddr.
        let Relay::ToServers(again) = relay(fwd, UPLINK, &[UPLINK]) else {
            panic!()
        };
        assert_eq!((again.giaddr(), again.hops()), (LAN, 2));

        let mut offer = new_message(Opcode::BootReply, 9, MAC, MessageType::Offer);
        offer.set_giaddr(LAN);
        offer.set_yiaddr(Ipv4Addr::new(10, 0, 2, 100));
        assert_eq!(
            relay(offer.clone(), UPLINK, &[UPLINK, LAN]),
            Relay::ToClient {
                msg: offer.clone(),
                iface: 1,
                to: ClientDest::Link {
                    addr: Ipv4Addr::new(10, 0, 2, 100),
                    mac: MAC
                }
            }
        );
        offer.set_flags(Flags::default().set_broadcast());
        assert!(matches!(
            relay(offer, UPLINK, &[UPLINK, LAN]),
            Relay::ToClient {
                to: ClientDest::Broadcast,
                ..
            }
        ));
    }

    #[test]
    fn loops_and_strangers_are_dropped() {
        let mut d = new_message(Opcode::BootRequest, 9, MAC, MessageType::Discover);
        d.set_hops(MAX_HOPS);
        assert_eq!(relay(d, LAN, &[LAN]), Relay::Drop("too many hops"));
        let mut a = new_message(Opcode::BootReply, 9, MAC, MessageType::Ack);
        a.set_giaddr(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(
            relay(a, LAN, &[LAN]),
            Relay::Drop("giaddr is not one of ours")
        );
    }
}
