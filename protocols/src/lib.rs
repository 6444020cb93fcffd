//! Transport protocols and applications for netdes hosts and routers.
//!
//! Layering (each module owns one thing and only talks down):
//! - [`udp`]: UDP sockets (RFC 768) — bind, ephemeral ports 32768-60999, send/receive,
//!   ICMP port unreachable when nobody listens, ICMP errors delivered to the socket's owner.
//! - [`app`]: the application API ([`app::App`] and the [`app::Os`] handle). Built-in apps
//!   and users' own apps use exactly this API.
//! - [`tcp`]: TCP (RFC 9293 with Linux's behaviour and defaults): the socket API, the
//!   connection state machine, loss recovery, timers and the congestion controller seam.
//!   Driven only through [`tcp::TcpEnv`], so it runs without the scheduler in its tests.
//! - [`gossip`]: gossip (epidemic) dissemination: the message format, one member's
//!   protocol as a pure state machine, a synchronous round model and the cluster-wide
//!   dissemination log; the app around it is [`apps::gossip`].
//! - [`host`]: [`host::HostStack`], the `sim_core::world::Stack` of a node: dispatches
//!   timers, datagrams and ICMP messages to sockets and apps, and runs the TCP stack.
//! - [`dns`]: DNS (RFC 1034/1035) with hickory-proto messages: authoritative servers,
//!   recursive resolvers with a TTL cache, and each host's stub resolver behind
//!   [`app::Os::lookup`].
//! - [`dhcp`]: DHCP (RFC 2131) client and server state machines, relay rules and codec,
//!   driven by the DHCP apps without a scheduler.
//! - [`apps`]: ping, traceroute, UDP constant-bit-rate sender and sink, UDP echo; TCP
//!   bulk sender and verifying sink, request/response client and server, echo server and
//!   SYN flood generator.
//!
//! Architecture invariant: this crate never touches links, queues or the scheduler
//! directly; it only uses the `NodeCx` handle sim-core gives a stack. It knows nothing of
//! scenario files.

pub mod app;
pub mod apps;
pub mod dhcp;
pub mod dns;
pub mod gossip;
pub mod host;
pub mod tcp;
pub mod udp;

pub use app::{App, AppFactory, Os};
pub use host::HostStack;
