//! PLACEHOLDER: the PSA simulator is being written.
