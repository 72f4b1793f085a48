//! ctower stream (under construction).
