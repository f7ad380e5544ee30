//! The load tool (placeholder; being written).
