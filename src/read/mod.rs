//! Readers for everything pimg writes. Images come from strangers: no panic, no allocation
//! beyond what the input's real size allows, no unbounded loop, whatever the bytes.
