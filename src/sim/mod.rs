//! A fault-injecting simulator of the generic vendor API (`giftrecon vendor-sim`).

/// Command-line arguments of `giftrecon vendor-sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4000")]
    pub addr: std::net::SocketAddr,
}

/// Runs the simulator until interrupted.
pub async fn run(_args: SimArgs) -> anyhow::Result<()> {
    anyhow::bail!("the vendor simulator is not built yet")
}
