//! Incremental UTF-8 validation that fails at the first invalid byte, even
//! when a code point is split across reads or fragments.
