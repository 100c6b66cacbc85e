# Both plans use the "promote-replica" strategy: a PostgreSQL primary in
# us-west-2 with automated backups (which point-in-time restore also needs)
# and a cross-region read replica in us-east-1 that drctl promotes.
#
# After a promotion the replica is a standalone primary. ignore_changes on
# replicate_source_db stops a later `terraform apply` from planning to destroy
# and re-create it; bring the configuration back in line after a failback
# (`drctl reprotect` re-creates replicas toward the old region).

# The encrypted primaries use the AWS-managed aws/rds key, which cannot leave
# us-west-2, so the replicas need a key of their own in us-east-1.
resource "aws_kms_key" "rds_use1" {
  provider = aws.use1

  description             = "Encrypts the RDS read replicas in us-east-1"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

resource "aws_kms_alias" "rds_use1" {
  provider = aws.use1

  name          = "alias/drctl-rds-use1"
  target_key_id = aws_kms_key.rds_use1.key_id
}

# What archive-db's backups are replicated home under after a failover
# (`drctl reprotect`; the plan's `kms_keys`): a key of us-west-2.
resource "aws_kms_key" "rds_usw2" {
  description             = "Encrypts archive-db's backups replicated into us-west-2"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

resource "aws_kms_alias" "rds_usw2" {
  name          = "alias/drctl-rds-usw2"
  target_key_id = aws_kms_key.rds_usw2.key_id
}

# --- Plan "payments" ----------------------------------------------------------

resource "aws_db_instance" "payments" {
  identifier     = "payments-db"
  engine         = "postgres"
  engine_version = var.postgres_engine_version
  instance_class = var.db_instance_class
  multi_az       = true

  allocated_storage = var.db_allocated_storage
  storage_type      = "gp3"
  storage_encrypted = true

  db_name                     = "payments"
  username                    = "payments_owner"
  manage_master_user_password = true

  db_subnet_group_name   = aws_db_subnet_group.usw2.name
  vpc_security_group_ids = [aws_security_group.db_usw2.id]

  backup_retention_period   = 14
  backup_window             = "09:00-09:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = true
  final_snapshot_identifier = "payments-db-final"

  tags = {
    "drctl:plan" = "payments"
  }
}

resource "aws_db_instance" "payments_use1" {
  provider = aws.use1

  identifier          = "payments-db-use1"
  replicate_source_db = aws_db_instance.payments.arn
  instance_class      = var.db_instance_class
  multi_az            = true

  storage_encrypted = true
  kms_key_id        = aws_kms_key.rds_use1.arn

  db_subnet_group_name   = aws_db_subnet_group.use1.name
  vpc_security_group_ids = [aws_security_group.db_use1.id]

  # Read replicas cannot take a final snapshot; deletion protection guards them.
  deletion_protection = true
  skip_final_snapshot = true

  tags = {
    "drctl:plan" = "payments"
  }

  lifecycle {
    ignore_changes = [replicate_source_db]
  }
}

# --- Plan "catalog" -----------------------------------------------------------
# Its workloads are on Kubernetes (deploy/kubernetes/drctl-role.yaml is what
# drctl needs there); its database is RDS with a replica in us-east-1.

resource "aws_db_instance" "catalog" {
  identifier     = "catalog-db"
  engine         = "postgres"
  engine_version = var.postgres_engine_version
  instance_class = var.db_instance_class
  multi_az       = true

  allocated_storage = var.db_allocated_storage
  storage_type      = "gp3"
  storage_encrypted = true

  db_name                     = "catalog"
  username                    = "catalog_owner"
  manage_master_user_password = true

  db_subnet_group_name   = aws_db_subnet_group.usw2.name
  vpc_security_group_ids = [aws_security_group.db_usw2.id]

  backup_retention_period   = 7
  backup_window             = "09:30-10:00"
  copy_tags_to_snapshot     = true
  deletion_protection       = true
  final_snapshot_identifier = "catalog-db-final"

  tags = {
    "drctl:plan" = "catalog"
  }
}

resource "aws_db_instance" "catalog_use1" {
  provider = aws.use1

  identifier          = "catalog-db-use1"
  replicate_source_db = aws_db_instance.catalog.arn
  instance_class      = var.db_instance_class
  multi_az            = true

  storage_encrypted = true
  kms_key_id        = aws_kms_key.rds_use1.arn

  db_subnet_group_name   = aws_db_subnet_group.use1.name
  vpc_security_group_ids = [aws_security_group.db_use1.id]

  # Read replicas cannot take a final snapshot; deletion protection guards them.
  deletion_protection = true
  skip_final_snapshot = true

  tags = {
    "drctl:plan" = "catalog"
  }

  lifecycle {
    ignore_changes = [replicate_source_db]
  }
}

# --- Plan "ledger" ------------------------------------------------------------

resource "aws_db_instance" "ledger" {
  identifier     = "ledger-db"
  engine         = "postgres"
  engine_version = var.postgres_engine_version
  instance_class = var.db_instance_class
  multi_az       = true

  allocated_storage = var.db_allocated_storage
  storage_type      = "gp3"
  storage_encrypted = true

  db_name                     = "ledger"
  username                    = "ledger_owner"
  manage_master_user_password = true

  db_subnet_group_name   = aws_db_subnet_group.usw2.name
  vpc_security_group_ids = [aws_security_group.db_usw2.id]

  backup_retention_period   = 7
  backup_window             = "09:30-10:00"
  copy_tags_to_snapshot     = true
  deletion_protection       = true
  final_snapshot_identifier = "ledger-db-final"

  tags = {
    "drctl:plan" = "ledger"
  }
}

resource "aws_db_instance" "ledger_use1" {
  provider = aws.use1

  identifier          = "ledger-db-use1"
  replicate_source_db = aws_db_instance.ledger.arn
  instance_class      = var.db_instance_class
  multi_az            = true

  storage_encrypted = true
  kms_key_id        = aws_kms_key.rds_use1.arn

  db_subnet_group_name   = aws_db_subnet_group.use1.name
  vpc_security_group_ids = [aws_security_group.db_use1.id]

  deletion_protection = true
  skip_final_snapshot = true

  tags = {
    "drctl:plan" = "ledger"
  }

  lifecycle {
    ignore_changes = [replicate_source_db]
  }
}

# archive (plans/archive.toml): backups as the standby. The primary in
# us-west-2, encrypted with the AWS-managed key; no instance in us-east-1,
# only its automated backups replicated there (encrypted with a key of
# us-east-1), which a failover restores into a new instance named
# archive-db in the subnet group below.
resource "aws_db_instance" "archive" {
  identifier     = "archive-db"
  engine         = "postgres"
  engine_version = var.postgres_engine_version
  instance_class = "db.t3.micro"

  allocated_storage = var.db_allocated_storage
  storage_type      = "gp3"
  storage_encrypted = true

  db_name                     = "archive"
  username                    = "archive_owner"
  manage_master_user_password = true

  db_subnet_group_name   = aws_db_subnet_group.archive_usw2.name
  parameter_group_name   = aws_db_parameter_group.archive_usw2.name
  vpc_security_group_ids = [aws_security_group.db_usw2.id]

  backup_retention_period   = 7
  backup_window             = "09:00-09:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = true
  final_snapshot_identifier = "archive-db-final"

  tags = {
    "drctl:plan" = "archive"
  }
}

resource "aws_db_instance_automated_backups_replication" "archive_use1" {
  provider = aws.use1

  source_db_instance_arn = aws_db_instance.archive.arn
  kms_key_id             = aws_kms_key.rds_use1.arn
  retention_period       = 7
}

# Where a restore of archive-db is placed in each region (the plan's
# `subnet_groups`).
resource "aws_db_subnet_group" "archive_usw2" {
  name       = "archive-private-usw2"
  subnet_ids = var.subnet_ids_usw2
}

resource "aws_db_subnet_group" "archive_use1" {
  provider = aws.use1

  name       = "archive-private-use1"
  subnet_ids = var.subnet_ids_use1
}

# The primary's tuning in each region (the plan's `parameter_groups`): a
# restore is given it, not the engine's default.
resource "aws_db_parameter_group" "archive_usw2" {
  name   = "archive-pg16"
  family = "postgres16"
}

resource "aws_db_parameter_group" "archive_use1" {
  provider = aws.use1

  name   = "archive-pg16"
  family = "postgres16"
}

# archive's ledger (plans/archive.toml, [[backup_cluster]] archive-ledger):
# an Aurora cluster in us-west-2 with no cluster in us-east-1, only its
# nightly cluster snapshots copied there (CopyDBClusterSnapshot under the
# us-east-1 key: Aurora replicates no backups across Regions). The nightly
# snapshot and its copy are the ledger team's scheduled job, not this
# Terraform's; drctl reads the copies' age against the RPO (AWS Backup's
# copies, snapshot type "awsbackup", are not read by drctl). A failover
# restores the newest copy into a cluster named archive-ledger in the
# subnet group and cluster parameter group below, then adds its writer.
resource "aws_rds_cluster" "archive_ledger" {
  cluster_identifier          = "archive-ledger"
  engine                      = "aurora-postgresql"
  engine_version              = var.aurora_engine_version
  database_name               = "ledger"
  master_username             = "ledger_owner"
  manage_master_user_password = true

  db_subnet_group_name            = aws_db_subnet_group.archive_usw2.name
  db_cluster_parameter_group_name = aws_rds_cluster_parameter_group.archive_usw2.name
  vpc_security_group_ids          = [aws_security_group.db_usw2.id]
  storage_encrypted               = true

  backup_retention_period   = 7
  preferred_backup_window   = "09:30-10:00"
  copy_tags_to_snapshot     = true
  deletion_protection       = true
  final_snapshot_identifier = "archive-ledger-final"

  tags = {
    "drctl:plan" = "archive"
  }
}

# Its writer: named as a restore names the one it adds (`<cluster>-writer`).
resource "aws_rds_cluster_instance" "archive_ledger_writer" {
  identifier         = "archive-ledger-writer"
  cluster_identifier = aws_rds_cluster.archive_ledger.id
  engine             = aws_rds_cluster.archive_ledger.engine
  engine_version     = aws_rds_cluster.archive_ledger.engine_version
  instance_class     = "db.r6g.large"
}

# The ledger's tuning in each region (the plan's `cluster_parameter_groups`):
# a restored cluster is given it, not the engine's default.
resource "aws_rds_cluster_parameter_group" "archive_usw2" {
  name   = "archive-apg16"
  family = "aurora-postgresql16"
}

resource "aws_rds_cluster_parameter_group" "archive_use1" {
  provider = aws.use1

  name   = "archive-apg16"
  family = "aurora-postgresql16"
}
