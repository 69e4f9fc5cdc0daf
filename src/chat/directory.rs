//! The name-claim seam: who may hold a name in a namespace beyond this
//! process. The hub always checks its own users first; a directory only adds
//! what the hub cannot see (another node of a cluster, later).

use super::MemberId;

/// The answer to a name claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The name is the member's: register now.
    Granted,
    /// Someone elsewhere holds it: `name_taken`.
    Taken,
    /// The answer comes later through [`crate::chat::Hub::claim_resolved`];
    /// the member stays unregistered until then.
    Pending,
}

/// Name ownership across whatever the hub cannot see itself.
pub trait Directory {
    /// `member` wants `name` (NFC) in `namespace`; the hub has already checked
    /// that no local user holds or awaits it.
    fn claim(&mut self, namespace: &str, name: &str, member: MemberId) -> Claim;
    /// `member` no longer holds (or no longer awaits) `name`.
    fn release(&mut self, namespace: &str, name: &str, member: MemberId);
}

/// A single process: the hub's own uniqueness check is the whole truth, so
/// every claim that reaches the directory is granted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalDirectory;

impl Directory for LocalDirectory {
    fn claim(&mut self, _namespace: &str, _name: &str, _member: MemberId) -> Claim {
        Claim::Granted
    }

    fn release(&mut self, _namespace: &str, _name: &str, _member: MemberId) {}
}
