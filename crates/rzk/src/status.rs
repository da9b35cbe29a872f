//! `rzk status`: what `zkServer.sh status` answers. Finds the client port the way the script
//! does (clientPort and clientPortAddress, else the `;address` of this server's `server.N`
//! line, else secureClientPort), asks it `srvr`, prints the `Mode:` line and exits 0; if
//! nothing answers, "Error contacting service. It is probably not running." and exit 1.
//! A secure port is asked over TLS when a trust store is given (PEM, as
//! `-Dzookeeper.ssl.trustStore.location` in CLIENT_JVMFLAGS, the variable zkServer.sh uses).

use rzk_config::ServerConfig;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// The address `zkServer.sh status` would ask, and whether it is the secure port.
fn client_port(cfg: &ServerConfig, my_id: Option<u64>) -> Result<(String, u16, bool), String> {
    if let Some(port) = cfg.client_port {
        return Ok((cfg.client_port_address.clone().unwrap_or_else(|| "localhost".into()), port, false));
    }
    if let Some(id) = my_id {
        if let Some(a) = cfg.servers.get(&id).and_then(|s| s.client_address.clone()) {
            return Ok((a.host.clone(), a.port, false));
        }
    }
    if let Some(port) = cfg.secure_client_port {
        return Ok((cfg.secure_client_port_address.clone().unwrap_or_else(|| "localhost".into()), port, true));
    }
    Err("Unable to find either secure or unsecure client port in any configs. Terminating.".into())
}

/// `srvr` over plain TCP, the whole answer.
fn srvr_plain(host: &str, port: u16) -> std::io::Result<String> {
    let addr = (host, port).to_socket_addrs()?.next().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"srvr")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// `srvr` over TLS with the CA certificates of `ca` (PEM).
fn srvr_tls(host: &str, port: u16, ca: &std::path::Path) -> Result<String, String> {
    let settings = rzk_client::TlsSettings { ca: ca.to_path_buf(), cert: None, key: None };
    let config = settings.client_config().map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect((host, port)))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let name = rustls_pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
        let mut tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| e.to_string())?;
        tls.write_all(b"srvr").await.map_err(|e| e.to_string())?;
        let mut out = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_string(&mut out)).await;
        Ok(out)
    })
}

pub fn run(cfg: &ServerConfig, config_name: &str, my_id: Option<u64>) -> ExitCode {
    eprintln!("Using config: {config_name}");
    let (host, port, secure) = match client_port(cfg, my_id) {
        Ok(p) => p,
        Err(e) => {
            println!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("Client port found: {port}. Client address: {host}. Client SSL: {secure}.");
    let answer = if secure {
        match cfg.system_properties.get("zookeeper.ssl.trustStore.location") {
            Some(ca) => srvr_tls(&host, port, std::path::Path::new(ca)).ok(),
            None => None,
        }
    } else {
        srvr_plain(&host, port).ok()
    };
    match answer.as_deref().and_then(|a| a.lines().find(|l| l.contains("Mode"))) {
        Some(mode) => {
            println!("{mode}");
            ExitCode::SUCCESS
        }
        None => {
            if secure {
                println!(" ");
                println!("Note: We used secureClientPort ({port}) to establish connection, but we failed. The 'status'");
                println!("  command establishes a client connection to the server to execute diagnostic commands. Give the");
                println!("  CA certificates (PEM) as -Dzookeeper.ssl.trustStore.location=... in CLIENT_JVMFLAGS or with -D.");
                println!(" ");
            }
            println!("Error contacting service. It is probably not running.");
            ExitCode::FAILURE
        }
    }
}
