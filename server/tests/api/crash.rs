//! Durability: a child process appends events and acknowledges each one as its append returns;
//! it is SIGKILLed at random moments, many times. After every kill, each acknowledged event
//! must be in the log and the chain must verify.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::support::{EventData, NewEvent, Store};

const CHILD_ENV: &str = "FACTORY_CRASH_CHILD_DIR";
const ROUNDS: usize = 12;

/// The child: appends forever (singles and small batches), printing `ack <seq>` after each
/// append returns. Ignored unless started by the parent test.
#[tokio::test]
#[ignore = "run only as the child of acknowledged_appends_survive_sigkill"]
async fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(std::path::Path::new(&dir)).await.unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let event = |n: u64| {
            NewEvent::new(
                "crash-child",
                EventData::AdminTokenCreated {
                    token_id: format!("{}-{n}", std::process::id()),
                    label: "x".repeat((n % 200) as usize),
                },
            )
        };
        let last = if i % 5 == 0 {
            let batch = store
                .append_batch((0..8).map(|k| event(i * 10 + k)).collect())
                .await
                .unwrap();
            batch.last().unwrap().seq
        } else {
            store.append(event(i)).await.unwrap().seq
        };
        writeln!(out, "ack {last}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rng();
    let mut total_acked = 0i64;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "crash::crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let kill_after = Duration::from_millis(rng.random_range(150..900));
        // Read acknowledgements on a thread until the pipe closes (after the kill).
        let reader = std::thread::spawn(move || {
            let mut last = 0i64;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(seq) = line.strip_prefix("ack ") {
                    last = seq.parse().unwrap();
                }
            }
            last
        });
        let started = Instant::now();
        while started.elapsed() < kill_after {
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acked = reader.join().unwrap();

        let store = Store::open(dir.path()).await.unwrap();
        let report = store.verify_chain().await.unwrap();
        assert_eq!(
            report.broken, None,
            "round {round}: chain must verify after a kill"
        );
        assert!(
            report.head_seq >= acked,
            "round {round}: event #{acked} was acknowledged but the log ends at #{}",
            report.head_seq
        );
        store.close().await;
        total_acked = acked;
    }
    assert!(
        total_acked > 0,
        "the child acknowledged nothing: the test proved nothing"
    );
}
