//! Adapter tests (being written).
