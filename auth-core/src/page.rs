//! One page of a listing: every listing of every store pages the same way, by `limit` and
//! `offset`, and answers with the number of matches across all pages.

use serde::Serialize;

/// Largest page a listing returns.
pub const MAX_PAGE: u32 = 1000;

/// The page size a listing uses when asked for `limit`: 0 means the default of 50, and nothing
/// above [`MAX_PAGE`].
pub fn clamp_limit(limit: u32) -> u32 {
    match limit {
        0 => 50,
        n => n.min(MAX_PAGE),
    }
}

/// One page of a listing, with the number of matches across all pages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}
