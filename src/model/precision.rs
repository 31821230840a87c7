//! Builders of the stationary precision U.
