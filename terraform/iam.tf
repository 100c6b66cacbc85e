# The identity drctl runs as. Least privilege: exactly the API calls drctl
# makes, on the resources of the plans in plans/. README.md explains each
# statement, and why some of them must use "*".

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Instances drctl may act on: the four plan instances, and any instance it
  # creates (point-in-time restores, re-protect replicas) named after them.
  rds_db_arns = flatten([
    for region in ["us-west-2", "us-east-1"] : [
      for prefix in ["payments-db", "ledger-db"] :
      "arn:${local.partition}:rds:${region}:${local.account_id}:db:${prefix}*"
    ]
  ])

  # Other resources RDS authorises when drctl creates an instance.
  rds_create_arns = [
    aws_db_subnet_group.usw2.arn,
    aws_db_subnet_group.use1.arn,
    "arn:${local.partition}:rds:*:${local.account_id}:og:default:postgres-*",
    "arn:${local.partition}:rds:*:${local.account_id}:pg:default.postgres*",
  ]
}

# --- AWS role -----------------------------------------------------------------

data "aws_iam_policy_document" "drctl_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = [var.drctl_trusted_principal_arn]
    }
  }
}

resource "aws_iam_role" "drctl" {
  name                 = "drctl"
  description          = "Runs drctl failovers, drills and restores"
  assume_role_policy   = data.aws_iam_policy_document.drctl_assume.json
  max_session_duration = 14400
}

data "aws_iam_policy_document" "drctl" {
  # Route 53: read and switch records in the one zone, and only the records
  # the plans name.
  statement {
    sid       = "Route53ReadZone"
    actions   = ["route53:GetHostedZone", "route53:ListResourceRecordSets"]
    resources = [aws_route53_zone.example.arn]
  }

  statement {
    sid       = "Route53SwitchPlanRecords"
    actions   = ["route53:ChangeResourceRecordSets"]
    resources = [aws_route53_zone.example.arn]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
      values   = ["api.example.com", "payments-db.example.com", "ledger.example.com"]
    }
  }

  statement {
    sid       = "Route53WaitForChange"
    actions   = ["route53:GetChange"]
    resources = ["arn:${local.partition}:route53:::change/*"]
  }

  statement {
    sid       = "Route53FindZone"
    actions   = ["route53:ListHostedZonesByName"]
    resources = ["*"]
  }

  # RDS.
  statement {
    sid       = "RdsDescribeInstances"
    actions   = ["rds:DescribeDBInstances"]
    resources = local.rds_db_arns
  }

  statement {
    sid       = "RdsDescribeAutomatedBackups"
    actions   = ["rds:DescribeDBInstanceAutomatedBackups"]
    resources = ["*"]
  }

  statement {
    sid = "RdsRecover"
    actions = [
      "rds:PromoteReadReplica",
      "rds:ModifyDBInstance",
      "rds:AddTagsToResource",
    ]
    resources = local.rds_db_arns
  }

  statement {
    sid = "RdsCreateInstances"
    actions = [
      "rds:CreateDBInstanceReadReplica",
      "rds:RestoreDBInstanceToPointInTime",
    ]
    resources = concat(local.rds_db_arns, local.rds_create_arns)
  }

  # The replicas in us-east-1 are encrypted with a customer-managed key;
  # RDS uses it on drctl's behalf when drctl creates a replica there.
  statement {
    sid       = "KmsForRdsReplicas"
    actions   = ["kms:DescribeKey", "kms:CreateGrant"]
    resources = [aws_kms_key.rds_use1.arn]

    condition {
      test     = "StringLike"
      variable = "kms:ViaService"
      values   = ["rds.*.amazonaws.com"]
    }
  }

  # Auto Scaling: read anything, resize only the four plan groups.
  statement {
    sid       = "AutoScalingDescribe"
    actions   = ["autoscaling:DescribeAutoScalingGroups"]
    resources = ["*"]
  }

  statement {
    sid = "AutoScalingResizePlanGroups"
    actions = [
      "autoscaling:UpdateAutoScalingGroup",
      "autoscaling:SetDesiredCapacity",
    ]
    resources = [
      aws_autoscaling_group.payments_api_usw2.arn,
      aws_autoscaling_group.payments_api_use1.arn,
      aws_autoscaling_group.ledger_workers_usw2.arn,
      aws_autoscaling_group.ledger_workers_use1.arn,
    ]
  }

  # CloudWatch metric reads (ReplicaLag) have no resource-level permissions.
  statement {
    sid       = "CloudWatchReadMetrics"
    actions   = ["cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics"]
    resources = ["*"]
  }

  # Operator identity for approvals.
  statement {
    sid       = "StsWhoAmI"
    actions   = ["sts:GetCallerIdentity"]
    resources = ["*"]
  }

  # Evidence: write (under Object Lock retention) and read, never delete,
  # never bypass governance retention.
  statement {
    sid       = "EvidenceList"
    actions   = ["s3:ListBucket", "s3:GetBucketObjectLockConfiguration"]
    resources = [aws_s3_bucket.evidence.arn]
  }

  statement {
    sid       = "EvidenceWriteRead"
    actions   = ["s3:PutObject", "s3:PutObjectRetention", "s3:GetObject", "s3:GetObjectRetention"]
    resources = ["${aws_s3_bucket.evidence.arn}/*"]
  }

  # Shared state (terraform/state.tf, docs/state.md): journals are created
  # object by object (PutObject with If-None-Match), leases replaced by
  # compare-and-swap (PutObject with If-Match), runs and locks listed. No
  # delete: drctl never deletes state (probe objects expire by lifecycle).
  statement {
    sid       = "StateList"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.state.arn]
  }

  statement {
    sid       = "StateReadWrite"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = ["${aws_s3_bucket.state.arn}/*"]
  }
}

resource "aws_iam_role_policy" "drctl" {
  name   = "drctl"
  role   = aws_iam_role.drctl.id
  policy = data.aws_iam_policy_document.drctl.json
}

# --- GCP service account ------------------------------------------------------
# No key is created here (it would sit in the Terraform state); let drctl
# authenticate through workload identity federation or an attached identity.

resource "google_service_account" "drctl" {
  account_id   = "drctl"
  display_name = "drctl evidence writer"
}

# objectCreator can create but not delete or overwrite objects.
resource "google_storage_bucket_iam_member" "drctl_object_creator" {
  bucket = google_storage_bucket.evidence.name
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${google_service_account.drctl.email}"
}

resource "google_storage_bucket_iam_member" "drctl_object_viewer" {
  bucket = google_storage_bucket.evidence.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.drctl.email}"
}
