//! TLS on the client port, as ZooKeeper's `NettyServerCnxnFactory` with `ClientX509Util`
//! does it: the key and trust stores (PEM, PKCS12, JKS), `ssl.clientAuth`, the protocol
//! versions and cipher suites, reloading the stores when their files change
//! (`client.certReload`), and the x509 auth provider (the client certificate's subject, as
//! Java's `X500Principal.getName()` prints it, becomes the session's `x509` id).
//!
//! This module owns the rustls [`ServerConfig`](rustls::ServerConfig) the listeners use
//! ([`TlsContext`]) and the handshake ([`accept`]); the connection after it is the same
//! code as for plaintext (`conn::run` is generic over the stream). The same stores and
//! settings under `ssl.quorum.*` make the quorum's TLS (`QuorumX509Util`): a context
//! [`TlsContext::for_peers`] has a client configuration too, for connecting to another
//! server with this server's certificate, and [`check_peer_name`] is the hostname
//! verification both ends of a quorum connection make (`shell::peer` uses them).
//!
//! Differences from ZooKeeper, each an error at start-up rather than a silent change:
//! rustls offers TLS 1.2 and 1.3 only, and no CBC cipher suites; an encrypted PEM private key
//! must be PKCS#8 (`ENCRYPTED PRIVATE KEY`, not OpenSSL's legacy `Proc-Type` form); there is
//! no JDK default trust store, so `ssl.clientAuth` need/want requires `ssl.trustStore.location`.

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, SupportedCipherSuite, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rzk_config::{ClientAuth, ClientTls, StoreConfig, StoreType};
use rzk_proto::Id;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// How long a TLS handshake may take before the connection is dropped (Netty's
/// `SslHandler` default).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the store files are checked for changes with `client.certReload=true`.
pub const RELOAD_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Why TLS could not be set up. Each names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A key or trust store could not be read or decoded.
    #[error("{key}={path}: {message}")]
    Store { key: String, path: String, message: String },
    /// A setting has a value rzk's TLS stack cannot honour.
    #[error("{key}: {message}")]
    Setting { key: String, message: String },
}

fn setting(key: &str, message: impl Into<String>) -> TlsError {
    TlsError::Setting { key: key.to_string(), message: message.into() }
}

fn store_err(s: &StoreConfig, message: impl Into<String>) -> TlsError {
    TlsError::Store { key: s.location_key.clone(), path: s.location.display().to_string(), message: message.into() }
}

/// The TLS settings of the client listeners and the current rustls configuration, which
/// a reload replaces for new connections (existing ones keep theirs, as in ZooKeeper).
pub struct TlsContext {
    settings: ClientTls,
    current: RwLock<Arc<rustls::ServerConfig>>,
    /// Between servers: the configuration for connecting to another server.
    client: Option<RwLock<Arc<rustls::ClientConfig>>>,
}

impl TlsContext {
    /// Loads the stores and builds the configuration; any problem is a start-up error.
    pub fn new(settings: &ClientTls) -> Result<Arc<TlsContext>, TlsError> {
        let cfg = server_config(settings)?;
        Ok(Arc::new(TlsContext { settings: settings.clone(), current: RwLock::new(Arc::new(cfg)), client: None }))
    }

    /// A context for the quorum and election ports: the server configuration for accepting
    /// and the client one for connecting, from the same stores.
    pub fn for_peers(settings: &ClientTls) -> Result<Arc<TlsContext>, TlsError> {
        let cfg = server_config(settings)?;
        let client = client_config(settings)?;
        Ok(Arc::new(TlsContext {
            settings: settings.clone(),
            current: RwLock::new(Arc::new(cfg)),
            client: Some(RwLock::new(Arc::new(client))),
        }))
    }

    /// The configuration for connecting to another server (a context made by
    /// [`TlsContext::for_peers`]).
    pub fn client_config(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.client.as_ref().map(|c| c.read().expect("tls config lock").clone())
    }

    /// The configuration for a new connection.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.current.read().expect("tls config lock").clone()
    }

    /// The settings this context was built from.
    pub fn settings(&self) -> &ClientTls {
        &self.settings
    }

    /// Rebuilds the configuration from the store files; on failure the old one stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let cfg = server_config(&self.settings)?;
        let client = self.client.as_ref().map(|_| client_config(&self.settings)).transpose()?;
        *self.current.write().expect("tls config lock") = Arc::new(cfg);
        if let (Some(slot), Some(c)) = (&self.client, client) {
            *slot.write().expect("tls config lock") = Arc::new(c);
        }
        Ok(())
    }
}

/// With `client.certReload=true` (`sslQuorumReloadCertFiles=true` for the quorum), checks the store files every [`RELOAD_POLL_INTERVAL`]
/// and reloads when one changed (ZooKeeper 3.8.5+ watches the files; a changed length or
/// modification time here stands for its modify/create events). Returns at once without
/// the setting; otherwise runs until `shutdown`. A store caught half-written fails to load
/// (logged, the old one stays) and is loaded at the next check.
pub async fn reload_on_change(ctx: Arc<TlsContext>, mut shutdown: watch::Receiver<bool>) {
    if !ctx.settings.cert_reload {
        return;
    }
    let files: Vec<std::path::PathBuf> =
        [&ctx.settings.key_store, &ctx.settings.trust_store].into_iter().flatten().map(|s| s.location.clone()).collect();
    let stamp = move || files.iter().map(|f| std::fs::metadata(f).ok().map(|m| (m.len(), m.modified().ok()))).collect::<Vec<_>>();
    {
        let mut last = stamp();
        let mut every = tokio::time::interval(RELOAD_POLL_INTERVAL);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = shutdown.changed() => return,
            }
            let now = stamp();
            if now != last {
                last = now;
                match ctx.reload() {
                    Ok(()) => tracing::info!("TLS key/trust store changed on disk: reloaded for new connections"),
                    Err(e) => {
                        tracing::error!(error = %e, "TLS key/trust store changed on disk but cannot be loaded; keeping the previous one")
                    }
                }
            }
        }
    }
}

/// What a completed handshake yields: the stream and the ids the x509 provider gives the
/// connection (none without a client certificate).
pub type Accepted = (tokio_rustls::server::TlsStream<TcpStream>, Vec<Id>);

/// Runs the server side of a handshake (bounded by [`HANDSHAKE_TIMEOUT`]), then
/// authenticates a client certificate as ZooKeeper's `X509AuthenticationProvider`: the
/// subject DN is the `x509` id, and also a `super` id when it equals
/// `X509AuthenticationProvider.superUser`. The error is the reason to log.
pub async fn accept(ctx: &TlsContext, stream: TcpStream) -> Result<Accepted, String> {
    let acceptor = tokio_rustls::TlsAcceptor::from(ctx.config());
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Err(_) => return Err(format!("TLS handshake not finished within {} s", HANDSHAKE_TIMEOUT.as_secs())),
        Ok(Err(e)) => return Err(format!("TLS handshake failed: {e}")),
        Ok(Ok(t)) => t,
    };
    let ids = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
        None => Vec::new(),
        Some(cert) => x509_ids(cert.as_ref(), ctx.settings.x509_super_user.as_deref())?,
    };
    Ok((tls, ids))
}

/// The auth ids of a verified client certificate (DER): `super:<dn>` first when the subject
/// is the configured super user, then `x509:<dn>`, in ZooKeeper's order.
pub fn x509_ids(der: &[u8], super_user: Option<&str>) -> Result<Vec<Id>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("client certificate unreadable: {e}"))?;
    let dn = rfc2253(cert.subject());
    let mut ids = Vec::new();
    if super_user == Some(dn.as_str()) {
        tracing::info!(id = %dn, "Authenticated Id as super user");
        ids.push(Id::new("super", &dn));
    }
    tracing::info!(id = %dn, scheme = "x509", "Authenticated Id for Scheme");
    ids.push(Id::new("x509", &dn));
    Ok(ids)
}

/// A distinguished name as Java's `X500Principal.getName()` (RFC 2253) prints it: RDNs
/// last first, separated by `,`; multi-valued RDNs joined by `+`; the keywords CN, C, L,
/// ST, O, OU, STREET, DC and UID, other attributes as `<oid>=#<hex of the DER value>`.
pub fn rfc2253(name: &x509_parser::x509::X509Name<'_>) -> String {
    let rdns: Vec<String> = name.iter_rdn().map(|rdn| rdn.iter().map(ava_rfc2253).collect::<Vec<_>>().join("+")).collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn ava_rfc2253(ava: &x509_parser::x509::AttributeTypeAndValue<'_>) -> String {
    let oid = ava.attr_type().to_id_string();
    let keyword = match oid.as_str() {
        "2.5.4.3" => Some("CN"),
        "2.5.4.6" => Some("C"),
        "2.5.4.7" => Some("L"),
        "2.5.4.8" => Some("ST"),
        "2.5.4.10" => Some("O"),
        "2.5.4.11" => Some("OU"),
        "2.5.4.9" => Some("STREET"),
        "0.9.2342.19200300.100.1.25" => Some("DC"),
        "0.9.2342.19200300.100.1.1" => Some("UID"),
        _ => None,
    };
    let value = ava.attr_value();
    let text = match value.tag().0 {
        // UTF8String, NumericString, PrintableString, IA5String, VisibleString
        12 | 18 | 19 | 22 | 26 => std::str::from_utf8(value.data).ok().map(str::to_string),
        // TeletexString, read as Latin-1 as Java does
        20 => Some(value.data.iter().map(|b| *b as char).collect()),
        // BMPString: UTF-16BE
        30 => {
            let units: Vec<u16> = value.data.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])).collect();
            String::from_utf16(&units).ok()
        }
        // UniversalString: UTF-32BE
        28 => value.data.chunks(4).map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        _ => None,
    };
    match (keyword, text) {
        (Some(k), Some(t)) => format!("{k}={}", escape_rfc2253(&t)),
        (k, _) => {
            let mut der = Vec::with_capacity(value.data.len() + 4);
            let tag = value.tag().0 as u8 | if value.header.is_constructed() { 0x20 } else { 0 };
            der.push(tag);
            let len = value.data.len();
            if len < 0x80 {
                der.push(len as u8);
            } else {
                let bytes: Vec<u8> = len.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
                der.push(0x80 | bytes.len() as u8);
                der.extend(bytes);
            }
            der.extend_from_slice(value.data);
            let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}=#{hex}", k.map(str::to_string).unwrap_or(oid))
        }
    }
}

/// RFC 2253 escaping as Java's `AVA.toRFC2253String`: a backslash before `,=+<>#;"\`,
/// before a leading or trailing space; NUL as `\00`.
fn escape_rfc2253(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        match c {
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == 0 || i + 1 == n => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// The password of a store: `*.password`, else the content of `*.passwordPath`, else empty.
fn password(s: &StoreConfig) -> Result<String, TlsError> {
    if let Some(p) = &s.password {
        return Ok(p.clone());
    }
    match &s.password_path {
        Some(path) => std::fs::read_to_string(path)
            .map(|p| p.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| store_err(s, format!("cannot read the password file {}: {e}", path.display()))),
        None => Ok(String::new()),
    }
}

fn read(s: &StoreConfig) -> Result<Vec<u8>, TlsError> {
    std::fs::read(&s.location).map_err(|e| store_err(s, format!("cannot read: {e}")))
}

/// The server's certificate chain and private key from a key store.
pub fn load_key_store(s: &StoreConfig) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let bytes = read(s)?;
    let pw = password(s)?;
    match s.store_type {
        StoreType::Pem => {
            let certs = pem_certs(s, &bytes)?;
            let key = match encrypted_pem_key(&bytes) {
                // PKCS#8 "ENCRYPTED PRIVATE KEY", decrypted with the store's password as
                // ZooKeeper's PemReader does.
                Some(der) => decrypt_pkcs8(s, &der, &pw)?,
                None if bytes.windows(b"Proc-Type: 4,ENCRYPTED".len()).any(|w| w == b"Proc-Type: 4,ENCRYPTED") => {
                    return Err(store_err(
                        s,
                        "a legacy OpenSSL-encrypted PEM key (Proc-Type: 4,ENCRYPTED) is not supported; convert it to PKCS#8 (openssl pkcs8 -topk8)",
                    ));
                }
                None => PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| store_err(s, format!("no private key found: {e}")))?,
            };
            if certs.is_empty() {
                return Err(store_err(s, "no certificate found"));
            }
            Ok((certs, key))
        }
        StoreType::Pkcs12 => {
            let ks = p12_keystore::KeyStore::from_pkcs12(&bytes, &pw)
                .map_err(|e| store_err(s, format!("cannot open the PKCS12 store (wrong password?): {e}")))?;
            let (_, chain) = ks.private_key_chain().ok_or_else(|| store_err(s, "the PKCS12 store holds no private key"))?;
            let certs = chain.chain().iter().map(|c| CertificateDer::from(c.as_der().to_vec())).collect::<Vec<_>>();
            if certs.is_empty() {
                return Err(store_err(s, "the private key in the PKCS12 store has no certificate"));
            }
            Ok((certs, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().to_vec()))))
        }
        StoreType::Jks => {
            let ks = load_jks(s, &bytes, &pw)?;
            let alias = ks
                .aliases()
                .into_iter()
                .find(|a| ks.is_private_key_entry(a))
                .ok_or_else(|| store_err(s, "the JKS store holds no private key"))?;
            let entry = ks
                .get_private_key_entry(&alias, pw.as_bytes())
                .map_err(|e| store_err(s, format!("cannot decrypt the private key {alias:?}: {e}")))?;
            let certs = entry.certificate_chain.iter().map(|c| CertificateDer::from(c.content.clone())).collect::<Vec<_>>();
            Ok((certs, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(entry.private_key.clone()))))
        }
    }
}

/// The trusted CA certificates of a trust store.
pub fn load_trust_store(s: &StoreConfig) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(s)?;
    let pw = password(s)?;
    let certs = match s.store_type {
        StoreType::Pem => pem_certs(s, &bytes)?,
        StoreType::Pkcs12 => {
            let ks = p12_keystore::KeyStore::from_pkcs12(&bytes, &pw)
                .map_err(|e| store_err(s, format!("cannot open the PKCS12 store (wrong password?): {e}")))?;
            ks.entries()
                .filter_map(|(_, e)| match e {
                    p12_keystore::KeyStoreEntry::Certificate(c) => Some(CertificateDer::from(c.as_der().to_vec())),
                    _ => None,
                })
                .collect()
        }
        StoreType::Jks => {
            let ks = load_jks(s, &bytes, &pw)?;
            ks.aliases()
                .into_iter()
                .filter_map(|a| ks.get_trusted_certificate_entry(&a).ok())
                .map(|e| CertificateDer::from(e.certificate.content))
                .collect()
        }
    };
    if certs.is_empty() {
        return Err(store_err(s, "the trust store holds no certificate"));
    }
    Ok(certs)
}

/// The DER of a PEM `ENCRYPTED PRIVATE KEY` block, if the file has one.
fn encrypted_pem_key(bytes: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    let text = std::str::from_utf8(bytes).ok()?;
    let start = text.find(BEGIN)? + BEGIN.len();
    let end = start + text[start..].find(END)?;
    let b64: String = text[start..end].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// Decrypts a PKCS#8 `EncryptedPrivateKeyInfo` (PBES2) with the store's password.
fn decrypt_pkcs8(s: &StoreConfig, der: &[u8], password: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der).map_err(|e| store_err(s, format!("bad encrypted private key: {e}")))?;
    let doc =
        info.decrypt(password).map_err(|e| store_err(s, format!("cannot decrypt the private key (wrong ssl.keyStore.password?): {e}")))?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(doc.as_bytes().to_vec())))
}

fn pem_certs(s: &StoreConfig, bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_slice_iter(bytes).collect::<Result<Vec<_>, _>>().map_err(|e| store_err(s, format!("bad PEM certificate: {e}")))
}

fn load_jks(s: &StoreConfig, bytes: &[u8], pw: &str) -> Result<jks::KeyStore, TlsError> {
    let mut ks = jks::KeyStore::new();
    ks.load(bytes, pw.as_bytes()).map_err(|e| store_err(s, format!("cannot open the JKS store (wrong password?): {e}")))?;
    Ok(ks)
}

/// `ssl.enabledProtocols` (default: `ssl.protocol`) as rustls versions.
pub fn protocol_versions(t: &ClientTls) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let mut out: Vec<&'static SupportedProtocolVersion> = Vec::new();
    for p in &t.enabled_protocols {
        let v: &[&'static SupportedProtocolVersion] = match p.as_str() {
            "TLSv1.3" => &[&rustls::version::TLS13],
            "TLSv1.2" => &[&rustls::version::TLS12],
            "TLS" => &[&rustls::version::TLS13, &rustls::version::TLS12],
            other => {
                let key = if t.enabled_protocols == [t.protocol.clone()] { t.key("protocol") } else { t.key("enabledProtocols") };
                return Err(setting(&key, format!("{other:?}: rzk speaks TLSv1.2 and TLSv1.3 only")));
            }
        };
        for v in v {
            if !out.iter().any(|o| o.version == v.version) {
                out.push(v);
            }
        }
    }
    Ok(out)
}

/// The rustls name of a cipher suite given by its Java (IANA) name: TLS 1.3's Java names
/// lack rustls's `TLS13_` prefix.
pub fn rustls_suite_name(java: &str) -> String {
    match java.strip_prefix("TLS_") {
        Some(rest) if rest.starts_with("AES_") || rest.starts_with("CHACHA20_") => {
            format!("TLS13_{rest}")
        }
        _ => java.to_string(),
    }
}

/// ZooKeeper 3.8's default suites on Java 9+ that rustls offers (its CBC ones it does not).
const DEFAULT_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
];

/// `ssl.ciphersuites` as rustls suites; a name rustls cannot do is an error naming the key.
/// Without the key: [`DEFAULT_SUITES`], plus TLS 1.3's suites when TLS 1.3 is enabled.
pub fn cipher_suites(t: &ClientTls, provider: &CryptoProvider) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    let find = |java: &str| {
        let want = rustls_suite_name(java);
        provider.cipher_suites.iter().copied().find(|s| format!("{:?}", s.suite()) == want)
    };
    match &t.ciphersuites {
        Some(names) => names
            .iter()
            .map(|n| {
                find(n)
                    .ok_or_else(|| setting(&t.key("ciphersuites"), format!("{n:?} is not a cipher suite rzk's TLS stack (rustls) offers")))
            })
            .collect(),
        None => {
            let mut out: Vec<SupportedCipherSuite> = DEFAULT_SUITES.iter().filter_map(|n| find(n)).collect();
            out.extend(provider.cipher_suites.iter().copied().filter(|s| s.version() == &rustls::version::TLS13));
            Ok(out)
        }
    }
}

/// rustls with *ring*: it builds with cargo and a C compiler alone (aws-lc-rs needs more
/// of a toolchain). rustls 0.23.48 deprecates it for lacking post-quantum key exchange,
/// which ZooKeeper 3.8's JDK TLS does not offer either.
#[allow(deprecated)]
pub fn crypto_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The protocol versions and cipher suites of `t`, checked to work together, as a provider.
fn versions_and_provider(t: &ClientTls) -> Result<(Vec<&'static SupportedProtocolVersion>, Arc<CryptoProvider>), TlsError> {
    let mut provider = crypto_provider();
    let versions = protocol_versions(t)?;
    let suites = cipher_suites(t, &provider)?;
    if !suites.iter().any(|s| versions.iter().any(|v| v.version == s.version().version)) {
        return Err(setting(
            &t.key("ciphersuites"),
            format!("none of the cipher suites is usable with the enabled protocols ({})", t.key("enabledProtocols")),
        ));
    }
    provider.cipher_suites = suites;
    Ok((versions, Arc::new(provider)))
}

fn roots(ts: &StoreConfig) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in load_trust_store(ts)? {
        roots.add(c).map_err(|e| store_err(ts, format!("unusable CA certificate: {e}")))?;
    }
    Ok(Arc::new(roots))
}

/// The rustls server configuration for `t`: stores loaded, versions, suites and client
/// authentication as configured.
pub fn server_config(t: &ClientTls) -> Result<rustls::ServerConfig, TlsError> {
    let ks = t.key_store.as_ref().ok_or_else(|| setting(&t.key("keyStore.location"), "TLS needs the server's key store"))?;
    let (chain, key) = load_key_store(ks)?;
    let (versions, provider) = versions_and_provider(t)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| setting(&t.key("enabledProtocols"), e.to_string()))?;
    let builder = match t.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let ts =
                t.trust_store.as_ref().ok_or_else(|| setting(&t.key("trustStore.location"), "client certificates need a trust store"))?;
            let v = WebPkiClientVerifier::builder_with_provider(roots(ts)?, provider);
            let v = if auth == ClientAuth::Want { v.allow_unauthenticated() } else { v };
            builder.with_client_cert_verifier(v.build().map_err(|e| store_err(ts, e.to_string()))?)
        }
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| store_err(ks, format!("the key store's key and certificate do not work together: {e}")))
}

/// The rustls client configuration of a server connecting to another (`QuorumX509Util`'s
/// SSL socket): the trust store's CAs vouch for the other server's chain, and this server
/// presents its key store's certificate. Names are not checked by the handshake but after
/// it ([`check_peer_name`]), as ZooKeeper's trust manager checks the peer's address.
pub fn client_config(t: &ClientTls) -> Result<rustls::ClientConfig, TlsError> {
    let ks = t.key_store.as_ref().ok_or_else(|| setting(&t.key("keyStore.location"), "TLS needs this server's key store"))?;
    let ts = t.trust_store.as_ref().ok_or_else(|| setting(&t.key("trustStore.location"), "TLS needs a trust store"))?;
    let (chain, key) = load_key_store(ks)?;
    let (versions, provider) = versions_and_provider(t)?;
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots(ts)?, provider.clone())
        .build()
        .map_err(|e| store_err(ts, e.to_string()))?;
    rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| setting(&t.key("enabledProtocols"), e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
        .with_client_auth_cert(chain, key)
        .map_err(|e| store_err(ks, format!("the key store's key and certificate do not work together: {e}")))
}

/// A server certificate verifier that checks the chain (against the trust store, dates,
/// usage) as rustls's web PKI verifier does, but not the name: between servers the name is
/// checked against the peer's address after the handshake ([`check_peer_name`]).
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls_pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        // The web PKI verifier checks the name last, after the chain.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. })) => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `ZKTrustManager.performHostVerification` between servers: the peer's certificate must
/// name its address (an IP address entry of its subjectAltName) or, failing that, one of
/// `fallback_hosts` (a DNS entry). ZooKeeper's fallback is the host name Java has for the
/// address: the name the connection was opened with, or a reverse DNS lookup; rzk's are the
/// `server.N` host names (see `peersec`).
pub fn check_peer_name(cert: &CertificateDer<'_>, addr: std::net::IpAddr, fallback_hosts: &[String]) -> Result<(), String> {
    use rustls_pki_types::ServerName;
    let parsed = rustls::server::ParsedCertificate::try_from(cert).map_err(|e| format!("the peer's certificate is unreadable: {e}"))?;
    if rustls::client::verify_server_name(&parsed, &ServerName::IpAddress(addr.into())).is_ok() {
        return Ok(());
    }
    for host in fallback_hosts {
        if let Ok(name) = ServerName::try_from(host.as_str()) {
            if rustls::client::verify_server_name(&parsed, &name).is_ok() {
                return Ok(());
            }
        }
    }
    let also = if fallback_hosts.is_empty() { String::new() } else { format!(" nor {}", fallback_hosts.join(", ")) };
    Err(format!("the peer's certificate names neither its address {addr}{also} (hostname verification)"))
}

/// A verifier of client certificate chains against `store`, as the trust manager of
/// ZooKeeper's `X509AuthenticationProvider` checks the chains it authenticates.
pub fn client_cert_verifier(store: &StoreConfig) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in load_trust_store(store)? {
        roots.add(c).map_err(|e| store_err(store, format!("unusable CA certificate: {e}")))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::new(crypto_provider()))
        .build()
        .map_err(|e| store_err(store, e.to_string()))
}

/// A one-line account of the TLS settings, for the start-up log.
pub fn describe(t: &ClientTls) -> String {
    let store = |s: &Option<StoreConfig>| {
        s.as_ref().map(|s| format!("{} ({:?})", s.location.display(), s.store_type)).unwrap_or_else(|| "none".into())
    };
    format!(
        "keyStore={} trustStore={} clientAuth={} protocols={}",
        store(&t.key_store),
        store(&t.trust_store),
        t.client_auth.name(),
        t.enabled_protocols.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_suite_names_map_to_rustls() {
        let p = crypto_provider();
        let mut t = ClientTls {
            ciphersuites: Some(vec![
                "TLS_AES_128_GCM_SHA256".into(),
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
                "TLS_CHACHA20_POLY1305_SHA256".into(),
            ]),
            ..ClientTls::default()
        };
        let s = cipher_suites(&t, &p).unwrap();
        assert_eq!(s.len(), 3);
        t.ciphersuites = Some(vec!["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA".into()]);
        let e = cipher_suites(&t, &p).unwrap_err();
        assert!(e.to_string().starts_with("ssl.ciphersuites: \"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA\""), "{e}");
        t.ciphersuites = None;
        assert_eq!(cipher_suites(&t, &p).unwrap().len(), 4 + 3);
    }

    #[test]
    fn protocols() {
        let mut t = ClientTls::default();
        assert_eq!(protocol_versions(&t).unwrap().len(), 1);
        t.enabled_protocols = vec!["TLSv1.3".into(), "TLSv1.2".into()];
        assert_eq!(protocol_versions(&t).unwrap().len(), 2);
        t.enabled_protocols = vec!["TLSv1.1".into()];
        assert!(protocol_versions(&t).unwrap_err().to_string().starts_with("ssl.enabledProtocols"));
        t.protocol = "SSLv3".into();
        t.enabled_protocols = vec!["SSLv3".into()];
        assert!(protocol_versions(&t).unwrap_err().to_string().starts_with("ssl.protocol"));
    }

    /// Made with openssl, subject
    /// `/DC=org/DC=example/O=rzk, Inc./OU=test+UID=u1/CN=tricky #1/emailAddress=t@example.com`.
    const TRICKY_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB+DCCAZ+gAwIBAgICEAYwCgYIKoZIzj0EAwIwJDEMMAoGA1UECgwDcnprMRQw\nEgYDVQQDDAtyemsgdGVzdCBDQTAgFw0yNDAxMDEwMDAwMDBaGA8yMDk5MTIzMTAw\nMDAwMFowgZUxEzARBgoJkiaJk/IsZAEZFgNvcmcxFzAVBgoJkiaJk/IsZAEZFgdl\neGFtcGxlMRIwEAYDVQQKDAlyemssIEluYy4xHzALBgNVBAsMBHRlc3QwEAYKCZIm\niZPyLGQBAQwCdTExEjAQBgNVBAMMCXRyaWNreSAjMTEcMBoGCSqGSIb3DQEJARYN\ndEBleGFtcGxlLmNvbTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABH+gRdWmxmkB\nbE7jk1tOZalTBAo2ggYlB/K/aW8yowTIX8VnrJ+xHMj20/0tWVloTQzkvuZ54oQ3\n4FCQ3IoesLmjTTBLMAkGA1UdEwQCMAAwHQYDVR0OBBYEFM5T6qMAS25w2o+S/PPW\neGikRC3LMB8GA1UdIwQYMBaAFD9P+EloLRD9CwF1+RX3STLRNlu5MAoGCCqGSM49\nBAMCA0cAMEQCIHYyXhtsUzLvLrCaYFHTZ2o5hGE1TwmKZwY4kmXx2oPnAiBs0vbE\nkVbPM3xX8S3npcZxP0ubTMnfmv2KOurZsM2cgQ==\n-----END CERTIFICATE-----";

    #[test]
    fn subject_dn_as_java_prints_it() {
        let der = CertificateDer::from_pem_slice(TRICKY_PEM.as_bytes()).unwrap();
        // What ZooKeeper 3.8's x509 provider reports for this certificate (whoami).
        let java = "1.2.840.113549.1.9.1=#160d74406578616d706c652e636f6d,CN=tricky \\#1,OU=test+UID=u1,O=rzk\\, Inc.,DC=example,DC=org";
        assert_eq!(x509_ids(der.as_ref(), None).unwrap(), vec![Id::new("x509", java)]);
        assert_eq!(x509_ids(der.as_ref(), Some(java)).unwrap(), vec![Id::new("super", java), Id::new("x509", java)]);
    }

    #[test]
    fn rfc2253_escaping() {
        assert_eq!(escape_rfc2253("a,b"), "a\\,b");
        assert_eq!(escape_rfc2253(" x "), "\\ x\\ ");
        assert_eq!(escape_rfc2253("a+b=c#d;e\"f\\g<h>"), "a\\+b\\=c\\#d\\;e\\\"f\\\\g\\<h\\>");
    }

    /// The stores in `testdata/` (see its README), made with openssl and keytool.
    fn testdata() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/shell/testdata")
    }

    fn store(dir: &std::path::Path, name: &str, t: StoreType, password: Option<&str>) -> StoreConfig {
        StoreConfig {
            location: dir.join(name),
            password: password.map(str::to_string),
            password_path: None,
            store_type: t,
            location_key: "zookeeper.ssl.keyStore.location".into(),
        }
    }

    #[test]
    fn key_and_trust_stores_of_each_type() {
        let dir = testdata();
        let err = |c: StoreConfig| load_key_store(&c).map(|_| ()).unwrap_err().to_string();
        let (chain, _) = load_key_store(&store(&dir, "store.pem", StoreType::Pem, None)).unwrap();
        assert_eq!(chain.len(), 1);
        let trusted = load_trust_store(&store(&dir, "cert.pem", StoreType::Pem, None)).unwrap();
        assert_eq!(trusted, chain);
        // PKCS#8 encrypted PEM, opened with the store password.
        let enc = store(&dir, "enc-store.pem", StoreType::Pem, Some("secret"));
        assert_eq!(load_key_store(&enc).unwrap().0, chain);
        let e = err(store(&dir, "enc-store.pem", StoreType::Pem, Some("wrong")));
        assert!(e.contains("cannot decrypt"), "{e}");
        let p12 = store(&dir, "store.p12", StoreType::Pkcs12, Some("secret"));
        assert_eq!(load_key_store(&p12).unwrap().0, chain);
        let e = err(store(&dir, "store.p12", StoreType::Pkcs12, Some("wrong")));
        assert!(e.starts_with("zookeeper.ssl.keyStore.location="), "{e}");
        let jks = store(&dir, "store.jks", StoreType::Jks, Some("secret"));
        assert_eq!(load_key_store(&jks).unwrap().0, chain);
        assert!(load_key_store(&store(&dir, "store.jks", StoreType::Jks, Some("wrong"))).is_err());
        let trust_jks = store(&dir, "trust.jks", StoreType::Jks, Some("secret"));
        assert_eq!(load_trust_store(&trust_jks).unwrap(), chain);
        // A key store without a key, a missing file.
        assert!(err(store(&dir, "cert.pem", StoreType::Pem, None)).contains("no private key"));
        assert!(err(store(&dir, "nothing.pem", StoreType::Pem, None)).contains("cannot read"));
        // The whole configuration, with client certificates required.
        let t = ClientTls {
            key_store: Some(p12),
            trust_store: Some(store(&dir, "cert.pem", StoreType::Pem, None)),
            enabled_protocols: vec!["TLSv1.3".into(), "TLSv1.2".into()],
            ..ClientTls::default()
        };
        assert!(server_config(&t).is_ok());
    }
}
