//! View data: the payload of the data standards, its values timing, and the signed token.
//!
//! - [`working_days`]: UK working days with bank holidays per nation, from an updatable file.
//! - [`payload`]: the payload of one PeI, with the 3/10 working-day values rule.
//! - [`values`]: calculated values imported, calculations closed.
//! - [`token`]: the signed view data token and the public JWK set.

pub mod payload;
pub mod token;
pub mod values;
pub mod working_days;
