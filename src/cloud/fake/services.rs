//! The supporting services in the fake: lag metrics, the object store
//! (conditional writes included), probes, DNS resolution, the caller's
//! identity and notifications.

use super::*;

#[async_trait]
impl Metrics for FakeCloud {
    async fn replica_lag(
        &self,
        region: &str,
        db_id: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        self.tick("cloudwatch:GetMetricData", region, "ReplicaLag")
            .await?;
        let s = self.state();
        s.reach("cloudwatch", "GetMetricData", db_id, region)?;
        let points = s
            .lag
            .get(&(region.into(), db_id.into()))
            .cloned()
            .unwrap_or_default();
        let max = points
            .iter()
            .cloned()
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        Ok(LagReading {
            max: max.map(Duration::from_secs_f64),
            latest: points
                .last()
                .map(|v| (Duration::from_secs_f64(*v), Utc::now())),
            datapoints: points.len(),
            window,
        })
    }

    async fn cluster_lag(
        &self,
        region: &str,
        cluster: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        self.replica_lag(region, cluster, window).await
    }

    async fn alarms_firing(
        &self,
        region: &str,
        names: &[String],
    ) -> Result<Vec<String>, CloudError> {
        self.tick("cloudwatch:DescribeAlarms", region, "*").await?;
        let s = self.state();
        s.reach("cloudwatch", "DescribeAlarms", "alarms", region)?;
        Ok(names
            .iter()
            .filter_map(|n| {
                let key = (region.to_string(), n.clone());
                if s.alarms_firing.contains(&key) {
                    Some(n.clone())
                } else if s.alarms_ok.contains(&key) {
                    None
                } else {
                    Some(format!("{n} (missing)"))
                }
            })
            .collect())
    }
}

#[async_trait]
impl ObjectStore for FakeCloud {
    async fn bucket_exists(&self, via: &str, bucket: &ObjectUrl) -> Result<bool, CloudError> {
        self.tick("s3:HeadBucket", via, &bucket.bucket).await?;
        let key = ObjectUrl {
            key: String::new(),
            ..bucket.clone()
        }
        .to_string();
        Ok(self.state().buckets.contains(&key))
    }

    async fn put(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        mode: PutMode,
    ) -> Result<PutOutcome, CloudError> {
        self.tick("s3:PutObject", via, &url.key).await?;
        let mut s = self.state();
        s.reach("s3", "PutObject", &url.to_string(), via)?;
        let key = url.to_string();
        if mode == PutMode::CreateOnly && s.objects.contains_key(&key) && !s.ignores_conditions {
            return Ok(PutOutcome::AlreadyExists);
        }
        let version = s.write_object(&key, body, self.store_now());
        s.writes.push(format!("PutObject {key}"));
        Ok(PutOutcome::Written(Some(version)))
    }

    async fn put_retained(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        retention: Option<Retention>,
    ) -> Result<Kept, CloudError> {
        self.tick("s3:PutObject", via, &url.key).await?;
        let outcome = self.put(via, url, body, PutMode::CreateOnly).await?;
        if let (Some(r), PutOutcome::Written(_)) = (retention, &outcome) {
            self.state().retained.insert(url.to_string(), r);
        }
        Ok(Kept {
            outcome,
            retained_until: None,
        })
    }

    async fn object_retention(
        &self,
        via: &str,
        url: &ObjectUrl,
    ) -> Result<Option<Retention>, CloudError> {
        if url.scheme == ObjectScheme::Gcs {
            return Ok(None);
        }
        self.tick("s3:GetObjectRetention", via, &url.key).await?;
        Ok(self.state().retained.get(&url.to_string()).copied())
    }

    async fn bucket_lock(&self, via: &str, bucket: &ObjectUrl) -> Result<BucketLock, CloudError> {
        self.tick("s3:GetObjectLockConfiguration", via, &bucket.bucket)
            .await?;
        let key = ObjectUrl {
            key: String::new(),
            ..bucket.clone()
        }
        .to_string();
        Ok(match bucket.scheme {
            ObjectScheme::S3 => BucketLock {
                object_lock: Some(self.state().locked_buckets.contains(&key)),
                default_retention: None,
            },
            ObjectScheme::Gcs => BucketLock::default(),
        })
    }

    async fn get_versioned(
        &self,
        via: &str,
        url: &ObjectUrl,
    ) -> Result<Option<Versioned>, CloudError> {
        self.tick("s3:GetObject", via, &url.key).await?;
        let s = self.state();
        s.reach("s3", "GetObject", &url.to_string(), via)?;
        let key = url.to_string();
        Ok(s.objects.get(&key).map(|body| Versioned {
            body: body.clone(),
            version: s
                .object_versions
                .get(&key)
                .copied()
                .unwrap_or(0)
                .to_string(),
            times: StoreTimes {
                modified: s.object_modified.get(&key).copied(),
                answered: self.store_now(),
                resolution: Duration::ZERO,
            },
        }))
    }

    async fn replace_if(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        version: &str,
    ) -> Result<SwapOutcome, CloudError> {
        self.tick("s3:PutObject", via, &url.key).await?;
        let mut s = self.state();
        s.reach("s3", "PutObject", &url.to_string(), via)?;
        let key = url.to_string();
        let current = s.objects.contains_key(&key).then(|| {
            s.object_versions
                .get(&key)
                .copied()
                .unwrap_or(0)
                .to_string()
        });
        if current.as_deref() != Some(version) && !s.ignores_conditions {
            return Ok(SwapOutcome::Stale);
        }
        let version = s.write_object(&key, body, self.store_now());
        s.writes.push(format!("PutObject(if-match) {key}"));
        Ok(SwapOutcome::Swapped(version))
    }

    async fn list(
        &self,
        via: &str,
        prefix: &ObjectUrl,
        delimited: bool,
    ) -> Result<Listing, CloudError> {
        self.tick("s3:ListObjectsV2", via, "*").await?;
        let s = self.state();
        let base = ObjectUrl {
            key: String::new(),
            ..prefix.clone()
        }
        .to_string();
        let mut out = Listing::default();
        for (url, body) in &s.objects {
            let Some(key) = url.strip_prefix(&base).and_then(|k| k.strip_prefix('/')) else {
                continue;
            };
            let Some(rest) = key.strip_prefix(prefix.key.as_str()) else {
                continue;
            };
            match rest.find('/').filter(|_| delimited) {
                Some(i) => {
                    let p = format!("{}{}", prefix.key, &rest[..=i]);
                    if out.prefixes.last() != Some(&p) {
                        out.prefixes.push(p);
                    }
                }
                None => {
                    out.sizes.insert(key.to_string(), body.len() as u64);
                    out.keys.push(key.to_string());
                }
            }
        }
        Ok(out)
    }

    async fn delete(&self, via: &str, url: &ObjectUrl) -> Result<(), CloudError> {
        self.tick("s3:DeleteObject", via, &url.key).await?;
        let mut s = self.state();
        let key = url.to_string();
        s.objects.remove(&key);
        s.object_versions.remove(&key);
        s.object_modified.remove(&key);
        s.writes.push(format!("DeleteObject {key}"));
        Ok(())
    }

    async fn get(&self, via: &str, url: &ObjectUrl) -> Result<Option<Bytes>, CloudError> {
        self.tick("s3:GetObject", via, &url.key).await?;
        let s = self.state();
        s.reach("s3", "GetObject", &url.to_string(), via)?;
        Ok(s.objects.get(&url.to_string()).cloned())
    }

    async fn bucket_state(&self, via: &str, bucket: &ObjectUrl) -> Result<BucketState, CloudError> {
        self.tick("s3:GetBucketVersioning", via, &bucket.bucket)
            .await?;
        let key = ObjectUrl {
            key: String::new(),
            ..bucket.clone()
        }
        .to_string();
        let s = self.state();
        Ok(match s.bucket_states.get(&key) {
            Some(b) => b.clone(),
            None => BucketState {
                exists: s.buckets.contains(&key),
                ..BucketState::default()
            },
        })
    }
}

#[async_trait]
impl Probe for FakeCloud {
    async fn get(
        &self,
        region: &str,
        url: &str,
        _timeout: Duration,
    ) -> Result<ProbeAnswer, CloudError> {
        self.tick("http:GET", region, url).await?;
        match self.state().probes.get(url).copied().flatten() {
            Some(status) => Ok(ProbeAnswer {
                status,
                elapsed_ms: 0,
                body_bytes: 0,
            }),
            None => Err(CloudError::new(
                "http",
                "GET",
                url,
                region,
                ErrorKind::Connection,
                "connection refused",
            )),
        }
    }
}

/// The name servers: a Route 53 zone's answer follows its record sets'
/// routing and health checks; a Cloud DNS zone's, its record set and, for
/// a `primaryBackup`, its serving addresses' controls.
#[async_trait]
impl Resolver for FakeCloud {
    async fn resolve(
        &self,
        zone: &str,
        name: &str,
        rtype: &str,
    ) -> Result<Vec<String>, CloudError> {
        self.tick("dns:query", "global", name).await?;
        let s = self.state();
        let name = fqdn(&name.to_ascii_lowercase());
        let Some(z) = s.zones.get(&fqdn(zone)) else {
            let cloud = s.cloud_answer(&fqdn(zone), &name, rtype);
            return Ok(cloud.unwrap_or_default());
        };
        Ok(s.healthy_answer(&z.id, &name, rtype, 0)
            .unwrap_or_else(|| s.any_answer(&z.id, &name, rtype, 0)))
    }

    fn servers(&self) -> String {
        "the fake cloud's DNS".into()
    }
}

#[async_trait]
impl Identity for FakeCloud {
    async fn caller(&self, region: &str) -> Result<CallerIdentity, CloudError> {
        self.tick("sts:GetCallerIdentity", region, "caller").await?;
        Ok(CallerIdentity {
            account: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/fake-operator".into(),
            user_id: "AIDAFAKE".into(),
        })
    }
}

#[async_trait]
impl crate::cloud::Publisher for FakeCloud {
    async fn sns(
        &self,
        region: &str,
        topic: &str,
        _: &str,
        message: &str,
    ) -> Result<String, CloudError> {
        self.tick("sns:Publish", region, topic).await?;
        let mut s = self.state();
        s.published
            .push((topic.into(), region.into(), message.into()));
        Ok(format!("fake-msg-{}", s.published.len()))
    }

    async fn eventbridge(
        &self,
        region: &str,
        bus: &str,
        _: &str,
        detail: &str,
    ) -> Result<String, CloudError> {
        self.tick("events:PutEvents", region, bus).await?;
        let mut s = self.state();
        s.published.push((bus.into(), region.into(), detail.into()));
        Ok(format!("fake-evt-{}", s.published.len()))
    }
}
