//! ZooKeeper's path rules (`PathUtils.validatePath`), the one implementation the server's prep
//! step and the client's fail-fast check both use. Pure: each caller maps [`InvalidPath`] to
//! its own error at its edge (the server to `BadArguments`, the client to its `InvalidPath`).

/// Why a path is not valid: ZooKeeper's `IllegalArgumentException` reason ("Path must start
/// with / character", "empty node name specified @3", ...), with the path it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid path string \"{path}\" caused by {reason}")]
pub struct InvalidPath {
    pub path: String,
    pub reason: String,
}

/// Validates a path exactly as ZooKeeper's `PathUtils.validatePath`: absolute, no trailing
/// slash (except the root), no empty segment, no `.` or `..` segment, no NUL and none of the
/// characters ZooKeeper forbids (controls, surrogates and private use, U+FFF0..U+FFFF). The
/// `@index` of a reason counts UTF-16 code units, as Java does.
pub fn validate_path(path: &str) -> Result<(), InvalidPath> {
    let fail = |reason: String| Err(InvalidPath { path: path.to_owned(), reason });
    if path.is_empty() {
        return fail("Path length must be > 0".into());
    }
    if !path.starts_with('/') {
        return fail("Path must start with / character".into());
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return fail("Path must not end with / character".into());
    }
    // Nearly every path is ASCII and valid: checked on its bytes, with no allocation (a
    // UTF-16 copy per request cost ~1k instructions of every create). Anything else, or
    // any fault, goes the Java way (`java_rules`), which words the reason.
    if path.is_ascii() && ascii_path_ok(path.as_bytes()) {
        return Ok(());
    }
    java_rules(path)
}

/// The per-character rules of [`validate_path`] on a path that starts with `/` and does not
/// end with one, in UTF-16 code units as Java works, so indexes and surrogate rules match.
fn java_rules(path: &str) -> Result<(), InvalidPath> {
    let fail = |reason: String| Err(InvalidPath { path: path.to_owned(), reason });
    let units: Vec<u16> = path.encode_utf16().collect();
    let dot = b'.' as u16;
    let slash = b'/' as u16;
    let mut last = slash;
    for i in 1..units.len() {
        let c = units[i];
        let segment_ends = i + 1 == units.len() || units[i + 1] == slash;
        let reason = if c == 0 {
            Some("null character not allowed")
        } else if c == slash && last == slash {
            Some("empty node name specified")
        } else if c == dot && last == dot {
            (units[i - 2] == slash && segment_ends).then_some("relative paths not allowed")
        } else if c == dot {
            (units[i - 1] == slash && segment_ends).then_some("relative paths not allowed")
        } else if (c > 0 && c <= 0x1f) || (0x7f..=0x9f).contains(&c) || (0xd800..=0xf8ff).contains(&c) || c >= 0xfff0 {
            Some("invalid character")
        } else {
            None
        };
        if let Some(r) = reason {
            return fail(format!("{r} @{i}"));
        }
        last = c;
    }
    Ok(())
}

/// The rules of [`validate_path`] on an ASCII path of at least two bytes that starts with `/`
/// and does not end with one: true when none is broken (on ASCII, bytes are UTF-16 units).
fn ascii_path_ok(b: &[u8]) -> bool {
    let mut last = b'/';
    for i in 1..b.len() {
        let c = b[i];
        let segment_ends = i + 1 == b.len() || b[i + 1] == b'/';
        let bad = match c {
            0..=0x1f | 0x7f => true,
            b'/' => last == b'/',
            b'.' if last == b'.' => b[i - 2] == b'/' && segment_ends,
            b'.' => b[i - 1] == b'/' && segment_ends,
            _ => false,
        };
        if bad {
            return false;
        }
        last = c;
    }
    true
}

/// `PathUtils.validatePath(path, isSequential)`: a sequential create's path may end in `/`
/// (the server appends the counter), so it is checked with a digit appended; the error names
/// the path as given.
pub fn validate_create_path(path: &str, sequential: bool) -> Result<(), InvalidPath> {
    if !sequential {
        return validate_path(path);
    }
    validate_path(&format!("{path}1")).map_err(|e| InvalidPath { path: path.to_owned(), reason: e.reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(p: &str) -> String {
        validate_path(p).unwrap_err().reason
    }

    #[test]
    fn zookeeper_path_rules() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/..a", "/a..", "/a/...", "/é", "/a b", "/zookeeper"] {
            assert!(validate_path(ok).is_ok(), "{ok}");
        }
        for bad in
            ["", "a", "/a/", "//", "/a//b", "/.", "/..", "/a/./b", "/a/../b", "/a/..", "/a\0b", "/a\u{1}", "/\u{e000}", "/😀", "/\u{fff0}"]
        {
            assert!(validate_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reasons_as_zookeeper_gives_them() {
        assert_eq!(reason(""), "Path length must be > 0");
        assert_eq!(reason("a"), "Path must start with / character");
        assert_eq!(reason("/a/"), "Path must not end with / character");
        assert_eq!(reason("/a//b"), "empty node name specified @3");
        assert_eq!(reason("/a/./b"), "relative paths not allowed @3");
        assert_eq!(reason("/a/.."), "relative paths not allowed @4");
        assert_eq!(reason("/a\u{1}"), "invalid character @2");
        assert_eq!(reason("/a\0"), "null character not allowed @2");
        // Java indexes UTF-16 units: the surrogate pair's first half is refused.
        assert_eq!(reason("/é😀"), "invalid character @2");
        assert_eq!(validate_path("a").unwrap_err().to_string(), "Invalid path string \"a\" caused by Path must start with / character");
    }

    #[test]
    fn the_ascii_fast_path_agrees_with_the_java_rules() {
        // Every path of up to 7 characters over the characters that matter.
        let alphabet = ['/', '.', 'a', '\0', '\u{1}', '\u{7f}'];
        let mut paths = vec![String::from("/")];
        for _ in 0..6 {
            let mut next = vec![];
            for p in &paths {
                for c in alphabet {
                    let mut q = p.clone();
                    q.push(c);
                    next.push(q);
                }
            }
            for p in &next {
                if p.len() > 1 && !p.ends_with('/') {
                    assert_eq!(ascii_path_ok(p.as_bytes()), java_rules(p).is_ok(), "{p:?}");
                }
            }
            paths = next;
        }
    }

    #[test]
    fn sequential_paths_may_end_in_a_slash() {
        validate_create_path("/a/", true).unwrap();
        validate_create_path("/a/lock-", true).unwrap();
        assert!(validate_create_path("/a/", false).is_err());
        let e = validate_create_path("/a//", true).unwrap_err();
        assert_eq!((e.path.as_str(), e.reason.as_str()), ("/a//", "empty node name specified @3"));
    }
}
