//! Every limit and timeout of the daemon, with its default, validated once.
