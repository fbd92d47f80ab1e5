//! A small signed client for Alibaba Cloud RPC-style APIs. It knows nothing about policies or products' semantics.

mod client;
mod credentials;
mod endpoint;
mod error;
mod limit;
pub mod sign;

pub use client::{install_crypto_provider, ApiRequest, Client, RetryPolicy};
pub use credentials::{CredentialError, CredentialSource, Credentials, ENV_KEY_ID, ENV_KEY_SECRET, ENV_TOKEN};
pub use endpoint::{default_host, EndpointError, Endpoints};
pub use error::ApiError;
pub use limit::{CallLimits, LimitStats};
