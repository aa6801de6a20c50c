//! Long-running roles: the device gateway.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use ledger::Ledger;

use crate::cli::NatsArgs;

#[derive(Debug, Args)]
pub struct GatewayArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Address devices push to. Devices on a LAN need 0.0.0.0.
    #[arg(long, env = "LEDGERCLOCK_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
}

pub async fn gateway(args: GatewayArgs) -> anyhow::Result<()> {
    let shutdown = crate::up::shutdown_signal();
    let ledger = Ledger::connect(&args.nats.nats, args.nats.ledger.config()).await?;
    ledger.provision().await?;
    let task = start_gateway(&ledger, args.listen).await?;
    shutdown.await;
    stop_gateway(task).await?;
    ledger.drain().await?;
    Ok(())
}

pub struct GatewayTask {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds `listen` and serves devices in the background.
pub async fn start_gateway(ledger: &Ledger, listen: SocketAddr) -> anyhow::Result<GatewayTask> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen} for devices: {e}"))?;
    let gateway = gateway::http::Gateway::new(ledger.clone(), Arc::new(chrono::Utc::now));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tracing::info!(addr = %listener.local_addr()?, "device gateway listening (/iclock/)");
    let task = tokio::spawn(gateway::http::run(gateway, listener, async {
        let _ = stopped.await;
    }));
    Ok(GatewayTask { stop, task })
}

/// Stops accepting devices and waits for the requests in flight to be answered.
pub async fn stop_gateway(task: GatewayTask) -> anyhow::Result<()> {
    let _ = task.stop.send(());
    task.task.await??;
    tracing::info!("device gateway stopped");
    Ok(())
}
