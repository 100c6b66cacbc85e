# Evidence of every run (before/after state, journal, manifest) goes to two
# clouds, as the plans' [evidence] destinations say. Both buckets are shared
# by all plans (one prefix per plan), so they carry no drctl:plan tag.

# --- S3, us-east-1 (outside the home region, so it survives its loss) ---------

resource "aws_s3_bucket" "evidence" {
  provider = aws.use1

  bucket              = "drctl-evidence-use1"
  object_lock_enabled = true
}

resource "aws_s3_bucket_versioning" "evidence" {
  provider = aws.use1

  bucket = aws_s3_bucket.evidence.id

  versioning_configuration {
    status = "Enabled"
  }
}

# GOVERNANCE, not COMPLIANCE: no one without s3:BypassGovernanceRetention
# (drctl does not have it) can delete or overwrite a locked version, yet an
# administrator can still correct a mistake, such as a secret written into
# evidence. COMPLIANCE mode cannot be lifted even by the root user, so switch
# to it only once the retention period has been agreed with audit. Tampering
# is detected independently by the journal's hash chain (`drctl audit verify`).
resource "aws_s3_bucket_object_lock_configuration" "evidence" {
  provider = aws.use1

  bucket = aws_s3_bucket.evidence.id

  rule {
    default_retention {
      mode = "GOVERNANCE"
      days = var.evidence_retention_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.evidence]
}

resource "aws_s3_bucket_public_access_block" "evidence" {
  provider = aws.use1

  bucket                  = aws_s3_bucket.evidence.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# SSE-S3 keeps drctl's role free of KMS permissions for evidence.
resource "aws_s3_bucket_server_side_encryption_configuration" "evidence" {
  provider = aws.use1

  bucket = aws_s3_bucket.evidence.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

data "aws_iam_policy_document" "evidence_tls_only" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.evidence.arn, "${aws_s3_bucket.evidence.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "evidence" {
  provider = aws.use1

  bucket = aws_s3_bucket.evidence.id
  policy = data.aws_iam_policy_document.evidence_tls_only.json

  depends_on = [aws_s3_bucket_public_access_block.evidence]
}

# --- GCS ----------------------------------------------------------------------

# The retention policy makes every object impossible to delete or replace
# until it is evidence_retention_days old. Cloud Storage does not allow Object
# Versioning on a bucket with a retention policy, so versioning stays off:
# since nothing can be overwritten, there are no older versions to keep.
# Lock the policy (is_locked = true) once audit has agreed the period; a
# locked policy can never be shortened or removed.
resource "google_storage_bucket" "evidence" {
  name          = "drctl-evidence"
  location      = var.gcs_location
  storage_class = "STANDARD"

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  retention_policy {
    retention_period = var.evidence_retention_days * 24 * 60 * 60
    is_locked        = false
  }

  versioning {
    enabled = false
  }
}
