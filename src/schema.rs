//! JSON Schemas of homebase.yaml and profile files, generated from the Rust types (being written).
