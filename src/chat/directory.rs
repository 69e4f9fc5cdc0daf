//! The name-claim seam: who may hold a name in a namespace beyond this
//! process. The hub always checks its own users first; a directory only adds
//! what the hub cannot see (another node of a cluster, later).

use std::rc::Rc;

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

/// One claim or release for whoever settles names beyond this process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRequest {
    pub namespace: Rc<str>,
    pub name: Rc<str>,
    pub member: MemberId,
    /// `true` for a claim, `false` for a release.
    pub claim: bool,
}

/// The directory the daemon runs with: alone, every claim is granted at
/// once (as [`LocalDirectory`]); in a cluster, claims and releases queue
/// here in order for the backplane, which answers each claim later through
/// [`crate::chat::Hub::claim_resolved`].
#[derive(Debug, Default)]
pub struct ClaimQueue {
    clustered: bool,
    requests: Vec<ClaimRequest>,
}

impl ClaimQueue {
    /// Names are settled elsewhere from now on.
    pub fn set_clustered(&mut self) {
        self.clustered = true;
    }

    /// The claims and releases made since the last call, in order.
    pub fn take(&mut self) -> Vec<ClaimRequest> {
        std::mem::take(&mut self.requests)
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

impl Directory for ClaimQueue {
    fn claim(&mut self, namespace: &str, name: &str, member: MemberId) -> Claim {
        if !self.clustered {
            return Claim::Granted;
        }
        self.requests.push(ClaimRequest { namespace: namespace.into(), name: name.into(), member, claim: true });
        Claim::Pending
    }

    fn release(&mut self, namespace: &str, name: &str, member: MemberId) {
        if self.clustered {
            self.requests.push(ClaimRequest { namespace: namespace.into(), name: name.into(), member, claim: false });
        }
    }
}
