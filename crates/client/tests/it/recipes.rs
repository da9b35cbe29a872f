//! Recipe tests.
