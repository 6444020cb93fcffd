//! placeholder
pub mod aqm;
pub mod capture;
pub mod fattree;
pub mod ip;
pub mod link;
pub mod metrics;
pub mod packet;
pub mod rng;
pub mod route;
pub mod sched;
pub mod switch;
pub mod time;
pub mod topology;
pub mod trace;
pub mod wire;
pub mod world;
