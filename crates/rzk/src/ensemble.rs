//! `rzk ensemble`: a whole ensemble on this machine from one command, for trying rzk out and
//! for tests. It writes one ZooKeeper-format `zoo.cfg` and `myid` per server under `--dir`,
//! starts `rzk server --config` for each as a child process, and stops them all on Ctrl-C or
//! SIGTERM (or when one of them exits with an error, which it reports).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::time::Duration;

/// The first member's `admin.serverPort` (ZooKeeper's default port).
const ADMIN_SERVER_PORT: u16 = 8080;

pub struct EnsembleArgs {
    pub servers: u16,
    pub observers: u16,
    pub dir: PathBuf,
    pub client_port: u16,
    pub quorum_port: u16,
    pub election_port: u16,
    pub tick_time: u32,
}

/// The zoo.cfg of server `id` (1-based). Ports: clientPort + id - 1, quorum/election
/// ports + id - 1 and the AdminServer's 8080 + id - 1 (on 127.0.0.1), so every server of a
/// local ensemble has its own.
pub fn zoo_cfg(a: &EnsembleArgs, id: u16, data_dir: &Path) -> String {
    let mut s = format!(
        "# written by `rzk ensemble`: server {id} of a local ensemble\n\
         tickTime={}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
         4lw.commands.whitelist=*\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={}\n",
        a.tick_time,
        data_dir.display(),
        a.client_port + id - 1,
        ADMIN_SERVER_PORT + id - 1
    );
    for n in 1..=a.servers + a.observers {
        let role = if n > a.servers { ":observer" } else { "" };
        // With each member's client address (ZooKeeper 3.5's `;host:port`), so the web
        // console of any member can ask every other one for its role.
        s.push_str(&format!(
            "server.{n}=127.0.0.1:{}:{}{role};127.0.0.1:{}\n",
            a.quorum_port + n - 1,
            a.election_port + n - 1,
            a.client_port + n - 1
        ));
    }
    s
}

pub fn run(a: EnsembleArgs) -> ExitCode {
    if a.servers == 0 || a.servers + a.observers > 255 {
        eprintln!("rzk ensemble: --servers must be 1..255 (with the observers)");
        return ExitCode::from(2);
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("rzk ensemble: cannot find this executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut children: Vec<(u16, Child)> = Vec::new();
    for id in 1..=a.servers + a.observers {
        let dir = a.dir.join(id.to_string());
        let data = dir.join("data");
        let cfg = dir.join("zoo.cfg");
        let prepared = std::fs::create_dir_all(&data)
            .and_then(|_| std::fs::write(data.join("myid"), format!("{id}\n")))
            .and_then(|_| std::fs::write(&cfg, zoo_cfg(&a, id, &data.canonicalize()?)));
        if let Err(e) = prepared {
            eprintln!("rzk ensemble: cannot prepare {}: {e}", dir.display());
            stop(&mut children);
            return ExitCode::FAILURE;
        }
        // Each server runs in its own directory, so files named relative to the working
        // directory (the audit log's default `./zookeeper_audit.log`) are its own.
        let cfg = match cfg.canonicalize() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("rzk ensemble: cannot prepare {}: {e}", cfg.display());
                stop(&mut children);
                return ExitCode::FAILURE;
            }
        };
        match Command::new(&exe).arg("server").arg("--config").arg(&cfg).current_dir(cfg.parent().unwrap_or(&dir)).spawn() {
            Ok(c) => children.push((id, c)),
            Err(e) => {
                eprintln!("rzk ensemble: cannot start server {id}: {e}");
                stop(&mut children);
                return ExitCode::FAILURE;
            }
        }
    }
    let hosts: Vec<String> = (1..=a.servers + a.observers).map(|id| format!("127.0.0.1:{}", a.client_port + id - 1)).collect();
    eprintln!("rzk ensemble: {} servers under {}; connect with {}", children.len(), a.dir.display(), hosts.join(","));
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rzk ensemble: {e}");
            stop(&mut children);
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return ExitCode::FAILURE;
        };
        loop {
            tokio::select! {
                _ = term.recv() => return ExitCode::SUCCESS,
                _ = int.recv() => return ExitCode::SUCCESS,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            for (id, c) in children.iter_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    eprintln!("rzk ensemble: server {id} exited ({status}); stopping the others");
                    return ExitCode::FAILURE;
                }
            }
        }
    });
    stop(&mut children);
    code
}

/// SIGTERM each child, then wait (SIGKILL after 10 s).
fn stop(children: &mut Vec<(u16, Child)>) {
    for (_, c) in children.iter_mut() {
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for (_, c) in children.iter_mut() {
        loop {
            match c.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if std::time::Instant::now() > deadline => {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
    children.clear();
}
