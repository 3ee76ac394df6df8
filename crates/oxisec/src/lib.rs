//! The `oxisec` binary's library: daemon driver, configuration, control
//! socket, CLI and the network-namespace helpers shared by `oxisec demo` and
//! the interop tests.

pub mod cli;
pub mod commands;
pub mod config;
pub mod control;
pub mod crlfetch;
pub mod daemon;
pub mod demo;
pub mod netns;
pub mod pki;
pub mod profile;
pub mod proposals;
pub mod radius;
pub mod status;
pub mod users;
pub mod x509util;
