//! The one way every listing pages: `limit` (1 to 1000, default 50) and `offset` (default 0),
//! answered as `{"items": [...], "total": n, "limit": l, "offset": o}`, `total` counting the
//! matches across all pages. The event and roster listings also still take the `page` (from 1)
//! and `per_page` (1 to 100) they took first, and then answer those two as well.

use auth_core::page::{Page, MAX_PAGE};
use serde::Serialize;
use serde_json::{json, Value};

use crate::http::ApiError;

/// Largest `per_page` of the older page-numbered style.
pub const MAX_PER_PAGE: u32 = 100;
/// Largest `page`: the last whose offset fits at any `per_page`, so that the limit does not
/// depend on the other argument (the OpenAPI document can state it).
pub const MAX_PAGE_NUMBER: u32 = u32::MAX / MAX_PER_PAGE + 1;
/// `per_page` when a page number comes without one.
const DEFAULT_PER_PAGE: u32 = 20;

/// Which slice of a listing to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u32,
    pub offset: u32,
    /// The `(page, per_page)` asked for, when the older style was used.
    numbered: Option<(u32, u32)>,
}

impl Window {
    /// From `limit` and `offset`: a `limit` outside 1 to 1000 is a 400 naming `limit`.
    pub fn new(limit: Option<u32>, offset: Option<u32>) -> Result<Self, ApiError> {
        let limit = match limit {
            None => 50,
            Some(n) if (1..=MAX_PAGE).contains(&n) => n,
            Some(_) => {
                return Err(ApiError::bad_request(
                    format!("must be from 1 to {MAX_PAGE}"),
                    Some("limit"),
                ))
            }
        };
        Ok(Window {
            limit,
            offset: offset.unwrap_or(0),
            numbered: None,
        })
    }

    /// From either style, but not both: `page`/`per_page` (from 1; 1 to 100, default 20) or
    /// `limit`/`offset`.
    pub fn either(
        limit: Option<u32>,
        offset: Option<u32>,
        page: Option<u32>,
        per_page: Option<u32>,
    ) -> Result<Self, ApiError> {
        if page.is_none() && per_page.is_none() {
            return Self::new(limit, offset);
        }
        if limit.is_some() || offset.is_some() {
            return Err(ApiError::bad_request(
                "send limit and offset, or page and per_page, not both",
                Some(if limit.is_some() { "limit" } else { "offset" }),
            ));
        }
        let page = page.unwrap_or(1);
        if !(1..=MAX_PAGE_NUMBER).contains(&page) {
            return Err(ApiError::bad_request(
                format!("pages count from 1 to {MAX_PAGE_NUMBER}"),
                Some("page"),
            ));
        }
        let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(ApiError::bad_request(
                format!("must be from 1 to {MAX_PER_PAGE}"),
                Some("per_page"),
            ));
        }
        // Cannot overflow: (MAX_PAGE_NUMBER - 1) * MAX_PER_PAGE <= u32::MAX.
        let offset = (page - 1) * per_page;
        Ok(Window {
            limit: per_page,
            offset,
            numbered: Some((page, per_page)),
        })
    }

    /// The answer for one page of matches.
    pub fn body<T: Serialize>(&self, page: Page<T>) -> Value {
        let mut body = json!({
            "items": page.items,
            "total": page.total,
            "limit": self.limit,
            "offset": self.offset,
        });
        if let Some((number, per_page)) = self.numbered {
            body["page"] = json!(number);
            body["per_page"] = json!(per_page);
        }
        body
    }

    /// This window of a whole listing held in memory.
    pub fn slice<T>(&self, mut all: Vec<T>) -> Page<T> {
        let total = all.len() as u64;
        let start = (self.offset as usize).min(all.len());
        let end = start.saturating_add(self.limit as usize).min(all.len());
        all.truncate(end);
        let items = all.split_off(start);
        Page { items, total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_pages_are_checked() {
        assert_eq!(Window::new(None, None).unwrap().limit, 50);
        assert_eq!(
            Window::new(Some(0), None).unwrap_err().code(),
            "invalid_request"
        );
        assert!(Window::new(Some(1001), None).is_err());
        let numbered = Window::either(None, None, Some(3), Some(10)).unwrap();
        assert_eq!((numbered.limit, numbered.offset), (10, 20));
        assert!(Window::either(Some(5), None, Some(1), None).is_err());
        assert!(Window::either(None, None, Some(0), None).is_err());
        assert!(Window::either(None, None, None, Some(101)).is_err());
        let last = Window::either(None, None, Some(MAX_PAGE_NUMBER), Some(MAX_PER_PAGE)).unwrap();
        assert_eq!(last.offset, (MAX_PAGE_NUMBER - 1) * MAX_PER_PAGE);
        assert!(Window::either(None, None, Some(MAX_PAGE_NUMBER + 1), Some(1)).is_err());
    }

    #[test]
    fn slices_hold_the_window_and_count_everything() {
        let window = Window::new(Some(2), Some(3)).unwrap();
        let page = window.slice((0..6).collect::<Vec<_>>());
        assert_eq!((page.items, page.total), (vec![3, 4], 6));
        let past = Window::new(Some(2), Some(9)).unwrap().slice(vec![1, 2]);
        assert_eq!((past.items.len(), past.total), (0, 2));
    }
}
