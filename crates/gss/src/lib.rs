//! Kerberos V5 through the system's GSS-API library (MIT krb5's `libgssapi_krb5`, by the
//! `libgssapi` crate), for SASL GSSAPI on the client port. This crate owns the calls into the
//! C library and nothing of the protocol: the server's acceptor credential from a keytab
//! ([`Acceptor`]) and its per-connection contexts ([`ServerContext`]), the client's
//! credential from a ticket cache or a keytab ([`initiator_credential`]) and its context
//! ([`ClientContext`]), and the library's default realm ([`default_realm`]). Of the SASL layer
//! (RFC 4752) it holds only the initiator's side ([`SaslGssapiClient`], shared by clients and
//! by learners connecting to other servers); the acceptor's side is `rzk_core::gssapi`.
//!
//! Building needs MIT krb5's headers (Debian: `libkrb5-dev`) and libclang (`libclang-dev`),
//! so the crates that use it do so behind their `kerberos` cargo feature.

use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext, ServerCtx};
use libgssapi::credential::Cred;
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_NT_HOSTBASED_SERVICE, GSS_NT_KRB5_PRINCIPAL};
use libgssapi_sys as sys;
use std::ffi::CString;
use std::path::Path;

mod sasl_client;
pub use sasl_client::SaslGssapiClient;

/// A GSS-API failure, with the library's major and minor messages.
pub type Error = String;

fn msg(what: &str, e: impl std::fmt::Display) -> Error {
    format!("{what}: {e}")
}

/// `gss_acquire_cred_from` (MIT krb5 1.11+): a credential from a credential store
/// (`keytab`, `client_keytab`, `ccache` entries), for `name` or the default.
fn acquire_from(name: Option<&[u8]>, name_type_user: bool, usage: i32, store: &[(&str, String)]) -> Result<Cred, Error> {
    let keys: Vec<(CString, CString)> = store
        .iter()
        .map(|(k, v)| Ok((CString::new(*k).map_err(|_| "NUL in a store key")?, CString::new(v.as_str()).map_err(|_| "NUL in a path")?)))
        .collect::<Result<_, &str>>()?;
    let mut elements: Vec<sys::gss_key_value_element_desc> =
        keys.iter().map(|(k, v)| sys::gss_key_value_element_desc { key: k.as_ptr(), value: v.as_ptr() }).collect();
    let set = sys::gss_key_value_set_desc { count: elements.len() as u32, elements: elements.as_mut_ptr() };
    let mut minor: sys::OM_uint32 = 0;
    let mut gss_name: sys::gss_name_t = std::ptr::null_mut();
    if let Some(n) = name {
        let mut buf = sys::gss_buffer_desc { length: n.len(), value: n.as_ptr() as *mut _ };
        // SAFETY: the buffer outlives the call; the name type OIDs are the library's statics.
        let major = unsafe {
            let oid = if name_type_user { sys::GSS_C_NT_USER_NAME } else { sys::GSS_C_NT_HOSTBASED_SERVICE };
            sys::gss_import_name(&mut minor, &mut buf, oid, &mut gss_name)
        };
        if major != 0 {
            return Err(format!("cannot import the name {:?} (GSS major {major:#x}, minor {minor})", String::from_utf8_lossy(n)));
        }
    }
    let mut cred: sys::gss_cred_id_t = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; the store's strings outlive it.
    let major = unsafe {
        sys::gss_acquire_cred_from(
            &mut minor,
            gss_name,
            sys::_GSS_C_INDEFINITE,
            std::ptr::null_mut(),
            usage,
            &set,
            &mut cred,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if !gss_name.is_null() {
        let mut m2 = 0;
        // SAFETY: the name was imported above and is released once.
        unsafe { sys::gss_release_name(&mut m2, &mut gss_name) };
    }
    if major != 0 {
        let e = libgssapi::error::Error { major: libgssapi::error::MajorFlags::from_bits_retain(major), minor };
        return Err(msg("cannot acquire Kerberos credentials", e));
    }
    // SAFETY: a credential the library just handed out; Cred releases it.
    Ok(unsafe { Cred::from_c(cred) })
}

/// The server's acceptor credential: the keys of `service/host@REALM` from its keytab. Its
/// `Debug` names the principal (and calls nothing in the library).
#[derive(Clone)]
pub struct Acceptor {
    principal: String,
    cred: Cred,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor").field("principal", &self.principal).finish()
    }
}

impl Acceptor {
    /// Acquires the acceptor credential of `principal` (`service/host@REALM`, parsed as a
    /// Kerberos principal name, so no DNS canonicalization changes it, as Java's JAAS login
    /// takes it as written), from `keytab` or the library's default keytab. Fails at once when
    /// the keytab is missing or has no key for the principal, so a bad login stops start-up
    /// rather than every client's login.
    pub fn new(principal: &str, keytab: Option<&Path>) -> Result<Acceptor, Error> {
        let store: Vec<(&str, String)> = keytab.map(|k| ("keytab", k.display().to_string())).into_iter().collect();
        let cred = acquire_from(Some(principal.as_bytes()), true, sys::GSS_C_ACCEPT as i32, &store)?;
        Ok(Acceptor { principal: principal.to_string(), cred })
    }

    /// A fresh acceptor context for one connection.
    pub fn context(&self) -> ServerContext {
        ServerContext { ctx: ServerCtx::new(Some(self.cred.clone())) }
    }
}

/// One connection's acceptor context.
pub struct ServerContext {
    ctx: ServerCtx,
}

impl std::fmt::Debug for ServerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerContext").field("complete", &self.ctx.is_complete()).finish()
    }
}

impl ServerContext {
    /// `gss_accept_sec_context`: the token to send back, and whether the context is established.
    pub fn accept(&mut self, token: &[u8]) -> Result<(Option<Vec<u8>>, bool), Error> {
        let out = self.ctx.step(token, None).map_err(|e| msg("accept", e))?;
        Ok((out.map(|b| b.to_vec()), self.ctx.is_complete()))
    }

    /// The initiator's principal.
    pub fn source_name(&self) -> Result<String, Error> {
        self.ctx.source_name().map(|n| n.to_string()).map_err(|e| msg("source name", e))
    }

    /// `gss_wrap`, integrity only.
    pub fn wrap(&mut self, m: &[u8]) -> Result<Vec<u8>, Error> {
        self.ctx.wrap(false, m).map(|b| b.to_vec()).map_err(|e| msg("wrap", e))
    }

    /// `gss_unwrap`.
    pub fn unwrap(&mut self, t: &[u8]) -> Result<Vec<u8>, Error> {
        self.ctx.unwrap(t).map(|b| b.to_vec()).map_err(|e| msg("unwrap", e))
    }
}

/// Where a client's Kerberos identity comes from (Java's `Krb5LoginModule` options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitiatorLogin {
    /// `principal`: whom to log in as (with a keytab: required).
    pub principal: Option<String>,
    /// `keyTab` (with `useKeyTab=true`): initial tickets are got from it.
    pub keytab: Option<std::path::PathBuf>,
    /// `useTicketCache=true`: tickets are looked for in the ticket cache first.
    pub use_ticket_cache: bool,
    /// `ticketCache`: that cache instead of the default (`KRB5CCNAME`).
    pub ticket_cache: Option<String>,
}

/// The client's credential, in `Krb5LoginModule`'s order: the ticket cache (`kinit`'s, or
/// `ticket_cache`) when `use_ticket_cache`, else or failing that the keytab (whose tickets
/// then go to a memory cache of this process, unless a ticket cache is used).
pub fn initiator_credential(login: &InitiatorLogin) -> Result<Cred, Error> {
    let mut store: Vec<(&str, String)> = Vec::new();
    if let Some(k) = &login.keytab {
        store.push(("client_keytab", k.display().to_string()));
    }
    match (&login.ticket_cache, login.use_ticket_cache) {
        (Some(c), true) => store.push(("ccache", c.clone())),
        (None, true) => {}
        (_, false) => store.push(("ccache", format!("MEMORY:rzk-{}", std::process::id()))),
    }
    acquire_from(login.principal.as_deref().map(str::as_bytes), true, sys::GSS_C_INITIATE as i32, &store)
}

/// A client's context with `service@host`.
pub struct ClientContext {
    ctx: ClientCtx,
}

impl std::fmt::Debug for ClientContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientContext").field("complete", &self.ctx.is_complete()).finish()
    }
}

impl ClientContext {
    /// A context with the service `service@host` (mutual authentication, as Java's client
    /// asks for it).
    pub fn new(cred: Cred, service: &str, host: &str) -> Result<ClientContext, Error> {
        let target =
            Name::new(format!("{service}@{host}").as_bytes(), Some(GSS_NT_HOSTBASED_SERVICE)).map_err(|e| msg("service name", e))?;
        ClientContext::with_target(cred, target)
    }

    /// A context with the Kerberos principal `service/host@REALM`, taken as written (as
    /// Java's quorum learner names its server's principal, realm included).
    pub fn for_principal(cred: Cred, principal: &str) -> Result<ClientContext, Error> {
        let target = Name::new(principal.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL)).map_err(|e| msg("service principal", e))?;
        ClientContext::with_target(cred, target)
    }

    fn with_target(cred: Cred, target: Name) -> Result<ClientContext, Error> {
        let target = target.canonicalize(Some(GSS_MECH_KRB5)).map_err(|e| msg("service name", e))?;
        Ok(ClientContext { ctx: ClientCtx::new(Some(cred), target, CtxFlags::GSS_C_MUTUAL_FLAG, Some(GSS_MECH_KRB5)) })
    }

    /// `gss_init_sec_context`: the next token to send (None once established).
    pub fn step(&mut self, token: Option<&[u8]>) -> Result<Option<Vec<u8>>, Error> {
        self.ctx.step(token, None).map(|o| o.map(|b| b.to_vec())).map_err(|e| msg("initiate", e))
    }

    /// Whether the context is established.
    pub fn is_complete(&self) -> bool {
        self.ctx.is_complete()
    }

    /// The client's own principal.
    pub fn source_name(&self) -> Result<String, Error> {
        self.ctx.source_name().map(|n| n.to_string()).map_err(|e| msg("source name", e))
    }

    /// `gss_wrap`, integrity only.
    pub fn wrap(&mut self, m: &[u8]) -> Result<Vec<u8>, Error> {
        self.ctx.wrap(false, m).map(|b| b.to_vec()).map_err(|e| msg("wrap", e))
    }

    /// `gss_unwrap`.
    pub fn unwrap(&mut self, t: &[u8]) -> Result<Vec<u8>, Error> {
        self.ctx.unwrap(t).map(|b| b.to_vec()).map_err(|e| msg("unwrap", e))
    }
}

#[allow(non_camel_case_types)]
type krb5_context = *mut std::ffi::c_void;

#[link(name = "krb5")]
extern "C" {
    fn krb5_init_context(ctx: *mut krb5_context) -> i32;
    fn krb5_free_context(ctx: krb5_context);
    fn krb5_get_default_realm(ctx: krb5_context, realm: *mut *mut std::ffi::c_char) -> i32;
    fn krb5_free_default_realm(ctx: krb5_context, realm: *mut std::ffi::c_char);
}

/// krb5.conf's `default_realm` (`KRB5_CONFIG`), as Java's `KerberosName` reads it.
pub fn default_realm() -> Option<String> {
    let mut ctx: krb5_context = std::ptr::null_mut();
    // SAFETY: a context made, used and freed here; the realm string is freed by the library.
    unsafe {
        if krb5_init_context(&mut ctx) != 0 {
            return None;
        }
        let mut realm: *mut std::ffi::c_char = std::ptr::null_mut();
        let out = if krb5_get_default_realm(ctx, &mut realm) == 0 && !realm.is_null() {
            let s = std::ffi::CStr::from_ptr(realm).to_string_lossy().into_owned();
            krb5_free_default_realm(ctx, realm);
            Some(s)
        } else {
            None
        };
        krb5_free_context(ctx);
        out
    }
}
