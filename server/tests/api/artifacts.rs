//! A stage's artifact files: written beside the commit that records them, and written again
//! from the log when they are lost after it (a crash between the two).

use std::time::Duration;

use serde_json::json;

use crate::support::app::{finished, get, start, status_json};
use crate::support::model::{ModelScript, app_with_model};

#[tokio::test]
async fn artifacts_lost_after_their_commit_are_written_again_from_the_log() {
    let script = ModelScript::default();
    let app = app_with_model(script, |c| c.factory.approvals.auto_approve = false).await;
    let run_id = start(&app, json!({"goal": "Export orders"})).await;
    let run = finished(&app, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "waiting_for_human", "{run}");
    let data = app.store.path().parent().unwrap().to_path_buf();
    let listed = run["artifacts"].as_array().unwrap();
    assert!(listed.len() >= 2, "{run}");
    // Every listed file is on disk once the run waits: each stage waited for its files.
    let texts: Vec<(std::path::PathBuf, String)> = listed
        .iter()
        .map(|a| {
            let path = data.join(a["path"].as_str().unwrap());
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, text)
        })
        .collect();
    // Two are lost, as a crash between a stage's commit and its files would lose them.
    for (path, _) in &texts[..2] {
        std::fs::remove_file(path).unwrap();
    }
    let (_, pending) = get(
        &app,
        &format!("/api/approvals?status=pending&run_id={run_id}"),
    )
    .await;
    let review = &pending.as_array().unwrap()[0];
    assert_eq!(review["kind"], "review", "{pending}");
    let path = format!("/api/approvals/{}/decide", review["id"].as_str().unwrap());
    let (status, body) =
        status_json(app.post_json(&path, &json!({"option": "approve"})).await).await;
    assert!(status.is_success(), "{status}: {body}");
    let run = finished(&app, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    for (path, text) in &texts {
        let again = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{} was not written again: {e}", path.display()));
        assert_eq!(&again, text, "{}", path.display());
    }
}
