//! What the benchmarks have in common (included with
//! `#[path]`: a directory is not a bench target of its own).

// Each bench that includes this uses a part of it.
#![allow(dead_code)]

use drctl::cloud::{ObjectStore, ObjectUrl};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Creates the bucket of a state URL (`s3://b/...`, `gs://b/...`) on the
/// emulators named in `endpoints` when it is missing: they start empty.
pub async fn ensure_state_bucket(
    objects: &dyn ObjectStore,
    url: &str,
    endpoints: &std::path::Path,
) -> Result<(), BoxError> {
    let u = ObjectUrl::parse(url)?;
    let bucket = ObjectUrl {
        key: String::new(),
        ..u.clone()
    };
    if objects.bucket_exists("us-east-1", &bucket).await? {
        return Ok(());
    }
    let vars = drctl::config::read_env_file(endpoints)?;
    let http = reqwest::Client::new();
    if url.starts_with("gs://") {
        http.post(format!(
            "{}/storage/v1/b?project=bench",
            vars["DRCTL_GCS_ENDPOINT"]
        ))
        .json(&serde_json::json!({"name": u.bucket}))
        .send()
        .await?;
    } else {
        http.put(format!("{}/{}", vars["AWS_ENDPOINT_URL_S3"], u.bucket))
            .send()
            .await?;
    }
    Ok(())
}

/// `1,10,50` as numbers (empty items skipped).
pub fn parse_list(s: &str) -> Result<Vec<usize>, BoxError> {
    s.split(',')
        .filter(|x| !x.trim().is_empty())
        .map(|x| {
            x.trim()
                .parse::<usize>()
                .map_err(|e| format!("{x:?}: {e}").into())
        })
        .collect()
}
