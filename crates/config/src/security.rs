//! Security settings: TLS on the client port (ZooKeeper's `ClientX509Util`, prefix
//! `zookeeper.ssl.`), the x509 auth provider, and the security keys rzk does not implement.
//!
//! This module owns two decisions:
//! * what the admin server's TLS settings mean ([`AdminTls`]: `admin.forceHttps`,
//!   `admin.portUnification`, `admin.needClientAuth` and the `ssl.quorum.*` stores);
//! * what the `zookeeper.ssl.*`, `zookeeper.client.portUnification`,
//!   `zookeeper.client.certReload`, `zookeeper.ssl.authProvider` and
//!   `zookeeper.X509AuthenticationProvider.superUser` system properties mean
//!   ([`ClientTls`]), with ZooKeeper 3.8's defaults;
//! * which settings that change who may connect or what is encrypted rzk cannot honour
//!   ([`unsupported_system_property`]). Such a key stops
//!   start-up with an error naming it: a coordination service that quietly drops its
//!   operator's security settings is worse than one that refuses to start. A boolean that
//!   turns such a feature *off* (`sslQuorum=false`) changes nothing and is accepted.
//!
//! Files are not read here (the crate is pure): the server loads the stores.

use std::path::{Path, PathBuf};

/// `X509Util.ClientAuth`: whether the TLS server asks for a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Do not ask for one.
    None,
    /// Ask; a client without one connects unauthenticated.
    Want,
    /// Require one (ZooKeeper's default).
    Need,
}

impl ClientAuth {
    /// `ClientAuth.fromPropertyValue`: empty means NEED, otherwise the name in any case.
    pub fn parse(v: &str) -> Result<Self, String> {
        match v.trim().to_ascii_uppercase().as_str() {
            "" | "NEED" => Ok(ClientAuth::Need),
            "WANT" => Ok(ClientAuth::Want),
            "NONE" => Ok(ClientAuth::None),
            _ => Err(format!("expected need, want or none, got \"{v}\"")),
        }
    }

    /// The setting's value as written in zoo.cfg.
    pub fn name(self) -> &'static str {
        match self {
            ClientAuth::None => "none",
            ClientAuth::Want => "want",
            ClientAuth::Need => "need",
        }
    }
}

/// `KeyStoreFileType`: the store formats ZooKeeper reads (BCFKS aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// PEM: a key store holds the private key and its certificate chain, a trust store
    /// certificates.
    Pem,
    /// PKCS#12 (`.p12`, `.pfx`).
    Pkcs12,
    /// The Java KeyStore format (`.jks`).
    Jks,
}

impl StoreType {
    /// A `*.type` value, case-insensitive as `KeyStoreFileType.fromPropertyValue`.
    pub fn parse(v: &str) -> Result<Self, String> {
        match v.trim().to_ascii_uppercase().as_str() {
            "PEM" => Ok(StoreType::Pem),
            "PKCS12" => Ok(StoreType::Pkcs12),
            "JKS" => Ok(StoreType::Jks),
            "BCFKS" => Err("BCFKS (Bouncy Castle FIPS) stores are not supported by rzk; use PEM, PKCS12 or JKS".into()),
            _ => Err(format!("expected PEM, PKCS12 or JKS, got \"{v}\"")),
        }
    }

    /// `KeyStoreFileType.fromFilename`: the type from the file's extension.
    pub fn from_file_name(path: &Path) -> Result<Self, String> {
        let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        match ext.as_str() {
            "pem" => Ok(StoreType::Pem),
            "p12" | "pfx" => Ok(StoreType::Pkcs12),
            "jks" => Ok(StoreType::Jks),
            "bcfks" => Err("BCFKS (Bouncy Castle FIPS) stores are not supported by rzk; use PEM, PKCS12 or JKS".into()),
            _ => Err(format!(
                "unable to auto-detect the store type of {} from its extension (.pem, .p12, .pfx, .jks); set the .type key",
                path.display()
            )),
        }
    }
}

/// A key store or trust store: `ssl.keyStore.*` or `ssl.trustStore.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `*.location`.
    pub location: PathBuf,
    /// `*.password` (may be empty, as for an unencrypted PEM key).
    pub password: Option<String>,
    /// `*.passwordPath`: a file holding the password (used when `password` is not set).
    pub password_path: Option<PathBuf>,
    /// `*.type`, or inferred from the file name.
    pub store_type: StoreType,
    /// The system property of the location, for error messages
    /// (`zookeeper.ssl.keyStore.location`).
    pub location_key: String,
}

/// TLS on the client port, as ZooKeeper's `NettyServerCnxnFactory` with `ClientX509Util`
/// configures it; the same settings under `ssl.quorum.` are the quorum's (`QuorumX509Util`,
/// see [`QuorumTls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// The prefix of the settings' zoo.cfg keys, for error messages: `ssl` (the client
    /// port) or `ssl.quorum` (the quorum and election ports).
    pub key_prefix: String,
    /// `ssl.keyStore.*`: the server's own key and certificate chain.
    pub key_store: Option<StoreConfig>,
    /// `ssl.trustStore.*`: the CAs client certificates must chain to.
    pub trust_store: Option<StoreConfig>,
    /// `ssl.clientAuth` (default need).
    pub client_auth: ClientAuth,
    /// `ssl.protocol` (default TLSv1.2, as ZooKeeper 3.8).
    pub protocol: String,
    /// `ssl.enabledProtocols`: the protocol versions offered (default: `protocol` alone).
    pub enabled_protocols: Vec<String>,
    /// `ssl.ciphersuites`, Java names; `None`: ZooKeeper's default list (the ECDHE GCM
    /// suites; its CBC suites are not offered by rzk's TLS stack) plus TLS 1.3's.
    pub ciphersuites: Option<Vec<String>>,
    /// `ssl.hostnameVerification` (default true). On the server side of the client port
    /// ZooKeeper never checks client host names (`ClientX509Util.shouldVerifyClientHostname`
    /// is false), so this only matters to clients checking the server.
    pub hostname_verification: bool,
    /// `ssl.authProvider`: the scheme of the provider that authenticates client
    /// certificates (default and only value: `x509`).
    pub auth_provider: String,
    /// `X509AuthenticationProvider.superUser`: a certificate subject that is super.
    pub x509_super_user: Option<String>,
    /// `client.portUnification`: the plaintext client port also accepts TLS.
    pub port_unification: bool,
    /// `client.certReload`: reload the key and trust stores when their files change.
    pub cert_reload: bool,
    /// `ssl.handshakeDetectionTimeoutMillis` (default 5000): how long a unified port waits
    /// for a client's first byte.
    pub handshake_detection_timeout_ms: u32,
}

impl Default for ClientTls {
    fn default() -> Self {
        ClientTls {
            key_prefix: "ssl".to_string(),
            key_store: None,
            trust_store: None,
            client_auth: ClientAuth::Need,
            protocol: DEFAULT_PROTOCOL.to_string(),
            enabled_protocols: vec![DEFAULT_PROTOCOL.to_string()],
            ciphersuites: None,
            hostname_verification: true,
            auth_provider: "x509".to_string(),
            x509_super_user: None,
            port_unification: false,
            cert_reload: false,
            handshake_detection_timeout_ms: 5000,
        }
    }
}

impl ClientTls {
    /// The zoo.cfg key of one of these settings (`ssl.ciphersuites`, `ssl.quorum.ciphersuites`).
    pub fn key(&self, name: &str) -> String {
        format!("{}.{name}", self.key_prefix)
    }
}

/// TLS between the servers, as ZooKeeper 3.8's `QuorumPeer` with `QuorumX509Util` sets it
/// up: `sslQuorum` (the quorum and election ports speak TLS, and this server connects to
/// the others with TLS), `portUnification` (those ports also take plaintext, told apart by
/// the first bytes, so that an ensemble moves to TLS by rolling restarts),
/// `sslQuorumReloadCertFiles`, and the `ssl.quorum.*` stores and settings. Between servers
/// both sides present certificates (`ssl.quorum.clientAuth`, default need) and, by default,
/// each checks that the other's certificate names its address (`ssl.quorum.hostnameVerification`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumTls {
    /// `sslQuorum`.
    pub ssl_quorum: bool,
    /// `portUnification`.
    pub port_unification: bool,
    /// `ssl.quorum.*`; `tls.cert_reload` is `sslQuorumReloadCertFiles`.
    pub tls: ClientTls,
    /// `ssl.quorum.allowReverseDnsLookup` (default true for the quorum): when a peer's
    /// certificate does not name its address, a name for that address may do.
    pub allow_reverse_dns_lookup: bool,
}

impl QuorumTls {
    /// Whether the quorum and election ports speak TLS at all (accepting or connecting).
    pub fn enabled(&self) -> bool {
        self.ssl_quorum || self.port_unification
    }
}

/// The system properties [`QuorumTls`] is read from (with `sslQuorum` or `portUnification`).
pub const QUORUM_TLS_PROPERTIES: &[&str] = &[
    "zookeeper.ssl.quorum.keyStore.location",
    "zookeeper.ssl.quorum.keyStore.password",
    "zookeeper.ssl.quorum.keyStore.passwordPath",
    "zookeeper.ssl.quorum.keyStore.type",
    "zookeeper.ssl.quorum.trustStore.location",
    "zookeeper.ssl.quorum.trustStore.password",
    "zookeeper.ssl.quorum.trustStore.passwordPath",
    "zookeeper.ssl.quorum.trustStore.type",
    "zookeeper.ssl.quorum.clientAuth",
    "zookeeper.ssl.quorum.protocol",
    "zookeeper.ssl.quorum.enabledProtocols",
    "zookeeper.ssl.quorum.ciphersuites",
    "zookeeper.ssl.quorum.hostnameVerification",
    "zookeeper.ssl.quorum.handshakeDetectionTimeoutMillis",
    "zookeeper.ssl.quorum.allowReverseDnsLookup",
    "zookeeper.ssl.quorum.crl",
    "zookeeper.ssl.quorum.ocsp",
];

/// SASL between the servers (`QuorumAuth`), DIGEST-MD5 or Kerberos (GSSAPI):
/// `quorum.auth.enableSasl` makes this server ready to authenticate;
/// `quorum.auth.learnerRequireSasl` makes it authenticate when it connects to another server
/// (election and quorum ports), with the login of the JAAS section
/// `quorum.auth.learner.saslLoginContext` (`QuorumLearner`: a `DigestLoginModule`'s
/// `username` / `password`, or a `Krb5LoginModule`'s principal, whose service ticket is for
/// `quorum.auth.kerberos.servicePrincipal` with `_HOST` replaced by the host connected to);
/// `quorum.auth.serverRequireSasl` makes it refuse a server that does not, checking against
/// `quorum.auth.server.saslLoginContext` (`QuorumServer`: `user_NAME` entries, or a
/// `Krb5LoginModule`'s service principal and keytab, with which the learner's principal must
/// be its own authorization id and name a `server.N` host).
#[derive(Clone, PartialEq, Eq)]
pub struct QuorumSasl {
    /// `quorum.auth.enableSasl`.
    pub enabled: bool,
    /// `quorum.auth.learnerRequireSasl`.
    pub learner_require: bool,
    /// `quorum.auth.serverRequireSasl`.
    pub server_require: bool,
    /// `quorum.auth.learner.saslLoginContext` (default `QuorumLearner`).
    pub learner_login_context: String,
    /// `quorum.auth.server.saslLoginContext` (default `QuorumServer`).
    pub server_login_context: String,
    /// The learner's login (username, password), read from the JAAS file by `load`.
    pub learner_credentials: Option<(String, String)>,
    /// The users a server accepts (name → password), read from the JAAS file by `load`.
    pub server_users: Option<std::collections::BTreeMap<String, String>>,
    /// The learner's Kerberos login (a `Krb5LoginModule` in its section), instead of
    /// `learner_credentials`.
    pub learner_kerberos: Option<crate::sasl::KerberosInitiator>,
    /// The server's Kerberos login (a `Krb5LoginModule` in its section): learners log in
    /// with GSSAPI, and `server_users` are not used.
    pub server_kerberos: Option<crate::sasl::KerberosLogin>,
    /// `quorum.auth.kerberos.servicePrincipal` as set (`None`: ZooKeeper's default,
    /// [`QUORUM_SERVICE_PRINCIPAL_DEFAULT`]).
    pub kerberos_service_principal: Option<String>,
}

/// `QuorumAuth.QUORUM_KERBEROS_SERVICE_PRINCIPAL_DEFAULT_VALUE`.
pub const QUORUM_SERVICE_PRINCIPAL_DEFAULT: &str = "zkquorum/localhost";

impl QuorumSasl {
    /// `quorum.auth.kerberos.servicePrincipal`, or its default.
    pub fn service_principal(&self) -> &str {
        self.kerberos_service_principal.as_deref().unwrap_or(QUORUM_SERVICE_PRINCIPAL_DEFAULT)
    }
}

impl Default for QuorumSasl {
    fn default() -> Self {
        QuorumSasl {
            enabled: false,
            learner_require: false,
            server_require: false,
            learner_login_context: "QuorumLearner".to_string(),
            server_login_context: "QuorumServer".to_string(),
            learner_credentials: None,
            server_users: None,
            learner_kerberos: None,
            server_kerberos: None,
            kerberos_service_principal: None,
        }
    }
}

impl std::fmt::Debug for QuorumSasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumSasl")
            .field("enabled", &self.enabled)
            .field("learner_require", &self.learner_require)
            .field("server_require", &self.server_require)
            .field("learner_login_context", &self.learner_login_context)
            .field("server_login_context", &self.server_login_context)
            .field("learner", &self.learner_credentials.as_ref().map(|(u, _)| u))
            .field("server_users", &self.server_users.as_ref().map(|u| u.keys().collect::<Vec<_>>()))
            .field("learner_kerberos", &self.learner_kerberos)
            .field("server_kerberos", &self.server_kerberos)
            .field("kerberos_service_principal", &self.kerberos_service_principal)
            .finish()
    }
}

/// TLS on the AdminServer, as ZooKeeper 3.9's `JettyAdminServer` configures it: on with
/// `admin.forceHttps` (TLS only) or `admin.portUnification` (TLS and plain HTTP on one
/// port), with the key and trust stores of `QuorumX509Util` (`ssl.quorum.keyStore.*`,
/// `ssl.quorum.trustStore.*`), not the client port's. Jetty's defaults stand for every
/// other TLS choice (protocols, suites); a client certificate is asked for only with
/// `admin.needClientAuth` (3.9; 3.8 never asks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminTls {
    /// `admin.forceHttps`: the admin port speaks TLS only.
    pub force_https: bool,
    /// `admin.portUnification`: the admin port takes TLS and plain HTTP.
    pub port_unification: bool,
    /// `admin.needClientAuth`: a TLS client must present a certificate the trust store
    /// vouches for.
    pub need_client_auth: bool,
    /// `ssl.quorum.keyStore.*`.
    pub key_store: Option<StoreConfig>,
    /// `ssl.quorum.trustStore.*`.
    pub trust_store: Option<StoreConfig>,
}

impl AdminTls {
    /// Whether the admin port speaks TLS at all.
    pub fn enabled(&self) -> bool {
        self.force_https || self.port_unification
    }
}

/// The system properties [`AdminTls`] is read from.
pub const ADMIN_TLS_PROPERTIES: &[&str] = &[
    "zookeeper.admin.forceHttps",
    "zookeeper.admin.portUnification",
    "zookeeper.admin.needClientAuth",
    "zookeeper.ssl.quorum.keyStore.location",
    "zookeeper.ssl.quorum.keyStore.password",
    "zookeeper.ssl.quorum.keyStore.passwordPath",
    "zookeeper.ssl.quorum.keyStore.type",
    "zookeeper.ssl.quorum.trustStore.location",
    "zookeeper.ssl.quorum.trustStore.password",
    "zookeeper.ssl.quorum.trustStore.passwordPath",
    "zookeeper.ssl.quorum.trustStore.type",
];

/// `X509Util.DEFAULT_PROTOCOL` in ZooKeeper 3.8.
pub const DEFAULT_PROTOCOL: &str = "TLSv1.2";

/// The auth provider classes whose schemes rzk has built in.
pub const BUILT_IN_PROVIDERS: &[&str] = &[
    "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
    "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
    "org.apache.zookeeper.server.auth.IPAuthenticationProvider",
];

/// Java's `Boolean.parseBoolean`: "true" in any case is true, anything else false.
fn java_true(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case("true")
}

/// A system property (full name, e.g. `zookeeper.authProvider.1`) that asks for security
/// rzk does not implement: the error message, or `None`.
/// `admin_tls_on`: whether the admin server speaks TLS, which uses the `ssl.quorum.*`
/// key and trust stores; `quorum_tls_on`: whether the quorum speaks TLS (`sslQuorum` or
/// `portUnification`), which reads every [`QUORUM_TLS_PROPERTIES`].
pub fn unsupported_system_property(name: &str, value: &str, admin_tls_on: bool, quorum_tls_on: bool) -> Option<String> {
    let k = name.strip_prefix("zookeeper.").unwrap_or(name);
    let on = java_true(value);
    let msg: String = if k.starts_with("authProvider.") {
        let class = value.trim();
        if BUILT_IN_PROVIDERS.contains(&class) {
            return None;
        }
        if class == crate::sasl::SASL_PROVIDER_CLASS {
            return None;
        }
        format!("the auth provider class {class} is not available in rzk (built in: x509, digest, ip, sasl)")
    } else if k == "DigestAuthenticationProvider.enabled" && value.trim().eq_ignore_ascii_case("false") {
        "turning the digest provider off is not supported by rzk (digest auth and ACLs would keep working)".into()
    } else if k == "DigestAuthenticationProvider.digestAlg" && !matches!(value.trim().to_ascii_uppercase().as_str(), "SHA1" | "SHA-1" | "")
    {
        format!("digest algorithm {:?}: rzk computes digest ids with SHA1 only", value.trim())
    } else if k == "requireClientAuthScheme" {
        "requireClientAuthScheme is not supported by rzk (nor read by ZooKeeper 3.8); use enforce.auth.enabled=true and enforce.auth.schemes".into()
    } else if (k == "ssl.quorum.crl" || k == "ssl.quorum.ocsp") && on {
        format!("certificate revocation checking ({k}) is not supported by rzk yet")
    } else if k.starts_with("ssl.quorum.") {
        if admin_tls_on && ADMIN_TLS_PROPERTIES.contains(&name) {
            return None;
        }
        // Read (or, with neither sslQuorum nor portUnification, unused: logged by the
        // parser, as ZooKeeper leaves them unused), so an operator can put the stores in
        // place before a rolling move to TLS.
        let _ = quorum_tls_on;
        if QUORUM_TLS_PROPERTIES.contains(&name) {
            return None;
        }
        format!("{k} is not a quorum TLS setting rzk knows")
    } else if k.starts_with("kerberos.") && !matches!(k, "kerberos.removeHostFromPrincipal" | "kerberos.removeRealmFromPrincipal") {
        format!("{k} is not a Kerberos setting rzk knows (it reads kerberos.removeHostFromPrincipal and kerberos.removeRealmFromPrincipal)")
    } else if k == "server.principal" {
        "zookeeper.server.principal is a client-side setting (the principal a client expects of the server); the server's principal is the JAAS server section's".into()
    } else if k.starts_with("sasl.") && k != "sasl.serverconfig" {
        // zookeeper.sasl.client / clientconfig / client.username are client-side settings.
        if matches!(k, "sasl.client" | "sasl.clientconfig" | "sasl.client.username" | "sasl.client.canonicalize.hostname") {
            return None;
        }
        format!("{k} is not a SASL setting rzk knows (it reads zookeeper.sasl.serverconfig)")
    } else if (k == "ssl.crl" || k == "ssl.ocsp") && on {
        format!("certificate revocation checking ({k}) is not supported by rzk yet")
    } else if k == "ssl.context.supplier.class" {
        "a Java SSLContext supplier class has no meaning for rzk; configure the stores instead".into()
    } else if k == "fips-mode" && on {
        "FIPS mode is not supported by rzk".into()
    } else if k.starts_with("X509AuthenticationProvider.") && k != "X509AuthenticationProvider.superUser" {
        format!("{k} is not a setting of ZooKeeper 3.8's x509 provider that rzk knows")
    } else {
        return None;
    };
    Some(format!("{msg}; remove the key (rzk refuses to start rather than run without it)"))
}

/// The `zookeeper.ssl.*` and related system properties rzk reads into [`ClientTls`].
pub const CLIENT_TLS_PROPERTIES: &[&str] = &[
    "zookeeper.ssl.keyStore.location",
    "zookeeper.ssl.keyStore.password",
    "zookeeper.ssl.keyStore.passwordPath",
    "zookeeper.ssl.keyStore.type",
    "zookeeper.ssl.trustStore.location",
    "zookeeper.ssl.trustStore.password",
    "zookeeper.ssl.trustStore.passwordPath",
    "zookeeper.ssl.trustStore.type",
    "zookeeper.ssl.clientAuth",
    "zookeeper.ssl.protocol",
    "zookeeper.ssl.enabledProtocols",
    "zookeeper.ssl.ciphersuites",
    "zookeeper.ssl.hostnameVerification",
    "zookeeper.ssl.authProvider",
    "zookeeper.ssl.handshakeDetectionTimeoutMillis",
    "zookeeper.ssl.allowReverseDnsLookup",
    "zookeeper.ssl.crl",
    "zookeeper.ssl.ocsp",
    "zookeeper.client.portUnification",
    "zookeeper.client.certReload",
    "zookeeper.X509AuthenticationProvider.superUser",
];

/// Splits a comma-separated Java list (`ssl.enabledProtocols`, `ssl.ciphersuites`).
pub fn split_list(v: &str) -> Vec<String> {
    v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}
