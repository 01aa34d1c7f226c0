//! Nothing here: the fixture is its test file, tests/cases.rs.
