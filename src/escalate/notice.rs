//! What notices say: the minimum necessary.
