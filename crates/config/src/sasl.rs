//! SASL between clients and the server, as ZooKeeper 3.8 configures it, and authentication
//! enforcement (ZooKeeper 3.7+'s `AuthenticationHelper`).
//!
//! This module owns:
//! * what the SASL system properties mean ([`SaslConfig`]): the JAAS file
//!   (`java.security.auth.login.config`), its section (`zookeeper.sasl.serverconfig`, default
//!   `Server`), the `sasl` auth provider (`authProvider.N=...SASLAuthenticationProvider`),
//!   `zookeeper.superUser[.*]`, `zookeeper.SASLAuthenticationProvider.superPassword`,
//!   `zookeeper.letAnySaslUserDoX`, `zookeeper.allowSaslFailedClients`;
//! * the JAAS file syntax (`javax.security.auth.login.ConfigFile`) and what rzk takes from the
//!   server's section: DIGEST-MD5 users from `DigestLoginModule`'s `user_NAME="password"`
//!   options, or the Kerberos login of `com.sun.security.auth.module.Krb5LoginModule`
//!   (`principal`, `keyTab`, [`KerberosLogin`]) ([`parse_jaas`], [`server_credentials`]); any
//!   other login module, and any Krb5LoginModule option rzk cannot honour, is refused with an
//!   error naming it;
//! * how a Kerberos principal becomes a `sasl` id (`kerberos.removeHostFromPrincipal`,
//!   `kerberos.removeRealmFromPrincipal`; [`KerberosNaming`]);
//! * `enforce.auth.enabled` / `enforce.auth.schemes` / `sessionRequireClientSASLAuth`
//!   ([`EnforceAuth`]).
//!
//! Pure: the file is read by [`crate::load_with`], which hands its text to [`parse_jaas`].

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The provider class whose scheme is `sasl`.
pub const SASL_PROVIDER_CLASS: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";
/// The login module that carries DIGEST-MD5 users.
pub const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";
/// The login module that carries a Kerberos principal and keytab.
pub const KRB5_LOGIN_MODULE: &str = "com.sun.security.auth.module.Krb5LoginModule";
/// `ZooKeeperSaslServer.DEFAULT_LOGIN_CONTEXT_NAME`.
pub const DEFAULT_SERVER_SECTION: &str = "Server";

/// The system properties this module reads (as zoo.cfg keys they get the `zookeeper.` prefix).
pub const PROPERTIES: &[&str] = &[
    "java.security.auth.login.config",
    "zookeeper.java.security.auth.login.config",
    "zookeeper.sasl.serverconfig",
    "zookeeper.superUser",
    "zookeeper.SASLAuthenticationProvider.superPassword",
    "zookeeper.letAnySaslUserDoX",
    "zookeeper.allowSaslFailedClients",
    "zookeeper.sessionRequireClientSASLAuth",
    "zookeeper.enforce.auth.enabled",
    "zookeeper.enforce.auth.schemes",
    "zookeeper.kerberos.removeHostFromPrincipal",
    "zookeeper.kerberos.removeRealmFromPrincipal",
    "zookeeper.security.auth_to_local",
];

/// The server's Kerberos login: the `Krb5LoginModule` of the JAAS server section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosLogin {
    /// `principal`: the service principal, `service/host@REALM` (ZooKeeper takes the service
    /// name and the host from it, so it must have both).
    pub principal: String,
    /// `keyTab`; `None`: the Kerberos library's default keytab (`KRB5_KTNAME`, else
    /// krb5.conf's `default_keytab_name`), as Java's default is krb5.conf's.
    pub keytab: Option<PathBuf>,
}

/// How `SaslServerCallbackHandler` turns an authenticated Kerberos principal into the
/// connection's `sasl` id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KerberosNaming {
    /// `zookeeper.kerberos.removeHostFromPrincipal` (exactly "true", as ZooKeeper compares).
    pub remove_host: bool,
    /// `zookeeper.kerberos.removeRealmFromPrincipal` (exactly "true").
    pub remove_realm: bool,
}

/// SASL on the client port. Its `Debug` shows no password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SaslConfig {
    /// `java.security.auth.login.config`: the JAAS file.
    pub jaas_file: Option<PathBuf>,
    /// `zookeeper.sasl.serverconfig`: the JAAS section the server logs in with.
    pub server_section: String,
    /// Whether the section name was set explicitly (ZooKeeper's messages say so).
    pub server_section_set: bool,
    /// An `authProvider.N` names `SASLAuthenticationProvider`: the `sasl` ACL scheme exists.
    pub provider: bool,
    /// `zookeeper.superUser` and `zookeeper.superUser.*`: SASL ids that are also `super`.
    pub super_users: Vec<String>,
    /// `zookeeper.SASLAuthenticationProvider.superPassword`: the password of the user `super`.
    pub super_password: Option<String>,
    /// `zookeeper.letAnySaslUserDoX`: a `sasl` ACL id that every SASL user matches.
    pub let_any_sasl_user_do_x: Option<String>,
    /// `zookeeper.allowSaslFailedClients`: a failed SASL login keeps its connection.
    pub allow_failed_clients: bool,
    /// The DIGEST-MD5 users of the server section (name → password), once [`crate::load_with`]
    /// has read the JAAS file; `None`: no login (no JAAS file, or no such section), so SASL
    /// packets are answered as a ZooKeeper without a login answers them.
    pub credentials: Option<BTreeMap<String, String>>,
    /// The Kerberos login of the server section (its `Krb5LoginModule`), once
    /// [`crate::load_with`] has read the JAAS file: with one, clients log in with GSSAPI (as
    /// in ZooKeeper, whose SASL server is GSSAPI when its login has a Kerberos principal).
    pub kerberos: Option<KerberosLogin>,
    /// `kerberos.removeHostFromPrincipal` / `kerberos.removeRealmFromPrincipal`.
    pub kerberos_naming: KerberosNaming,
}

impl std::fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslConfig")
            .field("jaas_file", &self.jaas_file)
            .field("server_section", &self.server_section)
            .field("server_section_set", &self.server_section_set)
            .field("provider", &self.provider)
            .field("super_users", &self.super_users)
            .field("super_password", &self.super_password.as_ref().map(|_| "***"))
            .field("let_any_sasl_user_do_x", &self.let_any_sasl_user_do_x)
            .field("allow_failed_clients", &self.allow_failed_clients)
            .field("users", &self.credentials.as_ref().map(|c| c.keys().collect::<Vec<_>>()))
            .field("kerberos", &self.kerberos)
            .field("kerberos_naming", &self.kerberos_naming)
            .finish()
    }
}

/// `AuthenticationHelper`: which auth schemes a connection must have before any request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnforceAuth {
    /// `enforce.auth.enabled` (or `sessionRequireClientSASLAuth`).
    pub enabled: bool,
    /// `enforce.auth.schemes` (comma-separated; `sasl` alone with
    /// `sessionRequireClientSASLAuth`).
    pub schemes: Vec<String>,
}

impl EnforceAuth {
    /// `isSaslAuthRequired`: enforcement is on and `sasl` is one of the schemes.
    pub fn sasl_required(&self) -> bool {
        self.enabled && self.schemes.iter().any(|s| s == "sasl")
    }
}

/// One login module line of a JAAS section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModule {
    /// The class name.
    pub class: String,
    /// `required`, `requisite`, `sufficient` or `optional`.
    pub flag: String,
    /// Its options, in file order.
    pub options: Vec<(String, String)>,
}

/// A JAAS file: sections by name, each a list of login modules.
pub type Jaas = BTreeMap<String, Vec<LoginModule>>;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(char),
}

fn tokens(text: &str) -> Result<Vec<(Tok, usize)>, String> {
    let mut out = Vec::new();
    let mut line = 1;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let start = line;
                i += 2;
                loop {
                    if i + 1 >= chars.len() {
                        return Err(format!("line {start}: unterminated /* comment"));
                    }
                    if chars[i] == '*' && chars[i + 1] == '/' {
                        i += 2;
                        break;
                    }
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
            '"' | '\'' => {
                let q = c;
                let start = line;
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&d) = chars.get(i) else {
                        return Err(format!("line {start}: unterminated quoted string"));
                    };
                    i += 1;
                    if d == q {
                        break;
                    }
                    if d == '\\' {
                        let Some(&e) = chars.get(i) else {
                            return Err(format!("line {start}: unterminated quoted string"));
                        };
                        i += 1;
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            other => other,
                        });
                        continue;
                    }
                    if d == '\n' {
                        line += 1;
                    }
                    s.push(d);
                }
                out.push((Tok::Quoted(s), start));
            }
            '{' | '}' | ';' | '=' => {
                out.push((Tok::Punct(c), line));
                i += 1;
            }
            _ => {
                let mut s = String::new();
                while i < chars.len() && !chars[i].is_whitespace() && !matches!(chars[i], '{' | '}' | ';' | '=' | '"' | '\'') {
                    s.push(chars[i]);
                    i += 1;
                }
                out.push((Tok::Word(s), line));
            }
        }
    }
    Ok(out)
}

/// Parses a JAAS login configuration file (`Name { Class Flag key="value" ...; ... };`, with
/// `//`, `/* */` and `#` comments). `${...}` property expansion is refused, not guessed at.
pub fn parse_jaas(text: &str) -> Result<Jaas, String> {
    let toks = tokens(text)?;
    let mut it = toks.into_iter().peekable();
    let mut jaas = Jaas::new();
    let last_line = text.lines().count().max(1);
    let expect_punct = |it: &mut std::iter::Peekable<std::vec::IntoIter<(Tok, usize)>>, p: char| match it.next() {
        Some((Tok::Punct(c), _)) if c == p => Ok(()),
        Some((t, l)) => Err(format!("line {l}: expected '{p}', found {}", show(&t))),
        None => Err(format!("line {last_line}: expected '{p}', found the end of the file")),
    };
    while let Some((t, line)) = it.next() {
        let (Tok::Word(name) | Tok::Quoted(name)) = t else {
            return Err(format!("line {line}: expected a section name, found {}", show(&t)));
        };
        expect_punct(&mut it, '{')?;
        let mut modules = Vec::new();
        loop {
            match it.next() {
                Some((Tok::Punct('}'), _)) => break,
                Some((Tok::Word(class), l)) => {
                    let flag = match it.next() {
                        Some((Tok::Word(f), _))
                            if matches!(f.to_ascii_lowercase().as_str(), "required" | "requisite" | "sufficient" | "optional") =>
                        {
                            f.to_ascii_lowercase()
                        }
                        Some((t, l2)) => {
                            return Err(format!(
                                "line {l2}: expected the control flag of {class} (required, requisite, sufficient or optional), found {}",
                                show(&t)
                            ))
                        }
                        None => return Err(format!("line {l}: {class} has no control flag")),
                    };
                    let mut options = Vec::new();
                    loop {
                        match it.next() {
                            Some((Tok::Punct(';'), _)) => break,
                            Some((Tok::Word(k), l2)) => {
                                expect_punct(&mut it, '=')?;
                                let v = match it.next() {
                                    Some((Tok::Word(v) | Tok::Quoted(v), _)) => v,
                                    Some((t, l3)) => return Err(format!("line {l3}: expected the value of {k}, found {}", show(&t))),
                                    None => return Err(format!("line {l2}: {k} has no value")),
                                };
                                if v.contains("${") {
                                    return Err(format!(
                                        "line {l2}: {k}: ${{...}} property expansion in JAAS files is not supported by rzk; write the value out"
                                    ));
                                }
                                options.push((k, v));
                            }
                            Some((t, l2)) => return Err(format!("line {l2}: expected an option or ';', found {}", show(&t))),
                            None => return Err(format!("line {l}: the entry of {class} is not closed with ';'")),
                        }
                    }
                    modules.push(LoginModule { class, flag, options });
                }
                Some((t, l)) => return Err(format!("line {l}: expected a login module class or '}}', found {}", show(&t))),
                None => return Err(format!("line {line}: section {name} is not closed with '}}'")),
            }
        }
        expect_punct(&mut it, ';')?;
        if modules.is_empty() {
            return Err(format!("line {line}: section {name} has no login module"));
        }
        if jaas.insert(name.clone(), modules).is_some() {
            return Err(format!("line {line}: section {name} is defined twice"));
        }
    }
    Ok(jaas)
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("\"{w}\""),
        Tok::Quoted(q) => format!("the string \"{q}\""),
        Tok::Punct(c) => format!("'{c}'"),
    }
}

/// What the server's JAAS section gives: DIGEST-MD5 users, a Kerberos login, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerLogin {
    /// `user_NAME="password"` entries of a `DigestLoginModule`.
    pub users: BTreeMap<String, String>,
    /// The `Krb5LoginModule`'s principal and keytab.
    pub kerberos: Option<KerberosLogin>,
}

/// The login of a server section (`SaslServerCallbackHandler`: every `user_NAME` option of
/// the section; `ZooKeeperSaslServer`: GSSAPI when the login has a Kerberos principal). Any
/// other login module, or a Krb5LoginModule option rzk cannot honour, is an error naming it:
/// rzk does not run a login it cannot perform. Returns the login and notes worth logging.
pub fn server_credentials(section: &str, modules: &[LoginModule]) -> Result<(ServerLogin, Vec<String>), String> {
    let mut login = ServerLogin::default();
    let mut notes = Vec::new();
    for m in modules {
        if m.class == KRB5_LOGIN_MODULE {
            if login.kerberos.is_some() {
                return Err(format!("section {section}: more than one {KRB5_LOGIN_MODULE}"));
            }
            login.kerberos = Some(krb5_server_login(section, m, &mut notes)?);
            continue;
        }
        if m.class.ends_with("Krb5LoginModule") {
            return Err(format!(
                "section {section}: the login module {} is not available in rzk (Kerberos is {KRB5_LOGIN_MODULE})",
                m.class
            ));
        }
        if m.class != DIGEST_LOGIN_MODULE {
            return Err(format!(
                "section {section}: the login module {} is not available in rzk (only {DIGEST_LOGIN_MODULE} and {KRB5_LOGIN_MODULE})",
                m.class
            ));
        }
        if m.flag != "required" {
            notes.push(format!("section {section}: {} is {}; with one login module it acts as required", m.class, m.flag));
        }
        for (k, v) in &m.options {
            if let Some(name) = k.strip_prefix("user_") {
                login.users.insert(name.to_string(), v.clone());
            } else if k == "username" || k == "password" {
                notes.push(format!(
                    "section {section}: option {k} is a login's (a Client or QuorumLearner section's), not a server's; ignored, as ZooKeeper does"
                ));
            } else {
                notes.push(format!("section {section}: option {k} means nothing to {}; ignored, as ZooKeeper does", m.class));
            }
        }
    }
    if login.kerberos.is_some() {
        if !login.users.is_empty() {
            notes.push(format!(
                "section {section}: the login has a Kerberos principal, so clients log in with GSSAPI and the user_NAME entries are not used (as in ZooKeeper)"
            ));
        }
    } else if login.users.is_empty() {
        notes.push(format!("section {section}: no user_NAME=\"password\" entries, so no client can log in with DIGEST-MD5"));
    }
    Ok((login, notes))
}

/// Java's `Boolean.parseBoolean`.
fn jaas_true(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case("true")
}

/// A server's `Krb5LoginModule`: a service principal from a keytab, and nothing rzk cannot do.
fn krb5_server_login(section: &str, m: &LoginModule, notes: &mut Vec<String>) -> Result<KerberosLogin, String> {
    let mut principal = None;
    let mut keytab = None;
    let (mut use_keytab, mut store_key) = (false, false);
    let err = |m: String| Err(format!("section {section}: {KRB5_LOGIN_MODULE}: {m}"));
    for (k, v) in &m.options {
        match k.as_str() {
            "principal" => principal = Some(v.trim().to_string()),
            "keyTab" => keytab = Some(PathBuf::from(v.trim())),
            "useKeyTab" => use_keytab = jaas_true(v),
            "storeKey" => store_key = jaas_true(v),
            // rzk never prompts, never logs in as the server to other Kerberos services, and
            // its GSSAPI library reads krb5.conf itself.
            "doNotPrompt" | "isInitiator" | "refreshKrb5Config" | "debug" | "useTicketCache" | "ticketCache" | "renewTGT" => {
                notes.push(format!(
                    "section {section}: {KRB5_LOGIN_MODULE} option {k}: the server only accepts GSSAPI contexts with its keytab; {k} changes nothing there"
                ))
            }
            "useFirstPass" | "tryFirstPass" | "storePass" | "clearPass" if jaas_true(v) => {
                return err(format!("option {k}: shared-state passwords are not supported by rzk; use a keytab"))
            }
            "useFirstPass" | "tryFirstPass" | "storePass" | "clearPass" => {}
            _ => return err(format!("option {k} is not supported by rzk (it reads principal, keyTab, useKeyTab, storeKey)")),
        }
    }
    if !use_keytab {
        return err("useKeyTab=true is required: the server's key must come from a keytab".into());
    }
    if !store_key {
        return err("storeKey=true is required: without the key a Java server cannot accept a context either".into());
    }
    let Some(principal) = principal else {
        return err("principal is required (the service principal, e.g. zookeeper/host.example.com@EXAMPLE.COM)".into());
    };
    let ok = match principal.split_once('/') {
        Some((service, rest)) => match rest.split_once('@') {
            Some((host, realm)) => {
                !service.is_empty() && !host.is_empty() && !realm.is_empty() && !realm.contains(['/', '@']) && !host.contains('/')
            }
            None => false,
        },
        None => false,
    };
    if !ok {
        return err(format!(
            "principal {principal:?}: ZooKeeper's server principal is service/host@REALM (e.g. zookeeper/host.example.com@EXAMPLE.COM)"
        ));
    }
    Ok(KerberosLogin { principal, keytab })
}

/// A Kerberos initiator's login: the `Krb5LoginModule` of a `QuorumLearner` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosInitiator {
    /// `principal`: whom the learner logs in as.
    pub principal: String,
    /// `keyTab` (with `useKeyTab=true`); `None` with `useKeyTab=true`: the library's default
    /// client keytab.
    pub keytab: Option<PathBuf>,
    /// `useKeyTab=true`.
    pub use_keytab: bool,
    /// `useTicketCache=true`: tickets from the ticket cache first.
    pub use_ticket_cache: bool,
    /// `ticketCache`: that cache instead of the default (`KRB5CCNAME`).
    pub ticket_cache: Option<String>,
}

/// The login of a `QuorumLearner` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnerLogin {
    /// A `DigestLoginModule`'s `username` and `password`.
    DigestMd5(String, String),
    /// A `Krb5LoginModule`'s principal.
    Kerberos(KerberosInitiator),
}

/// The login of a learner's section (`SaslQuorumAuthLearner`: GSSAPI when its login has a
/// Kerberos principal, else DIGEST-MD5). Notes worth logging are added to `notes`.
pub fn learner_login(section: &str, modules: &[LoginModule], notes: &mut Vec<String>) -> Result<LearnerLogin, String> {
    let Some(m) = modules.iter().find(|m| m.class == KRB5_LOGIN_MODULE) else {
        let (user, password) = client_credentials(section, modules)?;
        return Ok(LearnerLogin::DigestMd5(user, password));
    };
    if modules.len() > 1 {
        return Err(format!("section {section}: {KRB5_LOGIN_MODULE} and other login modules: rzk logs in with one"));
    }
    let err = |m: String| Err(format!("section {section}: {KRB5_LOGIN_MODULE}: {m}"));
    let mut login =
        KerberosInitiator { principal: String::new(), keytab: None, use_keytab: false, use_ticket_cache: false, ticket_cache: None };
    for (k, v) in &m.options {
        match k.as_str() {
            "principal" => login.principal = v.trim().to_string(),
            "keyTab" => login.keytab = Some(PathBuf::from(v.trim())),
            "useKeyTab" => login.use_keytab = jaas_true(v),
            "useTicketCache" => login.use_ticket_cache = jaas_true(v),
            "ticketCache" => login.ticket_cache = Some(v.trim().to_string()),
            "doNotPrompt" | "storeKey" | "refreshKrb5Config" | "debug" | "renewTGT" | "isInitiator" => notes.push(format!(
                "section {section}: {KRB5_LOGIN_MODULE} option {k}: rzk never prompts and gets its tickets from the keytab or ticket cache itself; {k} changes nothing there"
            )),
            "useFirstPass" | "tryFirstPass" | "storePass" | "clearPass" if jaas_true(v) => {
                return err(format!("option {k}: shared-state passwords are not supported by rzk; use a keytab"))
            }
            "useFirstPass" | "tryFirstPass" | "storePass" | "clearPass" => {}
            _ => {
                return err(format!(
                    "option {k} is not supported by rzk (it reads principal, keyTab, useKeyTab, useTicketCache, ticketCache)"
                ))
            }
        }
    }
    if login.principal.is_empty() {
        return err("principal is required (the learner's principal, e.g. zkquorum/host.example.com@EXAMPLE.COM)".into());
    }
    if !login.use_keytab && !login.use_ticket_cache {
        return err("useKeyTab=true or useTicketCache=true is required: rzk does not prompt for a password".into());
    }
    if login.keytab.is_some() && !login.use_keytab {
        notes.push(format!("section {section}: keyTab is set but useKeyTab is not true; the keytab is not used (as in Java)"));
        login.keytab = None;
    }
    Ok(LearnerLogin::Kerberos(login))
}

/// `quorum.auth.kerberos.servicePrincipal`: `service/host` (the host maybe `_HOST`), without a
/// realm: ZooKeeper's learner appends one (`zookeeper.server.realm`, else its own principal's)
/// and cannot parse a principal that already has one.
pub fn check_quorum_service_principal(p: &str) -> Result<(), String> {
    match p.split_once('/') {
        Some((service, host)) if !service.is_empty() && !host.is_empty() && !host.contains('/') && !p.contains('@') => Ok(()),
        _ => Err(format!(
            "{p:?}: the quorum's service principal is service/host without a realm (e.g. zkquorum/_HOST; the realm is the learner's, or zookeeper.server.realm)"
        )),
    }
}

/// `SecurityUtils.getServerPrincipal` and `createSaslClient`: in `service/_HOST`, `_HOST`
/// becomes the host a learner connects to, lower-cased; any other principal is kept as it is.
/// Then the realm is appended: `server_realm` (`zookeeper.server.realm`), else the learner's.
pub fn quorum_service_principal(principal: &str, host: &str, server_realm: Option<&str>, learner_realm: &str) -> String {
    let name = match principal.split_once('/') {
        Some((service, "_HOST")) => format!("{service}/{}", host.to_lowercase()),
        _ => principal.to_string(),
    };
    format!("{name}@{}", server_realm.unwrap_or(learner_realm))
}

/// The DIGEST-MD5 login of a client section (a JAAS `Client` section for a client, the
/// `QuorumLearner` section for a server connecting to another): the `username` and
/// `password` options of its `DigestLoginModule`. Another login module is an error naming
/// it (Kerberos included: rzk does not run a login it cannot perform).
pub fn client_credentials(section: &str, modules: &[LoginModule]) -> Result<(String, String), String> {
    for m in modules {
        if m.class != DIGEST_LOGIN_MODULE {
            let what = if m.class.ends_with("Krb5LoginModule") { "Kerberos (GSSAPI) authentication" } else { "this login module" };
            return Err(format!("section {section}: {}: {what} is not supported by rzk; use {DIGEST_LOGIN_MODULE} (DIGEST-MD5)", m.class));
        }
        let opt = |k: &str| m.options.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if let (Some(username), Some(password)) = (opt("username"), opt("password")) {
            return Ok((username, password));
        }
    }
    Err(format!("section {section} has no username and password"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_file() {
        let text = r#"
// the server
Server {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_super="adminsecret"
       user_bob="bob's \"secret\"";
};
/* the client */
Client {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       username="bob"
       password="bobsecret";
};
"#;
        let j = parse_jaas(text).unwrap();
        assert_eq!(j.len(), 2);
        let (login, notes) = server_credentials("Server", &j["Server"]).unwrap();
        let users = login.users;
        assert_eq!(users["super"], "adminsecret");
        assert_eq!(users["bob"], "bob's \"secret\"");
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(j["Client"][0].options, vec![("username".into(), "bob".into()), ("password".into(), "bobsecret".into())]);
        assert_eq!(client_credentials("Client", &j["Client"]), Ok(("bob".into(), "bobsecret".into())));
        assert!(client_credentials("Server", &j["Server"]).unwrap_err().contains("no username and password"));
        let krb = parse_jaas("QuorumLearner { com.sun.security.auth.module.Krb5LoginModule required; };").unwrap();
        assert!(client_credentials("QuorumLearner", &krb["QuorumLearner"]).unwrap_err().contains("Kerberos"));
    }

    #[test]
    fn quorum_learner_kerberos() {
        let learner = |opts: &str| {
            let j = parse_jaas(&format!("QuorumLearner {{ com.sun.security.auth.module.Krb5LoginModule required {opts}; }};")).unwrap();
            let mut notes = Vec::new();
            learner_login("QuorumLearner", &j["QuorumLearner"], &mut notes).map(|l| (l, notes))
        };
        let (l, notes) = learner(r#"useKeyTab=true keyTab="/k" storeKey=true principal="learner/h@R" debug=false"#).unwrap();
        let LearnerLogin::Kerberos(k) = l else { panic!() };
        assert_eq!((k.principal.as_str(), k.keytab.as_deref()), ("learner/h@R", Some(std::path::Path::new("/k"))));
        assert!(notes.iter().any(|n| n.contains("storeKey")));
        assert!(learner("useKeyTab=true").unwrap_err().contains("principal is required"));
        assert!(learner(r#"principal="a@R""#).unwrap_err().contains("useKeyTab=true or useTicketCache=true"));
        assert!(learner(r#"useKeyTab=true principal="a@R" krb5.conf="/x""#).unwrap_err().contains("krb5.conf is not supported"));
        let j = parse_jaas(r#"L { org.apache.zookeeper.server.auth.DigestLoginModule required username="u" password="p"; };"#).unwrap();
        assert_eq!(learner_login("L", &j["L"], &mut Vec::new()), Ok(LearnerLogin::DigestMd5("u".into(), "p".into())));
    }

    #[test]
    fn quorum_service_principal_as_security_utils() {
        for ok in ["zkquorum/localhost", "zkquorum/_HOST"] {
            assert_eq!(check_quorum_service_principal(ok), Ok(()), "{ok}");
        }
        for bad in ["zkquorum", "zkquorum@R", "/h", "a/b/c", "a/b@R", "a/_HOST@R"] {
            assert!(check_quorum_service_principal(bad).is_err(), "{bad}");
        }
        assert_eq!(quorum_service_principal("zkquorum/_HOST", "Peer.Example", None, "R"), "zkquorum/peer.example@R");
        assert_eq!(quorum_service_principal("zkquorum/localhost", "peer", Some("S"), "R"), "zkquorum/localhost@S");
    }

    #[test]
    fn jaas_errors() {
        for (text, want) in [
            ("Server {\n a.B required x=\"1\"\n};", "expected an option or ';'"),
            ("Server {\n a.B mandatory;\n};", "control flag"),
            ("Server {\n a.B required x=\"1\";\n}", "expected ';'"),
            ("Server {\n a.B required x=\"${user.home}\";\n};", "property expansion"),
            ("Server {\n a.B required x=\"1;\n};", "unterminated"),
            ("Server { a.B required; };\nServer { a.B required; };", "defined twice"),
        ] {
            let e = parse_jaas(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let krb = |opts: &str| {
            let j = parse_jaas(&format!("Server {{ com.sun.security.auth.module.Krb5LoginModule required {opts}; }};")).unwrap();
            server_credentials("Server", &j["Server"])
        };
        let good =
            r#"useKeyTab=true keyTab="/etc/zk.keytab" storeKey=true useTicketCache=false principal="zookeeper/h.example.com@EXAMPLE.COM""#;
        let (login, notes) = krb(good).unwrap();
        let k = login.kerberos.unwrap();
        assert_eq!(k.principal, "zookeeper/h.example.com@EXAMPLE.COM");
        assert_eq!(k.keytab.as_deref(), Some(std::path::Path::new("/etc/zk.keytab")));
        assert!(notes.iter().any(|n| n.contains("useTicketCache")), "{notes:?}");
        for (opts, want) in [
            ("useKeyTab=true storeKey=true", "principal is required"),
            (r#"useKeyTab=true storeKey=true principal="zookeeper@EXAMPLE.COM""#, "service/host@REALM"),
            (r#"useKeyTab=true storeKey=true principal="zookeeper/h""#, "service/host@REALM"),
            (r#"storeKey=true principal="zookeeper/h@R""#, "useKeyTab=true"),
            (r#"useKeyTab=true principal="zookeeper/h@R""#, "storeKey=true"),
            (r#"useKeyTab=true storeKey=true principal="zookeeper/h@R" useFirstPass=true"#, "useFirstPass"),
            (r#"useKeyTab=true storeKey=true principal="zookeeper/h@R" krb5.conf="/x""#, "krb5.conf is not supported"),
        ] {
            let e = krb(opts).unwrap_err();
            assert!(e.contains(want), "{opts}: {e}");
        }
        let other_krb = parse_jaas("Server { com.ibm.security.auth.module.Krb5LoginModule required; };").unwrap();
        assert!(server_credentials("Server", &other_krb["Server"]).unwrap_err().contains("com.ibm"));
        let other = parse_jaas("Server { com.example.Login required; };").unwrap();
        assert!(server_credentials("Server", &other["Server"]).unwrap_err().contains("com.example.Login"));
    }

    #[test]
    fn enforcement() {
        let e = EnforceAuth { enabled: true, schemes: vec!["digest".into(), "sasl".into()] };
        assert!(e.sasl_required());
        assert!(!EnforceAuth { enabled: false, schemes: vec!["sasl".into()] }.sasl_required());
    }
}
