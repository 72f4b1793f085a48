//! ctower tui (under construction).
