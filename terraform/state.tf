# Shared state for a team (docs/state.md): run journals and plan leases, read
# and written by every machine that runs drctl. `state = "s3://drctl-state-use2/team"`
# (or the GCS bucket below) in drctl.toml points drctl at it.
#
# Where it lives matters more than anything else here: a failover must be able
# to take its lease while the home region is down, so the S3 bucket sits in a
# third region (neither the plans' home us-west-2 nor their standby us-east-1),
# and the GCS alternative is multi-region.

provider "aws" {
  alias  = "state"
  region = var.state_region

  default_tags {
    tags = {
      "managed-by" = "terraform"
    }
  }
}

resource "aws_s3_bucket" "state" {
  provider = aws.state

  bucket = "drctl-state-${var.state_region}"
}

# Versioning is allowed and useful (an overwritten lease or head can be
# inspected), and changes nothing in drctl's conditional writes: If-Match
# compares against the current version's ETag. No Object Lock: leases and
# heads are replaced in place, which a default retention would refuse.
resource "aws_s3_bucket_versioning" "state" {
  provider = aws.state

  bucket = aws_s3_bucket.state.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  provider = aws.state

  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  provider = aws.state

  bucket = aws_s3_bucket.state.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# drctl never deletes state: the objects its store probe writes are expired
# here, old versions of replaced objects after 30 days. Journals (runs/) are
# kept: they are the audit trail (their evidence copies are locked elsewhere).
resource "aws_s3_bucket_lifecycle_configuration" "state" {
  provider = aws.state

  bucket = aws_s3_bucket.state.id

  rule {
    id     = "expire-probes"
    status = "Enabled"

    filter {
      prefix = "${var.state_prefix}/probe/"
    }

    expiration {
      days = 1
    }
  }

  rule {
    id     = "expire-old-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 30
    }
  }

  depends_on = [aws_s3_bucket_versioning.state]
}

# --- GCS alternative (multi-region) ------------------------------------------
# No retention policy: a bucket with one refuses to replace objects, and a
# lease is replaced on every renewal.
resource "google_storage_bucket" "state" {
  name          = "drctl-state"
  location      = var.gcs_location
  storage_class = "STANDARD"

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      matches_prefix = ["${var.state_prefix}/probe/"]
      age            = 1
    }
    action {
      type = "Delete"
    }
  }
}

# GCS's equivalent of the S3 bucket policy (state_policy.tf): a bucket
# retention policy would refuse every replace, leases included, so the
# rules are in IAM instead. On GCS, replacing an object needs
# storage.objects.delete; creating one (ifGenerationMatch=0) does not. So:
# - objectCreator and objectViewer on the whole bucket: create, read, list.
#   Journal records and late facts (runs/<run>/<seq>.json, .../late/<id>.json,
#   and the same under notices/runs/ and watch/runs/) are create-only;
# - objectUser (replace) only where drctl replaces: the journal heads
#   (.../head, a compare-and-swap), the leases (locks/), the observers'
#   board (watch/board/) and the store probe (probe/).
# A stolen credential of this service account therefore cannot rewrite or
# remove a journal record, as on S3.
locals {
  state_objects = "projects/_/buckets/${google_storage_bucket.state.name}/objects/${var.state_prefix}"
}

resource "google_storage_bucket_iam_member" "drctl_state_create" {
  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${google_service_account.drctl.email}"
}

resource "google_storage_bucket_iam_member" "drctl_state_read" {
  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.drctl.email}"
}

resource "google_storage_bucket_iam_member" "drctl_state_replace" {
  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.drctl.email}"

  condition {
    title       = "drctl-replaces-heads-leases-board-probes"
    description = "Journal records and late facts stay create-only: only heads, leases, the watch board and probes are replaced."
    expression  = <<-EOT
      resource.name.startsWith("${local.state_objects}/locks/") ||
      resource.name.startsWith("${local.state_objects}/watch/board/") ||
      resource.name.startsWith("${local.state_objects}/probe/") ||
      (resource.name.startsWith("${local.state_objects}/") && resource.name.endsWith("/head"))
    EOT
  }
}

# The GCP observers (iam.tf, `drctl_observer`) read the state and write only
# their own places: their reports, markers and journals (watch/), their
# notices (notices/) and the store probe; they replace only the board and
# the probe, as `drctl` does there.
resource "google_storage_bucket_iam_member" "observer_state_read" {
  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.drctl_observer.email}"
}

resource "google_storage_bucket_iam_member" "observer_state_create" {
  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${google_service_account.drctl_observer.email}"

  condition {
    title       = "drctl-observer-own-places"
    description = "Only under watch/, notices/ and probe/."
    expression  = <<-EOT
      resource.name.startsWith("${local.state_objects}/watch/") ||
      resource.name.startsWith("${local.state_objects}/notices/") ||
      resource.name.startsWith("${local.state_objects}/probe/")
    EOT
  }
}

resource "google_storage_bucket_iam_member" "observer_state_replace" {
  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.drctl_observer.email}"

  condition {
    title       = "drctl-observer-replaces-board-probes"
    description = "Only the watch board and probes are replaced."
    expression  = <<-EOT
      resource.name.startsWith("${local.state_objects}/watch/board/") ||
      resource.name.startsWith("${local.state_objects}/probe/")
    EOT
  }
}
