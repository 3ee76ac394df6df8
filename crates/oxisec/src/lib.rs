//! The `oxisec` binary's library: daemon driver, configuration, control
//! socket, CLI and the network-namespace helpers shared by `oxisec demo` and
//! the interop tests.

pub mod netns;
