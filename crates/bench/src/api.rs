#[derive(clap::Args)]
pub struct ApiArgs {}

pub async fn run(_a: ApiArgs) -> anyhow::Result<()> {
    anyhow::bail!("todo")
}
