//! Identities shared by the layers: a connection, a session that may outlive
//! its connections, and where a chat member's deliveries go. Plain values, no
//! behaviour, so every layer can name them without depending on another.

/// A connection's identity that survives slab slot reuse: an entry for a
/// closed connection never fires on its slot's next tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId {
    pub slot: usize,
    pub generation: u64,
}

/// A session in the reactor's session table (Engine.IO, SockJS): it may
/// outlive a TCP connection and later carry another. Same slot-plus-generation
/// scheme as [`ConnId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId {
    pub slot: usize,
    pub generation: u64,
}

/// Where a chat member's deliveries are routed: straight to a connection, or
/// to a session that queues them for whichever connection carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    Conn(ConnId),
    Session(SessionId),
}

impl std::fmt::Display for ConnId {
    /// `slot.generation`, as the logs write a connection.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.slot, self.generation)
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.slot, self.generation)
    }
}

impl std::fmt::Display for Endpoint {
    /// `conn=SLOT.GEN` or `session=SLOT.GEN`, a log field.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Conn(id) => write!(f, "conn={id}"),
            Endpoint::Session(id) => write!(f, "session={id}"),
        }
    }
}
