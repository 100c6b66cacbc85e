output "zone_id" {
  description = "Hosted zone of example.com."
  value       = aws_route53_zone.example.zone_id
}

output "zone_name_servers" {
  description = "Delegate example.com to these name servers at the registrar."
  value       = aws_route53_zone.example.name_servers
}

output "db_instances" {
  description = "RDS instance ids per plan and region, as plans/*.toml name them."
  value = {
    payments = {
      "us-west-2" = aws_db_instance.payments.identifier
      "us-east-1" = aws_db_instance.payments_use1.identifier
    }
    ledger = {
      "us-west-2" = aws_db_instance.ledger.identifier
      "us-east-1" = aws_db_instance.ledger_use1.identifier
    }
  }
}

output "autoscaling_groups" {
  description = "Auto Scaling group names per plan and region."
  value = {
    payments = {
      "us-west-2" = aws_autoscaling_group.payments_api_usw2.name
      "us-east-1" = aws_autoscaling_group.payments_api_use1.name
    }
    ledger = {
      "us-west-2" = aws_autoscaling_group.ledger_workers_usw2.name
      "us-east-1" = aws_autoscaling_group.ledger_workers_use1.name
    }
  }
}

output "evidence_destinations" {
  description = "Evidence buckets, as used in the plans' [evidence] destinations."
  value = [
    "s3://${aws_s3_bucket.evidence.bucket}",
    "gs://${google_storage_bucket.evidence.name}",
  ]
}

output "drctl_role_arn" {
  description = "Role drctl assumes (e.g. AWS_PROFILE with role_arn, or AWS_ROLE_ARN)."
  value       = aws_iam_role.drctl.arn
}

output "drctl_gcp_service_account" {
  description = "GCP identity drctl writes GCS evidence as."
  value       = google_service_account.drctl.email
}
