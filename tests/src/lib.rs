//! End-to-end, property and validation tests live in `tests/tests/`.
