# eu-west-1, the third region of the reference world (plans/payments.toml,
# plans/checkout.toml), and the checkout application, whose home is
# us-east-1. Same shapes as the files for the first two regions.

# --- network -------------------------------------------------------------------

resource "aws_security_group" "app_euw1" {
  provider = aws.euw1

  name        = "drctl-app-euw1"
  description = "Application instances in the third region"
  vpc_id      = var.vpc_id_euw1
}

resource "aws_vpc_security_group_egress_rule" "app_euw1_all" {
  provider = aws.euw1

  security_group_id = aws_security_group.app_euw1.id
  description       = "Outbound traffic of the applications"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_security_group" "db_euw1" {
  provider = aws.euw1

  name        = "drctl-db-euw1"
  description = "PostgreSQL read replicas (primaries after a failover)"
  vpc_id      = var.vpc_id_euw1
}

resource "aws_vpc_security_group_ingress_rule" "db_euw1_from_app" {
  provider = aws.euw1

  security_group_id            = aws_security_group.db_euw1.id
  description                  = "PostgreSQL from the application instances"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.app_euw1.id
}

resource "aws_db_subnet_group" "euw1" {
  provider = aws.euw1

  name       = "drctl-db-euw1"
  subnet_ids = var.subnet_ids_euw1
}

resource "aws_kms_key" "rds_euw1" {
  provider = aws.euw1

  description             = "Encrypts the RDS read replicas in eu-west-1"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

# --- databases -------------------------------------------------------------------

resource "aws_db_instance" "payments_euw1" {
  provider = aws.euw1

  identifier          = "payments-db-euw1"
  replicate_source_db = aws_db_instance.payments.arn
  instance_class      = var.db_instance_class
  multi_az            = true

  storage_encrypted = true
  kms_key_id        = aws_kms_key.rds_euw1.arn

  db_subnet_group_name   = aws_db_subnet_group.euw1.name
  vpc_security_group_ids = [aws_security_group.db_euw1.id]

  deletion_protection = true
  skip_final_snapshot = true

  tags = {
    "drctl:plan" = "payments"
  }

  lifecycle {
    ignore_changes = [replicate_source_db]
  }
}

resource "aws_db_instance" "checkout" {
  provider = aws.use1

  identifier     = "checkout-db"
  engine         = "postgres"
  engine_version = var.postgres_engine_version
  instance_class = var.db_instance_class
  multi_az       = true

  allocated_storage = var.db_allocated_storage
  storage_type      = "gp3"
  storage_encrypted = true
  kms_key_id        = aws_kms_key.rds_use1.arn

  db_name                     = "checkout"
  username                    = "checkout_owner"
  manage_master_user_password = true

  db_subnet_group_name   = aws_db_subnet_group.use1.name
  vpc_security_group_ids = [aws_security_group.db_use1.id]

  backup_retention_period   = 14
  backup_window             = "09:00-09:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = true
  final_snapshot_identifier = "checkout-db-final"

  tags = {
    "drctl:plan" = "checkout"
  }
}

resource "aws_db_instance" "checkout_usw2" {
  identifier          = "checkout-db-usw2"
  replicate_source_db = aws_db_instance.checkout.arn
  instance_class      = var.db_instance_class
  multi_az            = true

  storage_encrypted = true

  db_subnet_group_name   = aws_db_subnet_group.usw2.name
  vpc_security_group_ids = [aws_security_group.db_usw2.id]

  deletion_protection = true
  skip_final_snapshot = true

  tags = {
    "drctl:plan" = "checkout"
  }

  lifecycle {
    ignore_changes = [replicate_source_db]
  }
}

resource "aws_db_instance" "checkout_euw1" {
  provider = aws.euw1

  identifier          = "checkout-db-euw1"
  replicate_source_db = aws_db_instance.checkout.arn
  instance_class      = var.db_instance_class
  multi_az            = true

  storage_encrypted = true
  kms_key_id        = aws_kms_key.rds_euw1.arn

  db_subnet_group_name   = aws_db_subnet_group.euw1.name
  vpc_security_group_ids = [aws_security_group.db_euw1.id]

  deletion_protection = true
  skip_final_snapshot = true

  tags = {
    "drctl:plan" = "checkout"
  }

  lifecycle {
    ignore_changes = [replicate_source_db]
  }
}

# --- compute -----------------------------------------------------------------------

data "aws_ssm_parameter" "ami_euw1" {
  provider = aws.euw1

  name = var.ami_ssm_parameter
}

locals {
  # Group name => (plan, min, desired, max). Home groups keep
  # their sizes under terraform; standby groups are sized by drctl.
  third_region_groups = {
    "payments-api-euw1" = { plan = "payments", min = 0, desired = 0, max = 8 }
    "checkout-web-euw1" = { plan = "checkout", min = 0, desired = 1, max = 6 }
  }
}

resource "aws_launch_template" "euw1" {
  provider = aws.euw1
  for_each = local.third_region_groups

  name_prefix            = "${each.key}-"
  image_id               = nonsensitive(data.aws_ssm_parameter.ami_euw1.value)
  instance_type          = var.payments_api_instance_type
  vpc_security_group_ids = [aws_security_group.app_euw1.id]

  metadata_options {
    http_tokens = "required"
  }

  tags = {
    "drctl:plan" = each.value.plan
  }
}

resource "aws_autoscaling_group" "euw1" {
  provider = aws.euw1
  for_each = local.third_region_groups

  name                = each.key
  min_size            = each.value.min
  desired_capacity    = each.value.desired
  max_size            = each.value.max
  vpc_zone_identifier = var.subnet_ids_euw1

  launch_template {
    id      = aws_launch_template.euw1[each.key].id
    version = "$Latest"
  }

  tag {
    key                 = "drctl:plan"
    value               = each.value.plan
    propagate_at_launch = true
  }

  lifecycle {
    ignore_changes = [min_size, max_size, desired_capacity]
  }
}

resource "aws_launch_template" "checkout_use1" {
  provider = aws.use1

  name_prefix            = "checkout-web-use1-"
  image_id               = nonsensitive(data.aws_ssm_parameter.ami_use1.value)
  instance_type          = var.payments_api_instance_type
  vpc_security_group_ids = [aws_security_group.app_use1.id]

  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_autoscaling_group" "checkout_web_use1" {
  provider = aws.use1

  name                = "checkout-web-use1"
  min_size            = 2
  desired_capacity    = 3
  max_size            = 6
  vpc_zone_identifier = var.subnet_ids_use1

  launch_template {
    id      = aws_launch_template.checkout_use1.id
    version = "$Latest"
  }

  tag {
    key                 = "drctl:plan"
    value               = "checkout"
    propagate_at_launch = true
  }
}

resource "aws_launch_template" "checkout_usw2" {
  name_prefix            = "checkout-web-usw2-"
  image_id               = nonsensitive(data.aws_ssm_parameter.ami_usw2.value)
  instance_type          = var.payments_api_instance_type
  vpc_security_group_ids = [aws_security_group.app_usw2.id]

  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_autoscaling_group" "checkout_web_usw2" {
  name                = "checkout-web-usw2"
  min_size            = 0
  desired_capacity    = 1
  max_size            = 6
  vpc_zone_identifier = var.subnet_ids_usw2

  launch_template {
    id      = aws_launch_template.checkout_usw2.id
    version = "$Latest"
  }

  tag {
    key                 = "drctl:plan"
    value               = "checkout"
    propagate_at_launch = true
  }

  lifecycle {
    ignore_changes = [min_size, max_size, desired_capacity]
  }
}

# --- evidence and data-plane controls ------------------------------------------------

resource "aws_s3_bucket" "evidence_euw1" {
  provider = aws.euw1

  bucket              = "drctl-evidence-euw1"
  object_lock_enabled = true
}

resource "aws_s3_bucket_versioning" "evidence_euw1" {
  provider = aws.euw1

  bucket = aws_s3_bucket.evidence_euw1.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "evidence_euw1" {
  provider = aws.euw1

  bucket = aws_s3_bucket.evidence_euw1.id

  rule {
    default_retention {
      mode = "GOVERNANCE"
      days = var.evidence_retention_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.evidence_euw1]
}

resource "aws_s3_bucket_public_access_block" "evidence_euw1" {
  provider = aws.euw1

  bucket                  = aws_s3_bucket.evidence_euw1.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# One control bucket per region (docs/failover.md, "Two ways to move
# traffic"). Route 53's health checkers read the control objects
# anonymously, so the bucket policy allows GetObject on them and nothing
# else; the objects themselves are written by `drctl dns prepare` and by
# failovers, never by terraform (their content is the switch).
resource "aws_s3_bucket" "control_use1" {
  provider = aws.use1
  bucket   = "drctl-control-use1"
}

resource "aws_s3_bucket" "control_usw2" {
  bucket = "drctl-control-usw2"
}

resource "aws_s3_bucket" "control_euw1" {
  provider = aws.euw1
  bucket   = "drctl-control-euw1"
}

resource "aws_s3_bucket_versioning" "control_use1" {
  provider = aws.use1
  bucket   = aws_s3_bucket.control_use1.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_versioning" "control_usw2" {
  bucket = aws_s3_bucket.control_usw2.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_versioning" "control_euw1" {
  provider = aws.euw1
  bucket   = aws_s3_bucket.control_euw1.id
  versioning_configuration {
    status = "Enabled"
  }
}

# --- checkout's data-plane switch (plans/checkout.toml, switch = "health-check")
# The shape `drctl dns prepare --plan checkout` makes (src/steps/dns_setup.rs):
# one HTTPS string-match health check per region, reading that region's
# control object, and failover records that follow them. drctl finds these
# checks by the control they read, so checks made here or by `dns prepare`
# are the same to it. The control objects themselves are not terraform's:
# their content is the switch (`dns prepare` creates them, failovers flip them).

locals {
  checkout_regions = {
    use1 = { region = "us-east-1", bucket = "drctl-control-use1" }
    usw2 = { region = "us-west-2", bucket = "drctl-control-usw2" }
    euw1 = { region = "eu-west-1", bucket = "drctl-control-euw1" }
  }
}

resource "aws_route53_health_check" "checkout" {
  for_each = local.checkout_regions

  type              = "HTTPS_STR_MATCH"
  fqdn              = "${each.value.bucket}.s3.${each.value.region}.amazonaws.com"
  port              = 443
  resource_path     = "/checkout/checkout"
  search_string     = "state=serve"
  request_interval  = 10
  failure_threshold = 3

  tags = {
    "Name"       = "drctl checkout ${each.value.region}"
    "drctl:plan" = "checkout"
  }
}

resource "aws_route53_record" "checkout_use1" {
  zone_id = aws_route53_zone.example.zone_id
  name    = "checkout-use1.example.com"
  type    = "A"
  ttl     = 300
  records = var.checkout_use1_addresses
}

resource "aws_route53_record" "checkout_usw2" {
  zone_id = aws_route53_zone.example.zone_id
  name    = "checkout-usw2.example.com"
  type    = "A"
  ttl     = 300
  records = var.checkout_usw2_addresses
}

resource "aws_route53_record" "checkout_euw1" {
  zone_id = aws_route53_zone.example.zone_id
  name    = "checkout-euw1.example.com"
  type    = "A"
  ttl     = 300
  records = var.checkout_euw1_addresses
}

# Level 0: us-east-1 first, else the chain's next level.
resource "aws_route53_record" "checkout_primary" {
  zone_id         = aws_route53_zone.example.zone_id
  name            = "checkout.example.com"
  type            = "CNAME"
  ttl             = 60
  records         = [aws_route53_record.checkout_use1.fqdn]
  set_identifier  = "us-east-1"
  health_check_id = aws_route53_health_check.checkout["use1"].id

  failover_routing_policy {
    type = "PRIMARY"
  }
}

resource "aws_route53_record" "checkout_next" {
  zone_id        = aws_route53_zone.example.zone_id
  name           = "checkout.example.com"
  type           = "CNAME"
  set_identifier = "drctl-failover-1"

  alias {
    name                   = "drctl-failover-1.checkout.example.com"
    zone_id                = aws_route53_zone.example.zone_id
    evaluate_target_health = true
  }

  failover_routing_policy {
    type = "SECONDARY"
  }
}

# Level 1: us-west-2, else eu-west-1.
resource "aws_route53_record" "checkout_level1" {
  for_each = {
    usw2 = { role = "PRIMARY", target = aws_route53_record.checkout_usw2.fqdn }
    euw1 = { role = "SECONDARY", target = aws_route53_record.checkout_euw1.fqdn }
  }

  zone_id         = aws_route53_zone.example.zone_id
  name            = "drctl-failover-1.checkout.example.com"
  type            = "CNAME"
  ttl             = 60
  records         = [each.value.target]
  set_identifier  = local.checkout_regions[each.key].region
  health_check_id = aws_route53_health_check.checkout[each.key].id

  failover_routing_policy {
    type = each.value.role
  }
}

# Plan "payments" in eu-west-1: its entry point (the api record's target there).
resource "aws_route53_record" "api_euw1" {
  zone_id = aws_route53_zone.example.zone_id
  name    = "api-euw1.example.com"
  type    = "A"
  ttl     = 300
  records = var.api_euw1_addresses
}
