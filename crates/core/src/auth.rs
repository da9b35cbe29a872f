//! Authentication and ACLs, as ZooKeeper's auth providers and `checkACL` do them:
//! `world:anyone`, `auth` (expanded at create/setACL to the caller's authenticated ids),
//! `digest` (`user:base64(sha1(user:password))`), `ip` (address or CIDR), `x509` (a TLS
//! client certificate's subject DN, authenticated by the shell's handshake and handed in
//! with the connection), `sasl` (the authorization id of a SASL login, see [`crate::sasl`]; a
//! scheme only when `SASLAuthenticationProvider` is configured), and `super`.
//! Also who must authenticate before anything else (`enforce.auth.*`).
//! Also the session password, derived from the session id as ZooKeeper derives it.

use base64::Engine;
use rzk_proto::{perms, Acl, ErrorCode, Id, SessionId};
use sha1::{Digest, Sha1};
use std::net::IpAddr;

/// `DigestAuthenticationProvider.generateDigest`: `user:base64(sha1("user:password"))`.
pub fn generate_digest(id_password: &str) -> String {
    let user = id_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(id_password.as_bytes());
    format!("{}:{}", user, base64::engine::general_purpose::STANDARD.encode(hash))
}

/// What the digest scheme accepts as an ACL id: `user:hash`, exactly two parts.
fn digest_id_is_valid(id: &str) -> bool {
    id.split(':').count() == 2
}

/// Parses `addr` or `addr/bits` for the ip scheme.
fn parse_ip_acl(id: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match id.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (id, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b.parse::<u32>().ok().filter(|b| *b <= max)?,
        None => max,
    };
    Some((addr, bits))
}

fn ip_matches(client: &str, acl_id: &str) -> bool {
    let (Some((net, bits)), Ok(client)) = (parse_ip_acl(acl_id), client.parse::<IpAddr>()) else {
        return false;
    };
    match (net, client) {
        (IpAddr::V4(n), IpAddr::V4(c)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(n) & mask == u32::from(c) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(c)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(n) & mask == u128::from(c) & mask
        }
        _ => false,
    }
}

/// The ids a connection has authenticated as, plus the superuser digest from the config.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// `zookeeper.DigestAuthenticationProvider.superDigest`, e.g. `super:base64hash`.
    pub super_digest: Option<String>,
    /// `zookeeper.skipACL=yes` turns every check off.
    pub skip_acl: bool,
    /// `authProvider.N=...SASLAuthenticationProvider`: `sasl` is an ACL scheme. Without it a
    /// SASL login still gives the connection its `sasl` id, which no ACL then matches.
    pub sasl_provider: bool,
    /// `zookeeper.superUser[.*]`: SASL ids that are also `super`.
    pub sasl_super_users: Vec<String>,
    /// `zookeeper.letAnySaslUserDoX`: a `sasl` ACL id every SASL user matches.
    pub let_any_sasl_user_do_x: Option<String>,
    /// The server's SASL login (the JAAS server section); `None`: SASL packets find no
    /// SASL server, as in a ZooKeeper without one.
    pub sasl_login: Option<SaslLogin>,
    /// `zookeeper.allowSaslFailedClients`: a failed SASL login keeps its connection (unless
    /// SASL is required).
    pub allow_sasl_failed_clients: bool,
    /// `enforce.auth.enabled` with `enforce.auth.schemes` (or `sessionRequireClientSASLAuth`):
    /// a connection needs an id of one of these schemes before any request but auth and SASL.
    pub enforce_auth_schemes: Option<Vec<String>>,
}

/// The server's SASL login: DIGEST-MD5 users, or a Kerberos acceptor (then clients log in
/// with GSSAPI only, as in ZooKeeper, whose SASL server is GSSAPI when its login has a
/// Kerberos principal).
#[derive(Debug, Clone, Default)]
pub struct SaslLogin {
    /// Who may log in with DIGEST-MD5.
    pub users: crate::sasl::SaslUsers,
    /// The GSSAPI acceptor the shell injects, and how principals are named.
    pub gssapi: Option<GssapiLogin>,
    /// A secret the nonces are derived from (random, from the host), so the core needs no
    /// randomness of its own and a simulation stays reproducible.
    pub nonce_secret: [u8; 32],
}

/// The server's Kerberos login, as the core sees it.
#[derive(Debug, Clone)]
pub struct GssapiLogin {
    /// The shell's GSS-API acceptor (the service principal's keys).
    pub acceptor: std::sync::Arc<dyn crate::gssapi::GssAcceptor>,
    /// `kerberos.removeHostFromPrincipal` / `removeRealmFromPrincipal` and the default realm.
    pub naming: crate::gssapi::KerberosNaming,
}

impl AuthConfig {
    /// `AuthenticationHelper.isSaslAuthRequired`.
    pub fn sasl_required(&self) -> bool {
        self.enforce_auth_schemes.as_ref().is_some_and(|s| s.iter().any(|s| s == "sasl"))
    }

    /// `AuthenticationHelper.enforceAuthentication`: may a connection with `ids` send
    /// requests other than auth and SASL?
    pub fn is_authenticated_enough(&self, ids: &[Id]) -> bool {
        match &self.enforce_auth_schemes {
            None => true,
            Some(schemes) => ids.iter().any(|id| schemes.contains(&id.scheme)),
        }
    }
}

/// `KerberosName`: what the sasl scheme accepts as an id (`SASLAuthenticationProvider.isValid`):
/// a name without `@`, or `service[/host]@REALM` with none of the parts holding `/` or `@`.
pub fn kerberos_name_is_valid(id: &str) -> bool {
    let Some((name, realm)) = id.split_once('@') else {
        return true;
    };
    if realm.contains('@') || realm.contains('/') {
        return false;
    }
    match name.split_once('/') {
        Some((service, host)) => !service.contains('@') && !host.contains('/'),
        None => true,
    }
}

/// Handles an auth packet on a connection that has the ids `current`. Returns the ids to
/// add to the connection, or AuthFailed. `x509` succeeds (adding nothing new) only on a
/// connection whose TLS client certificate already authenticated it, as
/// `X509AuthenticationProvider.handleAuthentication` checks the connection's certificate.
pub fn authenticate(cfg: &AuthConfig, scheme: &str, auth: &[u8], current: &[Id]) -> Result<Vec<Id>, ErrorCode> {
    match scheme {
        "x509" => match current.iter().any(|id| id.scheme == "x509") {
            true => Ok(Vec::new()),
            false => Err(ErrorCode::AuthFailed),
        },
        "digest" => {
            let id = String::from_utf8_lossy(auth).into_owned();
            let digest = generate_digest(&id);
            let mut ids = Vec::new();
            if cfg.super_digest.as_deref() == Some(digest.as_str()) {
                ids.push(Id::new("super", ""));
            }
            ids.push(Id::new("digest", &digest));
            Ok(ids)
        }
        _ => Err(ErrorCode::AuthFailed),
    }
}

/// `ZooKeeperServer.checkACL`: does any entry of `acl` grant `perm` to one of `ids`?
pub fn check_acl(cfg: &AuthConfig, acl: &[Acl], perm: i32, ids: &[Id]) -> Result<(), ErrorCode> {
    if cfg.skip_acl {
        return Ok(());
    }
    if ids.iter().any(|id| id.scheme == "super") {
        return Ok(());
    }
    if acl.is_empty() {
        return Ok(());
    }
    for a in acl {
        if a.perms & perm == 0 {
            continue;
        }
        if a.id.scheme == "world" && a.id.id == "anyone" {
            return Ok(());
        }
        for id in ids.iter().filter(|id| id.scheme == a.id.scheme) {
            let matched = match a.id.scheme.as_str() {
                "ip" => ip_matches(&id.id, &a.id.id),
                "digest" | "super" | "x509" => id.id == a.id.id,
                // SASLAuthenticationProvider.matches
                "sasl" if cfg.sasl_provider => {
                    id.id == "super" || id.id == a.id.id || cfg.let_any_sasl_user_do_x.as_deref() == Some(a.id.id.as_str())
                }
                _ => false,
            };
            if matched {
                return Ok(());
            }
        }
    }
    Err(ErrorCode::NoAuth)
}

/// `PrepRequestProcessor.fixupACL`: validates an ACL list and expands `auth` entries to the
/// caller's authenticated ids. Empty lists and unknown schemes are InvalidACL.
pub fn fixup_acl(cfg: &AuthConfig, acl: &[Acl], ids: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    if acl.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out: Vec<Acl> = Vec::with_capacity(acl.len());
    let push = |a: Acl, out: &mut Vec<Acl>| {
        if !out.contains(&a) {
            out.push(a);
        }
    };
    for a in acl {
        // ZooKeeper refuses permission bits outside ALL? It does not; it stores them as given.
        match a.id.scheme.as_str() {
            "world" if a.id.id == "anyone" => push(a.clone(), &mut out),
            "auth" => {
                let mut any = false;
                for id in java_auth_order(ids).iter().filter(|id| is_authenticated_scheme(cfg, &id.scheme)) {
                    any = true;
                    push(Acl { perms: a.perms, id: id.clone() }, &mut out);
                }
                if !any {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            "digest" if digest_id_is_valid(&a.id.id) => push(a.clone(), &mut out),
            "ip" if parse_ip_acl(&a.id.id).is_some() => push(a.clone(), &mut out),
            "x509" if x500_name_is_valid(&a.id.id) => push(a.clone(), &mut out),
            "super" => push(a.clone(), &mut out),
            "sasl" if cfg.sasl_provider && kerberos_name_is_valid(&a.id.id) => push(a.clone(), &mut out),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(out)
}

/// A connection's auth ids in the order ZooKeeper iterates them: its `authInfo` is a set
/// backed by a `ConcurrentHashMap`, so ids come out by hash bucket (the jute `Id.hashCode`,
/// spread as Java does), ties in insertion order. This order shows in `auth` ACL expansion
/// and in whoAmI.
pub fn java_auth_order(ids: &[Id]) -> Vec<Id> {
    use rzk_tree::java::string_hash_code;
    let mut table: usize = 16;
    while ids.len() as f64 >= table as f64 * 0.75 {
        table *= 2;
    }
    let bucket = |id: &Id| {
        let h =
            37i32.wrapping_mul(37i32.wrapping_mul(17).wrapping_add(string_hash_code(&id.scheme))).wrapping_add(string_hash_code(&id.id));
        let spread = (h ^ ((h as u32) >> 16) as i32) & 0x7fff_ffff;
        spread as usize & (table - 1)
    };
    let mut v: Vec<(usize, usize, &Id)> = ids.iter().enumerate().map(|(i, id)| (bucket(id), i, id)).collect();
    v.sort_by_key(|(b, i, _)| (*b, *i));
    v.into_iter().map(|(_, _, id)| id.clone()).collect()
}

/// Schemes whose ids count as "authenticated" for the `auth` ACL scheme (ip does not).
fn is_authenticated_scheme(cfg: &AuthConfig, scheme: &str) -> bool {
    matches!(scheme, "digest" | "super" | "x509") || (scheme == "sasl" && cfg.sasl_provider)
}

/// What the x509 scheme accepts as an ACL id (`X509AuthenticationProvider.isValid`: a
/// name `X500Principal` parses): empty, or attribute=value pairs separated by unescaped
/// `,` or `+`.
pub fn x500_name_is_valid(id: &str) -> bool {
    if id.trim().is_empty() {
        return true;
    }
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in id.chars() {
        match c {
            _ if escaped => {
                escaped = false;
                parts.last_mut().expect("a part").push(c);
            }
            '\\' => escaped = true,
            ',' | '+' | ';' => parts.push(String::new()),
            c => parts.last_mut().expect("a part").push(c),
        }
    }
    !escaped && parts.iter().all(|p| p.split_once('=').is_some_and(|(k, _)| !k.trim().is_empty()))
}

/// For whoAmI: the user name each provider reports for an id.
pub fn user_name(cfg: &AuthConfig, id: &Id) -> String {
    match id.scheme.as_str() {
        "digest" => id.id.split(':').next().unwrap_or("").to_owned(),
        // No provider has the scheme "super" (AuthUtil.getUser gives null, sent as ""); nor
        // has "sasl" unless SASLAuthenticationProvider is configured.
        "super" => String::new(),
        "sasl" if !cfg.sasl_provider => String::new(),
        _ => id.id.clone(),
    }
}

/// getACL without ADMIN permission hides digest hashes: `user:x`.
pub fn redact_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or("");
                Acl { perms: a.perms, id: Id::new("digest", &format!("{user}:x")) }
            } else {
                a.clone()
            }
        })
        .collect()
}

/// The all-permissions mask, for checks that need "any".
pub const PERMS_READ_OR_ADMIN: i32 = perms::READ | perms::ADMIN;

/// The session password: ZooKeeper fills 16 bytes from `java.util.Random(sessionId ^ 0xB3415C00)`,
/// so a session moves between rzk and Apache ZooKeeper servers with the same password.
pub fn session_password(session: SessionId) -> Vec<u8> {
    const SUPER_SECRET: i64 = 0xB341_5C00;
    let mut rng = JavaRandom::new(session.0 ^ SUPER_SECRET);
    let mut p = vec![0u8; 16];
    rng.next_bytes(&mut p);
    p
}

/// `java.util.Random`'s 48-bit linear congruential generator.
struct JavaRandom {
    seed: i64,
}

impl JavaRandom {
    const MULT: i64 = 0x5_DEEC_E66D;
    const MASK: i64 = (1 << 48) - 1;

    fn new(seed: i64) -> Self {
        JavaRandom { seed: (seed ^ Self::MULT) & Self::MASK }
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.seed = (self.seed.wrapping_mul(Self::MULT).wrapping_add(0xB)) & Self::MASK;
        (self.seed >> (48 - bits)) as i32
    }

    fn next_bytes(&mut self, out: &mut [u8]) {
        let mut i = 0;
        while i < out.len() {
            let mut rnd = self.next(32);
            let n = (out.len() - i).min(4);
            for _ in 0..n {
                out[i] = rnd as u8;
                i += 1;
                rnd >>= 8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeeper() {
        // zkCli: addauth digest user:password; the well-known digest of "super:admin" etc.
        assert_eq!(generate_digest("user:password"), "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=");
        assert_eq!(generate_digest("super:admin"), "super:xQJmxLMiHGwaqBvst5y6rkB6HQs=");
    }

    #[test]
    fn x509_acls() {
        assert!(x500_name_is_valid("CN=client,OU=test,O=rzk"));
        assert!(x500_name_is_valid("CN=a\\,b+UID=7"));
        assert!(x500_name_is_valid(""));
        assert!(!x500_name_is_valid("client"));
        assert!(!x500_name_is_valid("CN=a,"));
        let dn = "CN=client,OU=test,O=rzk";
        let acl = vec![Acl { perms: perms::ALL, id: Id::new("x509", dn) }];
        let cfg = AuthConfig::default();
        assert_eq!(fixup_acl(&cfg, &acl, &[]), Ok(acl.clone()));
        assert!(check_acl(&cfg, &acl, perms::READ, &[Id::new("x509", dn)]).is_ok());
        assert_eq!(check_acl(&cfg, &acl, perms::READ, &[Id::new("x509", "CN=other")]), Err(ErrorCode::NoAuth));
        // addauth x509: only where a client certificate already authenticated the connection.
        assert_eq!(authenticate(&cfg, "x509", b"", &[Id::new("ip", "127.0.0.1")]), Err(ErrorCode::AuthFailed));
        assert_eq!(authenticate(&cfg, "x509", b"", &[Id::new("x509", dn)]), Ok(vec![]));
        // whoAmI: the x509 user is the DN; the x509 super user's "super" id shows no user.
        assert_eq!(user_name(&cfg, &Id::new("x509", dn)), dn);
        assert_eq!(user_name(&cfg, &Id::new("super", dn)), "");
        // `auth` expands to the x509 id, as X509AuthenticationProvider.isAuthenticated is true.
        let auth = vec![Acl { perms: perms::ALL, id: Id::new("auth", "") }];
        assert_eq!(fixup_acl(&cfg, &auth, &[Id::new("ip", "127.0.0.1"), Id::new("x509", dn)]), Ok(acl));
    }

    #[test]
    fn ip_acls() {
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(ip_matches("127.0.0.5", "127.0.0.0/8"));
        assert!(!ip_matches("10.0.0.1", "127.0.0.0/8"));
        assert!(ip_matches("10.0.0.1", "0.0.0.0/0"));
    }

    #[test]
    fn acl_checks() {
        let cfg = AuthConfig::default();
        let d = generate_digest("u:p");
        let acl = vec![Acl::new(perms::READ, "digest", &d)];
        assert_eq!(check_acl(&cfg, &acl, perms::READ, &[Id::new("ip", "127.0.0.1")]), Err(ErrorCode::NoAuth));
        assert!(check_acl(&cfg, &acl, perms::READ, &[Id::new("digest", &d)]).is_ok());
        assert_eq!(check_acl(&cfg, &acl, perms::WRITE, &[Id::new("digest", &d)]), Err(ErrorCode::NoAuth));
        assert!(check_acl(&cfg, &acl, perms::WRITE, &[Id::new("super", "")]).is_ok());
    }

    #[test]
    fn fixup() {
        assert_eq!(fixup_acl(&AuthConfig::default(), &[], &[]), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup_acl(&AuthConfig::default(), &Acl::creator_all(), &[Id::new("ip", "127.0.0.1")]), Err(ErrorCode::InvalidAcl));
        let ids = [Id::new("ip", "127.0.0.1"), Id::new("digest", "u:h")];
        assert_eq!(fixup_acl(&AuthConfig::default(), &Acl::creator_all(), &ids).unwrap(), vec![Acl::new(perms::ALL, "digest", "u:h")]);
        assert_eq!(fixup_acl(&AuthConfig::default(), &[Acl::new(1, "world", "nobody")], &ids), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup_acl(&AuthConfig::default(), &[Acl::new(1, "digest", "nocolon")], &ids), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn sasl_scheme() {
        let off = AuthConfig::default();
        let on = AuthConfig { sasl_provider: true, let_any_sasl_user_do_x: Some("anyone-sasl".into()), ..AuthConfig::default() };
        let bob = [Id::new("ip", "127.0.0.1"), Id::new("sasl", "bob")];
        let acl = vec![Acl::new(perms::ALL, "sasl", "bob")];
        // Without the provider, sasl ACLs are invalid and match nobody; whoAmI has no user.
        assert_eq!(fixup_acl(&off, &acl, &bob), Err(ErrorCode::InvalidAcl));
        assert_eq!(check_acl(&off, &acl, perms::READ, &bob), Err(ErrorCode::NoAuth));
        assert_eq!(user_name(&off, &bob[1]), "");
        assert_eq!(fixup_acl(&off, &Acl::creator_all(), &bob), Err(ErrorCode::InvalidAcl));
        // With it: matched by name, by a sasl id "super", and by letAnySaslUserDoX.
        assert_eq!(fixup_acl(&on, &acl, &bob), Ok(acl.clone()));
        assert!(check_acl(&on, &acl, perms::READ, &bob).is_ok());
        assert_eq!(check_acl(&on, &acl, perms::READ, &[Id::new("sasl", "eve")]), Err(ErrorCode::NoAuth));
        assert!(check_acl(&on, &acl, perms::READ, &[Id::new("sasl", "super")]).is_ok());
        assert!(check_acl(&on, &[Acl::new(perms::ALL, "sasl", "anyone-sasl")], perms::READ, &[Id::new("sasl", "eve")]).is_ok());
        assert_eq!(user_name(&on, &bob[1]), "bob");
        assert_eq!(fixup_acl(&on, &Acl::creator_all(), &bob), Ok(acl));
        assert_eq!(fixup_acl(&on, &[Acl::new(1, "sasl", "a@b@c")], &bob), Err(ErrorCode::InvalidAcl));
        assert!(kerberos_name_is_valid("zk/host@EXAMPLE.COM") && kerberos_name_is_valid("bob@R") && kerberos_name_is_valid("bob"));
        assert!(!kerberos_name_is_valid("a/b/c@R"));
    }

    #[test]
    fn enforcement() {
        let cfg = AuthConfig { enforce_auth_schemes: Some(vec!["sasl".into()]), ..AuthConfig::default() };
        assert!(cfg.sasl_required());
        assert!(!cfg.is_authenticated_enough(&[Id::new("ip", "127.0.0.1"), Id::new("digest", "u:h")]));
        assert!(cfg.is_authenticated_enough(&[Id::new("sasl", "bob")]));
        assert!(AuthConfig::default().is_authenticated_enough(&[]));
    }

    #[test]
    fn java_random_matches_java() {
        // new java.util.Random(42).nextInt() == -1170105035
        let mut r = JavaRandom::new(42);
        assert_eq!(r.next(32), -1170105035);
        // Random(0x0100000012345678 ^ 0xB3415C00).nextBytes(16), printed by Java.
        let p: Vec<i8> = session_password(SessionId(0x0100_0000_1234_5678)).iter().map(|b| *b as i8).collect();
        assert_eq!(p, vec![0, 120, 4, -84, 104, 57, -43, 38, -76, 30, 4, 116, 53, 98, 105, -124]);
    }
}
