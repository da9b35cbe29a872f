//! Path rules: ZooKeeper's `PathUtils.validatePath` (as the prep step applies it to writes)
//! and the parent/child helpers the pipeline uses.

/// Why a path is not valid; becomes BadArguments at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPath(pub String);

/// Validates a path exactly as ZooKeeper's `PathUtils.validatePath`: absolute, no trailing
/// slash (except the root), no empty segment, no `.` or `..` segment, no NUL and none of the
/// characters ZooKeeper forbids (controls, surrogates and private use, U+FFF0..U+FFFF).
pub fn validate_path(path: &str) -> Result<(), InvalidPath> {
    if path.is_empty() {
        return Err(InvalidPath("Path length must be > 0".into()));
    }
    if !path.starts_with('/') {
        return Err(InvalidPath("Path must start with / character".into()));
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(InvalidPath("Path must not end with / character".into()));
    }
    // Work in UTF-16 code units as Java does, so indexes and surrogate rules match.
    let units: Vec<u16> = path.encode_utf16().collect();
    let dot = b'.' as u16;
    let slash = b'/' as u16;
    let mut last = slash;
    for i in 1..units.len() {
        let c = units[i];
        let reason = if c == 0 {
            Some("null character not allowed")
        } else if c == slash && last == slash {
            Some("empty node name specified")
        } else if c == dot && last == dot {
            if units[i - 2] == slash && (i + 1 == units.len() || units[i + 1] == slash) {
                Some("relative paths not allowed")
            } else {
                None
            }
        } else if c == dot {
            if units[i - 1] == slash && (i + 1 == units.len() || units[i + 1] == slash) {
                Some("relative paths not allowed")
            } else {
                None
            }
        } else if (c > 0 && c <= 0x1f)
            || (0x7f..=0x9f).contains(&c)
            || (0xd800..=0xf8ff).contains(&c)
            || c >= 0xfff0
        {
            Some("invalid character")
        } else {
            None
        };
        if let Some(r) = reason {
            return Err(InvalidPath(format!(
                "Invalid path string \"{path}\" caused by {r} @{i}"
            )));
        }
        last = c;
    }
    Ok(())
}

/// The parent of `path` as ZooKeeper computes it (`path.substring(0, lastIndexOf('/'))`):
/// the parent of `/a` is `""`, which ZooKeeper's tree maps to the root.
pub fn parent_of(path: &str) -> Option<&str> {
    path.rfind('/').map(|i| &path[..i])
}

/// ZooKeeper's tree answers both `""` and `"/"` for the root.
pub fn normalize_root(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// The paths ZooKeeper refuses to delete (`ZKDatabase.isSpecialPath`).
pub fn is_special_path(path: &str) -> bool {
    matches!(
        path,
        "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zookeeper_path_rules() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/..a", "/a..", "/é", "/a b"] {
            assert!(validate_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/./b",
            "/a/../b",
            "/a\0b",
            "/a\u{1}",
            "/\u{e000}",
            "/😀",
            "/\u{fff0}",
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parents() {
        assert_eq!(parent_of("/a"), Some(""));
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("a"), None);
        assert_eq!(normalize_root(""), "/");
    }
}
