#[derive(clap::Args)]
pub struct ScaleArgs {}

pub async fn run(_a: ScaleArgs) -> anyhow::Result<()> {
    anyhow::bail!("todo")
}
