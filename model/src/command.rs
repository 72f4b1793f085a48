//! What an operator asks of the tower from a dashboard. Commands flow
//! against the data (dashboard → output stage), so they are plain values
//! here, at the ground: the dashboard sends them without knowing the
//! alarm engine, and the engine takes them without knowing the dashboard.

use crate::alarm::AlarmId;

/// An operator's action on the alarm system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorCommand {
    /// Acknowledge this alarm (ANSI/ISA-18.2: unacknowledged and active →
    /// acknowledged, returned to normal while unacknowledged → normal). An
    /// alarm already acknowledged, or not known, is left as it is.
    Acknowledge(AlarmId),
}
