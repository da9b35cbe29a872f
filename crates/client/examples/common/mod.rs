//! Shared by the examples: `--key value` arguments and wall-clock milliseconds.
#![allow(dead_code)]

use std::collections::HashMap;

pub struct Args(HashMap<String, String>);

impl Args {
    pub fn parse() -> Args {
        let mut m = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(k) = it.next() {
            if let Some(k) = k.strip_prefix("--") {
                m.insert(k.to_owned(), it.next().unwrap_or_default());
            }
        }
        Args(m)
    }
    pub fn get(&self, k: &str, default: &str) -> String {
        self.0.get(k).cloned().unwrap_or_else(|| default.to_owned())
    }
    pub fn num(&self, k: &str, default: u64) -> u64 {
        self.0.get(k).and_then(|v| v.parse().ok()).unwrap_or(default)
    }
}

pub fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
}
