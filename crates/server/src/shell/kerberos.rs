//! The server's Kerberos logins for SASL GSSAPI: the JAAS server section's `Krb5LoginModule`
//! (principal and keytab, read by `rzk_config`) becomes a GSS-API acceptor credential
//! (`rzk_gss`, the system's MIT krb5), injected into the pure core as a
//! [`GssAcceptor`](crate::core::gssapi::GssAcceptor); the core runs the SASL exchange. The
//! same for the quorum: the `QuorumServer` section's acceptor ([`quorum_acceptor`]) and the
//! `QuorumLearner` section's initiator ([`QuorumInitiator`], `rzk_gss::SaslGssapiClient`),
//! used by `peersec`, which runs the QuorumAuth exchange.
//!
//! Kerberos support is the `kerberos` cargo feature (it builds against libkrb5-dev and
//! libclang); without it a Kerberos login stops start-up, never ignored.

use crate::core::auth::GssapiLogin;
use rzk_config::ServerConfig;

/// Java reads krb5.conf from this system property; MIT krb5 reads `KRB5_CONFIG`.
const JAVA_KRB5_CONF: &str = "java.security.krb5.conf";

/// The acceptor and naming of the server's Kerberos login, or `None` without one. An
/// unusable login (a missing keytab, no key for the principal, a build without Kerberos)
/// is an error that stops start-up.
pub fn login(cfg: &ServerConfig) -> Result<Option<GssapiLogin>, String> {
    let Some(k) = &cfg.sasl.kerberos else {
        return Ok(None);
    };
    check_krb5_conf(cfg)?;
    acceptor(k).map(|(acceptor, default_realm)| {
        let naming = crate::core::gssapi::KerberosNaming {
            remove_host: cfg.sasl.kerberos_naming.remove_host,
            remove_realm: cfg.sasl.kerberos_naming.remove_realm,
            default_realm,
        };
        tracing::info!(principal = %k.principal, realm = ?naming.default_realm, "SASL GSSAPI: clients log in with Kerberos");
        Some(GssapiLogin { acceptor, naming })
    })
}

/// The library reads krb5.conf from the environment; a property that disagrees would be
/// ignored, so it stops start-up.
fn check_krb5_conf(cfg: &ServerConfig) -> Result<(), String> {
    if let Some(path) = cfg.system_properties.get(JAVA_KRB5_CONF) {
        if std::env::var("KRB5_CONFIG").ok().as_deref() != Some(path.as_str()) {
            return Err(format!(
                "{JAVA_KRB5_CONF}={path}: rzk's Kerberos library reads krb5.conf from the environment; set KRB5_CONFIG={path} as well (or remove the property)"
            ));
        }
    }
    Ok(())
}

/// The `QuorumServer` section's Kerberos login as an acceptor (`SecurityUtils.createSaslServer`
/// with a Kerberos subject: GSSAPI for the section's own principal).
pub fn quorum_acceptor(
    cfg: &ServerConfig,
    k: &rzk_config::sasl::KerberosLogin,
) -> Result<std::sync::Arc<dyn crate::core::gssapi::GssAcceptor>, String> {
    check_krb5_conf(cfg)?;
    let (a, _) = acceptor(k)?;
    Ok(a)
}

/// `zookeeper.server.realm`: the realm of the quorum's service principal (default: the
/// learner's).
const SERVER_REALM: &str = "zookeeper.server.realm";

/// A learner's Kerberos login (`SaslQuorumAuthLearner` with a Kerberos subject).
#[derive(Debug)]
pub struct QuorumInitiator {
    /// The `QuorumLearner` section's login.
    pub login: rzk_config::sasl::KerberosInitiator,
    /// `quorum.auth.kerberos.servicePrincipal` (or its default).
    pub service_principal: String,
    /// `zookeeper.server.realm`, else the learner principal's realm (else the default realm).
    pub realm: String,
}

impl QuorumInitiator {
    /// From the configuration; a build without Kerberos is an error.
    pub fn new(cfg: &ServerConfig, login: &rzk_config::sasl::KerberosInitiator) -> Result<QuorumInitiator, String> {
        check_krb5_conf(cfg)?;
        if !cfg!(feature = "kerberos") {
            return Err(format!(
                "the QuorumLearner section logs in with Kerberos (principal {}), but this rzk was built without Kerberos support: build it with `--features kerberos` (needs Debian's libkrb5-dev and libclang-dev)",
                login.principal
            ));
        }
        let realm = match (cfg.system_properties.get(SERVER_REALM), login.principal.split_once('@')) {
            (Some(r), _) => r.clone(),
            (None, Some((_, r))) => r.to_string(),
            (None, None) => default_realm()
                .ok_or_else(|| format!("the learner principal {} has no realm and krb5.conf has no default_realm", login.principal))?,
        };
        Ok(QuorumInitiator { login: login.clone(), service_principal: cfg.quorum_sasl.service_principal().to_string(), realm })
    }

    /// The principal of the server at `host` (`_HOST` replaced).
    pub fn target(&self, host: &str) -> String {
        rzk_config::sasl::quorum_service_principal(&self.service_principal, host, None, &self.realm)
    }

    /// Logs in (on a blocking thread: it may ask the KDC for tickets) and makes the context
    /// with the server at `host`; the first token.
    #[cfg(feature = "kerberos")]
    pub async fn start(&self, host: &str) -> Result<(QuorumGssapiClient, Vec<u8>), String> {
        let target = self.target(host);
        let l = &self.login;
        let initiator = rzk_gss::InitiatorLogin {
            principal: Some(l.principal.clone()),
            keytab: l.keytab.clone(),
            use_ticket_cache: l.use_ticket_cache,
            ticket_cache: l.ticket_cache.clone(),
        };
        let (mech, first) = tokio::task::spawn_blocking(move || rzk_gss::SaslGssapiClient::start_for_principal(&initiator, &target))
            .await
            .map_err(|e| e.to_string())??;
        Ok((QuorumGssapiClient(mech), first))
    }

    #[cfg(not(feature = "kerberos"))]
    pub async fn start(&self, _host: &str) -> Result<(QuorumGssapiClient, Vec<u8>), String> {
        Err("this rzk was built without Kerberos support".into())
    }
}

#[cfg(feature = "kerberos")]
fn default_realm() -> Option<String> {
    rzk_gss::default_realm()
}

#[cfg(not(feature = "kerberos"))]
fn default_realm() -> Option<String> {
    None
}

/// A learner's GSSAPI login under way.
#[derive(Debug)]
pub struct QuorumGssapiClient(#[cfg(feature = "kerberos")] rzk_gss::SaslGssapiClient);

impl QuorumGssapiClient {
    /// The server's token in; the next token out, or `None` once complete.
    pub fn evaluate_challenge(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, String> {
        #[cfg(feature = "kerberos")]
        return self.0.evaluate_challenge(challenge);
        #[cfg(not(feature = "kerberos"))]
        {
            let _ = challenge;
            Err("this rzk was built without Kerberos support".into())
        }
    }

    /// Whether the last token has been sent.
    pub fn is_complete(&self) -> bool {
        #[cfg(feature = "kerberos")]
        return self.0.is_complete();
        #[cfg(not(feature = "kerberos"))]
        false
    }
}

#[cfg(feature = "kerberos")]
type Acquired = (std::sync::Arc<dyn crate::core::gssapi::GssAcceptor>, Option<String>);

#[cfg(feature = "kerberos")]
fn acceptor(k: &rzk_config::sasl::KerberosLogin) -> Result<Acquired, String> {
    let a = rzk_gss::Acceptor::new(&k.principal, k.keytab.as_deref())
        .map_err(|e| format!("the Kerberos login of principal {} (keyTab {:?}): {e}", k.principal, k.keytab))?;
    let realm = rzk_gss::default_realm();
    let acceptor = Acceptor { inner: a, default_realm: realm.clone() };
    Ok((std::sync::Arc::new(acceptor), realm))
}

#[cfg(not(feature = "kerberos"))]
fn acceptor(k: &rzk_config::sasl::KerberosLogin) -> Result<(std::sync::Arc<dyn crate::core::gssapi::GssAcceptor>, Option<String>), String> {
    Err(format!(
        "the JAAS section logs in with Kerberos (principal {}), but this rzk was built without Kerberos support: build it with `--features kerberos` (needs Debian's libkrb5-dev and libclang-dev)",
        k.principal
    ))
}

#[cfg(feature = "kerberos")]
#[derive(Debug)]
struct Acceptor {
    inner: rzk_gss::Acceptor,
    default_realm: Option<String>,
}

#[cfg(feature = "kerberos")]
impl crate::core::gssapi::GssAcceptor for Acceptor {
    fn new_context(&self) -> Box<dyn crate::core::gssapi::GssContext> {
        Box::new(Context(self.inner.context()))
    }
    fn default_realm(&self) -> Option<String> {
        self.default_realm.clone()
    }
}

#[cfg(feature = "kerberos")]
#[derive(Debug)]
struct Context(rzk_gss::ServerContext);

#[cfg(feature = "kerberos")]
impl crate::core::gssapi::GssContext for Context {
    fn accept(&mut self, token: &[u8]) -> Result<(Option<Vec<u8>>, bool), String> {
        self.0.accept(token)
    }
    fn source_name(&self) -> Result<String, String> {
        self.0.source_name()
    }
    fn wrap(&mut self, m: &[u8]) -> Result<Vec<u8>, String> {
        self.0.wrap(m)
    }
    fn unwrap(&mut self, t: &[u8]) -> Result<Vec<u8>, String> {
        self.0.unwrap(t)
    }
}
