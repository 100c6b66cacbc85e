# The identity drctl runs as. Least privilege: exactly the API calls drctl
# makes, on the resources of the plans in plans/. README.md explains each
# statement, and why some of them must use "*". tests/it/iam.rs checks it
# against the calls themselves: a failover, drills, `dns prepare`, `notify
# test` and `watch --once` run against the emulators with a call log, and
# every AWS action they need must be allowed here; the record names drills
# and failover chains write must pass the Route 53 condition.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # The two roles' ARNs, spelled here so that each trust policy can refuse
  # the other role's sessions without a reference between the roles.
  failover_role_arn = "arn:${local.partition}:iam::${local.account_id}:role/drctl"
  observer_role_arn = "arn:${local.partition}:iam::${local.account_id}:role/drctl-observer"

  db_regions = ["us-west-2", "us-east-1", "eu-west-1"]

  # Instances drctl may act on: the plan instances, and any instance it
  # creates (point-in-time restores, re-protect replicas) named after them.
  rds_db_arns = flatten([
    for region in local.db_regions : [
      for prefix in ["payments-db", "ledger-db", "checkout-db", "catalog-db", "archive-db"] :
      "arn:${local.partition}:rds:${region}:${local.account_id}:db:${prefix}*"
    ]
  ])

  # A drill's temporary instances: `drill-<drill id>-<instance>`
  # (src/steps/drill_names.rs). The only instances drctl deletes.
  rds_drill_arns = [
    for region in local.db_regions :
    "arn:${local.partition}:rds:${region}:${local.account_id}:db:drill-*"
  ]

  # What a backup standby's restore is made from: the automated backups
  # replicated into a region, and the snapshots copied there.
  rds_backup_arns = flatten([
    for region in local.db_regions : [
      "arn:${local.partition}:rds:${region}:${local.account_id}:auto-backup:*",
      "arn:${local.partition}:rds:${region}:${local.account_id}:snapshot:archive-db*",
    ]
  ])

  # Other resources RDS authorises when drctl creates an instance.
  rds_create_arns = [
    aws_db_subnet_group.usw2.arn,
    aws_db_subnet_group.use1.arn,
    aws_db_subnet_group.euw1.arn,
    aws_db_subnet_group.archive_usw2.arn,
    aws_db_subnet_group.archive_use1.arn,
    aws_db_parameter_group.archive_usw2.arn,
    aws_db_parameter_group.archive_use1.arn,
    aws_rds_cluster_parameter_group.archive_usw2.arn,
    aws_rds_cluster_parameter_group.archive_use1.arn,
    "arn:${local.partition}:rds:*:${local.account_id}:og:default:postgres-*",
    "arn:${local.partition}:rds:*:${local.account_id}:pg:default.postgres*",
  ]

  # The plans' Auto Scaling groups, in every region.
  plan_group_arns = concat(
    [
      aws_autoscaling_group.payments_api_usw2.arn,
      aws_autoscaling_group.payments_api_use1.arn,
      aws_autoscaling_group.ledger_workers_usw2.arn,
      aws_autoscaling_group.ledger_workers_use1.arn,
      aws_autoscaling_group.checkout_web_use1.arn,
      aws_autoscaling_group.checkout_web_usw2.arn,
      aws_autoscaling_group.archive_api_usw2.arn,
      aws_autoscaling_group.archive_api_use1.arn,
    ],
    [for g in aws_autoscaling_group.euw1 : g.arn],
  )

  # The orders workers' ECS services (ecs.tf), in the long ARN format
  # `service/<cluster>/<service>` that tagging needs.
  ecs_service_arns = [
    for region, cluster in {
      "us-west-2" = aws_ecs_cluster.orders_usw2.name
      "us-east-1" = aws_ecs_cluster.orders_use1.name
      "eu-west-1" = aws_ecs_cluster.orders_euw1.name
    } :
    "arn:${local.partition}:ecs:${region}:${local.account_id}:service/${cluster}/orders-workers"
  ]

  evidence_bucket_arns = [aws_s3_bucket.evidence.arn, aws_s3_bucket.evidence_euw1.arn]
  control_bucket_arns = [
    aws_s3_bucket.control_use1.arn,
    aws_s3_bucket.control_usw2.arn,
    aws_s3_bucket.control_euw1.arn,
  ]

  # Where [[notify]] sinks publish (drctl.toml, docs/notify.md): the topics
  # and buses given, else topics named drctl-* and the default bus of every
  # region (`{region}` in a sink is the run's target region).
  notify_topic_arns = length(var.notify_sns_topic_arns) > 0 ? var.notify_sns_topic_arns : [
    "arn:${local.partition}:sns:*:${local.account_id}:drctl-*",
  ]
  notify_bus_arns = length(var.notify_event_bus_arns) > 0 ? var.notify_event_bus_arns : [
    "arn:${local.partition}:events:*:${local.account_id}:event-bus/default",
  ]
}

# --- AWS role -----------------------------------------------------------------

# Who may become the failover role: the principal that runs drctl, and never
# an observer. The deny holds even where the trusted principal is a whole
# account (`arn:aws:iam::<account>:root`, any principal the account lets
# assume it): an observer host, or a session of the read-only observer role,
# is still refused. A chain through a third role an observer may assume is
# not: trust one role, not the account root. tests/it/iam.rs evaluates both trust policies and fails
# if any principal can assume both roles
# (`regression_an_observer_could_assume_the_failover_role`).
data "aws_iam_policy_document" "drctl_assume" {
  statement {
    sid     = "RunsDrctl"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = [var.drctl_trusted_principal_arn]
    }
  }

  statement {
    sid     = "NeverAnObserver"
    effect  = "Deny"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:PrincipalArn"
      values   = concat([local.observer_role_arn], var.drctl_observer_principal_arns)
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
  # the plans name: each record, the levels of a data-plane record's
  # failover chain (`drctl-failover-K.<name>`, src/steps/dns_setup.rs), and
  # a drill's copies of both (`drill-<drill id>.<name>`,
  # src/steps/drill_names.rs). Route 53 normalises the names (lower case,
  # no trailing dot); `*` matches dots too.
  statement {
    sid = "Route53ReadZone"
    # ListResourceRecordSetProtections: a protected record is named before
    # the switch, never lifted (drctl deletes no protection).
    actions = [
      "route53:GetHostedZone",
      "route53:ListResourceRecordSets",
      "route53:ListResourceRecordSetProtections",
    ]
    resources = [aws_route53_zone.example.arn]
  }

  statement {
    sid       = "Route53SwitchPlanRecords"
    actions   = ["route53:ChangeResourceRecordSets"]
    resources = [aws_route53_zone.example.arn]

    condition {
      test     = "ForAllValues:StringLike"
      variable = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
      values = [
        "api.example.com",
        "payments-db.example.com",
        "orders-db.example.com",
        "catalog-db.example.com",
        "archive-db.example.com",
        "archive-ledger.example.com",
        "ledger.example.com",
        "checkout.example.com",
        "drctl-failover-*.checkout.example.com",
        "drill-*.api.example.com",
        "drill-*.payments-db.example.com",
        "drill-*.orders-db.example.com",
        "drill-*.catalog-db.example.com",
        "drill-*.archive-db.example.com",
        "drill-*.archive-ledger.example.com",
        "drill-*.ledger.example.com",
        "drill-*.checkout.example.com",
      ]
    }
  }

  # The data-plane switch's health checks: `dns prepare` lists and creates
  # them, a drill of the switch creates copies and deletes them again.
  # ListHealthChecks and CreateHealthCheck have no resource-level
  # permissions; health check ids are random.
  statement {
    sid       = "Route53HealthChecks"
    actions   = ["route53:ListHealthChecks", "route53:CreateHealthCheck"]
    resources = ["*"]
  }

  statement {
    sid       = "Route53DeleteDrillHealthChecks"
    actions   = ["route53:DeleteHealthCheck"]
    resources = ["arn:${local.partition}:route53:::healthcheck/*"]
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
    resources = concat(local.rds_db_arns, local.rds_drill_arns)
  }

  # `drctl status` says the maintenance AWS will apply to a standby
  # replica (or an Aurora secondary cluster). The action takes no
  # resource-level permission: "*".
  statement {
    sid       = "RdsPendingMaintenance"
    actions   = ["rds:DescribePendingMaintenanceActions"]
    resources = ["*"]
  }

  statement {
    sid       = "RdsDescribeAutomatedBackups"
    actions   = ["rds:DescribeDBInstanceAutomatedBackups"]
    resources = ["*"]
  }

  # Promotion (tagged with its source), renames, and a drill's temporary
  # replica (created with the drill's tags, promoted by the drill).
  statement {
    sid = "RdsRecover"
    actions = [
      "rds:PromoteReadReplica",
      "rds:ModifyDBInstance",
      "rds:AddTagsToResource",
    ]
    resources = concat(local.rds_db_arns, local.rds_drill_arns)
  }

  statement {
    sid = "RdsCreateInstances"
    actions = [
      "rds:CreateDBInstanceReadReplica",
      "rds:RestoreDBInstanceToPointInTime",
      "rds:RestoreDBInstanceFromDBSnapshot",
    ]
    resources = concat(
      local.rds_db_arns, local.rds_drill_arns, local.rds_create_arns, local.rds_backup_arns
    )
  }

  # A backup standby (`[[backup_database]]`): what a restore in a region
  # reads first (the snapshots copied there; the plan's subnet and
  # parameter groups; whether its class is offered there for the engine),
  # and a reprotection replicating the new primary's backups back. The
  # describes are reads of names the plans give; the replication is
  # authorised on the source instance.
  statement {
    sid = "RdsReadBackups"
    actions = [
      "rds:DescribeDBSnapshots",
      "rds:DescribeDBSubnetGroups",
      "rds:DescribeDBParameterGroups",
      "rds:DescribeDBClusterParameterGroups",
      "rds:DescribeOptionGroups",
      "rds:DescribeOrderableDBInstanceOptions",
    ]
    resources = ["*"]
  }

  # Encrypted backups restore only with their key usable in the target:
  # readiness reads its state (never its material), in the regions a
  # database recovers into.
  statement {
    sid     = "KmsReadRestoreKeys"
    actions = ["kms:DescribeKey"]
    resources = [
      for region in local.db_regions : "arn:${local.partition}:kms:${region}:${local.account_id}:key/*"
    ]
  }

  statement {
    sid = "RdsReplicateBackups"
    actions = [
      "rds:StartDBInstanceAutomatedBackupsReplication",
      "rds:StopDBInstanceAutomatedBackupsReplication",
    ]
    resources = local.rds_db_arns
  }

  # A drill's cleanup deletes its temporary instances, and nothing else.
  statement {
    sid       = "RdsDeleteDrillInstances"
    actions   = ["rds:DeleteDBInstance"]
    resources = local.rds_drill_arns
  }

  # The replicas in us-east-1 and eu-west-1 are encrypted with
  # customer-managed keys; RDS uses them on drctl's behalf when drctl
  # creates a replica there, and archive-db's backups replicated into
  # us-west-2 by reprotect (and restored there by a failback) use its key.
  statement {
    sid       = "KmsForRdsReplicas"
    actions   = ["kms:DescribeKey", "kms:CreateGrant"]
    resources = [aws_kms_key.rds_use1.arn, aws_kms_key.rds_euw1.arn, aws_kms_key.rds_usw2.arn]

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

  # The target groups a group or a service is registered in: a raise counts
  # what they say healthy (a read; Describe* takes no resource).
  statement {
    sid       = "TargetHealth"
    actions   = ["elasticloadbalancing:DescribeTargetHealth"]
    resources = ["*"]
  }

  statement {
    sid = "AutoScalingResizePlanGroups"
    actions = [
      "autoscaling:UpdateAutoScalingGroup",
      "autoscaling:SetDesiredCapacity",
    ]
    resources = local.plan_group_arns
  }

  # A drill marks a group it raises with its tags (run, owner, expiry, the
  # capacity to restore) and removes them when it lowers the group; a
  # failover taking a raised group over removes them too. Only those tags.
  statement {
    sid       = "AutoScalingDrillTags"
    actions   = ["autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags"]
    resources = local.plan_group_arns

    condition {
      test     = "ForAllValues:StringLike"
      variable = "aws:TagKeys"
      values   = ["drctl:drill-*"]
    }
  }

  # Aurora global database (`[[global_database]]`, plans/orders.toml): read
  # the global cluster and its members anywhere; move the writer, detach a
  # member and rebuild the global cluster (reprotect after a detach) only
  # for the orders global cluster and its members; a drill's copies are
  # `drill-*` clusters with writer instances of their own.
  statement {
    sid = "AuroraGlobalRead"
    actions = [
      "rds:DescribeGlobalClusters",
      "rds:DescribeDBClusters",
      "rds:DescribeDBClusterSnapshots",
    ]
    resources = ["*"]
  }

  statement {
    sid = "AuroraGlobalMove"
    actions = [
      "rds:SwitchoverGlobalCluster",
      "rds:FailoverGlobalCluster",
      "rds:RemoveFromGlobalCluster",
      "rds:CreateGlobalCluster",
      "rds:DeleteGlobalCluster",
      "rds:CreateDBCluster",
      "rds:ModifyDBCluster",
    ]
    resources = [
      "arn:${local.partition}:rds::${local.account_id}:global-cluster:orders-global",
      "arn:${local.partition}:rds:*:${local.account_id}:cluster:orders-*",
    ]
  }

  # A drill clones a member into a `drill-*` copy (the source is read by
  # the clone), adds its writer instance, tags both, and deletes them.
  statement {
    sid = "AuroraDrillClone"
    actions = [
      "rds:RestoreDBClusterToPointInTime",
      "rds:AddTagsToResource",
    ]
    resources = [
      "arn:${local.partition}:rds:*:${local.account_id}:cluster:orders-*",
      "arn:${local.partition}:rds:*:${local.account_id}:cluster:drill-*",
    ]
  }

  statement {
    sid = "AuroraDrillCopies"
    actions = [
      "rds:CreateDBInstance",
      "rds:AddTagsToResource",
      "rds:DeleteDBCluster",
      "rds:DeleteDBInstance",
    ]
    resources = [
      "arn:${local.partition}:rds:*:${local.account_id}:cluster:drill-*",
      "arn:${local.partition}:rds:*:${local.account_id}:db:drill-*",
    ]
  }

  # A cluster backup standby (`[[backup_cluster]]`, archive-ledger): a
  # restore makes a cluster of the plan's name (a drill's: `drill-*`) from
  # a snapshot copied into the region (`archive-ledger*`: the nightly
  # copies must be named so), in the plan's subnet and cluster parameter
  # groups, then adds its writer (`archive-ledger-writer-r*`; a drill's is
  # AuroraDrillCopies'). The production writer is not granted a write.
  statement {
    sid = "AuroraBackupRestore"
    actions = [
      "rds:RestoreDBClusterFromSnapshot",
      "rds:CreateDBInstance",
      "rds:AddTagsToResource",
    ]
    resources = concat(local.rds_create_arns, [
      "arn:${local.partition}:rds:*:${local.account_id}:cluster:archive-ledger*",
      "arn:${local.partition}:rds:*:${local.account_id}:cluster:drill-*",
      "arn:${local.partition}:rds:*:${local.account_id}:cluster-snapshot:archive-ledger*",
      "arn:${local.partition}:rds:*:${local.account_id}:db:archive-ledger-writer-r*",
      "arn:${local.partition}:rds:*:${local.account_id}:cluster-pg:default.aurora-postgresql*",
    ])
  }

  # Its reprotection: the old cluster renamed out of the way, a snapshot of
  # the new one taken and copied into the other regions.
  statement {
    sid = "AuroraBackupReprotect"
    actions = [
      "rds:ModifyDBCluster",
      "rds:CreateDBClusterSnapshot",
      "rds:CopyDBClusterSnapshot",
    ]
    resources = [
      "arn:${local.partition}:rds:*:${local.account_id}:cluster:archive-ledger*",
      "arn:${local.partition}:rds:*:${local.account_id}:cluster-snapshot:archive-ledger*",
    ]
  }

  # EKS managed node groups (`[[node_group]]`, plans/orders.toml):
  # read and resize only the orders node groups. A drill marks a node
  # group it raises with its tags and removes them when it lowers it; a
  # failover taking a raised node group over removes them too. Only those
  # tags. The clusters are not in this Terraform: the names are the
  # reference world's (localstack/seed).
  statement {
    sid = "EksNodeGroups"
    actions = [
      "eks:DescribeNodegroup",
      "eks:UpdateNodegroupConfig",
    ]
    resources = [
      "arn:${local.partition}:eks:*:${local.account_id}:nodegroup/orders-eks-*/orders-nodes-*/*",
      "arn:${local.partition}:eks:*:${local.account_id}:nodegroup/catalog-eks-*/catalog-nodes-*/*",
    ]
  }

  # A `[[kubernetes]]` cluster named `eks:CLUSTER`: its endpoint and CA.
  # What drctl may do inside the cluster is the cluster's RBAC
  # (deploy/kubernetes/drctl-role.yaml, bound through an EKS access entry
  # of this role), not IAM.
  statement {
    sid     = "EksClusters"
    actions = ["eks:DescribeCluster"]
    resources = [
      "arn:${local.partition}:eks:*:${local.account_id}:cluster/catalog-eks-*",
    ]
  }

  statement {
    sid     = "EksDrillTags"
    actions = ["eks:TagResource", "eks:UntagResource"]
    resources = [
      "arn:${local.partition}:eks:*:${local.account_id}:nodegroup/orders-eks-*/orders-nodes-*/*",
      "arn:${local.partition}:eks:*:${local.account_id}:nodegroup/catalog-eks-*/catalog-nodes-*/*",
    ]

    condition {
      test     = "ForAllValues:StringLike"
      variable = "aws:TagKeys"
      values   = ["drctl:drill-*"]
    }
  }

  # ECS services (`[[ecs_service]]`, plans/orders.toml; terraform/ecs.tf):
  # read and resize only the orders services (UpdateService with a desired
  # count; DescribeServices is also what a wait for the service to be
  # stable reads). A drill marks a service it raises with its tags and
  # removes them when it lowers it; a failover taking a raised service
  # over removes them too. Only those tags.
  statement {
    sid = "EcsServices"
    actions = [
      "ecs:DescribeServices",
      "ecs:UpdateService",
    ]
    resources = local.ecs_service_arns
  }

  statement {
    sid       = "EcsDrillTags"
    actions   = ["ecs:TagResource", "ecs:UntagResource"]
    resources = local.ecs_service_arns

    condition {
      test     = "ForAllValues:StringLike"
      variable = "aws:TagKeys"
      values   = ["drctl:drill-*"]
    }
  }

  # CloudWatch metric reads (ReplicaLag) have no resource-level permissions.
  statement {
    sid       = "CloudWatchReadMetrics"
    actions   = ["cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics"]
    resources = ["*"]
  }

  # `drctl watch`: the alarms a plan's [watch] names.
  statement {
    sid       = "CloudWatchReadAlarms"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = ["arn:${local.partition}:cloudwatch:*:${local.account_id}:alarm:*"]
  }

  # Notifications (docs/notify.md): SNS and EventBridge sinks.
  statement {
    sid       = "NotifySns"
    actions   = ["sns:Publish"]
    resources = local.notify_topic_arns
  }

  statement {
    sid       = "NotifyEventBridge"
    actions   = ["events:PutEvents"]
    resources = local.notify_bus_arns
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
    resources = local.evidence_bucket_arns
  }

  statement {
    sid       = "EvidenceWriteRead"
    actions   = ["s3:PutObject", "s3:PutObjectRetention", "s3:GetObject", "s3:GetObjectRetention"]
    resources = [for b in local.evidence_bucket_arns : "${b}/*"]
  }

  # Data-plane controls (docs/failover.md): `dns prepare` and failovers
  # write them (conditionally), every run reads them; a drill writes its
  # own beside production's (`<control>.drill-<drill id>`) and deletes
  # those, and only those, when it ends.
  statement {
    sid       = "ControlList"
    actions   = ["s3:ListBucket"]
    resources = local.control_bucket_arns
  }

  statement {
    sid       = "ControlWriteRead"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = [for b in local.control_bucket_arns : "${b}/*"]
  }

  statement {
    sid       = "ControlDeleteDrillControls"
    actions   = ["s3:DeleteObject"]
    resources = [for b in local.control_bucket_arns : "${b}/*.drill-*"]
  }

  # Shared state (terraform/state.tf, docs/state.md): journals are created
  # object by object (PutObject with If-None-Match), leases replaced by
  # compare-and-swap (PutObject with If-Match), runs and locks listed.
  # drctl deletes no journal or lease: only the object its store probe
  # writes (under the state prefix's probe/, which the lifecycle also
  # expires should the delete fail).
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

  statement {
    sid       = "StateDeleteProbes"
    actions   = ["s3:DeleteObject"]
    resources = ["${aws_s3_bucket.state.arn}/${var.state_prefix}/probe/*"]
  }
}

resource "aws_iam_role_policy" "drctl" {
  name   = "drctl"
  role   = aws_iam_role.drctl.id
  policy = data.aws_iam_policy_document.drctl.json
}

# --- `drctl watch` observers: read-only ---------------------------------------
# An observer (docs/watch.md, "Who may start a failover") observes, votes and
# tells; where a starter is named (`[watch] starters`), it never proposes or
# starts, so it runs with this role: describe, get and list what watch reads,
# write only under the state's watch/ and notices/ (its reports, markers and
# journals; its notices) and the store probe, and notify. No promotion, no
# record change, no resize: one observer host taken over cannot fail over.
# The starter runs with the `drctl` role above. tests/it/iam.rs checks that
# every call of `watch --once` is allowed here and that no write of a
# failover is (`an_observers_role_is_refused_every_write_of_a_failover`).
#
# Its trust is its own: the observer hosts (`var.drctl_observer_principal_arns`)
# and, for observer pods (deploy/watch/kubernetes.yaml), a web identity from
# the cluster's OIDC issuer for the watch service account alone
# (`var.drctl_watch_oidc`). The principal that runs failovers is refused
# here, as every observer is refused the failover role above: no principal
# holds both.
data "aws_iam_policy_document" "drctl_observer_assume" {
  dynamic "statement" {
    for_each = length(var.drctl_observer_principal_arns) > 0 ? [var.drctl_observer_principal_arns] : []
    content {
      sid     = "ObserverHosts"
      actions = ["sts:AssumeRole"]

      principals {
        type        = "AWS"
        identifiers = statement.value
      }
    }
  }

  dynamic "statement" {
    for_each = var.drctl_watch_oidc == null ? [] : [var.drctl_watch_oidc]
    content {
      sid     = "ObserverPods"
      actions = ["sts:AssumeRoleWithWebIdentity"]

      principals {
        type        = "Federated"
        identifiers = [statement.value.provider_arn]
      }

      condition {
        test     = "StringEquals"
        variable = "${statement.value.issuer}:sub"
        values   = ["system:serviceaccount:${statement.value.namespace}:${statement.value.service_account}"]
      }

      condition {
        test     = "StringEquals"
        variable = "${statement.value.issuer}:aud"
        values   = ["sts.amazonaws.com"]
      }
    }
  }

  statement {
    sid     = "NeverTheFailoverPrincipal"
    effect  = "Deny"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:PrincipalArn"
      values   = [var.drctl_trusted_principal_arn, local.failover_role_arn]
    }
  }
}

resource "aws_iam_role" "drctl_observer" {
  name                 = "drctl-observer"
  description          = "drctl watch observers: read, vote and tell; never fail over"
  assume_role_policy   = data.aws_iam_policy_document.drctl_observer_assume.json
  max_session_duration = 3600

  lifecycle {
    precondition {
      condition     = !contains(var.drctl_observer_principal_arns, var.drctl_trusted_principal_arn)
      error_message = "drctl_observer_principal_arns names drctl_trusted_principal_arn: the principal that runs failovers cannot also be an observer host; give the observers a principal of their own."
    }
  }
}

data "aws_iam_policy_document" "drctl_observer" {
  statement {
    sid = "ObserveReads"
    actions = [
      "route53:ListHostedZonesByName",
      "route53:GetHostedZone",
      "route53:ListResourceRecordSets",
      "route53:ListResourceRecordSetProtections",
      "route53:ListHealthChecks",
      "rds:DescribeDBInstances",
      "rds:DescribeDBClusters",
      "rds:DescribeGlobalClusters",
      "rds:DescribePendingMaintenanceActions",
      "autoscaling:DescribeAutoScalingGroups",
      "elasticloadbalancing:DescribeTargetHealth",
      "eks:DescribeNodegroup",
      "ecs:DescribeServices",
      "cloudwatch:GetMetricData",
      "cloudwatch:GetMetricStatistics",
      "cloudwatch:DescribeAlarms",
      "sts:GetCallerIdentity",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "ObserveControlsRead"
    actions   = ["s3:ListBucket", "s3:GetObject"]
    resources = concat(local.control_bucket_arns, [for b in local.control_bucket_arns : "${b}/*"])
  }

  statement {
    sid       = "ObserveStateRead"
    actions   = ["s3:ListBucket", "s3:GetObject"]
    resources = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]
  }

  statement {
    sid     = "ObserveStateWriteOwn"
    actions = ["s3:PutObject"]
    resources = [
      "${aws_s3_bucket.state.arn}/${var.state_prefix}/watch/*",
      "${aws_s3_bucket.state.arn}/${var.state_prefix}/notices/*",
      "${aws_s3_bucket.state.arn}/${var.state_prefix}/probe/*",
    ]
  }

  statement {
    sid       = "ObserveDeleteProbes"
    actions   = ["s3:DeleteObject"]
    resources = ["${aws_s3_bucket.state.arn}/${var.state_prefix}/probe/*"]
  }

  statement {
    sid       = "ObserveNotifySns"
    actions   = ["sns:Publish"]
    resources = local.notify_topic_arns
  }

  statement {
    sid       = "ObserveNotifyEventBridge"
    actions   = ["events:PutEvents"]
    resources = local.notify_bus_arns
  }
}

resource "aws_iam_role_policy" "drctl_observer" {
  name   = "drctl-observer"
  role   = aws_iam_role.drctl_observer.id
  policy = data.aws_iam_policy_document.drctl_observer.json
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

# --- drctl's recovery roles on GCP --------------------------------------------
# What drctl calls on Google Cloud for the plans' GCP resources ([[cloud_sql]],
# [[instance_group]], [[cloud_run]], [[cloud_dns]]), granted to the same
# service account (workload identity federation from the AWS runner: no key).
# tests/it/iam.rs derives the permissions a day's work needs from drctl's own
# call log (a drill and a failover of orders-gcp and of storefront) and checks
# each is granted here, and that every write is granted on the plans'
# resources alone (var.gcp_plan_resources), never project-wide:
# - reads (get, list, the lag, a regional operation) are one role in the
#   project, as an observer's are;
# - Cloud SQL promotion, switchover, reprotect's patch and a drill's clone are
#   granted per instance, by an IAM Condition on its exact name (Cloud SQL
#   recognises resource names in conditions; a clone is authorised on its
#   source, a plan's instance, and its copy is named drill-*);
# - a group's resize and its autoscaler's patch, per group, by a Condition on
#   the exact names (Compute Engine recognises them);
# - a Cloud Run service's update, on the service itself (Cloud Run takes IAM
#   bindings per service and no resource names in conditions);
# - record changes, on each managed zone itself (Cloud DNS takes IAM bindings
#   per zone).
# Google documents no permission of its own for `instances.switchover`; it is
# granted through `cloudsql.instances.failover` and
# `cloudsql.instances.promoteReplica` (an assumption to check on a real
# project: docs/security.md). Updating a Cloud Run service also needs
# `iam.serviceAccounts.actAs` on the service's runtime identity, granted per
# service account by its owners, not here.
resource "google_project_iam_custom_role" "drctl_recovery" {
  project     = var.gcp_project
  role_id     = "drctlRecovery"
  title       = "drctl recovery (reads)"
  description = "Reads of the plans' Cloud SQL, Compute, Cloud Run and Cloud DNS resources; the writes are the roles below, each on the plans' resources"
  permissions = [
    "cloudsql.instances.get",
    "cloudsql.instances.list",
    "cloudsql.backupRuns.list",
    "cloudsql.backupRuns.get",
    "monitoring.timeSeries.list",
    "compute.instanceGroupManagers.get",
    "compute.autoscalers.get",
    "compute.regionOperations.get",
    "run.services.get",
    "dns.managedZones.get",
    "dns.resourceRecordSets.list",
    "dns.changes.get",
    "dns.changes.list",
  ]
}

resource "google_project_iam_member" "drctl_recovery" {
  project = var.gcp_project
  role    = google_project_iam_custom_role.drctl_recovery.id
  member  = "serviceAccount:${google_service_account.drctl.email}"
}

resource "google_project_iam_custom_role" "drctl_recovery_sql" {
  project     = var.gcp_project
  role_id     = "drctlRecoverySql"
  title       = "drctl recovery: Cloud SQL"
  description = "Promote, switch over, patch, clone, back up and restore the plans' Cloud SQL instances"
  permissions = [
    "cloudsql.instances.promoteReplica",
    "cloudsql.instances.failover",
    "cloudsql.instances.update",
    "cloudsql.instances.clone",
    "cloudsql.instances.restoreBackup",
    "cloudsql.instances.create",
    # Reprotect of a backup standby takes one backup where a failback
    # restores (backups.insertBackup).
    "cloudsql.backupRuns.create",
  ]
}

resource "google_project_iam_member" "drctl_recovery_sql" {
  for_each = toset(var.gcp_plan_resources.sql_instances)
  project  = var.gcp_project
  role     = google_project_iam_custom_role.drctl_recovery_sql.id
  member   = "serviceAccount:${google_service_account.drctl.email}"

  condition {
    title       = "drctl-plan-instance-${each.value}"
    description = "The plans' Cloud SQL instance ${each.value} alone."
    expression  = "resource.type == \"sqladmin.googleapis.com/Instance\" && resource.name == \"projects/${var.gcp_project}/instances/${each.value}\""
  }
}

resource "google_project_iam_custom_role" "drctl_recovery_compute" {
  project     = var.gcp_project
  role_id     = "drctlRecoveryCompute"
  title       = "drctl recovery: managed instance groups"
  description = "Resize the plans' regional managed instance groups and patch their autoscalers"
  permissions = [
    "compute.instanceGroupManagers.update",
    "compute.autoscalers.update",
  ]
}

resource "google_project_iam_member" "drctl_recovery_compute" {
  for_each = { for g in var.gcp_plan_resources.instance_groups : "${g.region}/${g.name}" => g }
  project  = var.gcp_project
  role     = google_project_iam_custom_role.drctl_recovery_compute.id
  member   = "serviceAccount:${google_service_account.drctl.email}"

  condition {
    title       = "drctl-plan-group-${each.value.name}"
    description = "The plans' group ${each.value.name} in ${each.value.region} and its autoscaler alone."
    expression  = "resource.name == \"projects/${var.gcp_project}/regions/${each.value.region}/instanceGroupManagers/${each.value.name}\" || resource.name == \"projects/${var.gcp_project}/regions/${each.value.region}/autoscalers/${each.value.autoscaler}\""
  }
}

resource "google_project_iam_custom_role" "drctl_recovery_run" {
  project     = var.gcp_project
  role_id     = "drctlRecoveryRun"
  title       = "drctl recovery: Cloud Run"
  description = "Update the plans' Cloud Run services (their service-level floor)"
  permissions = [
    "run.services.update",
  ]
}

resource "google_cloud_run_v2_service_iam_member" "drctl_recovery_run" {
  for_each = { for r in var.gcp_plan_resources.run_services : "${r.region}/${r.name}" => r }
  project  = var.gcp_project
  location = each.value.region
  name     = each.value.name
  role     = google_project_iam_custom_role.drctl_recovery_run.id
  member   = "serviceAccount:${google_service_account.drctl.email}"
}

resource "google_project_iam_custom_role" "drctl_recovery_dns" {
  project     = var.gcp_project
  role_id     = "drctlRecoveryDns"
  title       = "drctl recovery: Cloud DNS"
  description = "Change record sets in the plans' managed zones"
  permissions = [
    "dns.changes.create",
    "dns.resourceRecordSets.create",
    "dns.resourceRecordSets.delete",
  ]
}

resource "google_dns_managed_zone_iam_member" "drctl_recovery_dns" {
  for_each     = toset(var.gcp_plan_resources.dns_zones)
  project      = var.gcp_project
  managed_zone = each.value
  role         = google_project_iam_custom_role.drctl_recovery_dns.id
  member       = "serviceAccount:${google_service_account.drctl.email}"
}

# Deleting a Cloud SQL instance, apart and scoped by an IAM Condition to the
# copies drills make (`drill-<run>-<instance>`, steps/drill_names.rs): the
# role above cannot delete a production instance, and this one can delete
# nothing else. `cloudsql.instances.update` (drctlRecoverySql, above) is
# reprotect's patch of the new primary's DR replica.
resource "google_project_iam_custom_role" "drctl_drill_cleanup" {
  project     = var.gcp_project
  role_id     = "drctlDrillCleanup"
  title       = "drctl drill cleanup"
  description = "Delete the Cloud SQL copies drctl's drills made (drill-*), nothing else"
  permissions = [
    "cloudsql.instances.delete",
  ]
}

resource "google_project_iam_member" "drctl_drill_cleanup" {
  project = var.gcp_project
  role    = google_project_iam_custom_role.drctl_drill_cleanup.id
  member  = "serviceAccount:${google_service_account.drctl.email}"

  condition {
    title       = "drctl-drill-copies-only"
    description = "Only instances named drill-*: a drill's own copies."
    expression  = "resource.type == \"sqladmin.googleapis.com/Instance\" && resource.name.startsWith(\"projects/${var.gcp_project}/instances/drill-\")"
  }
}

# --- `drctl watch` observers on GCP: read-only --------------------------------
# The GCP half of `drctl_observer` above: an observer of a plan with GCP
# resources reads them (Cloud SQL's roles and lag, the groups, the services'
# floors, the Cloud DNS records) and writes only its own places in the state
# (state.tf: watch/, notices/, probe/). It holds no promotion, switchover,
# resize, floor or record change: one observer host taken over cannot fail
# a GCP plan over. The starter runs as `drctl`. tests/it/iam.rs checks that
# this role holds only reads, and every read `watch` makes of a GCP plan
# (`a_gcp_observers_role_reads_what_watch_reads_and_writes_nothing`).
resource "google_service_account" "drctl_observer" {
  account_id   = "drctl-observer"
  display_name = "drctl watch observer (read, vote, tell; never fail over)"
}

resource "google_project_iam_custom_role" "drctl_observer" {
  project     = var.gcp_project
  role_id     = "drctlObserver"
  title       = "drctl observer"
  description = "Reads of the plans' Cloud SQL, Compute, Cloud Run and Cloud DNS resources that drctl watch makes; no write"
  permissions = [
    "cloudsql.instances.get",
    "cloudsql.instances.list",
    "monitoring.timeSeries.list",
    "compute.instanceGroupManagers.get",
    "compute.autoscalers.get",
    "run.services.get",
    "dns.managedZones.get",
    "dns.resourceRecordSets.list",
  ]
}

resource "google_project_iam_member" "drctl_observer" {
  project = var.gcp_project
  role    = google_project_iam_custom_role.drctl_observer.id
  member  = "serviceAccount:${google_service_account.drctl_observer.email}"
}
