//! What every kind of target needs the same way, spelled once: secrets and
//! where they come from, verified TLS, timeouts, the `wg-quick` file format,
//! the `-vv` request lines, the batching of writes persons share.

pub mod batch;
pub mod http;
pub mod pem;
pub mod secret;
pub mod timeouts;
pub mod tls;
pub mod trace;
pub mod wg_quick;

pub use secret::{Secret, SecretSource};
pub use timeouts::Timeouts;
pub use trace::Trace;
