use std::time::Instant;

use oxisec_crypto::Rng;

use crate::api::*;
use crate::config::Config;

/// The IKEv2 protocol engine. See the crate documentation.
pub struct Engine {
    config: Config,
    rng: Box<dyn Rng>,
}

impl Engine {
    pub fn new(config: Config, rng: Box<dyn Rng>) -> Engine {
        Engine { config, rng }
    }

    /// Replaces the configuration; existing SAs keep theirs.
    pub fn reload(&mut self, config: Config) {
        self.config = config;
    }

    pub fn handle_datagram(&mut self, now: Instant, dgram: Datagram) {
        todo!()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        todo!()
    }

    pub fn handle_command(&mut self, now: Instant, cmd: Command) {
        todo!()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        todo!()
    }

    pub fn poll_sa_command(&mut self) -> Option<SaCommand> {
        todo!()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        todo!()
    }

    /// The earliest instant at which [`Engine::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    /// Snapshot of every IKE SA and its children.
    pub fn status(&self) -> Vec<IkeSaStatus> {
        todo!()
    }
}
