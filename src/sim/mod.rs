//! A loopback emulator of the Alibaba Cloud RPC API (`aliyun-janitor sim`): verifies signatures, timestamps
//! and nonces like the real service and serves products' list/release calls from an inventory JSON file.
// Placeholder interface until the emulator lands (see branch `sim`).
#[derive(Debug, Clone, Default)]
pub struct SimOptions { pub latency_ms: u64, pub throttle_rate: f64, pub error_rate: f64, pub seed: u64 }
#[derive(Clone)]
pub struct Sim;
#[derive(Debug, thiserror::Error)]
#[error("sim")]
pub struct SimError;
impl Sim {
    pub fn from_inventory_file(_p: &std::path::Path, _o: SimOptions) -> Result<Sim, SimError> { Err(SimError) }
}
pub async fn serve(_l: tokio::net::TcpListener, _s: Sim) -> std::io::Result<()> { Ok(()) }
