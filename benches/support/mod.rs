//! What the benchmarks that use shared state have in common (included with
//! `#[path]`: a directory is not a bench target of its own).

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
