# Plan "orders" (plans/orders.toml), [[global_database]] orders-db: an
# Aurora global database written in us-west-2, with secondary clusters in
# us-east-1 and eu-west-1. Each cluster is encrypted with its region's key;
# a secondary replicates storage from the writer and needs no instance to
# do so (a headless secondary, as drctl reprotect makes them), but one
# reader each here so that a failover finds an instance to write with at
# once. The ids are the plan's; drctl moves the writer
# (SwitchoverGlobalCluster, FailoverGlobalCluster), detaches a member, and
# rebuilds the global cluster after a detach (terraform/iam.tf,
# "AuroraGlobal*"): `lifecycle.ignore_changes` keeps Terraform from undoing
# what a failover did.

resource "aws_rds_global_cluster" "orders" {
  global_cluster_identifier = "orders-global"
  engine                    = "aurora-postgresql"
  engine_version            = var.aurora_engine_version
  storage_encrypted         = true
  deletion_protection       = true
}

resource "aws_rds_cluster" "orders_usw2" {
  cluster_identifier        = "orders-usw2"
  global_cluster_identifier = aws_rds_global_cluster.orders.id
  engine                    = aws_rds_global_cluster.orders.engine
  engine_version            = aws_rds_global_cluster.orders.engine_version
  database_name             = "orders"
  master_username           = "orders_owner"
  manage_master_user_password = true

  db_subnet_group_name   = aws_db_subnet_group.usw2.name
  vpc_security_group_ids = [aws_security_group.db_usw2.id]
  storage_encrypted      = true

  # An unplanned failover's snapshot of this volume is automated: it
  # expires with this retention (drctl reprotect warns and names it).
  backup_retention_period   = 14
  preferred_backup_window   = "09:30-10:00"
  copy_tags_to_snapshot     = true
  deletion_protection       = true
  final_snapshot_identifier = "orders-usw2-final"

  tags = {
    "drctl:plan" = "orders"
  }

  lifecycle {
    ignore_changes = [global_cluster_identifier, replication_source_identifier]
  }
}

resource "aws_rds_cluster" "orders_use1" {
  provider                  = aws.use1
  cluster_identifier        = "orders-use1"
  global_cluster_identifier = aws_rds_global_cluster.orders.id
  engine                    = aws_rds_global_cluster.orders.engine
  engine_version            = aws_rds_global_cluster.orders.engine_version

  db_subnet_group_name   = aws_db_subnet_group.use1.name
  vpc_security_group_ids = [aws_security_group.db_use1.id]
  storage_encrypted      = true
  kms_key_id             = aws_kms_key.rds_use1.arn

  backup_retention_period = 14
  copy_tags_to_snapshot   = true
  deletion_protection     = true
  skip_final_snapshot     = true

  tags = {
    "drctl:plan" = "orders"
  }

  depends_on = [aws_rds_cluster_instance.orders_usw2]

  lifecycle {
    ignore_changes = [global_cluster_identifier, replication_source_identifier]
  }
}

resource "aws_rds_cluster" "orders_euw1" {
  provider                  = aws.euw1
  cluster_identifier        = "orders-euw1"
  global_cluster_identifier = aws_rds_global_cluster.orders.id
  engine                    = aws_rds_global_cluster.orders.engine
  engine_version            = aws_rds_global_cluster.orders.engine_version

  db_subnet_group_name   = aws_db_subnet_group.euw1.name
  vpc_security_group_ids = [aws_security_group.db_euw1.id]
  storage_encrypted      = true
  kms_key_id             = aws_kms_key.rds_euw1.arn

  backup_retention_period = 14
  copy_tags_to_snapshot   = true
  deletion_protection     = true
  skip_final_snapshot     = true

  tags = {
    "drctl:plan" = "orders"
  }

  depends_on = [aws_rds_cluster_instance.orders_usw2]

  lifecycle {
    ignore_changes = [global_cluster_identifier, replication_source_identifier]
  }
}

resource "aws_rds_cluster_instance" "orders_usw2" {
  identifier         = "orders-usw2-1"
  cluster_identifier = aws_rds_cluster.orders_usw2.id
  engine             = aws_rds_cluster.orders_usw2.engine
  engine_version     = aws_rds_cluster.orders_usw2.engine_version
  instance_class     = var.aurora_instance_class
}

resource "aws_rds_cluster_instance" "orders_use1" {
  provider           = aws.use1
  identifier         = "orders-use1-1"
  cluster_identifier = aws_rds_cluster.orders_use1.id
  engine             = aws_rds_cluster.orders_use1.engine
  engine_version     = aws_rds_cluster.orders_use1.engine_version
  instance_class     = var.aurora_instance_class
}

resource "aws_rds_cluster_instance" "orders_euw1" {
  provider           = aws.euw1
  identifier         = "orders-euw1-1"
  cluster_identifier = aws_rds_cluster.orders_euw1.id
  engine             = aws_rds_cluster.orders_euw1.engine
  engine_version     = aws_rds_cluster.orders_euw1.engine_version
  instance_class     = var.aurora_instance_class
}

# Plan "orders", dns "orders-db-endpoint": follows the writer endpoint of
# whichever member writes (drctl switches it).
resource "aws_route53_record" "orders_db" {
  zone_id = aws_route53_zone.example.zone_id
  name    = "orders-db.example.com"
  type    = "CNAME"
  ttl     = 60
  records = [aws_rds_cluster.orders_usw2.endpoint]

  lifecycle {
    ignore_changes = [records]
  }
}
