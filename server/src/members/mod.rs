//! Member records: the provider's own data that find requests are matched against.
//!
//! - [`record`]: the import format (one member with their pensions) and its validation.
//! - [`import`]: CSV and JSON-lines import, errors by line and field, good records loaded.
//! - [`generate`]: realistic synthetic members for demos, tests and load tests.

pub mod generate;
pub mod import;
pub mod record;
