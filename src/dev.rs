//! The embedded default: a `redis-server` child on a free loopback port, append-only
//! file on, data in its own directory; stopped (with a clean SHUTDOWN) when we stop.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// How long redis-server may take to answer its first PING.
const START_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error(
        "redis-server was not found (looked for '{0}').\n  Install it: Debian/Ubuntu `sudo apt-get install redis-server`, Fedora `sudo dnf install redis`, macOS `brew install redis`;\n  or pass --redis-server /path/to/redis-server; or run `leasehold serve --redis redis://HOST:PORT` against a Redis you already have."
    )]
    NotInstalled(PathBuf),
    #[error("cannot prepare the data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error("cannot start redis-server: {0}")]
    Spawn(std::io::Error),
    #[error("redis-server did not become ready: {0} (see {1})")]
    NotReady(String, PathBuf),
    #[error(
        "another leasehold dev ({holder}) uses the data directory {dir}: stop it, or give this one its own with --data-dir"
    )]
    InUse { dir: PathBuf, holder: String },
}

/// The data directory, held for as long as this lives: two `dev` on one directory would
/// run two redis-servers on one append-only file.
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Takes the data directory for this process (made if missing), writing who holds it, or
/// says who does.
pub fn lock_data_dir(data_dir: &Path, listen: &str) -> Result<DataDirLock, DevError> {
    use std::io::{Read, Seek, Write};
    std::fs::create_dir_all(data_dir).map_err(|e| DevError::DataDir(data_dir.into(), e))?;
    let path = data_dir.join("leasehold.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| DevError::DataDir(data_dir.into(), e))?;
    if file.try_lock().is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Err(DevError::InUse {
            dir: data_dir.into(),
            holder: holder.trim().to_owned(),
        });
    }
    let who = format!("pid {}, on {listen}", std::process::id());
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(who.as_bytes()));
    written.map_err(|e| DevError::DataDir(data_dir.into(), e))?;
    Ok(DataDirLock { _file: file })
}

/// A running redis-server child.
pub struct EmbeddedRedis {
    child: Child,
    url: String,
}

impl EmbeddedRedis {
    /// Starts `binary` on a free port with its data (and log) under `data_dir`.
    pub async fn start(binary: &Path, data_dir: &Path) -> Result<Self, DevError> {
        std::fs::create_dir_all(data_dir).map_err(|e| DevError::DataDir(data_dir.into(), e))?;
        let data_dir = data_dir
            .canonicalize()
            .map_err(|e| DevError::DataDir(data_dir.into(), e))?;
        let port = free_port().map_err(DevError::Spawn)?;
        let log = data_dir.join("redis.log");
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&data_dir)
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .args(["--save", "", "--maxmemory-policy", "noeviction"])
            .args(["--daemonize", "no"])
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => DevError::NotInstalled(binary.into()),
                _ => DevError::Spawn(e),
            })?;
        let mut redis = EmbeddedRedis {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        if let Err(e) = redis.wait_ready().await {
            redis.stop().await;
            return Err(DevError::NotReady(e, log));
        }
        Ok(redis)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let client = redis::Client::open(self.url.as_str()).map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("it exited with {status}"));
            }
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                let pong: redis::RedisResult<String> =
                    redis::cmd("PING").query_async(&mut conn).await;
                if pong.is_ok() {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("no answer within {START_TIMEOUT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks Redis to shut down (flushing its append-only file), then makes sure it has.
    pub async fn stop(mut self) {
        if let Ok(client) = redis::Client::open(self.url.as_str())
            && let Ok(mut conn) = client.get_multiplexed_async_connection().await
        {
            let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query_async(&mut conn).await;
        }
        let exited = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        if exited.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
