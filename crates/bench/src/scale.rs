#[derive(clap::Args)]
pub struct ScaleArgs {}

pub async fn run(_a: ScaleArgs) -> anyhow::Result<()> {
    anyhow::bail!("the scale workload (1,000,000 items) is not implemented yet: see BENCHMARKS.md")
}
