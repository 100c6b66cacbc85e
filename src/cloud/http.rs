//! HTTP health probes over `reqwest`: the real [`Probe`].
//!
//! One client for the process (connection pool, TLS set up once), a timeout
//! per probe, and no retries: a `[[check]]` step polls on its own schedule
//! and wants to know what *this* probe answered. Redirects are not followed
//! (a health endpoint that redirects is answering 3xx, which is what the
//! plan's `expect_status` is compared with).

use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{CloudError, ErrorKind, Probe, ProbeAnswer};

/// [`Probe`] over `reqwest`.
pub struct HttpProbe {
    client: reqwest::Client,
}

impl HttpProbe {
    /// Builds the client (fails only when no TLS backend can start).
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self { client })
    }
}

#[async_trait]
impl Probe for HttpProbe {
    async fn get(
        &self,
        region: &str,
        url: &str,
        timeout: Duration,
    ) -> Result<ProbeAnswer, CloudError> {
        let fail =
            |kind, message: String| CloudError::new("http", "GET", url, region, kind, message);
        let t0 = Instant::now();
        let answer = tokio::time::timeout(timeout, async {
            let resp = self
                .client
                .get(url)
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| fail(ErrorKind::Connection, describe(&e)))?;
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            Ok::<_, CloudError>((status, body))
        })
        .await;
        let (status, body) = match answer {
            Ok(r) => r?,
            Err(_) => {
                return Err(fail(
                    ErrorKind::Connection,
                    format!("no answer within {} ms", timeout.as_millis()),
                ));
            }
        };
        Ok(ProbeAnswer {
            status,
            elapsed_ms: t0.elapsed().as_millis() as u64,
            body_excerpt: body.chars().take(200).collect(),
        })
    }
}

/// A transport failure in a few words (`connection refused`, `timed out`).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = s.to_string();
        source = s.source();
    }
    msg
}
