//! A supervised `nats-server` child with JetStream: the embedded default of `attendance
//! up`, and the real server every test talks to. Killed when dropped.

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::LedgerError;

/// Where `setup` installs the server, relative to the project root.
pub const PROJECT_LOCAL_BINARY: &str = ".tools/nats/bin/nats-server";
/// Names a nats-server binary explicitly.
pub const BINARY_ENV: &str = "LEDGERCLOCK_NATS_SERVER";

#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Client port on 127.0.0.1; `None` picks a free one.
    pub port: Option<u16>,
    /// JetStream store; `None` uses a temporary directory removed on drop.
    pub store_dir: Option<PathBuf>,
    /// fsync every write before it is acknowledged (`sync_interval: always`), so an
    /// acknowledged event survives a power cut, not only a crash of the server. Off,
    /// the server syncs every 2 minutes (its default): what the tests use.
    pub sync_always: bool,
}

#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    binary: PathBuf,
    port: u16,
    store_dir: PathBuf,
    log_path: PathBuf,
    sync_always: bool,
    _temp: Option<tempfile::TempDir>,
}

impl NatsServer {
    /// Finds the binary: `$LEDGERCLOCK_NATS_SERVER`, then `.tools/nats/bin/nats-server`
    /// in the current directory or any parent (or the source tree's), then `PATH`.
    pub fn find_binary() -> Result<PathBuf, LedgerError> {
        if let Some(path) = std::env::var_os(BINARY_ENV) {
            return Ok(PathBuf::from(path));
        }
        let roots = [
            std::env::current_dir().ok(),
            Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
        ];
        for root in roots.iter().flatten() {
            for dir in root.ancestors() {
                let candidate = dir.join(PROJECT_LOCAL_BINARY);
                if candidate.is_file() {
                    return Ok(candidate);
                }
            }
        }
        if let Some(paths) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&paths) {
                let candidate = dir.join("nats-server");
                if candidate.is_file() {
                    return Ok(candidate);
                }
            }
        }
        Err(LedgerError::Setup(format!(
            "no nats-server found: run ./scripts/setup (installs it into {PROJECT_LOCAL_BINARY}), \
             put it on PATH, set {BINARY_ENV}, or pass --nats URL"
        )))
    }

    /// Starts a server and waits until JetStream answers.
    pub async fn start(options: ServerOptions) -> Result<Self, LedgerError> {
        let binary = Self::find_binary()?;
        let (store_dir, temp) = match options.store_dir {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("ledgerclock-nats-")
                    .tempdir()
                    .map_err(LedgerError::setup)?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        std::fs::create_dir_all(&store_dir).map_err(LedgerError::setup)?;
        let port = match options.port {
            Some(port) => port,
            None => free_port().map_err(LedgerError::setup)?,
        };
        let log_path = store_dir.join("nats-server.log");
        let mut server = Self {
            child: None,
            binary,
            port,
            store_dir,
            log_path,
            sync_always: options.sync_always,
            _temp: temp,
        };
        server.spawn().await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Asks the server to shut down (SIGTERM, JetStream flushes), waits up to 15 s,
    /// then kills it.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        for _ in 0..150 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::warn!("nats-server did not stop within 15 s; killing it");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store (after `stop` or `kill`).
    pub async fn restart(&mut self) -> Result<(), LedgerError> {
        self.kill();
        self.spawn().await
    }

    /// Whether the server has exited (crashed or was killed), and how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => Some(status),
            _ => None,
        }
    }

    async fn spawn(&mut self) -> Result<(), LedgerError> {
        // The JetStream settings the command line cannot set.
        let config = self.store_dir.join("nats-server.conf");
        let sync = if self.sync_always {
            "  # fsync before every acknowledgement: an OK survives a power cut.\n  sync_interval: always\n"
        } else {
            ""
        };
        std::fs::write(
            &config,
            format!(
                "# Written by ledgerclock at every start; edit ServerOptions instead.\njetstream {{\n  store_dir: {:?}\n{sync}}}\n",
                self.store_dir.join("jetstream")
            ),
        )
        .map_err(LedgerError::setup)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(LedgerError::setup)?;
        let mut command = Command::new(&self.binary);
        die_with_parent(&mut command);
        let child = command
            .arg("--config")
            .arg(&config)
            .args(["--jetstream", "--addr", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--server_name", "ledgerclock"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(LedgerError::setup)?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                LedgerError::Setup(format!("cannot start {}: {e}", self.binary.display()))
            })?;
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<(), LedgerError> {
        let url = self.url();
        let mut last_error = String::from("not started");
        for _ in 0..200 {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(LedgerError::Setup(format!(
                    "nats-server exited with {status}; see {}",
                    self.log_path.display()
                )));
            }
            match async_nats::connect(&url).await {
                Ok(client) => {
                    let js = async_nats::jetstream::new(client);
                    match js.query_account().await {
                        Ok(_) => return Ok(()),
                        Err(e) => last_error = e.to_string(),
                    }
                }
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(LedgerError::Setup(format!(
            "nats-server on {url} did not become ready: {last_error}; see {}",
            self.log_path.display()
        )))
    }
}

/// An embedded server that is started again when it dies: `attendance up`'s NATS.
#[derive(Debug)]
pub struct Supervised {
    server: std::sync::Arc<tokio::sync::Mutex<NatsServer>>,
    task: tokio::task::JoinHandle<LedgerError>,
    url: String,
}

/// Restarts allowed within [`RESTART_WINDOW`] before supervision gives up.
pub const MAX_RESTARTS: usize = 5;
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);

impl NatsServer {
    /// Watches the server and starts it again (same port, same store) whenever it
    /// exits; gives up after [`MAX_RESTARTS`] within [`RESTART_WINDOW`] or a start that
    /// fails, and then [`Supervised::failed`] resolves.
    pub fn supervise(self) -> Supervised {
        let url = self.url();
        let server = std::sync::Arc::new(tokio::sync::Mutex::new(self));
        let watched = server.clone();
        let task = tokio::spawn(async move {
            let mut restarts: Vec<tokio::time::Instant> = Vec::new();
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let mut server = watched.lock().await;
                let Some(status) = server.exited() else {
                    continue;
                };
                tracing::error!(%status, log = %server.log_path().display(), "the embedded nats-server died; starting it again");
                restarts.retain(|at| at.elapsed() < RESTART_WINDOW);
                if restarts.len() >= MAX_RESTARTS {
                    return LedgerError::Setup(format!(
                        "the embedded nats-server died {} times within {RESTART_WINDOW:?}; see {}",
                        restarts.len() + 1,
                        server.log_path().display()
                    ));
                }
                restarts.push(tokio::time::Instant::now());
                tokio::time::sleep(Duration::from_millis(200) * restarts.len() as u32).await;
                match server.restart().await {
                    Ok(()) => {
                        tracing::info!(pid = server.pid(), "the embedded nats-server is back")
                    }
                    Err(e) => return e,
                }
            }
        });
        Supervised { server, task, url }
    }
}

impl Supervised {
    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn pid(&self) -> Option<u32> {
        self.server.lock().await.pid()
    }

    /// Resolves when the server died and could not be kept running.
    pub async fn failed(&mut self) -> LedgerError {
        match (&mut self.task).await {
            Ok(e) => e,
            Err(e) => LedgerError::Setup(format!("nats-server supervision ended: {e}")),
        }
    }

    /// Stops supervising, then stops the server cleanly.
    pub async fn stop(self) {
        self.task.abort();
        self.server.lock().await.stop().await;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Has the kernel send SIGTERM to the server when the thread that started it dies, so a
/// crashed or killed `attendance up` (or test run) never leaves a server behind.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec; it only calls
    // prctl(2), which is async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)
        });
    }
}

/// Elsewhere the server is stopped on drop only.
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

/// A port nobody listens on right now.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
