//! ctower collector (under construction).
