//! The README's webhook receiver example (examples/webhook_receiver.py) against the real
//! binary: its signature check accepts what the service sends, and its answers become the
//! items' outcomes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{serve, setup};

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_receiver_example_verifies_signatures_and_reports_outcomes() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/webhook_receiver.py"
    );
    let mut child = Command::new("python3")
        .args([script, "0"])
        .env("NEO_WEBHOOK_SECRET", "whsec_0123456789abcdef")
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the example");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _guard = Kill(child);
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("the example prints its address")
        .to_owned();

    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let server = serve(&db, &[]);
    let (api, id) = setup(&db, &server, &url, 30, 4).await;
    let done = api
        .wait_backfill(&server.base, &id, Duration::from_secs(60), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    // The example fails entity ids ending in 13 (T00013 of T00000..T00029) and runs the rest.
    assert_eq!(done["succeeded_count"], 29, "{done}");
    assert_eq!(done["failed_count"], 1);
    let failed = api
        .get(
            &server.base,
            &format!("/backfills/{id}/items?status=failed"),
        )
        .await;
    assert_eq!(failed["data"][0]["entity_id"], "T00013");
    assert_eq!(failed["data"][0]["error"], "ticket T00013 is locked");

    // A request with a wrong signature is refused by the example.
    let r = reqwest::Client::new()
        .post(&url)
        .header("x-neo-timestamp", "1")
        .header("x-neo-signature", "sha256=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
