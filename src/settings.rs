//! Arguments + homebase.yaml + environment → validated settings (being written).
