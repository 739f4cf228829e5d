//! Placeholder: the fake registry lands here.
