//! Shared by the connector tests: the HTTP policy they run with (short backoffs, so retries and
//! throttling take milliseconds) and a connector on psa-sim's integration.
#![allow(dead_code)]

use std::time::Duration;

use neo_psa::client::PsaClient;
use neo_psa::http::{HttpPolicy, PsaError};
use neo_psa::Psa;
use psa_sim::SimHandle;
use serde_json::Value;

pub fn policy() -> HttpPolicy {
    HttpPolicy {
        max_retries: 3,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_throttle_wait: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
        halo_throttle_wait: Duration::from_millis(100),
        ..Default::default()
    }
}

pub async fn connect_with(
    psa: Psa,
    config: &Value,
    secrets: &Value,
) -> Result<PsaClient, PsaError> {
    PsaClient::connect(
        psa.as_str(),
        config,
        secrets,
        neo_egress::Egress::new(neo_egress::EgressPolicy::new(true)),
        policy(),
    )
    .await
}

/// A connector on the simulator's `psa` personality, as the API stores its integration.
pub async fn connect(sim: &SimHandle, psa: Psa) -> PsaClient {
    let (config, secrets) = sim.integration(psa.as_str());
    connect_with(psa, &config, &secrets)
        .await
        .expect("connects")
}

/// The simulator's integration for `psa` with the request budget out of the way (the largest
/// allowance, all of it for backfills): for tests about what is read, not its pace.
pub fn unpaced_integration(sim: &SimHandle, psa: Psa) -> (Value, Value) {
    let (mut config, secrets) = sim.integration(psa.as_str());
    if let Some(c) = config.as_object_mut() {
        c.insert("requests_per_hour".into(), serde_json::json!(10_000_000));
        c.insert("backfill_share".into(), serde_json::json!(100));
    }
    (config, secrets)
}
