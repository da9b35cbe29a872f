//! Path helpers the pipeline uses: parents, the root's two spellings, the special paths.
//! ZooKeeper's `PathUtils.validatePath` itself is `rzk_proto::path`, shared with the client.

pub use rzk_proto::path::{validate_path, InvalidPath};

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
    matches!(path, "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents() {
        assert_eq!(parent_of("/a"), Some(""));
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("a"), None);
        assert_eq!(normalize_root(""), "/");
    }
}
