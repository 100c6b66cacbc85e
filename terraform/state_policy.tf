# The state bucket's own policy (docs/state.md, "Who can forge what"): what
# the bucket refuses whoever asks, drctl's role included, so that a
# credential that can write the bucket still cannot rewrite a journal's
# records in place or remove them.
#
# The journal stores are runs/, notices/runs/ (the notices of no run) and
# watch/runs/ (the observers' own journals), all under var.state_prefix.
#
# - Every write under runs/ carries a condition: create-only
#   (If-None-Match: *) or compare-and-swap (If-Match: <ETag>). A plain
#   PutObject, which replaces whatever is there, is refused.
# - A record or a late fact (runs/<run>/<seq>.json, runs/<run>/late/<id>.json)
#   is create-only: not even a compare-and-swap replaces it. Only the head
#   (runs/<run>/head) moves, by compare-and-swap.
# - Nothing under runs/ is deleted (drctl never deletes state; lifecycle
#   expiry of old versions is not subject to the policy).
#
# It bounds what a stolen credential can do to the records already
# written; the run key's signatures (docs/state.md) are what make a
# journal's writer known. CopyObject into runs/ is refused too (S3 does not
# take conditions on copies), which drctl never does.

locals {
  # Each journal store's objects, under the state's prefix.
  journal_stores = [
    "${aws_s3_bucket.state.arn}/${var.state_prefix}/runs",
    "${aws_s3_bucket.state.arn}/${var.state_prefix}/notices/runs",
    "${aws_s3_bucket.state.arn}/${var.state_prefix}/watch/runs",
  ]
}

data "aws_iam_policy_document" "state_bucket" {
  statement {
    sid       = "RunsWritesAreConditional"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = [for store in local.journal_stores : "${store}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    # Both absent: neither create-only nor compare-and-swap.
    condition {
      test     = "Null"
      variable = "s3:if-none-match"
      values   = ["true"]
    }

    condition {
      test     = "Null"
      variable = "s3:if-match"
      values   = ["true"]
    }
  }

  statement {
    sid       = "RecordsAndLateFactsAreCreateOnly"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = [for store in local.journal_stores : "${store}/*.json"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:if-none-match"
      values   = ["true"]
    }
  }

  statement {
    sid       = "RunsAreNeverDeleted"
    effect    = "Deny"
    actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
    resources = [for store in local.journal_stores : "${store}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  provider = aws.state

  bucket = aws_s3_bucket.state.id
  policy = data.aws_iam_policy_document.state_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.state]
}
