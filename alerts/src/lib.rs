//! ctower alerts (under construction).
