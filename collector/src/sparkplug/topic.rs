//! Sparkplug B topics: `spBv1.0/{group_id}/{message_type}/{edge_node_id}`,
//! with `/{device_id}` for device messages, and the host application's
//! `spBv1.0/STATE/{host_id}`.

/// The namespace every Sparkplug B topic starts with.
pub const NAMESPACE: &str = "spBv1.0";

/// The message types of Sparkplug B 3.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// An edge node's birth: its metrics, names, aliases, types.
    NBirth,
    /// An edge node's death (its will, or a clean disconnect).
    NDeath,
    /// A device's birth.
    DBirth,
    /// A device's death.
    DDeath,
    /// An edge node's data.
    NData,
    /// A device's data.
    DData,
    /// A command to an edge node (e.g. `Node Control/Rebirth`).
    NCmd,
    /// A command to a device.
    DCmd,
}

impl MessageType {
    /// Its name in topics (`NBIRTH` …).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::NBirth => "NBIRTH",
            MessageType::NDeath => "NDEATH",
            MessageType::DBirth => "DBIRTH",
            MessageType::DDeath => "DDEATH",
            MessageType::NData => "NDATA",
            MessageType::DData => "DDATA",
            MessageType::NCmd => "NCMD",
            MessageType::DCmd => "DCMD",
        }
    }

    /// Whether the message is about a device (its topic names one).
    pub fn is_device(self) -> bool {
        matches!(
            self,
            MessageType::DBirth | MessageType::DDeath | MessageType::DData | MessageType::DCmd
        )
    }

    fn parse(s: &str) -> Option<MessageType> {
        Some(match s {
            "NBIRTH" => MessageType::NBirth,
            "NDEATH" => MessageType::NDeath,
            "DBIRTH" => MessageType::DBirth,
            "DDEATH" => MessageType::DDeath,
            "NDATA" => MessageType::NData,
            "DDATA" => MessageType::DData,
            "NCMD" => MessageType::NCmd,
            "DCMD" => MessageType::DCmd,
            _ => return None,
        })
    }
}

/// A Sparkplug B topic, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpTopic<'a> {
    /// A message of an edge node or one of its devices.
    Edge {
        /// The group.
        group: &'a str,
        /// What it is.
        kind: MessageType,
        /// The edge node.
        node: &'a str,
        /// The device, for device messages.
        device: Option<&'a str>,
    },
    /// A host application's online/offline state.
    State {
        /// The host's id.
        host: &'a str,
    },
}

impl<'a> SpTopic<'a> {
    /// Parses `topic`; the error says what is wrong, for the dead letter.
    pub fn parse(topic: &'a str) -> Result<SpTopic<'a>, String> {
        let mut levels = topic.split('/');
        if levels.next() != Some(NAMESPACE) {
            return Err(format!(
                "not a Sparkplug B topic (it must start with `{NAMESPACE}/`)"
            ));
        }
        let levels: Vec<&str> = levels.collect();
        if let Some(bad) = levels
            .iter()
            .find(|l| l.is_empty() || l.contains(['+', '#']))
        {
            return Err(format!("topic level `{bad}` is empty or a wildcard"));
        }
        match levels.as_slice() {
            ["STATE", host] => Ok(SpTopic::State { host }),
            [group, kind, node, rest @ ..] => {
                let kind = MessageType::parse(kind)
                    .ok_or_else(|| format!("`{kind}` is not a Sparkplug B message type"))?;
                let device = match (kind.is_device(), rest) {
                    (true, [device]) => Some(*device),
                    (false, []) => None,
                    (true, _) => return Err(format!("{} needs one device level", kind.as_str())),
                    (false, _) => return Err(format!("{} has no device level", kind.as_str())),
                };
                Ok(SpTopic::Edge {
                    group,
                    kind,
                    node,
                    device,
                })
            }
            _ => Err("expected spBv1.0/GROUP/TYPE/NODE[/DEVICE] or spBv1.0/STATE/HOST".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_of_the_specification() {
        assert_eq!(
            SpTopic::parse("spBv1.0/lyon/DDATA/line-1/filler"),
            Ok(SpTopic::Edge {
                group: "lyon",
                kind: MessageType::DData,
                node: "line-1",
                device: Some("filler")
            })
        );
        assert_eq!(
            SpTopic::parse("spBv1.0/lyon/NBIRTH/line-1"),
            Ok(SpTopic::Edge {
                group: "lyon",
                kind: MessageType::NBirth,
                node: "line-1",
                device: None
            })
        );
        assert_eq!(
            SpTopic::parse("spBv1.0/STATE/ctower"),
            Ok(SpTopic::State { host: "ctower" })
        );
        for bad in [
            "spAv1.0/g/NDATA/n",
            "spBv1.0/g/NDATA/n/d",
            "spBv1.0/g/DDATA/n",
            "spBv1.0/g/XDATA/n",
            "spBv1.0/g//n",
            "spBv1.0/g/NDATA/+",
            "spBv1.0/g",
        ] {
            assert!(SpTopic::parse(bad).is_err(), "{bad}");
        }
    }
}
