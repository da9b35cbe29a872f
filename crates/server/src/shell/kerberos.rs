//! The server's Kerberos login for SASL GSSAPI: the JAAS server section's `Krb5LoginModule`
//! (principal and keytab, read by `rzk_config`) becomes a GSS-API acceptor credential
//! (`rzk_gss`, the system's MIT krb5), injected into the pure core as a
//! [`GssAcceptor`](crate::core::gssapi::GssAcceptor); the core runs the SASL exchange.
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
    if let Some(path) = cfg.system_properties.get(JAVA_KRB5_CONF) {
        // The library reads the environment; a property that disagrees would be ignored.
        if std::env::var("KRB5_CONFIG").ok().as_deref() != Some(path.as_str()) {
            return Err(format!(
                "{JAVA_KRB5_CONF}={path}: rzk's Kerberos library reads krb5.conf from the environment; set KRB5_CONFIG={path} as well (or remove the property)"
            ));
        }
    }
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
        "the JAAS server section logs in with Kerberos (principal {}), but this rzk was built without Kerberos support: build it with `--features kerberos` (needs Debian's libkrb5-dev and libclang-dev)",
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
