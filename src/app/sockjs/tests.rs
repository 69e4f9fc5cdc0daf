//! Unit tests of the SockJS service layer.
