//! Placeholder: the mock Docker Hub API lands here.
