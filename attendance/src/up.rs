//! `attendance up`: the whole system in one process, on an embedded NATS server unless
//! told to use an existing one.

use std::path::PathBuf;

use clap::Args;
use ledger::{Ledger, NatsServer, ServerOptions, Supervised};

use crate::cli::LedgerArgs;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Use this NATS server or cluster (comma-separated seeds) instead of starting one.
    #[arg(long, env = "LEDGERCLOCK_NATS")]
    pub nats: Option<String>,
    /// Where the embedded NATS server keeps its JetStream store and log.
    #[arg(long, env = "LEDGERCLOCK_DATA", default_value_os_t = crate::cli::default_data_dir())]
    pub data: PathBuf,
    /// Client port of the embedded NATS server (127.0.0.1 only).
    #[arg(long, default_value_t = 4222)]
    pub port: u16,
    /// Tenant that receives the demo data.
    #[arg(long, default_value = "demo")]
    pub demo_tenant: String,
    /// Where the device gateway listens (ZKTeco PUSH / iclock). Devices on a LAN need
    /// 0.0.0.0:8080.
    #[arg(long, env = "LEDGERCLOCK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Start without loading demo data.
    #[arg(long)]
    pub no_demo: bool,
    #[command(flatten)]
    pub limits: crate::serve::LimitArgs,
    #[command(flatten)]
    pub store: crate::projections_cmd::StoreArgs,
    #[command(flatten)]
    pub ledger: LedgerArgs,
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let mut embedded = match &args.nats {
        Some(_) => None,
        None => Some(start_embedded(&args).await?.supervise()),
    };
    let url = match (&args.nats, &embedded) {
        (Some(url), _) => url.clone(),
        (None, Some(server)) => server.url().to_owned(),
        (None, None) => unreachable!("an embedded server is started when no URL is given"),
    };

    let result = serve(&args, &url, embedded.as_mut()).await;

    if let Some(server) = embedded {
        tracing::info!("stopping the embedded nats-server");
        server.stop().await;
    }
    if result.is_ok() {
        tracing::info!("stopped cleanly");
    }
    result
}

async fn start_embedded(args: &UpArgs) -> anyhow::Result<NatsServer> {
    if std::net::TcpListener::bind(("127.0.0.1", args.port)).is_err() {
        anyhow::bail!(
            "port {} is in use (another NATS server, perhaps an earlier `attendance up`?): \
             stop it, pass --port N, or use it with --nats nats://127.0.0.1:{}",
            args.port,
            args.port
        );
    }
    let store_dir = args.data.join("nats");
    tracing::info!(store = %store_dir.display(), port = args.port, "starting embedded nats-server with JetStream");
    let server = NatsServer::start(ServerOptions {
        port: Some(args.port),
        store_dir: Some(store_dir),
        sync_always: true,
    })
    .await?;
    tracing::info!(url = %server.url(), pid = server.pid(), log = %server.log_path().display(), "nats-server ready");
    Ok(server)
}

async fn serve(args: &UpArgs, url: &str, embedded: Option<&mut Supervised>) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    let ledger = Ledger::connect(url, args.ledger.config()).await?;
    let streams = ledger.provision().await?;
    tracing::info!(streams = streams.len(), "streams provisioned");

    if !args.no_demo {
        let tenant = schemas::ids::TenantId::parse(&args.demo_tenant)?;
        let loaded = crate::demo::load(&ledger, &tenant, chrono::Utc::now()).await?;
        match loaded {
            0 => tracing::info!(%tenant, "demo data already present"),
            n => tracing::info!(%tenant, events = n, "demo data loaded"),
        }
    }

    let gateway = crate::serve::start_gateway(&ledger, args.listen, args.limits.limits()?).await?;
    let (command_service, mut command_tasks) =
        commands::service::start(ledger.clone(), commands::service::system_clock()).await?;
    command_tasks.push(tokio::spawn(commands::jobs::run_scopes(
        ledger.clone(),
        commands::service::system_clock(),
        commands::jobs::JobOptions::new(projections::worker::default_instance()),
        std::future::pending(),
    )));
    let mut store = args.store.clone();
    if store.dir == std::path::Path::new("data/projections") {
        store.dir = args.data.join("projections");
    }
    let options = crate::projections_cmd::options(&store, None);
    let store_dir = options.store_dir.clone();
    let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(projections::worker::run(ledger.clone(), options, async {
        let _ = worker_stopped.await;
    }));

    print_streams(&ledger).await?;
    if let Some(server) = &embedded {
        println!(
            "\nembedded nats-server pid {} (restarted if it dies), JetStream under {}",
            server.pid().await.unwrap_or_default(),
            args.data.join("nats").display()
        );
    }
    println!(
        "projection workers keep their views under {}; reports: `attendance report daily` (NATS lc.q.v1.<tenant>.<query>)",
        store_dir.display()
    );
    println!(
        "commands: `attendance admin rule create ...` (NATS {}.<tenant>.<family>)",
        commands::service::COMMAND_PREFIX
    );
    println!(
        "\nLedgerclock is up on {url}; devices push to http://{}/iclock/ (health: http://{}/health). Press Ctrl-C to stop.",
        gateway.addr, gateway.addr
    );

    let failed = async {
        match embedded {
            Some(server) => server.failed().await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        () = shutdown => Ok(()),
        e = failed => Err(anyhow::Error::from(e).context("stopping: the embedded NATS server cannot be kept running")),
    };
    crate::serve::stop_gateway(gateway).await?;
    for t in command_tasks {
        t.abort();
    }
    let _ = command_service.stop().await;
    let _ = stop_worker.send(());
    match worker.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "projection worker stopped with an error"),
        Err(e) => tracing::warn!(error = %e, "projection worker task failed"),
    }
    outcome?;
    tracing::info!("shutting down: draining the NATS connection");
    ledger.drain().await?;
    Ok(())
}

/// Ctrl-C (SIGINT) or SIGTERM (systemd's stop). The handlers are installed when this is
/// called, not when it is first awaited, so a signal that arrives right after the banner
/// is not lost to the default action.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

pub async fn print_streams(ledger: &Ledger) -> anyhow::Result<()> {
    println!(
        "{:<16} {:<16} {:>10} {:>12} {:>8}",
        "STREAM", "SUBJECTS", "EVENTS", "BYTES", "REPLICAS"
    );
    for info in ledger.streams().await? {
        println!(
            "{:<16} {:<16} {:>10} {:>12} {:>8}",
            info.config.name,
            info.config.subjects.join(","),
            info.state.messages,
            info.state.bytes,
            info.config.num_replicas
        );
    }
    Ok(())
}
