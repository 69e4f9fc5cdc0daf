//! Tells HTTP from the legacy line protocol by a connection's first bytes.
