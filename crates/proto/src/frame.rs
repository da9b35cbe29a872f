//! Cutting length-prefixed frames out of a byte stream.
//!
//! Every client and quorum message is a 4-byte big-endian length followed by that many bytes.
//! [`split`] looks at the front of a buffer and says whether a whole frame is there
//! ([`FrameStatus::Frame`]), more bytes are needed ([`FrameStatus::Incomplete`]), or the
//! length can never be valid ([`FrameStatus::Invalid`]: negative, or above the limit, which is
//! `jute.maxbuffer` plus room for the headers, as ZooKeeper allows).

/// What the front of a buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus {
    /// Fewer bytes than a whole frame; `needed` is the total the frame will take, when known.
    Incomplete { needed: Option<usize> },
    /// A frame of `len` payload bytes starts after the 4-byte prefix.
    Frame { len: usize },
    /// The length prefix is negative or larger than `max_len`.
    Invalid { len: i64 },
}

/// Looks at the front of `buf` for a frame whose payload is at most `max_len` bytes.
pub fn split(buf: &[u8], max_len: usize) -> FrameStatus {
    if buf.len() < 4 {
        return FrameStatus::Incomplete { needed: None };
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 0 || len as usize > max_len {
        return FrameStatus::Invalid { len: len as i64 };
    }
    let len = len as usize;
    if buf.len() - 4 < len {
        return FrameStatus::Incomplete { needed: Some(4 + len) };
    }
    FrameStatus::Frame { len }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn basics() {
        assert_eq!(split(&[0, 0], 10), FrameStatus::Incomplete { needed: None });
        assert_eq!(split(&[0, 0, 0, 2, 1], 10), FrameStatus::Incomplete { needed: Some(6) });
        assert_eq!(split(&[0, 0, 0, 2, 1, 2, 3], 10), FrameStatus::Frame { len: 2 });
        assert_eq!(split(&[0, 0, 0, 20], 10), FrameStatus::Invalid { len: 20 });
        assert_eq!(split(&[0xff, 0xff, 0xff, 0xff], 10), FrameStatus::Invalid { len: -1 });
    }

    proptest! {
        #[test]
        fn never_panics_and_respects_limit(buf in proptest::collection::vec(any::<u8>(), 0..64), max in 0usize..100) {
            match split(&buf, max) {
                FrameStatus::Frame { len } => prop_assert!(len <= max && len + 4 <= buf.len()),
                FrameStatus::Incomplete { needed: Some(n) } => prop_assert!(n > buf.len()),
                _ => {}
            }
        }

        #[test]
        fn request_decoding_never_panics(op in -12i32..110, body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = crate::client::Request::decode(op, &body);
            let _ = crate::txn::TxnRecord::from_bytes(&body);
            let _ = crate::client::ConnectRequest::read(&mut crate::jute::Reader::new(&body));
        }
    }
}
