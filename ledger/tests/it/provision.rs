use ledger::{DurableConsumer, LedgerConfig, LedgerError, Partitions, provision_consumer};

use crate::*;

#[tokio::test]
async fn provisioning_twice_changes_nothing() {
    let w = world().await;
    let before = w.ledger.streams().await.unwrap();
    w.ledger.provision().await.unwrap();
    let after = w.ledger.streams().await.unwrap();
    assert_eq!(before.len(), 8);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.config.name, a.config.name);
        assert_eq!(b.config.subjects, a.config.subjects);
        assert_eq!(b.created, a.created, "a stream was re-created");
    }
    let s = &after[0].config;
    assert!(s.deny_delete && s.deny_purge, "events cannot be deleted");
    assert_eq!(s.duplicate_window, std::time::Duration::from_secs(600));
}

#[tokio::test]
async fn fewer_partitions_than_the_deployment_has_is_refused() {
    let w = world().await;
    let fewer = ledger::Ledger::connect(
        &w.server.url(),
        LedgerConfig {
            partitions: 4,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let err = fewer.provision().await.unwrap_err();
    assert!(
        matches!(err, LedgerError::Setup(ref m) if m.contains("LC_EVENTS_P")),
        "{err}"
    );
}

#[tokio::test]
async fn more_partitions_than_the_deployment_has_is_refused_too() {
    let w = world().await;
    let more = ledger::Ledger::connect(
        &w.server.url(),
        LedgerConfig {
            partitions: 16,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let err = more.provision().await.unwrap_err();
    assert!(
        matches!(err, LedgerError::Setup(ref m) if m.contains("with 8 partitions")),
        "{err}"
    );
    assert_eq!(w.ledger.streams().await.unwrap().len(), 8);
    assert!(
        w.ledger
            .jetstream()
            .get_stream("LC_EVENTS_P8")
            .await
            .is_err(),
        "nothing was created"
    );
}

#[tokio::test]
async fn a_durable_consumer_is_provisioned_idempotently() {
    let w = world().await;
    let acme = tenant("acme");
    let p: Partitions = w.ledger.partitions();
    let spec = DurableConsumer {
        name: "daily-report".into(),
        filters: vec![p.tenant_filter(&acme)],
        stream: p.stream_of(&acme),
        ack_wait: std::time::Duration::from_secs(30),
    };
    let first = provision_consumer(w.ledger.jetstream(), &spec)
        .await
        .unwrap();
    w.ledger
        .append(&punch(&acme, "SN1", 1), ledger::Expected::Any)
        .await
        .unwrap();
    let second = provision_consumer(w.ledger.jetstream(), &spec)
        .await
        .unwrap();
    assert_eq!(first.name, second.name);
    assert_eq!(second.config.filter_subjects, vec![p.tenant_filter(&acme)]);
}

#[test]
fn deploy_stream_definitions_mirror_the_code() {
    // deploy/streams/*.json are what operators feed to `nats stream add --config`.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/streams");
    for (name, config) in [
        ("single-node", LedgerConfig::default()),
        (
            "cluster",
            LedgerConfig {
                replicas: 3,
                ..Default::default()
            },
        ),
    ] {
        for stream in config.stream_configs() {
            let path = root.join(name).join(format!("{}.json", stream.name));
            let expected = serde_json::to_string_pretty(&stream).unwrap() + "\n";
            if std::env::var_os("LEDGERCLOCK_BLESS").is_some() {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &expected).unwrap();
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                on_disk,
                expected,
                "{} is stale: LEDGERCLOCK_BLESS=1 cargo test -p ledger",
                path.display()
            );
        }
    }
}
