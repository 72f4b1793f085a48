//! What passes between a live source loop and the raw journal stage when
//! messages are acknowledged only once on disk (module docs of
//! [`crate::rawjournal`]): each message with the acknowledgement it is
//! owed, and the acknowledgements coming back, in arrival order.

use crate::ingest::{Outgoing, RawMessage};
use rumqttc::{Publish, QoS};
use tokio::sync::mpsc;

/// The PUBACK a QoS 1 message is owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The packet id of its PUBLISH.
    pub pkid: u16,
}

impl Ack {
    /// The PUBLISH rumqttc acknowledges (it reads only the QoS and the id).
    pub(crate) fn publish(self) -> Publish {
        let mut p = Publish::new("", QoS::AtLeastOnce, Vec::new());
        p.pkid = self.pkid;
        p
    }
}

/// Messages at the start of each connection checked against the raw
/// journal's recent records, DUP flag or not. A broker restored from its
/// persistence may resend much of what it delivered on the connection
/// before: Mosquitto 2.0.11, restarted 64,620 messages into a backlog,
/// resent 64,462 of them (`tests/crash_recovery.rs`).
pub const REDELIVERY_WINDOW: u64 = 1 << 18;

/// One message for the raw journal.
#[derive(Debug)]
pub struct Delivery {
    /// The message (its `source` says whose acknowledgement channel).
    pub msg: RawMessage,
    /// Its QoS, written with it.
    pub qos: u8,
    /// The acknowledgement it is owed (`None` at QoS 0).
    pub ack: Option<Ack>,
    /// Perhaps a redelivery, written already: flagged DUP by the broker,
    /// or among the first [`REDELIVERY_WINDOW`] messages of a connection
    /// (a broker restored from its persistence resends what was in flight
    /// without the flag).
    pub dup: bool,
}

/// A source's link to the raw journal stage: messages go out on `tx` (a
/// bounded channel: full, the source waits and the broker holds the rest);
/// their acknowledgements come back on `acks`, in the order sent. The
/// acknowledgements are bounded by the messages in flight: at most the
/// journal's input queue plus one group.
#[derive(Debug)]
pub struct JournalLink {
    /// To the journal stage.
    pub tx: mpsc::Sender<Delivery>,
    /// From it, once written.
    pub acks: mpsc::UnboundedReceiver<Ack>,
}

/// What a source loop may be given beyond its messages' channel.
#[derive(Debug, Default)]
pub struct SourceExtras {
    /// Publishes to make on the source's broker (rebirth requests at QoS 0,
    /// parameter writes at QoS 1), from a bounded channel its creator
    /// sizes ([`crate::mqtt::run_source`] says what happens when full).
    pub outgoing: Option<mpsc::Receiver<Outgoing>>,
    /// With a raw journal: manual acknowledgements, each message to the
    /// journal first.
    pub journal: Option<JournalLink>,
}
