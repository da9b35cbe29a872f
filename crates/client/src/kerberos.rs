//! The client side of SASL GSSAPI (RFC 4752, Kerberos V5) as ZooKeeper's Java client runs it:
//! a context with the service principal `zookeeper/<server host>` (`zookeeper.sasl.client.username`
//! for another service name; with `zookeeper.sasl.client.canonicalize.hostname`, the host's
//! canonical name by reverse lookup of its address, as Java's `getCanonicalHostName`), mutual
//! authentication, then the security-layer negotiation: the server's wrapped offer must
//! include "no security layer", which the client picks, naming its principal as the
//! authorization id.
//!
//! The mechanism and the GSS-API calls are `rzk_gss`'s (`SaslGssapiClient`, the system's MIT
//! krb5, shared with the servers' quorum login), behind the `kerberos` cargo feature: without it a Kerberos login fails with a message saying so. Getting the
//! credential and the service ticket talks to the KDC, so it runs on a blocking thread.

use std::path::PathBuf;

/// A Kerberos login (a JAAS `Client` section's `Krb5LoginModule`, or given directly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosLogin {
    /// Whom to log in as (`principal`); with a keytab it is required; from a ticket cache
    /// the cache's principal is used when `None`.
    pub principal: Option<String>,
    /// `keyTab` (`useKeyTab=true`): tickets are got from it.
    pub keytab: Option<PathBuf>,
    /// `useTicketCache`: tickets from the ticket cache first (the only source without a
    /// keytab).
    pub use_ticket_cache: bool,
    /// `ticketCache`; `None`: the default cache (`KRB5CCNAME`).
    pub ticket_cache: Option<String>,
    /// `zookeeper.sasl.client.username`: the service name of the server's principal.
    pub service: String,
    /// `zookeeper.sasl.client.canonicalize.hostname` (default true).
    pub canonicalize_hostname: bool,
}

impl Default for KerberosLogin {
    fn default() -> Self {
        KerberosLogin {
            principal: None,
            keytab: None,
            use_ticket_cache: true,
            ticket_cache: None,
            service: "zookeeper".into(),
            canonicalize_hostname: true,
        }
    }
}

/// The host part of the server's principal, as `SaslServerPrincipal.getServerPrincipal`
/// chooses it: the host as given, or its address's canonical name when that is not the
/// address itself.
#[cfg(feature = "kerberos")]
async fn principal_host(login: &KerberosLogin, host: &str, port: u16) -> String {
    if !login.canonicalize_hostname {
        return host.to_string();
    }
    let Some(addr) = tokio::net::lookup_host((host, port)).await.ok().and_then(|mut a| a.next()) else {
        return host.to_string();
    };
    let ip = addr.ip();
    match tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&ip)).await {
        Ok(Ok(name)) if name != ip.to_string() => name,
        _ => host.to_string(),
    }
}

/// One connection's GSSAPI login (the mechanism is `rzk_gss::SaslGssapiClient`).
pub struct GssapiClient {
    #[cfg(feature = "kerberos")]
    mech: rzk_gss::SaslGssapiClient,
}

impl GssapiClient {
    /// Acquires the credential, makes the context with the server's principal and returns
    /// the first token.
    #[cfg(feature = "kerberos")]
    pub async fn start(login: &KerberosLogin, host: &str, port: u16) -> Result<(GssapiClient, Vec<u8>), String> {
        let target_host = principal_host(login, host, port).await;
        let l = login.clone();
        let initiator = rzk_gss::InitiatorLogin {
            principal: l.principal.clone(),
            keytab: l.keytab.clone(),
            use_ticket_cache: l.use_ticket_cache || l.keytab.is_none(),
            ticket_cache: l.ticket_cache.clone(),
        };
        let service = l.service.clone();
        let (mech, first) = tokio::task::spawn_blocking(move || rzk_gss::SaslGssapiClient::start(&initiator, &service, &target_host))
            .await
            .map_err(|e| e.to_string())??;
        Ok((GssapiClient { mech }, first))
    }

    #[cfg(not(feature = "kerberos"))]
    pub async fn start(_login: &KerberosLogin, _host: &str, _port: u16) -> Result<(GssapiClient, Vec<u8>), String> {
        Err("this rzk was built without Kerberos support (build it with --features kerberos)".into())
    }

    /// The server's token in; the next token out, or `None` once the login is complete.
    #[cfg(feature = "kerberos")]
    pub fn evaluate_challenge(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.mech.evaluate_challenge(challenge)
    }

    #[cfg(not(feature = "kerberos"))]
    pub fn evaluate_challenge(&mut self, _challenge: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Err("this rzk was built without Kerberos support".into())
    }
}
