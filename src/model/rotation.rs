//! Strategies for the antisymmetric Q, including the exponentially optimal one.
