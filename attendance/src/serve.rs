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
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// What one connection may take; the defaults suit devices on a LAN and on the internet.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Connections served at once [default: the descriptor limit, less 256].
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Seconds a request's head may take to arrive.
    #[arg(long, default_value_t = 10.0)]
    pub head_timeout: f64,
    /// Seconds a kept-alive connection may wait for its next request.
    #[arg(long, default_value_t = 30.0)]
    pub idle_timeout: f64,
    /// Seconds of silence allowed inside a body.
    #[arg(long, default_value_t = 20.0)]
    pub body_timeout: f64,
}

impl LimitArgs {
    pub fn limits(&self) -> anyhow::Result<gateway::http::Limits> {
        let seconds = |name: &str, s: f64| {
            anyhow::ensure!(
                s.is_finite() && s > 0.0,
                "--{name} must be a positive number of seconds"
            );
            Ok(std::time::Duration::from_secs_f64(s))
        };
        // Leave descriptors for NATS, logs and the store.
        let fitted = gateway::http::Limits::fitted_to_descriptors(256);
        Ok(gateway::http::Limits {
            max_connections: self
                .max_connections
                .unwrap_or(fitted.max_connections)
                .max(1),
            head_timeout: seconds("head-timeout", self.head_timeout)?,
            idle_timeout: seconds("idle-timeout", self.idle_timeout)?,
            body_idle_timeout: seconds("body-timeout", self.body_timeout)?,
            ..fitted
        })
    }
}

pub async fn gateway(args: GatewayArgs) -> anyhow::Result<()> {
    let shutdown = crate::up::shutdown_signal();
    let ledger = Ledger::connect(&args.nats.nats, args.nats.ledger.config()).await?;
    ledger.provision().await?;
    let task = start_gateway(&ledger, args.listen, args.limits.limits()?).await?;
    shutdown.await;
    stop_gateway(task).await?;
    ledger.drain().await?;
    Ok(())
}

pub struct GatewayTask {
    /// Where it listens (the port chosen, if it was 0).
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds `listen` and serves devices in the background.
pub async fn start_gateway(
    ledger: &Ledger,
    listen: SocketAddr,
    limits: gateway::http::Limits,
) -> anyhow::Result<GatewayTask> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen} for devices: {e}"))?;
    let addr = listener.local_addr()?;
    let config = gateway::http::GatewayConfig { limits };
    tracing::info!(%addr, max_connections = config.limits.max_connections, "device gateway listening (/iclock/, /mobile/punch, /health)");
    let gateway =
        gateway::http::Gateway::with_config(ledger.clone(), Arc::new(chrono::Utc::now), config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(gateway::http::run(gateway, listener, async {
        let _ = stopped.await;
    }));
    Ok(GatewayTask { addr, stop, task })
}

/// Stops accepting devices and waits for the requests in flight to be answered.
pub async fn stop_gateway(task: GatewayTask) -> anyhow::Result<()> {
    let _ = task.stop.send(());
    task.task.await??;
    tracing::info!("device gateway stopped");
    Ok(())
}
