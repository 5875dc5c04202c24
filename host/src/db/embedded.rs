//! The embedded PostgreSQL: a private cluster in the data directory, started and
//! stopped with the host. Layout under the data directory:
//!
//! ```text
//! pgdata/        the cluster (initdb'd on first start)
//! run/           the Unix socket (falls back to a short dir under /tmp, see socket_dir)
//! postgres.log   the server's own log
//! ```
//!
//! PostgreSQL refuses to run as root, so when the host is root the server runs as an
//! unprivileged system user which owns `pgdata/` and `run/`. The server only listens on
//! the Unix socket, in a 0700 directory, so nothing else on the machine can reach it.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Pid, Uid, User};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// The superuser that initdb creates; the host connects as this role.
pub const SUPERUSER: &str = "agenthost";
/// The port only names the socket file (`.s.PGSQL.5432`); nothing listens on TCP.
const PORT: u16 = 5432;
/// Longest socket path Linux accepts (sun_path is 108 bytes including the NUL).
const MAX_SOCKET_PATH: usize = 107;
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// How to run the embedded server.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Directory with `bin/postgres` and `bin/initdb` (installed by `make setup`).
    pub install_dir: PathBuf,
    /// The data directory that holds `pgdata/`, `run/` and `postgres.log`.
    pub data_dir: PathBuf,
    /// User to run the server as when the host is root.
    pub run_as_when_root: String,
    /// fsync off: for tests and throwaway instances.
    pub unsafe_fast: bool,
}

/// A running embedded PostgreSQL. Call [`EmbeddedPostgres::stop`] for a clean
/// shutdown; dropping the handle stops the server immediately (crash-safe, replayed
/// from WAL on the next start).
#[derive(Debug)]
pub struct EmbeddedPostgres {
    child: Option<Child>,
    socket_dir: PathBuf,
    pgdata: PathBuf,
}

impl EmbeddedPostgres {
    /// Initialise the cluster if needed, recover from a previous crash, start the
    /// server and wait until it accepts connections.
    pub async fn start(options: EmbeddedOptions) -> Result<Self> {
        tokio::task::spawn_blocking(move || start_blocking(&options))
            .await
            .context("embedded PostgreSQL start task failed")?
    }

    /// [`EmbeddedPostgres::start`] for callers outside any async runtime.
    pub fn start_blocking(options: &EmbeddedOptions) -> Result<Self> {
        start_blocking(options)
    }

    /// Connection options for `database` on this server.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
    }

    /// A `postgres://` URL for `database` on this server (over the Unix socket).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost:{PORT}/{database}?host={}",
            self.socket_dir.display()
        )
    }

    /// The operating-system process id of the postmaster.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The cluster directory.
    pub fn pgdata(&self) -> &Path {
        &self.pgdata
    }

    /// Create `database` if it does not exist yet.
    pub async fn ensure_database(&self, database: &str) -> Result<()> {
        let mut conn = self
            .connect_options("postgres")
            .disable_statement_logging()
            .connect()
            .await
            .context("connecting to the embedded PostgreSQL")?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(database)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            // Identifiers can't be bound as parameters; quote it instead.
            let quoted = format!("\"{}\"", database.replace('"', "\"\""));
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
                .execute(&mut conn)
                .await?;
        }
        conn.close().await?;
        Ok(())
    }

    /// Fast shutdown: disconnect clients, checkpoint, exit. Waits for the process.
    pub async fn stop(mut self) -> Result<()> {
        let child = self.child.take();
        tokio::task::spawn_blocking(move || {
            if let Some(mut child) = child {
                stop_child(&mut child)?;
            }
            Ok(())
        })
        .await
        .context("embedded PostgreSQL stop task failed")?
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            // Immediate shutdown: no checkpoint, recovery replays WAL next time.
            let _ = kill(pid_of(child), Signal::SIGQUIT);
            let _ = child.wait();
        }
    }
}

fn start_blocking(options: &EmbeddedOptions) -> Result<EmbeddedPostgres> {
    let bin = options.install_dir.join("bin");
    for tool in ["postgres", "initdb"] {
        if !bin.join(tool).is_file() {
            bail!(
                "the embedded PostgreSQL is not installed: {} is missing. Run `make setup` \
                 (or `python3 scripts/setup_postgres.py {}`), or set DATABASE_URL to use \
                 an external PostgreSQL",
                bin.join(tool).display(),
                options.install_dir.display()
            );
        }
    }
    let owner = ServerUser::resolve(&options.run_as_when_root)?;
    owner.check_can_run(&bin.join("postgres"))?;

    fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("creating data directory {}", options.data_dir.display()))?;
    let data_dir = options
        .data_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", options.data_dir.display()))?;
    let pgdata = data_dir.join("pgdata");
    if !pgdata.join("PG_VERSION").is_file() {
        init_cluster(&bin, &pgdata, &owner, options.unsafe_fast)?;
    }
    let socket_dir = socket_dir(&data_dir);
    owner.private_dir(&socket_dir)?;
    clear_stale_lock(&pgdata, &socket_dir)?;

    let log_path = data_dir.join("postgres.log");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut command = Command::new(bin.join("postgres"));
    command
        .arg("-D")
        .arg(&pgdata)
        .arg("-k")
        .arg(&socket_dir)
        .args(["-p", &PORT.to_string(), "-c", "listen_addresses="])
        // Ctrl-C in a terminal signals the whole foreground group; the host must
        // stop the server itself, after it has drained its own requests.
        .process_group(0)
        .env_clear()
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if options.unsafe_fast {
        command.args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]);
    }
    owner.apply(&mut command);
    let child = command
        .spawn()
        .with_context(|| format!("starting {}", bin.join("postgres").display()))?;
    let mut server = EmbeddedPostgres {
        child: Some(child),
        socket_dir,
        pgdata,
    };
    wait_until_ready(&mut server, &log_path)?;
    Ok(server)
}

/// initdb into a scratch directory and rename it into place, so a crash during
/// initialisation never leaves a half-made cluster that later starts would trust.
fn init_cluster(bin: &Path, pgdata: &Path, owner: &ServerUser, unsafe_fast: bool) -> Result<()> {
    let scratch = pgdata.with_extension("initdb");
    if scratch.exists() {
        fs::remove_dir_all(&scratch)?;
    }
    owner.private_dir(&scratch)?;
    let mut command = Command::new(bin.join("initdb"));
    command
        .arg("-D")
        .arg(&scratch)
        .args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ])
        .env_clear()
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    if unsafe_fast {
        command.arg("--no-sync");
    }
    owner.apply(&mut command);
    let output = command
        .output()
        .with_context(|| format!("running {}", bin.join("initdb").display()))?;
    if !output.status.success() {
        bail!(
            "initdb failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    fs::rename(&scratch, pgdata)
        .with_context(|| format!("moving the new cluster to {}", pgdata.display()))?;
    Ok(())
}

/// `<data>/run` when its socket path fits in sun_path, otherwise a directory under the
/// system temp dir named after a hash of the data directory (stable across restarts).
fn socket_dir(data_dir: &Path) -> PathBuf {
    let preferred = data_dir.join("run");
    let socket_len = preferred.join(format!(".s.PGSQL.{PORT}")).as_os_str().len();
    if socket_len <= MAX_SOCKET_PATH {
        return preferred;
    }
    let digest = Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    std::env::temp_dir().join(format!("agenthost-{}", &hex::encode(digest)[..16]))
}

/// After a crash of the host (SIGKILL, power loss) `postmaster.pid` may remain, and
/// PostgreSQL refuses to start while it names a live process. Three cases:
/// the named process is our own orphaned postmaster (the host died, the server did
/// not): stop it; it is some other process (pid reused) or gone: remove the stale files.
fn clear_stale_lock(pgdata: &Path, socket_dir: &Path) -> Result<()> {
    let pid_file = pgdata.join("postmaster.pid");
    let Ok(contents) = fs::read_to_string(&pid_file) else {
        return Ok(());
    };
    let pid = contents
        .lines()
        .next()
        .and_then(|line| line.trim().parse::<i32>().ok());
    if let Some(pid) = pid.filter(|pid| *pid > 0 && is_postmaster_of(*pid, pgdata)) {
        if let Some(owner) = live_host_owning(pid) {
            bail!(
                "another Agenthost (pid {owner}) is already running on {}; stop it first",
                pgdata.display()
            );
        }
        tracing::warn!(
            pid,
            "stopping an orphaned PostgreSQL left by a previous run"
        );
        stop_pid(Pid::from_raw(pid))?;
    }
    for stale in [
        pid_file,
        socket_dir.join(format!(".s.PGSQL.{PORT}.lock")),
        socket_dir.join(format!(".s.PGSQL.{PORT}")),
    ] {
        match fs::remove_file(&stale) {
            Ok(()) => tracing::info!(path = %stale.display(), "removed stale PostgreSQL file"),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("removing {}", stale.display())),
        }
    }
    Ok(())
}

/// A live process is our postmaster when it is a `postgres` whose working directory
/// is the cluster (the postmaster chdirs into its data directory).
fn is_postmaster_of(pid: i32, pgdata: &Path) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(cwd) = fs::read_link(proc_dir.join("cwd")) else {
        return false;
    };
    let mut cmdline = String::new();
    let is_postgres = fs::File::open(proc_dir.join("cmdline"))
        .and_then(|mut file| file.read_to_string(&mut cmdline))
        .map(|_| cmdline.contains("postgres"))
        .unwrap_or(false);
    is_postgres && pgdata.canonicalize().is_ok_and(|dir| dir == cwd)
}

/// The pid of a still-running Agenthost whose child `pid` is; None for an orphan
/// (re-parented to init or a subreaper after its host died).
fn live_host_owning(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state, ppid, ...
    let after_name = stat.rsplit_once(')')?.1;
    let ppid: i32 = after_name.split_whitespace().nth(1)?.parse().ok()?;
    let parent_cmd = fs::read(format!("/proc/{ppid}/cmdline")).ok()?;
    let is_host = String::from_utf8_lossy(&parent_cmd).contains("agenthost");
    (ppid > 1 && is_host).then_some(ppid)
}

fn stop_pid(pid: Pid) -> Result<()> {
    let _ = kill(pid, Signal::SIGINT);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while kill(pid, None).is_ok() {
        if Instant::now() > deadline {
            let _ = kill(pid, Signal::SIGQUIT);
        }
        if Instant::now() > deadline + Duration::from_secs(5) {
            bail!("PostgreSQL (pid {pid}) did not stop; stop it by hand and retry");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn stop_child(child: &mut Child) -> Result<()> {
    let pid = pid_of(child);
    let _ = kill(pid, Signal::SIGINT);
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        if Instant::now() > deadline {
            tracing::warn!("PostgreSQL did not finish a fast shutdown in time; stopping it");
            let _ = kill(pid, Signal::SIGQUIT);
            child.wait()?;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pid_of(child: &Child) -> Pid {
    Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX))
}

fn wait_until_ready(server: &mut EmbeddedPostgres, log_path: &Path) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let options = server
        .connect_options("postgres")
        .disable_statement_logging();
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let exited = match &mut server.child {
            Some(child) => child.try_wait()?,
            None => None,
        };
        if let Some(status) = exited {
            server.child = None;
            bail!(
                "PostgreSQL exited during start ({status}); its log ({}) ends with:\n{}",
                log_path.display(),
                log_tail(log_path)
            );
        }
        let attempt = runtime.block_on(async {
            let conn = options.connect().await?;
            conn.close().await
        });
        match attempt {
            Ok(()) => return Ok(()),
            Err(err) if Instant::now() > deadline => {
                return Err(anyhow!(err)).context(format!(
                    "PostgreSQL did not accept connections within {READY_TIMEOUT:?}; log: {}",
                    log_path.display()
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The account the server runs as: the current one, or a system user when root.
struct ServerUser {
    switch_to: Option<(Uid, Gid, String)>,
}

impl ServerUser {
    fn resolve(name_when_root: &str) -> Result<Self> {
        if !Uid::effective().is_root() {
            return Ok(ServerUser { switch_to: None });
        }
        let user = match User::from_name(name_when_root)? {
            Some(user) => user,
            None => {
                create_system_user(name_when_root)?;
                User::from_name(name_when_root)?
                    .ok_or_else(|| anyhow!("user {name_when_root} was not created"))?
            }
        };
        Ok(ServerUser {
            switch_to: Some((user.uid, user.gid, user.name)),
        })
    }

    fn apply(&self, command: &mut Command) {
        if let Some((uid, gid, _)) = &self.switch_to {
            // std drops supplementary groups itself when root sets a uid.
            command.uid(uid.as_raw()).gid(gid.as_raw());
        }
    }

    /// Fail early, with a fix, when the server user cannot execute the binaries,
    /// e.g. because they sit under a directory only root may enter.
    fn check_can_run(&self, postgres: &Path) -> Result<()> {
        let mut command = Command::new(postgres);
        command.arg("--version").env_clear();
        self.apply(&mut command);
        let output = command.output();
        if output.as_ref().is_ok_and(|out| out.status.success()) {
            return Ok(());
        }
        let who = self
            .switch_to
            .as_ref()
            .map_or("the current user", |(_, _, name)| name.as_str());
        bail!(
            "{} cannot be run by {who}: every directory above it must be readable and \
             searchable by that user (move the checkout, or set AGENTHOST_PG_DIR to a copy \
             in such a place); {}",
            postgres.display(),
            match output {
                Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
                Err(err) => err.to_string(),
            }
        )
    }

    /// Create (or re-own) a 0700 directory for the server user.
    fn private_dir(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if let Some((uid, gid, _)) = &self.switch_to {
            std::os::unix::fs::chown(dir, Some(uid.as_raw()), Some(gid.as_raw()))
                .with_context(|| format!("giving {} to the PostgreSQL user", dir.display()))?;
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        Ok(())
    }
}

fn create_system_user(name: &str) -> Result<()> {
    tracing::info!(
        user = name,
        "creating a system user for the embedded PostgreSQL"
    );
    // Several processes may race here on a fresh machine (parallel tests): useradd then
    // fails on the /etc/passwd lock, so retry until the user exists.
    let mut last_status = None;
    for _ in 0..20 {
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(name)
            .stderr(Stdio::null())
            .status()
            .context("running useradd")?;
        if status.success() || User::from_name(name)?.is_some() {
            return Ok(());
        }
        last_status = Some(status);
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "useradd {name} failed ({}); create the user or set AGENTHOST_PG_USER",
        last_status.map_or_else(|| "not run".to_string(), |s| s.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_data_dirs_get_a_short_stable_socket_dir() {
        let short = Path::new("/srv/agenthost");
        assert_eq!(socket_dir(short), short.join("run"));

        let long = PathBuf::from(format!("/srv/{}", "x".repeat(120)));
        let dir = socket_dir(&long);
        assert!(dir.starts_with(std::env::temp_dir()));
        assert!(dir.join(".s.PGSQL.5432").as_os_str().len() <= MAX_SOCKET_PATH);
        assert_eq!(dir, socket_dir(&long), "must be stable across restarts");
    }

    #[test]
    fn a_dead_or_foreign_pid_is_not_our_postmaster() {
        let pgdata = std::env::temp_dir();
        // Our own process is alive but is not a postmaster running in pgdata.
        assert!(!is_postmaster_of(std::process::id() as i32, &pgdata));
        assert!(!is_postmaster_of(i32::MAX, &pgdata));
    }
}
