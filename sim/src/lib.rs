//! ctower sim (under construction).
