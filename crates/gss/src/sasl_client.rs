//! The initiator's side of SASL GSSAPI (RFC 4752), as Java's `GssKrb5Client` runs it for a
//! ZooKeeper client (`zookeeper/<host>`) and for a learner connecting to another server
//! (`quorum.auth.kerberos.servicePrincipal`, `zkquorum/<host>`): the context with the
//! service's host-based name and mutual authentication, then the security-layer
//! negotiation (the server's wrapped offer must include "no security layer", which the
//! client picks, naming its own principal as the authorization id).
//!
//! Shared by `rzk_client` (the client port) and `rzk_server`'s peer security (the quorum).
//! [`SaslGssapiClient::start`] talks to the KDC (credential, service ticket): callers in an
//! async runtime run it on a blocking thread.

use crate::{initiator_credential, ClientContext, Error, InitiatorLogin};

enum State {
    Context,
    Established,
    Final,
    Done,
}

/// One connection's GSSAPI login.
pub struct SaslGssapiClient {
    ctx: ClientContext,
    state: State,
}

impl std::fmt::Debug for SaslGssapiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslGssapiClient").field("ctx", &self.ctx).finish()
    }
}

impl SaslGssapiClient {
    /// Acquires the credential of `login`, makes the context with `service@host` and returns
    /// the first token (blocking: it may ask the KDC for tickets).
    pub fn start(login: &InitiatorLogin, service: &str, host: &str) -> Result<(SaslGssapiClient, Vec<u8>), Error> {
        let cred = initiator_credential(login)?;
        let mut ctx = ClientContext::new(cred, service, host).map_err(|e| format!("{e} (service principal {service}/{host})"))?;
        let first = ctx.step(None).map_err(|e| format!("{e} (service principal {service}/{host})"))?;
        Ok((SaslGssapiClient { ctx, state: State::Context }, first.unwrap_or_default()))
    }

    /// As [`SaslGssapiClient::start`], with the server's whole principal `service/host@REALM`
    /// (a learner's target, `quorum.auth.kerberos.servicePrincipal`).
    pub fn start_for_principal(login: &InitiatorLogin, principal: &str) -> Result<(SaslGssapiClient, Vec<u8>), Error> {
        let cred = initiator_credential(login)?;
        let mut ctx = ClientContext::for_principal(cred, principal).map_err(|e| format!("{e} (service principal {principal})"))?;
        let first = ctx.step(None).map_err(|e| format!("{e} (service principal {principal})"))?;
        Ok((SaslGssapiClient { ctx, state: State::Context }, first.unwrap_or_default()))
    }

    /// Whether the client has sent its last token (its security-layer choice).
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Final | State::Done)
    }

    /// The server's token in; the next token out, or `None` once the login is complete.
    pub fn evaluate_challenge(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        match self.state {
            State::Context if !self.ctx.is_complete() => {
                let next = self.ctx.step(Some(challenge))?;
                if self.ctx.is_complete() {
                    self.state = State::Established;
                }
                // Established without a token of its own: an empty one asks for the offer.
                Ok(Some(next.unwrap_or_default()))
            }
            State::Context | State::Established => {
                let offer = self.ctx.unwrap(challenge)?;
                if offer.len() != 4 {
                    return Err(format!("the server's security-layer offer has {} bytes, not 4", offer.len()));
                }
                if offer[0] & 1 == 0 {
                    return Err(format!("the server offers no \"no security layer\" (layers {:#x})", offer[0]));
                }
                let mut choice = vec![1, 0, 0, 0];
                choice.extend_from_slice(self.ctx.source_name()?.as_bytes());
                self.state = State::Final;
                Ok(Some(self.ctx.wrap(&choice)?))
            }
            State::Final => {
                self.state = State::Done;
                Ok(None)
            }
            State::Done => Err("the GSSAPI login is already complete".into()),
        }
    }
}
