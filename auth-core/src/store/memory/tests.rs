//! The shared conformance suite over this backend, and what only this backend promises.

crate::store_suite!(super::MemoryStore::new());
#[cfg(feature = "tickets")]
crate::ticketing_suite!(super::MemoryStore::new());
