//! ZooKeeper's `EphemeralType`: how a znode's `ephemeralOwner` encodes what kind of node it
//! is.
//!
//! * `0`: a plain persistent node (`VOID`).
//! * `Long.MIN_VALUE` (`0x8000000000000000`): a container node.
//! * With `zookeeper.extendedTypesEnabled=true` only: top byte `0xFF` marks an "extended"
//!   owner; bits 40..56 select the feature (0 = TTL) and the low 40 bits hold the value, so a
//!   TTL node's owner is `0xFF00_0000_0000_0000 | ttl` with `1 <= ttl <= 0xFF_FFFF_FFFF`.
//!   With extended types disabled such an owner is just an (odd) session id.
//! * Anything else: the id of the session owning an ephemeral node (`NORMAL`).
//!
//! Clients never see the container/TTL encodings: `Stat.ephemeralOwner` reads 0 for them.
//! (The 3.5.3 TTL emulation, `zookeeper.emulate353TTLNodes`, is not supported.)

/// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`.
pub const CONTAINER_EPHEMERAL_OWNER: i64 = i64::MIN;
/// `EphemeralType.MAX_EXTENDED_SERVER_ID`: with extended types on, server ids must be ≤ 254.
pub const MAX_EXTENDED_SERVER_ID: i64 = 0xfe;
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;
const EXTENDED_BIT_TTL: i64 = 0x0000;
const RESERVED_BITS_MASK: i64 = 0x00ff_ff00_0000_0000;
const RESERVED_BITS_SHIFT: u32 = 40;
const EXTENDED_FEATURE_VALUE_MASK: i64 = !(EXTENDED_MASK | RESERVED_BITS_MASK);
/// `EphemeralType.TTL.maxValue()`: the largest TTL in ms (about 34 years).
pub const TTL_MAX: i64 = EXTENDED_FEATURE_VALUE_MASK;

/// `EphemeralType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EphemeralType {
    /// Not ephemeral: owner 0.
    Void,
    /// An ephemeral node owned by a session.
    Normal,
    Container,
    Ttl,
}

impl EphemeralType {
    /// `EphemeralType.get(ephemeralOwner)` given `zookeeper.extendedTypesEnabled`.
    ///
    /// ZooKeeper throws for an extended owner with an unknown feature bit; no session id can
    /// look like that (server ids are ≤ 254 when extended types are on), so such an owner is
    /// reported as `Normal` here.
    pub fn of(ephemeral_owner: i64, extended_types_enabled: bool) -> EphemeralType {
        if extended_types_enabled && (ephemeral_owner & EXTENDED_MASK) == EXTENDED_MASK {
            let feature = (ephemeral_owner & RESERVED_BITS_MASK) >> RESERVED_BITS_SHIFT;
            if feature == EXTENDED_BIT_TTL {
                return EphemeralType::Ttl;
            }
            return EphemeralType::Normal;
        }
        if ephemeral_owner == CONTAINER_EPHEMERAL_OWNER {
            EphemeralType::Container
        } else if ephemeral_owner == 0 {
            EphemeralType::Void
        } else {
            EphemeralType::Normal
        }
    }

    /// `EphemeralType.TTL.toEphemeralOwner(ttl)`; `None` where ZooKeeper throws
    /// (`ttl <= 0 || ttl > TTL_MAX`).
    pub fn ttl_to_owner(ttl: i64) -> Option<i64> {
        if ttl > TTL_MAX || ttl <= 0 {
            return None;
        }
        Some(EXTENDED_MASK | EXTENDED_BIT_TTL | ttl)
    }

    /// `EphemeralType.TTL.getValue(ephemeralOwner)`: the TTL in ms held by a TTL owner.
    pub fn ttl_value(ephemeral_owner: i64) -> i64 {
        ephemeral_owner & EXTENDED_FEATURE_VALUE_MASK
    }

    /// `DataNode.getClientEphemeralOwner`: what `Stat.ephemeralOwner` shows.
    pub fn client_ephemeral_owner(ephemeral_owner: i64, extended_types_enabled: bool) -> i64 {
        if Self::of(ephemeral_owner, extended_types_enabled) != EphemeralType::Normal {
            0
        } else {
            ephemeral_owner
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(EphemeralType::ttl_to_owner(1000), Some(0xff00_0000_0000_03e8_u64 as i64));
        assert_eq!(EphemeralType::ttl_to_owner(0), None);
        assert_eq!(EphemeralType::ttl_to_owner(TTL_MAX + 1), None);
        assert_eq!(TTL_MAX, 0xff_ffff_ffff);
        let o = EphemeralType::ttl_to_owner(TTL_MAX).unwrap();
        assert_eq!(EphemeralType::of(o, true), EphemeralType::Ttl);
        assert_eq!(EphemeralType::of(o, false), EphemeralType::Normal);
        assert_eq!(EphemeralType::ttl_value(o), TTL_MAX);
        assert_eq!(EphemeralType::of(i64::MIN, false), EphemeralType::Container);
        assert_eq!(EphemeralType::of(i64::MIN, true), EphemeralType::Container);
        assert_eq!(EphemeralType::of(0, true), EphemeralType::Void);
        assert_eq!(EphemeralType::of(0x100_0000_0000_0001, true), EphemeralType::Normal);
        assert_eq!(EphemeralType::client_ephemeral_owner(i64::MIN, false), 0);
        assert_eq!(EphemeralType::client_ephemeral_owner(o, true), 0);
        assert_eq!(EphemeralType::client_ephemeral_owner(o, false), o);
        assert_eq!(EphemeralType::client_ephemeral_owner(5, false), 5);
    }
}
