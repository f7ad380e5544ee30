//! UK working days (placeholder; being written).
