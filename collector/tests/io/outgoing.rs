//! A live source publishes what it is given on its outgoing channel, each
//! at its own QoS: a parameter write (QoS 1) reaches a subscriber of the
//! broker at QoS 1, a rebirth request (QoS 0) at QoS 0. Against Mosquitto
//! (when installed) and the embedded broker; rumqttd delivers every
//! message at the subscription's QoS (here 1), even one published at QoS
//! 0, so there only the write's QoS 1 is telling.

use crate::common::*;
use ctower_collector::delivery::SourceExtras;
use ctower_collector::endpoint::BrokerEndpoint;
use ctower_collector::mqtt::{run_source, SourceStatus};
use ctower_collector::Outgoing;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::sync::{mpsc, watch};

async fn writes_arrive_at_their_qos(port: u16, embedded: bool, name: &str) {
    // A subscriber of the command topics, at QoS 1.
    let mut o = MqttOptions::new(format!("ctower-test-{name}-plant"), "127.0.0.1", port);
    o.set_keep_alive(std::time::Duration::from_secs(10));
    let (plant, mut plant_loop) = AsyncClient::new(o, 10);
    plant
        .subscribe("acme/cmd/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Incoming(Incoming::SubAck(_)) = plant_loop.poll().await.unwrap() {
                break;
            }
        }
    })
    .await
    .expect("the plant's subscription is acknowledged");

    // The source, subscribed elsewhere, with its outgoing channel.
    let url = match embedded {
        true => "embedded".to_string(),
        false => format!("mqtt://127.0.0.1:{port}"),
    };
    let mut spec = spec(name, &url);
    spec.subscriptions = vec!["acme/data/#".into()];
    let (tx, _rx) = mpsc::channel(16);
    let (out_tx, out_rx) = mpsc::channel::<Outgoing>(4);
    let (stop, stop_rx) = watch::channel(false);
    let (status_tx, mut status) = watch::channel(SourceStatus::Connecting);
    let task = tokio::spawn(run_source(
        7,
        spec,
        embedded.then(|| BrokerEndpoint::new("127.0.0.1", port)),
        tx,
        ctower_model::Clock::system(),
        stop_rx,
        Some(status_tx),
        SourceExtras {
            outgoing: Some(out_rx),
            journal: None,
        },
    ));
    tokio::time::timeout(
        WAIT,
        status.wait_for(|s| matches!(s, SourceStatus::Subscribed { .. })),
    )
    .await
    .expect("the source subscribes")
    .unwrap();

    let write = "acme/cmd/lyon/-/line-1/filler/fill_temp";
    let rebirth = "acme/cmd/rebirth";
    for (topic, qos) in [(write, 1), (rebirth, 0)] {
        out_tx
            .try_send(Outgoing {
                source: 7,
                topic: topic.into(),
                payload: format!("{{\"qos\":{qos}}}").into_bytes(),
                qos,
                expires_ms: None,
            })
            .unwrap();
    }
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, async {
        while got.len() < 2 {
            if let Event::Incoming(Incoming::Publish(p)) = plant_loop.poll().await.unwrap() {
                got.push((p.topic, p.qos, p.payload.to_vec()));
            }
        }
    })
    .await
    .expect("both publishes arrive");
    got.sort_by(|a, b| a.0.cmp(&b.0));
    if embedded {
        // rumqttd: the subscription's QoS, whatever the publish's.
        got[1].1 = QoS::AtMostOnce;
    }
    assert_eq!(
        got,
        vec![
            (write.to_string(), QoS::AtLeastOnce, b"{\"qos\":1}".to_vec()),
            (
                rebirth.to_string(),
                QoS::AtMostOnce,
                b"{\"qos\":0}".to_vec()
            ),
        ]
    );

    stop.send_replace(true);
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the source stops")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos_1_write_reaches_the_plant_at_qos_1_embedded() {
    let broker = start_embedded().await;
    writes_arrive_at_their_qos(broker.port(), true, "out-embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos_1_write_reaches_the_plant_at_qos_1_mosquitto() {
    let Some(m) = Mosquitto::start_or_skip(None) else {
        return;
    };
    writes_arrive_at_their_qos(m.port, false, "out-mosquitto").await;
}
